"""`engine build`: option checks, the trtexec command line per TensorRT release, the path without TensorRT,
trtexec's output parsed into the manifest, and the builder API against the stand-ins of 8.6, 10.3, 10.16, 11.0
and 11.4 (held to the real releases' recorded surfaces, tests/runners/trt_surfaces.json): fp32, fp16 and int8
models built through the API and through trtexec, implicit calibration where it still exists, DLA, and every
TensorRT failure an EngineError. Warnings are errors here, so a deprecated call on the way fails the test."""

import json
import sys
from pathlib import Path
from typing import Any, List, Sequence

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runners"))

from fake_trt import DeviceType, FakeBuilderTensorRT, FakeCuda, FakeTensorRT, engine_spec

from jetvit_daemon.engine.build import (
    BuildOptions,
    TensorRTUnavailable,
    build_command,
    build_engine,
    calibration_batches,
    plan_build,
    trtexec_argv,
    trtexec_target,
)
from jetvit_daemon.engine.export import IMAGENET, export_onnx
from jetvit_daemon.engine.vit_onnx import ViTConfig, init_weights
from jetvit_daemon.errors import EngineError
from jetvit_daemon.hardware.commands import CommandResult
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.runners.manifest import load_manifest
from jetvit_daemon.runners.trt_runner import TensorRTRunner

SMALL = ViTConfig(image_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=1, num_heads=2, mlp_ratio=2.0,
                  num_classes=5)
ORIN_JP62 = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
             "DATE: Wed Jan  8 01:49:37 UTC 2025")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class{i}" for i in range(5)) + "\n")
    return export_onnx(init_weights(SMALL, 0), SMALL, tmp_path / "models" / "small.onnx", model_name="small",
                       preprocess=IMAGENET, labels=labels)


def board(tmp_path: Path, release: str = ORIN_JP62) -> SysfsTree:
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "nv_tegra_release").write_text(release + "\n")
    (root / "proc" / "device-tree").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "device-tree" / "compatible").write_text("nvidia,p3767-0005\x00nvidia,tegra234\x00")
    return SysfsTree(root)


def test_defaults_come_from_the_model_manifest(model):
    plan = plan_build(BuildOptions(model))
    assert (plan.min_batch, plan.opt_batch, plan.max_batch) == (1, 8, 32)
    assert plan.engine_path == model.with_name("small_fp32.engine") and (plan.precision, plan.route) == (
        "fp32", "graph")
    cache = model.with_name("c.calib")
    cache.write_bytes(b"calibration cache")
    dla = plan_build(BuildOptions(model, precision="int8", dla_core=1, max_batch=4, calib_cache=cache))
    assert dla.engine_path.name == "small_int8_dla1.engine" and dla.opt_batch == 4


@pytest.mark.parametrize("options,message", [
    (dict(dla_core=0, precision="fp32"), "--dla-core needs --precision fp16 or int8"),
    (dict(precision="int8"), "--precision int8 of an fp32 model needs --calib-images DIR"),
    (dict(min_batch=4, max_batch=2), r"need 1 <= min <= max"),
    (dict(opt_batch=40), r"--opt-batch 40 is outside --min-batch 1 \.\. --max-batch 32"),
    (dict(engine_path=Path("x.onnx")), r"name the engine \*\.engine"),
    (dict(precision="int4"), "choose one of fp32, fp16, int8"),
])
def test_bad_options_are_named(model, options, message):
    with pytest.raises(EngineError, match=message):
        plan_build(BuildOptions(model, **options))


