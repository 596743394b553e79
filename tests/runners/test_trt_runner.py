"""TensorRTRunner against recorded stand-ins of TensorRT 8.2 (binding API), 8.6 (both APIs, binding deprecated),
10.3, 10.16 and 11.x (tensor-name API) plus pycuda (tests/runners/fake_trt.py): buffer sizing, profiles and shapes, API
selection, threads and contexts, and the documented errors for corrupt and mismatched engines."""

import json
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fake_trt
from fake_trt import FakeCuda, FakeTensorRT, engine_bytes

from jetvit_daemon.errors import EngineError
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.runners.base import choose_runner_name
from jetvit_daemon.runners.trt_runner import TensorRTRunner

# Real /etc/nv_tegra_release lines (as in tests/hardware/boardtrees.py): Orin Nano JetPack 6.2, Xavier NX 5.1.2.
ORIN_JP62 = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
             "DATE: Wed Jan  8 01:49:37 UTC 2025")
XAVIER_JP512 = ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
                "DATE: Tue Aug  1 19:57:35 UTC 2023")
ORIN_COMPATIBLE = "nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00"
XAVIER_COMPATIBLE = "nvidia,p3509-0000+p3668-0001\x00nvidia,jetson-xavier-nx\x00nvidia,tegra194\x00"


def board_tree(tmp_path: Path, release: str = ORIN_JP62, compatible: str = ORIN_COMPATIBLE) -> SysfsTree:
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "nv_tegra_release").write_text(release + "\n")
    (root / "proc" / "device-tree").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "device-tree" / "compatible").write_text(compatible)
    return SysfsTree(root)


def write_engine(tmp_path: Path, version: str = "10.3.0", *, name: str = "vit", build: Optional[Dict[str, Any]] = None,
                 input_shape: Tuple[int, ...] = (-1, 3, 32, 32), dtype: str = "float32", layout: str = "NCHW",
                 batch: Tuple[int, int] = (1, 8), blob: Optional[bytes] = None, **engine_kwargs: Any) -> Path:
    path = tmp_path / f"{name}.engine"
    path.write_bytes(blob if blob is not None else engine_bytes(version, input_shape=input_shape, dtype=dtype,
                                                                **engine_kwargs))
    info = {"tensorrt_version": version, "device": "t234 Orin sm_87", "compute_capability": "8.7",
            "jetpack": "6.2", "l4t_release": "36.4.3", "source_model": "vit.onnx",
            "command": f"jetvit-daemon engine build /models/vit.onnx --out {path} --precision fp16"}
    info.update(build or {})
    manifest = {
        "model_name": "vit-test", "framework": "tensorrt",
        "input": {"name": "pixel_values", "shape": [-1 if input_shape[0] == -1 else input_shape[0],
                                                    *input_shape[1:]], "dtype": dtype, "layout": layout},
        "outputs": ["logits"], "preprocess": {}, "precision": "fp16",
        "batch": {"min": batch[0], "max": batch[1]}, "build": info,
    }
    (tmp_path / f"{name}.manifest.json").write_text(json.dumps(manifest))
    return path


def expected_logits(batch: np.ndarray, classes: int = 10) -> np.ndarray:
    means = batch.reshape(len(batch), -1).astype(np.float64).mean(axis=1)
    return (means[:, None] * np.arange(1, classes + 1)[None, :]).astype(np.float32)


def make_runner(tmp_path: Path, version: str, cuda: Optional[FakeCuda] = None, dla_cores: int = 0,
                tree: Optional[SysfsTree] = None, **kwargs: Any) -> Tuple[TensorRTRunner, FakeTensorRT, FakeCuda]:
    cuda = cuda or FakeCuda()
    trt = FakeTensorRT(version, cuda, dla_cores=dla_cores)
    path = kwargs.pop("path", None) or write_engine(tmp_path, version, **kwargs)
    runner = TensorRTRunner(path, trt_module=trt, cuda_module=cuda, tree=tree or board_tree(tmp_path))
    return runner, trt, cuda


