"""The TensorRT stand-in offers nothing beyond the real module's surface at the version it pretends to be.

The surfaces (class names, methods, properties, enum members, which calls warn) were recorded from NVIDIA's real
binding wheels by tests/runners/record_trt_surfaces.py into tests/runners/trt_surfaces.json. A stand-in that
offered, say, `BuilderFlag.FP16` at 11.x would let a test "at 11" pass against fiction; these tests fail then.
"""

import enum
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_trt import (
    FAKE_ONLY,
    FakeBuilderTensorRT,
    FakeCuda,
    engine_bytes,
    recorded_release,
    recorded_surfaces,
)

RELEASES = sorted(recorded_surfaces())
def _objects(trt: Any) -> List[Tuple[str, Any]]:
    """One instance of every stand-in class the daemon's code reaches, with the real class name."""

    logger = _logger(trt)
    runtime = trt.Runtime(logger)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    out = [("ILogger", logger), ("Runtime", runtime), ("Builder", builder), ("INetworkDefinition", network),
           ("OnnxParser", trt.OnnxParser(network, logger)), ("IBuilderConfig", builder.create_builder_config()),
           ("IOptimizationProfile", builder.create_optimization_profile())]
    trt.cuda.init()
    ctx = trt.cuda.Device(0).retain_primary_context()
    ctx.push()
    engine = runtime.deserialize_cuda_engine(engine_bytes(trt.__version__))
    out += [("ICudaEngine", engine), ("IExecutionContext", engine.create_execution_context())]
    ctx.pop()
    if hasattr(trt, "IInt8EntropyCalibrator2"):
        out.append(("IInt8EntropyCalibrator2", trt.IInt8EntropyCalibrator2()))
    return out


def _public(names: Any) -> List[str]:
    return sorted(n for n in names if not n.startswith(("_", "fake_")))