def test_trtexec_command_line(model, tmp_path):
    plan = plan_build(BuildOptions(model, min_batch=1, opt_batch=4, max_batch=16, engine_path=tmp_path / "s.engine",
                                   precision="fp16"))
    assert trtexec_argv(plan, tensorrt_version="8.6.1") == [
        "trtexec", f"--onnx={model}", f"--saveEngine={tmp_path / 's.engine'}",
        "--minShapes=pixel_values:1x3x16x16", "--optShapes=pixel_values:4x3x16x16",
        "--maxShapes=pixel_values:16x3x16x16", "--fp16"]
    cache = tmp_path / "s.calib"
    cache.write_bytes(b"cache")
    int8 = plan_build(BuildOptions(model, precision="int8", dla_core=0, calib_cache=cache, min_batch=8, max_batch=8))
    assert trtexec_argv(int8, tensorrt_version="10.3.0")[3:] == [
        "--minShapes=pixel_values:8x3x16x16", "--optShapes=pixel_values:8x3x16x16",
        "--maxShapes=pixel_values:8x3x16x16", "--fp16", "--int8", f"--calib={cache}", "--useDLACore=0",
        "--allowGPUFallback"]
    assert build_command(int8).startswith(f"jetvit-daemon engine build {model.resolve()} --out ")
    assert build_command(int8).endswith(f"--dla-core 0 --calib-cache {cache.resolve()}")
    # TensorRT 11's trtexec has no --fp16, --int8 nor --calib: the plan is refused, saying what to do instead
    with pytest.raises(EngineError, match=r"TensorRT 11\.4\.0 has none.*engine export \.\.\. --precision fp16"):
        trtexec_argv(plan, tensorrt_version="11.4.0")


