"""The manifest (JSON or YAML next to the model) and the engine-vs-system comparison."""

import json
from pathlib import Path

import pytest

from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import create_runner
from jetvit_daemon.runners.engine_check import (
    SystemFacts,
    engine_mismatches,
    parse_compute_capability,
    rebuild_command,
    version_key,
)
from jetvit_daemon.runners.manifest import BuildInfo, PrecisionSource, load_manifest, manifest_path_for, write_manifest

ORIN_JP62 = SystemFacts(tensorrt_version="10.3.0.30", compute_capability=(8, 7), gpu_name="Orin", soc="t234",
                        l4t_release="36.4.3", jetpack="6.2", dla_cores=0)


def test_yaml_manifest_is_read_like_json(tmp_path):
    data = json.loads(DEFAULT_MODEL.with_name("vit_digits.manifest.json").read_text())
    model = tmp_path / "m.onnx"
    import yaml

    (tmp_path / "m.manifest.yaml").write_text(yaml.safe_dump(data))
    assert manifest_path_for(model).name == "m.manifest.yaml"
    assert load_manifest(model) == load_manifest(DEFAULT_MODEL)


def test_write_then_load_round_trips(tmp_path):
    manifest = load_manifest(DEFAULT_MODEL)
    path = write_manifest(tmp_path / "copy.onnx", manifest)
    assert path.name == "copy.manifest.json"
    assert load_manifest(tmp_path / "copy.onnx") == manifest


@pytest.mark.parametrize("change,message", [
    ({"input": {"name": "x", "shape": [-1, 3, 32], "dtype": "float32"}}, "input: Value error, need \\[batch"),
    ({"input": {"name": "x", "shape": [-1, 32, 32, 3], "layout": "NCHW"}}, "NCHW input needs 3 channels"),
    ({"preprocess": {"normalize": "graph"}}, "normalize 'graph' needs a uint8 input"),
    ({"batch": {"min": 4, "max": 2}}, "need 1 <= min <= max"),
    ({"precision": "int4"}, "precision: Input should be 'fp32', 'fp16' or 'int8'"),
])
def test_invalid_manifest_names_the_field(tmp_path, change, message):
    data = json.loads(DEFAULT_MODEL.with_name("vit_digits.manifest.json").read_text())
    data.update(change)
    (tmp_path / "m.manifest.json").write_text(json.dumps(data))
    with pytest.raises(EngineError, match=f"m.manifest.json: invalid manifest: .*{message}"):
        load_manifest(tmp_path / "m.onnx")


