"""Fuzz the one YAML loader and the two models behind it (policy, daemon config): whatever the text, the
loader raises nothing but its typed error (YamlProblem → PolicyError / ConfigError), within the example
deadline and MAX_PEAK_BYTES of memory; and `policy check`'s board checks never raise on a valid policy."""

import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzzing import FUZZ, MAX_PEAK_BYTES, mutated, peak_bytes

from jetvit_daemon.config import DaemonConfig
from jetvit_daemon.errors import PolicyError
from jetvit_daemon.governor.policy import parse_policy
from jetvit_daemon.governor.policy_check import BoardFacts, check_policy_text
from jetvit_daemon.sim.boards import get_profile, load_conf
from jetvit_daemon.yamlfile import YamlProblem, parse_yaml, parse_yaml_model

REPO = Path(__file__).resolve().parents[2]
POLICY_TEXT = (REPO / "config" / "policy.yaml").read_text()
DAEMON_TEXT = (REPO / "config" / "daemon.yaml").read_text()
YAML_ALPHABET = " \n\t-:,[]{}&*!|>'\"#?%@`0123456789abcxyz.eE+~\\\x00\x85\ufeff"
# YAML fragments that reach the composer's and constructor's corners: anchors, aliases, tags, merge keys,
# complex keys, documents, timestamps, huge numbers, nesting.
FRAGMENTS = ["a: ", "&x ", "*x", "!!str ", "!!python/object:os.system ", "<<: ", "? ", "- ", "[", "]", "{", "}",
             ", ", "\n", "  ", "---\n", "...\n", "2024-01-01 ", "1e999", "0x1F", "9" * 400, "null", "~", "|\n  t",
             "'q'", '"\\u0000"', "ladder: ", "name: ", "mode: 15W", "version: 1", "gpu_cap_mhz: max", "#c\n"]
FIELD_NAMES = ["version", "interval_s", "ladder", "name", "mode", "gpu_cap_mhz", "batch_size", "batch_wait_ms",
               "start_state", "thermal", "warm_c", "hot_c", "critical_c", "slo", "dwell", "capacity", "margin",
               "near_ratio", "stale_telemetry", "state", "after_s", "http", "port", "sources", "hardware"]
values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) |
    st.text(max_size=8) | st.sampled_from(["15W", "25W", "MAXN_SUPER", "max", "low", "top"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=5),
    max_leaves=30)
FACTS = BoardFacts("simulated orin-nano-super", load_conf(get_profile("orin-nano-super")).power_modes,
                   list(get_profile("orin-nano-super").gpu_table_hz))


def only_typed_errors(fn: Any, *allowed: type) -> Any:
    result, error, peak = peak_bytes(fn)
    assert error is None or isinstance(error, allowed), f"{type(error).__name__}: {error}"
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 1e6:.0f} MB"
    return result


@FUZZ
@given(st.text(alphabet=YAML_ALPHABET, max_size=300))
def test_fuzz_loader_on_arbitrary_text_raises_only_yaml_problem(text: str) -> None:
    only_typed_errors(lambda: parse_yaml(text, "f.yaml"), YamlProblem)


@FUZZ
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_fuzz_loader_on_yaml_fragments_raises_only_yaml_problem(text: str) -> None:
    only_typed_errors(lambda: parse_yaml(text, "f.yaml"), YamlProblem)


@FUZZ
@given(mutated(POLICY_TEXT, YAML_ALPHABET))
def test_fuzz_policy_edits_of_the_shipped_policy_raise_only_policy_error(text: str) -> None:
    policy = only_typed_errors(lambda: parse_policy(text, "policy.yaml"), PolicyError)
    if policy is not None:  # valid: the board checks must not raise either, only report
        only_typed_errors(lambda: check_policy_text(text, "policy.yaml", FACTS), PolicyError)


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8))
def test_fuzz_policy_model_on_random_documents_raises_only_policy_error(data: Any) -> None:
    text = yaml.safe_dump(data)
    if only_typed_errors(lambda: parse_policy(text, "p.yaml"), PolicyError) is not None:
        only_typed_errors(lambda: check_policy_text(text, "p.yaml", FACTS), PolicyError)


@FUZZ
@given(st.one_of(mutated(DAEMON_TEXT, YAML_ALPHABET),
                 st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8).map(yaml.safe_dump)))
def test_fuzz_daemon_config_raises_only_yaml_problem(text: str) -> None:
    only_typed_errors(lambda: parse_yaml_model(text, "daemon.yaml", DaemonConfig), YamlProblem)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_loader_on_arbitrary_bytes_raises_only_yaml_problem(data: bytes) -> None:
    from jetvit_daemon.yamlfile import decode_text

    only_typed_errors(lambda: parse_yaml(decode_text(data, "f.yaml"), "f.yaml"), YamlProblem)