def _members_of(obj: Any) -> Dict[str, str]:
    """name → "method" | "property" for what the object offers (class attributes and instance attributes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # reading the kinds is not using them
        kinds = {}
        for name in _public(set(dir(type(obj))) | set(vars(obj))):
            attr = None
            for klass in type(obj).__mro__:
                if name in vars(klass):
                    attr = vars(klass)[name]
                    break
            if isinstance(attr, type):
                kinds[name] = "nested"
            elif attr is not None and callable(attr) and not isinstance(attr, (property, enum.Enum)):
                kinds[name] = "method"
            else:
                kinds[name] = "property"
        return kinds


def surface_violations(trt: Any) -> List[str]:
    """Every name the stand-in offers that the recorded release lacks (or offers as another kind)."""
    release = recorded_release(trt.__version__)
    assert release is not None, f"{trt.__version__} has no recorded surface"
    real = recorded_surfaces()[release]
    problems = []
    module_names = set(real["classes"]) | set(real["enums"]) | set(real["functions"]) | set(real["values"])
    for name in _public(vars(trt)) + _public(dir(type(trt))):
        if name in FAKE_ONLY:
            continue
        if name not in module_names:
            problems.append(f"tensorrt.{name}")
            continue
        value = getattr(trt, name)
        if isinstance(value, type) and issubclass(value, enum.Enum):
            if name not in real["enums"]:
                problems.append(f"tensorrt.{name} is an enum, the real one is not")
                continue
            problems += [f"tensorrt.{name}.{m}" for m in value.__members__ if m not in real["enums"][name]["members"]]
    for cls_name, obj in _objects(trt):
        recorded = real["classes"].get(cls_name)
        if recorded is None:
            problems.append(f"tensorrt.{cls_name}")
            continue
        methods, props = recorded.get("methods", {}), recorded.get("properties", {})
        nested = recorded.get("nested", {})
        for name, kind in _members_of(obj).items():
            if kind == "nested" and name in nested:
                value = getattr(type(obj), name)
                if issubclass(value, enum.Enum):
                    problems += [f"tensorrt.{cls_name}.{name}.{m}" for m in value.__members__
                                 if m not in nested[name]]
            elif kind == "method" and name not in methods:
                problems.append(f"tensorrt.{cls_name}.{name}()" + (" (a property there)" if name in props else ""))
            elif kind == "property" and name not in props:
                problems.append(f"tensorrt.{cls_name}.{name}" + (" (a method there)" if name in methods else ""))
    return sorted(set(problems))


@pytest.mark.parametrize("release", RELEASES)
def test_stand_in_offers_nothing_beyond_the_recorded_release(release):
    assert surface_violations(FakeBuilderTensorRT(release, FakeCuda())) == []


def test_an_unfaithful_stand_in_is_caught():
    # What the stand-in used to do: FP16/INT8 flags and the calibrator at every version.
    trt = FakeBuilderTensorRT("11.4.0.106", FakeCuda())
    trt.BuilderFlag = enum.Enum("BuilderFlag", ["FP16", "INT8", "GPU_FALLBACK"])
    trt.IInt8EntropyCalibrator2 = FakeBuilderTensorRT("10.3.0", FakeCuda()).IInt8EntropyCalibrator2
    assert surface_violations(trt) == ["tensorrt.BuilderFlag.FP16", "tensorrt.BuilderFlag.INT8",
                                       "tensorrt.IInt8EntropyCalibrator2"]


@pytest.mark.parametrize("release", RELEASES)
def test_stand_in_warns_where_the_real_release_warns(release):
    trt = FakeBuilderTensorRT(release, FakeCuda())
    classes = recorded_surfaces()[release]["classes"]
    checked = 0
    for cls_name, obj in _objects(trt):
        recorded = classes[cls_name]
        for name, kind in _members_of(obj).items():
            entry = recorded.get("methods", {}).get(name) or recorded.get("properties", {}).get(name) or {}
            if not entry.get("warns") or kind != "property":
                continue  # methods are exercised by the builder and runner tests (warnings are errors there)
            with pytest.warns(DeprecationWarning, match=f"{cls_name}.{name} is deprecated"):
                getattr(obj, name)
            checked += 1
    if release.startswith("10."):
        assert checked >= 1  # IBuilderConfig.int8_calibrator


def test_recorded_releases_say_what_the_issue_says():
    """The facts the builder's per-version choices rest on, read from the real wheels."""
    s = recorded_surfaces()
    for release in ("11.0.0.114", "11.4.0.106"):
        assert "FP16" not in s[release]["enums"]["BuilderFlag"]["members"]
        assert "INT8" not in s[release]["enums"]["BuilderFlag"]["members"]
        assert "IInt8EntropyCalibrator2" not in s[release]["classes"]
        assert "int8_calibrator" not in s[release]["classes"]["IBuilderConfig"]["properties"]
        assert "EXPLICIT_BATCH" not in s[release]["enums"]["NetworkDefinitionCreationFlag"]["members"]
    for release in ("10.3.0", "10.16.1.11"):
        config = s[release]["classes"]["IBuilderConfig"]
        assert config["properties"]["int8_calibrator"]["warns"]
        assert config["methods"]["set_calibration_profile"]["warns"]
        assert "STRONGLY_TYPED" in s[release]["enums"]["NetworkDefinitionCreationFlag"]["members"]
        assert "max_workspace_size" not in config["properties"]
    assert s["8.6.1"]["classes"]["ICudaEngine"]["methods"]["get_binding_shape"]["warns"]
    assert not s["8.6.1"]["classes"]["IExecutionContext"]["methods"]["execute_async_v2"].get("warns")


def test_tensorrt_8_2_stand_in_has_no_later_api():
    # 8.2 (JetPack 4.6) has no wheel on PyPI to record; what it lacks is from the 8.4 and 8.5 release notes.
    trt = FakeBuilderTensorRT("8.2.1", FakeCuda())
    config = trt.Builder(_logger(trt)).create_builder_config()
    assert not hasattr(config, "set_memory_pool_limit") and hasattr(config, "max_workspace_size")
    assert not hasattr(trt, "MemoryPoolType") and not hasattr(trt, "TensorIOMode")
    assert "STRONGLY_TYPED" not in trt.NetworkDefinitionCreationFlag.__members__


def _logger(trt: Any) -> Any:
    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            pass

    return Logger()