def test_missing_or_unparsable_manifest(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    with pytest.raises(EngineError, match=r"no manifest next to the model \(expected m.manifest.json\)"):
        load_manifest(tmp_path / "m.onnx")
    (tmp_path / "m.manifest.json").write_text('{"model_name": ')
    with pytest.raises(EngineError, match="cannot parse manifest"):
        load_manifest(tmp_path / "m.onnx")


def test_version_key_compares_releases_not_builds():
    assert version_key("8.5.2.2") == version_key("8.5.2") == (8, 5, 2)
    assert version_key("10.3.0.30") == (10, 3, 0)
    assert version_key("8.6.1.post1") == (8, 6, 1)


def test_compute_capability_from_field_or_device_text():
    assert parse_compute_capability(BuildInfo(tensorrt_version="10.3", device="x", compute_capability="8.7")) == (8, 7)
    assert parse_compute_capability(BuildInfo(tensorrt_version="10.3", device="t264 Thor sm_110")) == (11, 0)
    assert parse_compute_capability(BuildInfo(tensorrt_version="10.3", device="t210 sm_53")) == (5, 3)
    assert parse_compute_capability(BuildInfo(tensorrt_version="10.3", device="some GPU")) is None


def test_an_engine_built_here_fits_and_unknown_facts_are_not_differences():
    built = ORIN_JP62.build_info(dla_core=None, source_model="vit.onnx", command="cmd")
    assert built.device == "t234 Orin sm_87" and built.compute_capability == "8.7"
    assert engine_mismatches(built, ORIN_JP62) == []
    assert engine_mismatches(built, SystemFacts(tensorrt_version=None, compute_capability=None)) == []


def test_jetpack_update_is_a_mismatch_and_l4t_is_compared_when_jetpack_is_unknown():
    built = BuildInfo(tensorrt_version="10.3.0", device="t234 sm_87", jetpack="6.1", l4t_release="36.4.0")
    (problem,) = engine_mismatches(built, ORIN_JP62)
    assert problem == ("JetPack: the engine was built on JetPack 6.1 (L4T 36.4.0), this board runs JetPack 6.2 "
                       "(L4T 36.4.3)")
    built = BuildInfo(tensorrt_version="10.3.0", device="t234 sm_87", l4t_release="36.3.0")
    assert engine_mismatches(built, ORIN_JP62) == [
        "L4T: the engine was built on L4T 36.3.0, this board runs L4T 36.4.3"]


def test_rebuild_command_from_the_manifest_when_none_was_recorded():
    manifest = load_manifest(DEFAULT_MODEL).model_copy(update={
        "framework": "tensorrt", "precision": "int8",
        "build": BuildInfo(tensorrt_version="8.5.2", device="t194 sm_72", dla_core=1, source_model="digits.onnx"),
    })
    assert rebuild_command(Path("/opt/models/digits_int8.engine"), manifest) == (
        "jetvit-daemon engine build /opt/models/digits.onnx --out /opt/models/digits_int8.engine --precision int8 "
        "--min-batch 1 --max-batch 32 --dla-core 1 --calib-images DIR")
    # a Q/DQ model carries its calibration: rebuilding it needs no folder
    qdq = manifest.model_copy(update={"precision_source": PrecisionSource(
        method="qdq", calibration_images=256, calibration_method="entropy", per_channel=True)})
    assert rebuild_command(Path("/opt/models/digits_int8.engine"), qdq).endswith("--dla-core 1")


def test_missing_model_says_the_model_is_missing_not_its_manifest(tmp_path):
    """Issue 9 item 14: a missing model was reported as "no manifest next to the model"."""
    with pytest.raises(EngineError, match=r"m.onnx: no such model file \(runner.model"):
        load_manifest(tmp_path / "m.onnx")
    with pytest.raises(EngineError, match=r"nowhere/m.onnx: no such model file; its directory .*nowhere does not"):
        load_manifest(tmp_path / "nowhere" / "m.onnx")
    with pytest.raises(EngineError, match=r"no such model file"):
        create_runner("auto", tmp_path / "m.onnx")


def test_directory_given_as_the_model_says_so_and_lists_the_models_inside(tmp_path):
    """Issue 9 item 14: a directory as the model was reported as "no manifest next to the model"."""
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(EngineError, match=r"models: is a directory, not a model file; .*holds no model file"):
        load_manifest(models)
    (models / "vit.onnx").write_bytes(b"onnx")
    with pytest.raises(EngineError, match=r"models: is a directory, not a model file; .*model files in it: vit.onnx"):
        create_runner("auto", models)


def test_manifest_with_a_duplicate_key_or_deep_nesting_is_an_engine_error(tmp_path):
    """Issue 9 items 3 and 13 for manifests: duplicate keys refused, nesting bounded, only EngineError."""
    (tmp_path / "m.manifest.json").write_text('{"model_name": "a", "model_name": "b"}')
    with pytest.raises(EngineError, match="duplicate key 'model_name'"):
        load_manifest(tmp_path / "m.onnx")
    (tmp_path / "m.manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(EngineError, match=r"m.manifest.json: cannot parse manifest: too deeply nested"):
        load_manifest(tmp_path / "m.onnx")
    (tmp_path / "m.manifest.json").unlink()
    (tmp_path / "m.manifest.yaml").write_text("model_name: a\nframework: onnx\nmodel_name: b\n")
    with pytest.raises(EngineError, match=r"m.manifest.yaml:3: duplicate key 'model_name' \(first at line 1"):
        load_manifest(tmp_path / "m.onnx")