def batch_of(n: int, seed: int = 0, shape: Tuple[int, ...] = (3, 32, 32), dtype: Any = np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return rng.normal(0.5, 1.0, size=(n, *shape)).astype(dtype)


def names(calls: Any, name: str) -> list:
    return [c for c in calls if c[0] == name]


@pytest.mark.parametrize("version,api", [("11.4.0.106", "tensor-name"), ("11.0.0.114", "tensor-name"),
                                         ("10.16.1.11", "tensor-name"), ("10.3.0", "tensor-name"),
                                         ("8.6.2", "tensor-name"), ("8.2.1", "binding")])
def test_every_batch_size_runs_through_the_api_the_engine_offers(tmp_path, version, api):
    runner, trt, _ = make_runner(tmp_path, version)
    assert runner.api_label.startswith(api)
    info = runner.info()
    assert info.max_batch == 8 and info.input.shape == [-1, 3, 32, 32] and info.output_names == ("logits",)
    assert "TensorRT " + version in info.device and "sm_87" in info.device

    for n in range(1, 9):
        x = batch_of(n, seed=n)
        out = runner.infer(x)
        assert out["logits"].shape == (n, 10)
        np.testing.assert_allclose(out["logits"], expected_logits(x), rtol=1e-6)
        assert np.abs(out["logits"]).max() > 0.1

    executed = names(trt.calls, "execute_async_v3" if api == "tensor-name" else "execute_async_v2")
    assert len(executed) == 8
    other = "execute_async_v2" if api == "tensor-name" else "execute_async_v3"
    assert names(trt.calls, other) == []
    runner.close()


def test_buffers_are_allocated_once_for_the_largest_batch_in_page_locked_memory(tmp_path):
    runner, trt, cuda = make_runner(tmp_path, "10.3.0")
    for n in (8, 1, 5, 1):
        runner.infer(batch_of(n))
    # input 8×3×32×32 float32 and output 8×10 float32, sized at the profile's max, allocated once
    assert [c[1] for c in names(cuda.calls, "mem_alloc")] == [8 * 3 * 32 * 32 * 4, 8 * 10 * 4]
    assert [c[1:] for c in names(cuda.calls, "pagelocked_empty")] == [((8 * 3 * 32 * 32,), "float32"),
                                                                       ((8 * 10,), "float32")]
    assert len(names(cuda.calls, "Stream")) == 1
    copies = names(cuda.calls, "memcpy_htod_async") + names(cuda.calls, "memcpy_dtoh_async")
    assert copies and all(pinned for *_, pinned in copies)
    # only the rows of the batch travel: batch 5 copies 5 images in and 5 rows out
    assert names(cuda.calls, "memcpy_htod_async")[2][2] == 5 * 3 * 32 * 32 * 4
    assert names(cuda.calls, "memcpy_dtoh_async")[2][2] == 5 * 10 * 4
    # the input shape is set only when the batch changes (8 at allocation, then 1, 5, 1)
    assert [c[2][0] for c in names(trt.calls, "set_input_shape")] == [8, 1, 5, 1]
    # device addresses are bound once
    assert len(names(trt.calls, "set_tensor_address")) == 2
    runner.close()


def test_binding_api_passes_every_binding_address_and_sets_shapes_by_index(tmp_path):
    runner, trt, cuda = make_runner(tmp_path, "8.2.1")
    runner.infer(batch_of(3))
    (call,) = names(trt.calls, "execute_async_v2")
    bindings, stream_handle = call[1], call[2]
    assert len(bindings) == 2 and all(isinstance(b, int) and b for b in bindings)
    assert bindings == tuple(sorted(cuda.allocations))
    assert stream_handle == next(iter(cuda.streams))
    assert [c[1:] for c in names(trt.calls, "set_binding_shape")] == [(0, (8, 3, 32, 32)), (0, (3, 3, 32, 32))]
    runner.close()


def test_tensorrt_8_6_is_driven_without_its_deprecated_binding_calls(tmp_path):
    # The fake 8.6 raises DeprecationWarning from the binding-API calls the real 8.6.1 wheel wraps in its
    # deprecation shim (tests/runners/trt_surfaces.json), an error under filterwarnings=error.
    runner, trt, _ = make_runner(tmp_path, "8.6.2")
    runner.infer(batch_of(2))
    assert names(trt.calls, "set_binding_shape") == [] and names(trt.calls, "execute_async_v2") == []
    runner.close()


def test_fixed_batch_engine_pads_smaller_batches_and_refuses_larger(tmp_path):
    runner, trt, cuda = make_runner(tmp_path, "10.3.0", input_shape=(4, 3, 32, 32), batch=(4, 4))
    assert runner.info().max_batch == 4 and runner.info().input.shape == [4, 3, 32, 32]
    x = batch_of(3, seed=9)
    out = runner.infer(x)
    np.testing.assert_allclose(out["logits"], expected_logits(x), rtol=1e-6)
    assert names(trt.calls, "set_input_shape") == []  # a static engine takes no shape
    # the whole fixed batch goes in, the padding zeroed
    assert names(cuda.calls, "memcpy_htod_async")[-1][2] == 4 * 3 * 32 * 32 * 4
    with pytest.raises(EngineError, match=r"batch of 5; this engine takes 1\.\.4 images"):
        runner.infer(batch_of(5))
    runner.close()


def test_batch_below_the_profile_minimum_is_padded_up_to_it(tmp_path):
    profile = [[2, 3, 32, 32], [4, 3, 32, 32], [6, 3, 32, 32]]
    runner, trt, _ = make_runner(tmp_path, "10.3.0", profile=profile, batch=(2, 6))
    x = batch_of(1, seed=4)
    np.testing.assert_allclose(runner.infer(x)["logits"], expected_logits(x), rtol=1e-6)
    assert names(trt.calls, "set_input_shape")[-1][2] == (2, 3, 32, 32)
    with pytest.raises(EngineError, match=r"batch of 7; this engine takes 1\.\.6"):
        runner.infer(batch_of(7))
    runner.close()


def test_wrong_dtype_or_image_shape_is_refused_with_what_the_engine_takes(tmp_path):
    runner, _, _ = make_runner(tmp_path, "10.3.0")
    with pytest.raises(EngineError, match=r"float32 array of shape \[n, 3, 32, 32\], got float64 \[2, 3, 32, 32\]"):
        runner.infer(np.zeros((2, 3, 32, 32)))
    with pytest.raises(EngineError, match=r"got float32 \[2, 32, 32, 3\]"):
        runner.infer(np.zeros((2, 32, 32, 3), np.float32))
    runner.close()


def test_non_contiguous_batch_is_copied_not_refused(tmp_path):
    runner, _, _ = make_runner(tmp_path, "10.3.0")
    x = batch_of(4)[:, :, :, ::-1]  # a view with negative strides
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(runner.infer(x)["logits"], expected_logits(np.ascontiguousarray(x)), rtol=1e-6)
    runner.close()


def test_uint8_nhwc_engine_with_preprocessing_in_the_graph(tmp_path):
    runner, _, cuda = make_runner(tmp_path, "10.3.0", input_shape=(-1, 32, 32, 3), dtype="uint8", layout="NHWC",
                                  profile=[[1, 32, 32, 3], [4, 32, 32, 3], [8, 32, 32, 3]])
    assert runner.info().input.layout == "NHWC" and runner.info().input.dtype == "uint8"
    x = batch_of(3, shape=(32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(runner.infer(x)["logits"], expected_logits(x), rtol=1e-6)
    assert names(cuda.calls, "mem_alloc")[0][1] == 8 * 32 * 32 * 3  # one byte per pixel channel
    runner.close()


def test_infer_from_another_thread_pushes_the_context_there(tmp_path):
    runner, _, cuda = make_runner(tmp_path, "10.3.0")
    x = batch_of(2)
    result: Dict[str, Any] = {}

    def work() -> None:
        try:
            result["out"] = runner.infer(x)
        except Exception as exc:  # surfaced by the assertion below
            result["error"] = exc

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(10)
    assert "error" not in result, result.get("error")
    np.testing.assert_allclose(result["out"]["logits"], expected_logits(x), rtol=1e-6)
    # every push has its pop, on the thread that pushed
    pushes = [c[1] for c in names(cuda.calls, "ctx_push")]
    pops = [c[1] for c in names(cuda.calls, "ctx_pop")]
    assert pushes == pops and worker.ident in pushes
    runner.close()


def test_close_frees_device_memory_and_releases_the_context_once(tmp_path):
    runner, _, cuda = make_runner(tmp_path, "10.3.0")
    runner.infer(batch_of(1))
    assert cuda.retained == 1
    runner.close()
    runner.close()
    assert sorted(c[1] for c in names(cuda.calls, "free")) == sorted(cuda.allocations)
    assert cuda.retained == 0 and len(names(cuda.calls, "ctx_detach")) == 1
    with pytest.raises(EngineError, match="closed"):
        runner.infer(batch_of(1))


def test_dla_engine_sets_the_runtime_core_before_deserialising(tmp_path):
    runner, trt, _ = make_runner(tmp_path, "8.6.2", dla_cores=2, build={"dla_core": 1})
    (call,) = names(trt.calls, "deserialize_cuda_engine")
    assert call[2] == 1  # runtime.DLA_core at deserialisation
    assert runner.info().device.startswith("DLA core 1 of t234 Orin sm_87")
    runner.close()


def test_warm_up_runs_the_smallest_and_the_largest_batch(tmp_path):
    runner, trt, _ = make_runner(tmp_path, "10.3.0")
    runner.warm_up(2)
    shapes = [c[2][0] for c in names(trt.calls, "set_input_shape")]
    assert shapes == [8, 1, 8]  # allocated at 8; warm-up: batch 1 twice, then batch 8 twice
    assert len(names(trt.calls, "execute_async_v3")) == 4
    runner.close()


# -- documented errors ------------------------------------------------------------------------------------


def test_truncated_engine_is_a_clear_error_naming_the_size_and_the_rebuild_command(tmp_path):
    blob = engine_bytes("10.3.0")
    path = write_engine(tmp_path, "10.3.0", blob=blob[: len(blob) // 2])
    cuda = FakeCuda()
    with pytest.raises(EngineError) as err:
        TensorRTRunner(path, trt_module=FakeTensorRT("10.3.0", cuda), cuda_module=cuda, tree=board_tree(tmp_path))
    text = str(err.value)
    assert f"cannot deserialise this engine ({len(blob) // 2:,} bytes)" in text
    assert "corrupt or truncated" in text and "Serialization assertion" in text
    assert text.endswith(f"jetvit-daemon engine build /models/vit.onnx --out {path} --precision fp16")
    assert cuda.retained == 0  # the context taken for loading is released again


def test_garbage_and_empty_engine_files_are_errors_not_crashes(tmp_path):
    cuda = FakeCuda()
    trt = FakeTensorRT("10.3.0", cuda)
    garbage = write_engine(tmp_path, "10.3.0", name="garbage", blob=b"\x7fELF not an engine at all")
    with pytest.raises(EngineError, match="Magic tag does not match"):
        TensorRTRunner(garbage, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))
    empty = write_engine(tmp_path, "10.3.0", name="empty", blob=b"")
    with pytest.raises(EngineError, match="the engine file is empty"):
        TensorRTRunner(empty, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))
    missing = write_engine(tmp_path, "10.3.0", name="missing")
    missing.unlink()
    with pytest.raises(EngineError, match="cannot read the engine"):
        TensorRTRunner(missing, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))


def test_engine_of_another_tensorrt_is_refused_before_deserialising(tmp_path):
    # Built on JetPack 5.1.2 (TensorRT 8.5.2) for a Xavier, loaded on an Orin Nano with JetPack 6.2.
    path = write_engine(tmp_path, "8.5.2", build={"tensorrt_version": "8.5.2.2", "device": "t194 Xavier sm_72",
                                                  "compute_capability": "7.2", "jetpack": "5.1.2",
                                                  "l4t_release": "35.4.1"})
    cuda = FakeCuda()
    trt = FakeTensorRT("10.3.0", cuda)
    with pytest.raises(EngineError) as err:
        TensorRTRunner(path, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))
    text = str(err.value)
    assert "this engine was built for another system" in text
    assert "TensorRT: the engine was built with 8.5.2.2, this system has 10.3.0" in text
    assert "GPU: the engine was built for t194 Xavier sm_72 (compute capability 7.2), this GPU is t234 Orin sm_87" \
        in text
    assert "JetPack: the engine was built on JetPack 5.1.2 (L4T 35.4.1), this board runs JetPack 6.2 (L4T 36.4.3)" \
        in text
    assert "Rebuild it on this board from its ONNX model:\n  jetvit-daemon engine build /models/vit.onnx" in text
    assert names(trt.calls, "deserialize_cuda_engine") == []


def test_same_release_with_another_build_number_fits(tmp_path):
    # `trt.__version__` is "8.5.2.2" on JetPack 5.1; trtexec prints v8502 → "8.5.2": the same release.
    runner, _, _ = make_runner(tmp_path, "8.5.2.2",
                               tree=board_tree(tmp_path, XAVIER_JP512, XAVIER_COMPATIBLE),
                               cuda=FakeCuda(cc=(7, 2), gpu_name="Xavier"),
                               build={"tensorrt_version": "8.5.2", "device": "t194 Xavier sm_72",
                                      "compute_capability": "7.2", "jetpack": "5.1.2", "l4t_release": "35.4.1"})
    assert runner.api_label.startswith("tensor-name")
    runner.close()


def test_dla_engine_on_a_board_without_dla_is_a_mismatch(tmp_path):
    # Orin Nano has no DLA (its cv*-thermal zones read 0, jetson-reference README); AGX Orin and Orin NX have 2.
    path = write_engine(tmp_path, "10.3.0", build={"dla_core": 0})
    cuda = FakeCuda()
    with pytest.raises(EngineError, match="DLA: the engine runs on DLA core 0, this system has no DLA"):
        TensorRTRunner(path, trt_module=FakeTensorRT("10.3.0", cuda, dla_cores=0), cuda_module=cuda,
                       tree=board_tree(tmp_path))


def test_manifest_without_build_section_or_for_onnx_is_refused(tmp_path):
    path = write_engine(tmp_path, "10.3.0")
    manifest_path = tmp_path / "vit.manifest.json"
    data = json.loads(manifest_path.read_text())
    cuda = FakeCuda()
    trt = FakeTensorRT("10.3.0", cuda)
    del data["build"]
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(EngineError, match=r"no `build` section .* rebuild it here with:\n  jetvit-daemon engine "
                                          r"build .*vit\.onnx --out .*vit\.engine --precision fp16 --min-batch 1 "
                                          r"--max-batch 8"):
        TensorRTRunner(path, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))
    data["framework"] = "onnx"
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(EngineError, match=r"framework 'onnx'.*run ONNX models with runner onnxruntime"):
        TensorRTRunner(path, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))


