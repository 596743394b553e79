"""The one YAML loader (jetvit_daemon/yamlfile.py) refuses what would cost unbounded time or memory, or would be
read silently wrong, with one line naming the file and line; and raises nothing but its typed error. Each test
is named after the defect of issue 9 it guards against; every YAML file the daemon reads goes through it."""

import sys
from pathlib import Path

import pytest

from jetvit_daemon.config import load_config
from jetvit_daemon.errors import ConfigError, EngineError, PolicyError
from jetvit_daemon.governor.policy import load_policy, parse_policy
from jetvit_daemon.runners.manifest import load_manifest
from jetvit_daemon.sim.scenario import load_scenario
from jetvit_daemon.yamlfile import MAX_DEPTH, MAX_FILE_BYTES, YamlProblem, line_map, parse_yaml, read_yaml_text

sys.path.insert(0, str(Path(__file__).parent / "faults"))
from bad_inputs import ALIAS_BOMB, GOOD_POLICY


def test_yaml_alias_bomb_is_refused_before_it_expands():
    with pytest.raises(YamlProblem, match=r"^p.yaml:2: alias \*a refused: YAML aliases are not allowed"):
        parse_yaml(ALIAS_BOMB, "p.yaml")


@pytest.mark.parametrize("load,error", [
    (load_policy, PolicyError), (load_config, ConfigError), (load_scenario, ConfigError)])
def test_yaml_alias_bomb_is_refused_in_every_yaml_file(tmp_path, load, error):
    path = tmp_path / "f.yaml"
    path.write_text(ALIAS_BOMB)
    with pytest.raises(error, match=r"f.yaml:2: alias \*a refused"):
        load(path) if load is not load_scenario else load(str(path))


def test_yaml_alias_bomb_in_a_yaml_manifest_is_an_engine_error(tmp_path):
    (tmp_path / "m.manifest.yaml").write_text(ALIAS_BOMB)
    with pytest.raises(EngineError, match=r"m.manifest.yaml:2: alias \*a refused"):
        load_manifest(tmp_path / "m.onnx")


def test_duplicate_yaml_key_is_an_error_naming_both_lines():
    text = "version: 1\nthermal:\n  hot_c: 80\n  warm_c: 60\n  hot_c: 95\n"
    with pytest.raises(YamlProblem, match=r"^p.yaml:5: duplicate key 'hot_c' \(first at line 3, again at line 5\)"):
        parse_yaml(text, "p.yaml")


@pytest.mark.parametrize("load,error", [(load_policy, PolicyError), (load_config, ConfigError)])
def test_duplicate_yaml_key_is_refused_in_policy_and_daemon_yaml(tmp_path, load, error):
    path = tmp_path / "f.yaml"
    path.write_text("version: 1\nversion: 1\n")
    with pytest.raises(error, match=r"f.yaml:2: duplicate key 'version' \(first at line 1, again at line 2\)"):
        load(path)


def test_same_key_in_different_mappings_is_not_a_duplicate():
    assert parse_yaml("a: {x: 1}\nb: {x: 2}\n", "f").data == {"a": {"x": 1}, "b": {"x": 2}}


def test_huge_policy_file_is_refused_by_its_size_without_reading_it(tmp_path):
    """Issue 9: a 50 MB policy took > 90 s and GBs; it is refused after reading the cap + 1 byte."""
    path = tmp_path / "p.yaml"
    with open(path, "w") as f:
        f.write("version: 1\nladder:\n")
        for i in range(50 * 1024 * 1024 // 64):
            f.write(f"  - {{name: s{i}, mode: 15W, gpu_cap_mhz: 408, batch_size: 1}}{' ' * 8}\n")
    assert path.stat().st_size > 50_000_000
    with pytest.raises(PolicyError, match=rf"p.yaml: larger than {MAX_FILE_BYTES // 1024} KiB"):
        load_policy(path)


def test_100000_state_ladder_is_refused_by_its_size_and_a_dense_one_by_its_values():
    ladder = "".join(f"  - {{name: s{i}, mode: 15W}}\n" for i in range(100_000))
    with pytest.raises(PolicyError, match="larger than"):
        parse_policy("version: 1\nladder:\n" + ladder, "p.yaml")
    dense = "version: 1\nladder: [" + ",".join(f"{{name: {i}, mode: m}}" for i in range(10_000)) + "]\n"
    assert len(dense) < MAX_FILE_BYTES
    with pytest.raises(PolicyError, match="more than 20000 values in one file"):
        parse_policy(dense, "p.yaml")


def test_ladder_longer_than_64_states_is_refused_by_its_length():
    ladder = "".join(f"  - {{name: s{i}, mode: 15W}}\n" for i in range(65))
    with pytest.raises(PolicyError, match=r"p.yaml:2: ladder: List should have at most 64 items"):
        parse_policy("version: 1\nladder:\n" + ladder, "p.yaml")


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "a: " + "[" * 40 + "]" * 40,
                                  "".join("  " * i + f"k{i}:\n" for i in range(200))])
def test_deep_nesting_is_refused_not_a_recursion_error(text):
    with pytest.raises(PolicyError, match=rf"nested more than {MAX_DEPTH} levels deep|larger than"):
        parse_policy(text, "p.yaml")


def test_non_utf8_policy_is_a_policy_error_naming_the_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(GOOD_POLICY.encode() + b"# caf\xe9 in Latin-1\n")
    expected = r"p.yaml:5: not UTF-8 text \(byte 0xe9 at offset 78\); save the file as UTF-8"
    with pytest.raises(PolicyError, match=expected):
        load_policy(path)


def test_binary_daemon_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"daemon.yaml:2: not UTF-8 text \(byte 0x80 at offset 128\)"):
        load_config(path)


def test_directory_as_the_policy_path_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match=r": is a directory, not a file"):
        load_policy(tmp_path)


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_POLICY.encode())
    assert [s.name for s in load_policy(path).ladder] == ["low", "top"]


def test_integer_too_long_to_convert_is_a_typed_error():
    with pytest.raises(PolicyError, match=r"^p\.yaml"):
        parse_policy("version: 1\ninterval_s: " + "9" * 100_000 + "\nladder: [{name: a, mode: b}]\n", "p.yaml")


def test_multiple_documents_are_refused():
    with pytest.raises(YamlProblem, match=r"f:2: not valid YAML: but found another document"):
        parse_yaml("a: 1\n---\nb: 2\n", "f")


def test_line_map_of_invalid_text_is_empty_and_of_valid_text_names_every_field():
    assert line_map("a: *x\n") == {}
    assert line_map("a:\n  b: 1\n")[("a", "b")] == 2


def test_read_yaml_text_names_a_missing_file(tmp_path):
    with pytest.raises(YamlProblem, match=r"nope.yaml: cannot read: No such file or directory"):
        read_yaml_text(tmp_path / "nope.yaml")


def test_control_character_is_a_yaml_problem_naming_its_line():
    """Found by tests/faults/test_fuzz_yaml.py: a NUL escaped the loader as PyYAML's ReaderError."""
    with pytest.raises(YamlProblem, match=r"^f.yaml:2: not valid YAML: character U\+0000 is not allowed"):
        parse_yaml("a: 1\nb: \x00\n", "f.yaml")
    with pytest.raises(PolicyError, match=r"p.yaml:1: not valid YAML"):
        parse_policy("\x00", "p.yaml")
