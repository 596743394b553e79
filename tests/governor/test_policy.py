from pathlib import Path

import pytest

from jetvit_daemon.errors import PolicyError
from jetvit_daemon.governor.policy import DEFAULT_POLICY_FILE, load_policy, parse_policy

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
version: 1
ladder:
  - {name: low, mode: 15W, gpu_cap_mhz: 408, batch_size: 8}
  - {name: high, mode: 25W, gpu_cap_mhz: max, batch_size: 4}
"""


def test_shipped_policy_is_the_bundled_default_and_valid():
    shipped = REPO / "config" / "policy.yaml"
    assert shipped.read_text() == DEFAULT_POLICY_FILE.read_text(), "config/policy.yaml and the bundled copy differ"
    policy = load_policy(shipped)
    assert policy.ladder[0].mode == "15W"
    assert policy.start_index == len(policy.ladder) - 1


def test_defaults_fill_unspecified_sections():
    policy = parse_policy(GOOD, "p.yaml")
    assert policy.ladder[0].gpu_cap_hz == 408_000_000
    assert policy.ladder[1].gpu_cap_hz is None
    assert policy.thermal.hot_c == 80.0
    assert policy.stale_index == 0


@pytest.mark.parametrize(
    "text, expected",
    [
        (GOOD.replace("gpu_cap_mhz: 408", "gpu_cap_mhz: fast"), "p.yaml:3: ladder.0.gpu_cap_mhz"),
        (GOOD + "thermal: {warm_c: 85, hot_c: 80, critical_c: 90}\n", "warm_c < hot_c < critical_c"),
        (GOOD + "start_state: turbo\n", "start_state 'turbo' is not a ladder state (have: low, high)"),
        (GOOD.replace("name: high", "name: low"), "repeated: low"),
        (GOOD + "dwel: {}\n", "p.yaml:5: dwel: unknown field; valid here:"),
        ("version: 2\n" + GOOD.split("\n", 1)[1], "version"),
        ("version: 1\nladder: []\n", "ladder"),
        ("ladder: [\n", "not valid YAML"),
    ],
)
def test_invalid_policies_name_file_line_and_field(text, expected):
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml")
    assert expected in str(info.value)


def test_a_policy_from_before_the_thermal_setpoint_still_loads():
    """Files written for the fixed thresholds (warm_c, hot_c, critical_c, hysteresis_c) keep loading; the new
    setpoint fields take their defaults."""
    policy = parse_policy(GOOD + "thermal: {sensor: tj, warm_c: 70, hot_c: 80, critical_c: 90, hysteresis_c: 5}\n",
                          "old.yaml")
    th = policy.thermal
    assert (th.hot_c, th.critical_c, th.setpoint_margin_c, th.critical_margin_c) == (80.0, 90.0, 3.0, 1.0)


@pytest.mark.parametrize("thermal, message", [
    ("{setpoint_margin_c: 2, critical_margin_c: 2}", "critical_margin_c must be below setpoint_margin_c"),
    ("{setpoint_margin_c: 0}", "setpoint_margin_c"),
    ("{k_p_w_per_c: -1}", "k_p_w_per_c"),
])
def test_thermal_controller_fields_are_validated(thermal, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(GOOD + f"thermal: {thermal}\n", "p.yaml")


@pytest.mark.parametrize("mhz", [612, 714, 816, 918])
def test_the_shipped_ladder_has_a_rung_at_every_25w_clock_from_15w_s_top_to_25w_s(mhz):
    """Issue 14, mechanism 7: the shipped ladder went from 15W at 612 MHz straight to 25W at 918 MHz (6-7 W
    apart): a load just over 15W's capacity, or a board too hot for 25W at full clock, had nothing between.
    Every table clock in between (the simulated Super's 714 and 816 MHz) is a rung."""
    from jetvit_daemon.sim.boards import get_profile, load_conf
    conf = load_conf(get_profile("orin-nano-super"))
    mode_max = {m.name: m.power_mode.gpu_max_freq_hz for m in conf.modes}
    clocks = set()
    for st in load_policy(DEFAULT_POLICY_FILE).ladder:
        top = mode_max[st.mode]
        cap = st.gpu_cap_hz if st.gpu_cap_hz is not None else top
        clocks.add(round(min(cap, top) / 1e6) if top is not None else round(cap / 1e6) if cap else None)
    assert mhz in clocks