def test_engine_whose_input_differs_from_the_manifest_is_refused(tmp_path):
    cuda = FakeCuda()
    trt = FakeTensorRT("10.3.0", cuda)
    path = write_engine(tmp_path, "10.3.0", blob=engine_bytes("10.3.0", input_name="images"))
    with pytest.raises(EngineError, match="the engine's input is 'images', the manifest names 'pixel_values'"):
        TensorRTRunner(path, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))
    path = write_engine(tmp_path, "10.3.0", blob=engine_bytes("10.3.0", dtype="float16"))
    with pytest.raises(EngineError, match="the engine's input is float16, the manifest says float32"):
        TensorRTRunner(path, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))
    path = write_engine(tmp_path, "10.3.0", blob=engine_bytes("10.3.0", outputs=(("probs", 10),)))
    with pytest.raises(EngineError, match=r"manifest outputs \['logits'\] are not in the engine"):
        TensorRTRunner(path, trt_module=trt, cuda_module=cuda, tree=board_tree(tmp_path))
    assert cuda.retained == 0


def test_no_cuda_device_is_an_engine_error(tmp_path):
    path = write_engine(tmp_path, "10.3.0")
    cuda = FakeCuda(device_count=0)
    with pytest.raises(EngineError, match=r"CUDA device 0 cannot be opened: .*invalid device ordinal"):
        TensorRTRunner(path, trt_module=FakeTensorRT("10.3.0", cuda), cuda_module=cuda, tree=board_tree(tmp_path))


