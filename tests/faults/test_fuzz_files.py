"""Fuzz the nvpmodel conf parser and the manifest loader: whatever the file holds, only the typed error
(ConfigError for a conf, EngineError for a manifest), within the example deadline and MAX_PEAK_BYTES."""

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzzing import FUZZ, MAX_PEAK_BYTES, mutated, peak_bytes

from jetvit_daemon.config import DEFAULT_MODEL
from jetvit_daemon.errors import ConfigError, EngineError
from jetvit_daemon.hardware.nvpmodel import parse_conf
from jetvit_daemon.runners.manifest import load_manifest

CONFS = sorted((Path(__file__).resolve().parents[2] / "jetvit_daemon" / "sim" / "confs").glob("*.conf"))
CONF_TEXT = CONFS[0].read_text()
CONF_ALPHABET = " \n\t<>=-_/0123456789xABCDEFGHIJKLMNOPQRSTUVWXYZ#.@"
CONF_LINES = ["< PARAM TYPE=FILE NAME=CPU_ONLINE >", "< PARAM TYPE=CLOCK NAME=GPU >", "< POWER_MODEL ID=0 NAME=15W >",
              "< POWER_MODEL ID=x NAME= >", "< PM_CONFIG DEFAULT=0 >", "< PM_CONFIG DEFAULT=7 >",
              "< FAN_CONFIG DEFAULT=quiet >", "CORE_0 /sys/devices/system/cpu/cpu0/online", "CPU_ONLINE CORE_0 1",
              "GPU MAX_FREQ -1", "GPU MAX_FREQ 99999999999999999999", "GPU MIN_FREQ 0", "TPC_PG_MASK 0x1",
              "FBP_PG_MASK 2", "< UNKNOWN >", "<", ">", "# comment", "", "MAX_FREQ /sys/x/max_freq"]
MANIFEST_TEXT = DEFAULT_MODEL.with_name("vit_digits.manifest.json").read_text()
JSON_ALPHABET = ' \n{}[]:,"0123456789.-eEtrufalsn\\abcxyz'


def only(fn: Any, *allowed: type) -> None:
    _, error, peak = peak_bytes(fn)
    assert error is None or isinstance(error, allowed), f"{type(error).__name__}: {error}"
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 1e6:.0f} MB"


@FUZZ
@given(mutated(CONF_TEXT, CONF_ALPHABET))
def test_fuzz_nvpmodel_conf_edits_raise_only_config_error(text: str) -> None:
    only(lambda: parse_conf(text, "/etc/nvpmodel.conf"), ConfigError)


@FUZZ
@given(st.lists(st.sampled_from(CONF_LINES), max_size=30).map("\n".join))
def test_fuzz_nvpmodel_conf_from_real_line_shapes_raises_only_config_error(text: str) -> None:
    only(lambda: parse_conf(text, "/etc/nvpmodel.conf"), ConfigError)


def _load(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_bytes(data)
        (Path(tmp) / "m.onnx").write_bytes(b"")
        load_manifest(Path(tmp) / "m.onnx")


@FUZZ
@given(mutated(MANIFEST_TEXT, JSON_ALPHABET))
def test_fuzz_json_manifest_edits_raise_only_engine_error(text: str) -> None:
    only(lambda: _load("m.manifest.json", text.encode("utf-8", "surrogatepass")), EngineError)


@FUZZ
@given(mutated(yaml.safe_dump(json.loads(MANIFEST_TEXT)), " \n-:[]{}&*!|'\"#0123456789abcxyz"))
def test_fuzz_yaml_manifest_edits_raise_only_engine_error(text: str) -> None:
    only(lambda: _load("m.manifest.yaml", text.encode("utf-8", "surrogatepass")), EngineError)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_manifest_bytes_raise_only_engine_error(data: bytes) -> None:
    only(lambda: _load("m.manifest.json", data), EngineError)