def test_without_tensorrt_it_says_so_and_hands_over_the_trtexec_command(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    plan = plan_build(BuildOptions(model))
    with pytest.raises(TensorRTUnavailable) as err:
        build_engine(plan, tree=SysfsTree(tmp_path / "no-jetpack"))
    assert err.value.command == " ".join(trtexec_argv(plan, tensorrt_version="10.3.0"))
    assert "is not installed here" in str(err.value) and "copy the .onnx and its .manifest.json" in str(err.value)
    assert "the flags of TensorRT 10.3.0 (no TensorRT found here" in str(err.value)
    assert not plan.engine_path.exists()


class TrtexecPlayer:
    """Plays trtexec: writes the engine file and prints the lines the builder parses (TensorRT 8.5.2 on Orin)."""

    def __init__(self, output: str, returncode: int = 0) -> None:
        self.output, self.returncode = output, returncode
        self.argv: List[str] = []

    def run(self, argv: Sequence[str], timeout_s: float) -> CommandResult:
        self.argv = list(argv)
        if self.returncode == 0:
            engine = next(a for a in argv if a.startswith("--saveEngine=")).split("=", 1)[1]
            Path(engine).write_bytes(b"engine bytes")
        return CommandResult(argv=list(argv), returncode=self.returncode, stdout=self.output, stderr="")

    def spawn(self, argv: Sequence[str]) -> Any:
        raise AssertionError("trtexec is run to completion")


TRTEXEC_OUTPUT = """&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # /usr/src/tensorrt/bin/trtexec --onnx=small.onnx
[01/10/2024-10:00:00] [I] === Device Information ===
[01/10/2024-10:00:00] [I] Selected Device: Orin
[01/10/2024-10:00:00] [I] Compute Capability: 8.7
[01/10/2024-10:05:00] [I] Engine built in 300.1 sec.
&&&& PASSED TensorRT.trtexec [TensorRT v8502] # /usr/src/tensorrt/bin/trtexec --onnx=small.onnx
"""


def test_trtexec_build_records_its_version_and_device_in_the_manifest(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    player = TrtexecPlayer(TRTEXEC_OUTPUT)
    tree = board(tmp_path, "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
                           "DATE: Tue Aug  1 19:57:35 UTC 2023")
    engine = build_engine(plan_build(BuildOptions(model, precision="fp16", tensorrt_version="8.5.2")),
                          commands=player, tree=tree, trtexec="/usr/src/tensorrt/bin/trtexec")
    assert player.argv[0] == "/usr/src/tensorrt/bin/trtexec" and "--fp16" in player.argv
    manifest = load_manifest(engine)
    assert manifest.framework == "tensorrt" and manifest.precision == "fp16"
    assert manifest.precision_source is not None and manifest.precision_source.method == "builder-fp16"
    build = manifest.build
    assert build is not None
    assert (build.tensorrt_version, build.compute_capability, build.jetpack, build.l4t_release) == (
        "8.5.2", "8.7", "5.1.2", "35.4.1")
    assert build.device == "t234 Orin sm_87" and build.source_model == "small.onnx"
    assert (manifest.batch.min, manifest.batch.max) == (1, 32)
    assert manifest.labels == "small.labels.txt" and (engine.parent / "small.labels.txt").is_file()


def test_trtexec_failure_shows_its_last_lines(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    player = TrtexecPlayer("[E] Error[4]: [network.cpp::validate::2997] Error Code 4: Internal Error\n"
                           "&&&& FAILED TensorRT.trtexec [TensorRT v100300]", returncode=1)
    with pytest.raises(EngineError, match=r"exited 1; the engine was not built:\n.*Error Code 4"):
        build_engine(plan_build(BuildOptions(model)), commands=player, tree=board(tmp_path), trtexec="trtexec")


def test_trtexec_cannot_calibrate_from_images(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    images = tmp_path / "calib"
    images.mkdir()
    plan = plan_build(BuildOptions(model, precision="int8", calib_images=images, tensorrt_version="10.3.0"))
    with pytest.raises(EngineError, match="trtexec cannot calibrate INT8 from a folder of images"):
        build_engine(plan, commands=TrtexecPlayer(TRTEXEC_OUTPUT), tree=board(tmp_path), trtexec="trtexec")


def test_builder_api_fp16_flag_engine_loads_in_the_runner(model, tmp_path):
    cuda = FakeCuda()
    trt = FakeBuilderTensorRT("10.3.0", cuda)
    tree = board(tmp_path)
    engine = build_engine(plan_build(BuildOptions(model, max_batch=8, precision="fp16")), trt_module=trt,
                          cuda_module=cuda, tree=tree)
    (config,) = trt.configs
    assert config.fake_flags == [trt.BuilderFlag.FP16] and config.default_device_type == DeviceType.GPU
    assert config.fake_profiles[0].fake_shapes["pixel_values"] == ((1, 3, 16, 16), (8, 3, 16, 16), (8, 3, 16, 16))
    assert engine_spec(engine.read_bytes())["precision"] == "fp16"
    assert cuda.retained == 0  # the context pushed for the build is released
    build = load_manifest(engine).build
    assert build is not None and (build.tensorrt_version, build.device, build.jetpack) == (
        "10.3.0", "t234 Orin sm_87", "6.2")

    runner = TensorRTRunner(engine, trt_module=trt, cuda_module=cuda, tree=tree)
    x = np.random.default_rng(0).normal(size=(3, 3, 16, 16)).astype(np.float32)
    out = runner.infer(x)["logits"]  # the stand-in's network: (k + 1) * mean(image)
    np.testing.assert_allclose(out, x.reshape(3, -1).mean(axis=1)[:, None] * np.arange(1, 6), rtol=1e-5)
    assert runner.info().max_batch == 8
    runner.close()


def _write_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f"img{i:03d}.png"), rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")


def test_int8_calibrates_on_preprocessed_images_then_reuses_the_cache(model, tmp_path):
    images = tmp_path / "calib"
    _write_images(images, 10)
    cuda = FakeCuda()
    trt = FakeBuilderTensorRT("8.6.1", cuda)
    plan = plan_build(BuildOptions(model, precision="int8", calib_images=images, calib_batch=4))
    engine = build_engine(plan, trt_module=trt, cuda_module=cuda, tree=board(tmp_path))
    config = trt.configs[0]
    assert config.fake_flags == [trt.BuilderFlag.FP16, trt.BuilderFlag.INT8]
    assert config.fake_calibration_profile is not None
    assert config.fake_calibration_profile.fake_shapes["pixel_values"][0] == (4, 3, 16, 16)
    # 10 images in batches of 4: two full batches, the partial one dropped; each what the daemon would feed
    assert len(trt.calibration_batches) == 2
    want = list(calibration_batches(plan, 4))
    np.testing.assert_array_equal(trt.calibration_batches[0], want[0])
    assert abs(float(want[0].mean())) < 3 and want[0].dtype == np.float32  # ImageNet-normalised, not raw pixels
    cache = engine.with_suffix(".calib")
    assert cache.read_bytes().startswith(b"TRT-8502-EntropyCalibration2")
    manifest = load_manifest(engine)
    assert manifest.precision == "int8" and manifest.precision_source is not None
    assert (manifest.precision_source.method, manifest.precision_source.calibration_images) == (
        "implicit-calibration", 8)

    again = FakeBuilderTensorRT("8.6.1", cuda)
    build_engine(plan_build(BuildOptions(model, precision="int8", calib_cache=cache)), trt_module=again,
                 cuda_module=cuda, tree=board(tmp_path))
    assert [c[0] for c in again.calls].count("calibration_cache_used") == 1
    assert again.calibration_batches == []


def test_too_few_calibration_images_is_an_error(model, tmp_path):
    images = tmp_path / "calib"
    _write_images(images, 2)
    cuda = FakeCuda()
    plan = plan_build(BuildOptions(model, precision="int8", calib_images=images, calib_batch=4))
    with pytest.raises(EngineError, match=r"2 image\(s\), fewer than one calibration batch of 4"):
        build_engine(plan, trt_module=FakeBuilderTensorRT("10.3.0", cuda), cuda_module=cuda, tree=board(tmp_path))


def test_dla_build_targets_the_core_with_gpu_fallback(model, tmp_path):
    cuda = FakeCuda()
    trt = FakeBuilderTensorRT("8.5.2.2", cuda, dla_cores=2)
    tree = board(tmp_path)
    engine = build_engine(plan_build(BuildOptions(model, dla_core=1, min_batch=4, max_batch=4, precision="fp16")),
                          trt_module=trt,
                          cuda_module=cuda, tree=tree)
    config = trt.configs[0]
    assert config.default_device_type == DeviceType.DLA and config.DLA_core == 1
    assert trt.BuilderFlag.GPU_FALLBACK in config.fake_flags and trt.BuilderFlag.FP16 in config.fake_flags
    assert load_manifest(engine).build.dla_core == 1  # type: ignore[union-attr]
    runner = TensorRTRunner(engine, trt_module=trt, cuda_module=cuda, tree=tree)
    assert [c for c in trt.calls if c[0] == "deserialize_cuda_engine"][-1][2] == 1
    runner.close()
    with pytest.raises(EngineError, match="--dla-core 2: this system has 2 DLA core"):
        build_engine(plan_build(BuildOptions(model, dla_core=2, precision="fp16")), trt_module=trt, cuda_module=cuda,
                     tree=tree)


def test_folded_uint8_model_needs_tensorrt_8_5(model, tmp_path):
    folded = export_onnx(init_weights(SMALL, 0), SMALL, tmp_path / "f" / "folded.onnx", model_name="folded",
                         preprocess=IMAGENET, fold=True)
    cuda = FakeCuda()
    with pytest.raises(EngineError, match="cannot parse the ONNX model: Unsupported ONNX data type: UINT8"):
        build_engine(plan_build(BuildOptions(folded)), trt_module=FakeBuilderTensorRT("8.2.1", cuda),
                     cuda_module=cuda, tree=board(tmp_path))
    engine = build_engine(plan_build(BuildOptions(folded)), trt_module=FakeBuilderTensorRT("8.6.1", cuda),
                          cuda_module=cuda, tree=board(tmp_path))
    manifest = json.loads(engine.with_name("folded_fp32.manifest.json").read_text())
    assert manifest["input"] == {"name": "frames", "shape": [-1, 16, 16, 3], "dtype": "uint8", "layout": "NHWC"}
    assert manifest["preprocess"]["normalize"] == "graph" and manifest["preprocess"]["channel_order"] == "BGR"


# -- precision carried by the model, per TensorRT release ------------------------------------------------------

RELEASES = ("8.6.1", "10.3.0", "10.16.1.11", "11.0.0.114", "11.4.0.106")


@pytest.fixture(scope="module")
def models(tmp_path_factory: Any) -> Any:
    """The same small ViT exported fp32, fp16 (float16 weights) and int8 (Q/DQ calibrated on 16 images)."""
    root = tmp_path_factory.mktemp("precision")
    images = root / "calib"
    _write_images(images, 16)
    weights = init_weights(SMALL, 0)
    return {p: export_onnx(weights, SMALL, root / p / f"small_{p}.onnx", model_name="small", preprocess=IMAGENET,
                           precision=p, calib_images=images) for p in ("fp32", "fp16", "int8")}


def _network_flag_names(trt: Any, flags: int) -> List[str]:
    return [m.name for m in trt.NetworkDefinitionCreationFlag if flags & (1 << int(m))]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_api_builds_the_models_precision_at_every_release(models, tmp_path, release, precision):
    cuda = FakeCuda()
    trt = FakeBuilderTensorRT(release, cuda)
    tree = board(tmp_path)
    plan = plan_build(BuildOptions(models[precision], engine_path=tmp_path / "out" / "small.engine", max_batch=8))
    assert (plan.precision, plan.route) == (precision, "graph")
    engine = build_engine(plan, trt_module=trt, cuda_module=cuda, tree=tree)
    # what the stand-in's builder says the layers run in: the graph's types (strongly typed) or the flags' reach
    assert engine_spec(engine.read_bytes())["precision"] == precision
    (config,) = trt.configs
    major = int(release.split(".")[0])
    flags = [f.name for f in config.fake_flags]
    if major == 8:
        assert flags == {"fp32": [], "fp16": ["FP16"], "int8": ["FP16", "INT8"]}[precision]
    else:
        assert flags == []  # strongly typed: the model's types are the precision; the flags are refused
    manifest = load_manifest(engine)
    assert manifest.precision == precision and manifest.precision_source is not None
    assert manifest.precision_source.method == {"fp32": "exported", "fp16": "fp16-weights", "int8": "qdq"}[precision]
    assert manifest.build is not None and manifest.build.tensorrt_version == release
    runner = TensorRTRunner(engine, trt_module=trt, cuda_module=cuda, tree=tree)
    assert runner.infer(np.zeros((2, 3, 16, 16), np.float32))["logits"].shape == (2, 5)
    runner.close()


@pytest.mark.parametrize("release,expected", [
    ("8.6.1", ["EXPLICIT_BATCH"]), ("10.3.0", ["STRONGLY_TYPED"]), ("10.16.1.11", ["STRONGLY_TYPED"]),
    ("11.0.0.114", []), ("11.4.0.106", []),
])
def test_network_creation_flags_per_release(models, tmp_path, release, expected, monkeypatch):
    cuda = FakeCuda()
    trt = FakeBuilderTensorRT(release, cuda)
    created: List[int] = []
    real_builder = trt.Builder

    def builder(logger: Any) -> Any:
        b = real_builder(logger)
        make = b.create_network
        b.create_network = lambda flags=0: created.append(flags) or make(flags)  # type: ignore[method-assign]
        return b

    monkeypatch.setattr(trt, "Builder", builder)
    build_engine(plan_build(BuildOptions(models["fp16"], engine_path=tmp_path / "e.engine")), trt_module=trt,
                 cuda_module=cuda, tree=board(tmp_path))
    assert [_network_flag_names(trt, f) for f in created] == [expected]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_trtexec_builds_the_models_precision_with_the_releases_flags(models, tmp_path, monkeypatch, release,
                                                                     precision):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    major, minor, patch = (int(p) for p in release.split(".")[:3])
    number = major * (10000 if major >= 10 else 1000) + minor * 100 + patch
    player = TrtexecPlayer(TRTEXEC_OUTPUT.replace("v8502", f"v{number}"))
    plan = plan_build(BuildOptions(models[precision], engine_path=tmp_path / "e.engine", tensorrt_version=release))
    engine = build_engine(plan, commands=player, tree=board(tmp_path), trtexec="trtexec")
    flags = [a for a in player.argv if a.startswith("--") and not a.startswith(("--onnx", "--save", "--min",
                                                                                 "--opt", "--max"))]
    if major == 8:
        assert flags == {"fp32": [], "fp16": ["--fp16"], "int8": ["--fp16", "--int8"]}[precision]
    else:
        assert flags == ["--stronglyTyped"]
    manifest = load_manifest(engine)
    assert manifest.precision == precision and manifest.build is not None
    assert manifest.build.tensorrt_version == f"{major}.{minor}.{patch}"


@pytest.mark.parametrize("release", ["11.0.0.114", "11.4.0.106"])
def test_tensorrt_11_refuses_builder_precision_and_never_touches_removed_names(model, tmp_path, release):
    cuda = FakeCuda()
    trt = FakeBuilderTensorRT(release, cuda)
    for options, needs in ((dict(precision="fp16"), "FP16 builder flag"),
                           (dict(precision="int8", calib_images=tmp_path), "INT8 calibrator")):
        plan = plan_build(BuildOptions(model, **options))
        with pytest.raises(EngineError, match=f"needs TensorRT's {needs}, and TensorRT {release} has none.*"
                                              r"engine export \.\.\. --precision fp16"):
            build_engine(plan, trt_module=trt, cuda_module=cuda, tree=board(tmp_path))
        with pytest.raises(EngineError, match="has none"):
            trtexec_argv(plan, tensorrt_version=release)
    assert trt.calls == [] and trt.configs == []  # refused before TensorRT was asked for anything


@pytest.mark.parametrize("release", ["10.3.0", "10.16.1.11"])
def test_implicit_calibration_on_10_works_and_says_it_is_deprecated(model, tmp_path, release, caplog):
    # int8_calibrator and set_calibration_profile warn on the real 10.x (recorded); the builder knows and says so
    images = tmp_path / "calib"
    _write_images(images, 8)
    cuda = FakeCuda()
    trt = FakeBuilderTensorRT(release, cuda)
    engine = build_engine(plan_build(BuildOptions(model, precision="int8", calib_images=images, calib_batch=4)),
                          trt_module=trt, cuda_module=cuda, tree=board(tmp_path))
    assert engine_spec(engine.read_bytes())["precision"] == "int8" and len(trt.calibration_batches) == 2
    assert "implicit INT8 calibration is deprecated in TensorRT" in caplog.text
    with pytest.warns(DeprecationWarning):  # the stand-in does warn: the builder silenced it knowingly
        assert trt.configs[0].int8_calibrator is not None


def test_a_models_precision_is_fixed_at_export(models):
    with pytest.raises(EngineError, match=r"the model is fp16 \(fp16 weights and compute.*export it again with "
                                          "--precision fp32"):
        plan_build(BuildOptions(models["fp16"], precision="fp32"))
    with pytest.raises(EngineError, match=r"the model is int8 \(QDQ calibrated on 16 images \(entropy, "
                                          r"per-channel weights\)\)"):
        plan_build(BuildOptions(models["int8"], precision="fp16"))


def test_a_builder_or_runtime_that_cannot_be_created_is_an_engine_error(model, tmp_path):
    cuda = FakeCuda()
    plan = plan_build(BuildOptions(model))
    with pytest.raises(EngineError, match=r"TensorRT 10\.3\.0 failed to create its builder and runtime.*"
                                          r"factory function returned nullptr; TensorRT said: .*CUDA initialization "
                                          r"failure.*build again with:\n  jetvit-daemon engine build"):
        build_engine(plan, trt_module=FakeBuilderTensorRT("10.3.0", cuda, fail_create=True), cuda_module=cuda,
                     tree=board(tmp_path))
    engine = build_engine(plan, trt_module=FakeBuilderTensorRT("10.3.0", cuda), cuda_module=cuda,
                          tree=board(tmp_path))
    with pytest.raises(EngineError, match=r"cannot create its runtime on GPU Orin.*rebuild it with:\n  jetvit-daemon"):
        TensorRTRunner(engine, trt_module=FakeTensorRT("10.3.0", cuda, fail_create=True), cuda_module=cuda,
                       tree=board(tmp_path))


def test_a_builder_exception_is_an_engine_error(model, tmp_path, monkeypatch):
    cuda = FakeCuda()
    trt = FakeBuilderTensorRT("11.4.0.106", cuda)
    real_builder = trt.Builder

    def builder(logger: Any) -> Any:
        b = real_builder(logger)

        def boom(network: Any, config: Any) -> Any:
            raise RuntimeError("std::bad_alloc")

        b.build_serialized_network = boom  # type: ignore[method-assign]
        return b

    monkeypatch.setattr(trt, "Builder", builder)
    with pytest.raises(EngineError, match=r"TensorRT 11\.4\.0\.106 failed to build the engine: std::bad_alloc"):
        build_engine(plan_build(BuildOptions(model)), trt_module=trt, cuda_module=cuda, tree=board(tmp_path))


def test_trtexec_target_release_is_found_from_libnvinfer(model, tmp_path):
    tree = board(tmp_path)
    lib = tmp_path / "board" / "usr" / "lib" / "aarch64-linux-gnu"
    lib.mkdir(parents=True)
    assert trtexec_target(BuildOptions(model), tree)[0] == "10.3.0"  # nothing found: JetPack 6.1/6.2's
    (lib / "libnvinfer.so.11.4.0").write_bytes(b"")
    assert trtexec_target(BuildOptions(model), tree) == ("11.4.0", "/usr/lib/aarch64-linux-gnu/libnvinfer.so.11.4.0")
    assert trtexec_target(BuildOptions(model, tensorrt_version="8.6.2"), tree)[0] == "8.6.2"