def test_missing_tensorrt_says_how_to_get_it(tmp_path, monkeypatch):
    path = write_engine(tmp_path, "10.3.0")
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt → ImportError
    with pytest.raises(EngineError, match=r"python3-libnvinfer.*--system-site-packages"):
        TensorRTRunner(path)


def test_auto_picks_tensorrt_for_engines_and_onnxruntime_for_onnx(tmp_path):
    assert choose_runner_name("auto", tmp_path / "vit.engine") == "tensorrt"
    assert choose_runner_name("auto", tmp_path / "vit.plan") == "tensorrt"
    assert choose_runner_name("auto", tmp_path / "vit.onnx") == "onnxruntime"


def test_the_fake_enforces_what_the_runner_relies_on(tmp_path):
    """The stand-in is only worth its tests if it refuses what the real APIs refuse."""
    cuda = FakeCuda()
    with pytest.raises(fake_trt.LogicError, match="no context is current"):
        cuda.mem_alloc(16)
    cuda.init()
    ctx = cuda.Device(0).retain_primary_context()
    ctx.push()
    dev = cuda.mem_alloc(16)
    stream = cuda.Stream()
    with pytest.raises(ValueError, match="not contiguous"):
        cuda.memcpy_htod_async(dev, np.zeros((4, 4), np.float32)[:, ::2], stream)
    with pytest.raises(fake_trt.LogicError, match="past a 16-byte allocation"):
        cuda.memcpy_htod_async(dev, np.zeros(8, np.float32), stream)
    host = np.zeros(4, np.float32)
    cuda.memcpy_htod_async(dev, np.ones(4, np.float32), stream)
    cuda.memcpy_dtoh_async(host, dev, stream)
    assert host.sum() == 0  # nothing has run before the synchronize
    stream.synchronize()
    assert host.sum() == 4
    trt10 = FakeTensorRT("10.3.0", cuda)
    assert not hasattr(trt10.Runtime(_Logger(trt10)).deserialize_cuda_engine(engine_bytes("10.3.0")),
                       "execute_async_v2")
    engine = trt10.Runtime(_Logger(trt10)).deserialize_cuda_engine(engine_bytes("10.3.0"))
    context = engine.create_execution_context()
    assert not hasattr(context, "execute_async_v2") and not hasattr(context, "set_binding_shape")
    assert context.set_input_shape("pixel_values", (9, 3, 32, 32)) is False  # outside the profile 1..8
    assert context.execute_async_v3(stream.handle) is False  # no shape, no addresses
    trt8 = FakeTensorRT("8.2.1", cuda)
    context8 = trt8.Runtime(_Logger(trt8)).deserialize_cuda_engine(engine_bytes("8.2.1")).create_execution_context()
    assert not hasattr(context8, "set_tensor_address") and not hasattr(context8, "execute_async_v3")
    with pytest.raises(TypeError, match=r"ILogger\.__init__"):
        trt8.Runtime(_BadLogger())
    ctx.pop()


class _Logger(fake_trt.ILogger):
    def __init__(self, trt: Any = None) -> None:
        fake_trt.ILogger.__init__(self)

    def log(self, severity: Any, msg: str) -> None:
        pass


class _BadLogger(fake_trt.ILogger):
    def __init__(self) -> None:  # forgets the base class __init__, as the TensorRT docs warn against
        pass

    def log(self, severity: Any, msg: str) -> None:
        pass
