"""The inference worker really run under Python 3.6 (JetPack 4.6's system Python, `runner.python`), from .ci/run:
`.venv/bin/python .ci/worker_py36.py PYTHON36`. The daemon side (this interpreter) starts
`PYTHON36 -m jetvit_daemon.runners.worker`, which must import, load a model with that interpreter's ONNX Runtime
(1.10, the last for 3.6: opset 15 at most, so the model here is a small ViT exported with LayerNorm decomposed
and stamped opset 15), and serve batches through the shared slots with results equal to this side's ONNX
Runtime. Exits non-zero, saying why, on any difference."""

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

from jetvit_daemon.engine.export import export_onnx
from jetvit_daemon.engine.vit_onnx import ViTConfig, init_weights
from jetvit_daemon.runners.manifest import PreprocessSpec, load_manifest
from jetvit_daemon.runners.ort_runner import OrtRunner
from jetvit_daemon.runners.worker_client import InferenceWorker, WorkerSpec

OPTIONS = {"providers": ["CPUExecutionProvider"], "intra_op_threads": 1}
ORT_36_MAX_OPSET = 15  # onnxruntime 1.10's "official support for domain ai.onnx is till opset 15"


def small_model(directory: Path) -> Path:
    cfg = ViTConfig(image_size=32, patch_size=8, in_chans=3, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
                    num_classes=10)
    path = export_onnx(init_weights(cfg, seed=0), cfg, directory / "vit36.onnx", model_name="vit36",
                       preprocess=PreprocessSpec(), max_batch=8, decompose_layernorm=True)
    model = onnx.load(str(path))
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = ORT_36_MAX_OPSET
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def main() -> int:
    python36 = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="jetvit-py36-") as tmp:
        model = small_model(Path(tmp))
        worker = InferenceWorker(WorkerSpec(python36, "onnxruntime", model, load_manifest(model), OPTIONS, 1))
        worker.start()
        try:
            batch = np.random.default_rng(0).normal(size=(5, 3, 32, 32)).astype(np.float32)
            for round_ in range(3):  # a few batches: the slots are reused
                slot = worker.acquire(10.0)
                assert slot is not None, "no free slot"
                worker.input(slot)[: len(batch)] = batch
                worker.submit(slot, len(batch), round_)
                done = worker.collect(30.0)
                assert done is not None, "no completion from the worker"
                got = np.array(done.outputs["logits"], copy=True)
                worker.release(done.slot)
            want = OrtRunner(model, **OPTIONS).infer(batch)["logits"]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
            version = worker.status().get("python_version")
            assert str(version).startswith("3.6"), f"the worker said it runs Python {version!r}, not 3.6"
            print(f"worker under Python {version} ({python36}): 3 batches through the shared slots, results equal "
                  "to ONNX Runtime in the daemon's interpreter")
        finally:
            worker.stop(5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
