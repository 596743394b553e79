"""Precision carried by the ONNX model (`engine export --precision fp16|int8`), which TensorRT 8.6, 10 and 11
build the same way.

    source = to_fp16(Path("vit.onnx"), Path("vit_fp16.onnx"))                 # float16 weights and compute
    source = to_int8_qdq(Path("vit.onnx"), Path("vit_int8.onnx"), manifest, Path("calib/"), method="entropy")

- fp16: ONNX Runtime's float16 converter turns the weights and the compute to float16, keeping the numerically
  sensitive ops in float32: Softmax (attention weights), LayerNormalization (its variance) and the head that
  produces the logits; the model's input and output stay float32, so the manifest and the daemon do not change.
  TensorRT 10+ builds it strongly typed (every layer in the graph's own types), 8.6 with the FP16 flag.
- int8: explicit quantization. ONNX Runtime's static quantization inserts QuantizeLinear/DequantizeLinear pairs
  in QDQ format in front of the Conv and MatMul inputs: weights per output channel, activations per tensor,
  both symmetric int8 (TensorRT takes only zero points of 0), activation ranges calibrated on a folder of the
  user's images run through the model's own preprocessing, by entropy (KL divergence, TensorRT's own
  calibrator's method) or a percentile of the absolute values. TensorRT builds Q/DQ graphs as INT8 on 8.6 (INT8
  flag), 10 and 11 (strongly typed); implicit calibration is deprecated in 10.1 and gone in 11.

Both need onnxruntime (`pip install 'jetvit-daemon[export]'`). Functions, no state: thread-safe.
"""

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import numpy as np

from jetvit_daemon.engine.calibration import calibration_batches, calibration_images
from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.manifest import Manifest, PrecisionSource

log = logging.getLogger(__name__)

# Ops left in float32 by the fp16 conversion: softmax over attention scores and layer norm's variance overflow or
# lose their small differences in float16 (NVIDIA's TensorRT "Reduced Precision" guidance, ONNX Runtime's own
# float16 converter default block list keeps such ops too).
FP16_KEEP_OPS = ("Softmax", "LayerNormalization")
# Nodes of our exporter's graph (jetvit_daemon/engine/vit_onnx.py names them) that make the logits: the final
# norm and the head. Their float32 keeps the top-1 ranking of close logits intact.
FP16_KEEP_PREFIXES = ("norm/", "head/", "head.cls/", "logits")
# What TensorRT quantizes in explicit quantization: the inputs of Conv and MatMul (TensorRT developer guide,
# "Q/DQ Layer-Placement Recommendations": quantize the inputs of weighted operations, not the residual adds).
QDQ_OPS = ["Conv", "MatMul", "Gemm"]
CALIBRATION_METHODS = ("entropy", "percentile")
DEFAULT_PERCENTILE = 99.99


def _require_ort() -> Any:
    from jetvit_daemon.extras import require

    return require("onnxruntime", "engine export --precision fp16/int8 (ONNX Runtime converts and quantizes)")


def to_fp16(src: Path, out: Path) -> PrecisionSource:
    """Write `out`: `src` with float16 weights and compute, input and output float32; returns how."""
    _require_ort()
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    # Decomposed layer norms (--decompose-layernorm) are a handful of ops under the norm's name: keep them too.
    keep_nodes = [n.name for n in model.graph.node
                  if n.name.startswith(FP16_KEEP_PREFIXES) or ".norm1/" in n.name or ".norm2/" in n.name]
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(FP16_KEEP_OPS),
                                         node_block_list=keep_nodes)
    _drop_round_trips(converted)
    onnx.save(converted, str(out))
    return PrecisionSource(method="fp16-weights", kept_float32=[*FP16_KEEP_OPS, "logits head"])


def _drop_round_trips(model: Any) -> None:
    """Remove float32 → float16 → float32 Cast pairs the converter leaves between two float32-kept nodes (they
    would round the kept values, the logits among them, to float16 precision)."""
    from onnx import TensorProto

    graph = model.graph
    casts = {n.output[0]: n for n in graph.node if n.op_type == "Cast"}

    def to(node: Any) -> int:
        return next(a.i for a in node.attribute if a.name == "to")

    outputs = {o.name for o in graph.output}
    drop = set()
    for node in graph.node:
        first = casts.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        if first is None or to(node) != TensorProto.FLOAT or to(first) != TensorProto.FLOAT16:
            continue
        # first: x(float32) → float16; node: → float32 again. Feed node's consumers with x itself.
        source, target = first.input[0], node.output[0]
        if target in outputs:
            node.op_type, node.input[0] = "Identity", source
            del node.attribute[:]
            continue
        for consumer in graph.node:
            for i, name in enumerate(consumer.input):
                if name == target:
                    consumer.input[i] = source
        drop.add(id(node))
    kept = [n for n in graph.node if id(n) not in drop]
    used = {i for n in kept for i in n.input} | outputs
    kept = [n for n in kept if n.op_type != "Cast" or any(o in used for o in n.output)]
    del graph.node[:]
    graph.node.extend(_topological(kept, {i.name for i in graph.input} | {t.name for t in graph.initializer}))


def _topological(nodes: List[Any], available: Set[str]) -> List[Any]:
    """The nodes in an order where each comes after the producers of its inputs (ONNX requires it, and the
    converter appends its input casts at the end)."""
    ordered: List[Any] = []
    pending = list(nodes)
    known = set(available) | {""}  # "" is an omitted optional input
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise EngineError("the float16 conversion left a graph with a cycle or a dangling input")
        for n in ready:
            known.update(n.output)
        ordered += ready
        pending = [n for n in pending if all(n is not r for r in ready)]
    return ordered


class _Reader:
    """ONNX Runtime's CalibrationDataReader over the preprocessed calibration batches."""

    def __init__(self, input_name: str, batches: Iterator[np.ndarray]) -> None:
        self._name, self._batches = input_name, batches
        self.images = 0

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        batch = next(self._batches, None)
        if batch is None:
            return None
        self.images += len(batch)
        return {self._name: batch}


def to_int8_qdq(src: Path, out: Path, manifest: Manifest, images: Path, *, method: str = "entropy",
                max_images: int = 512, batch: int = 8, percentile: float = DEFAULT_PERCENTILE) -> PrecisionSource:
    """Write `out`: `src` with Q/DQ pairs calibrated on `images` (through `manifest`'s preprocessing)."""
    if method not in CALIBRATION_METHODS:
        raise EngineError(f"--calib-method {method!r}: choose one of {', '.join(CALIBRATION_METHODS)}")
    _require_ort()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    files = calibration_images(images, max_images)
    batch = min(batch, len(files))
    reader = _Reader(manifest.input.name, calibration_batches(manifest, files, batch))

    class Reader(CalibrationDataReader):  # quantize_static checks the type
        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            return reader.get_next()

    # Biases stay float: TensorRT's DequantizeLinear takes int8 inputs, not ONNX Runtime's int32 biases, and
    # folds the bias into the int8 kernel's epilogue itself.
    # Q/DQ on the inputs of the quantized ops only, not on their outputs, and a dedicated pair per reader: the
    # bias and residual adds, softmax and layer norms keep full precision (TensorRT's placement recommendation;
    # TensorRT fuses the output scale into the kernel where it helps).
    extra: Dict[str, Any] = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                             "DedicatedQDQPair": True, "OpTypesToExcludeOutputQuantization": list(QDQ_OPS)}
    if method == "percentile":
        extra["CalibPercentile"] = percentile
    calibrate = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}[method]
    # quantize_static writes augmented copies of the model next to it; keep them in a scratch folder.
    with tempfile.TemporaryDirectory(prefix="jetvit-qdq-") as tmp:
        staged = Path(tmp) / "model.onnx"
        shutil.copyfile(str(src), str(staged))
        target = Path(tmp) / "qdq.onnx"
        try:
            quantize_static(str(staged), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=QDQ_OPS, calibrate_method=calibrate, extra_options=extra)
        except (ValueError, RuntimeError) as exc:  # ONNX Runtime's calibration and quantizer errors
            raise EngineError(f"INT8 quantization of {src} failed: {exc}") from None
        if reader.images == 0:
            raise EngineError(f"--calib-images {images}: no readable image made a batch of {batch}")
        shutil.copyfile(str(target), str(out))
    log.info("INT8 QDQ model %s calibrated on %d images (%s)", out, reader.images, method)
    return PrecisionSource(method="qdq", calibration_images=reader.images, calibration_method=method,
                           percentile=percentile if method == "percentile" else None, per_channel=True)


def convert_precision(fp32_model: Path, precision: str, manifest: Manifest, *, calib_images: Optional[Path] = None,
                      calib_method: str = "entropy", calib_max_images: int = 512) -> PrecisionSource:
    """Rewrite `fp32_model` in place at `precision` (fp32: unchanged); returns how it was obtained."""
    if precision == "fp32":
        return PrecisionSource(method="exported")
    with tempfile.TemporaryDirectory(prefix="jetvit-precision-") as tmp:
        staged = Path(tmp) / "converted.onnx"
        if precision == "fp16":
            source = to_fp16(fp32_model, staged)
        elif precision == "int8":
            if calib_images is None:
                raise EngineError("--precision int8 needs --calib-images DIR: a folder of representative frames from "
                                  "your cameras (a few hundred), run through the model's preprocessing to calibrate")
            source = to_int8_qdq(fp32_model, staged, manifest, calib_images, method=calib_method,
                                 max_images=calib_max_images)
        else:
            raise EngineError(f"--precision {precision!r}: choose one of fp32, fp16, int8")
        shutil.copyfile(str(staged), str(fp32_model))
    return source


