import json
import sys
from pathlib import Path

from jetvit_daemon.cli import main


def test_policy_check_accepts_the_shipped_policy_on_its_board(capsys):
    assert main(["policy", "check", "config/policy.yaml", "--board", "orin-nano-super"]) == 0
    out = capsys.readouterr().out
    assert "config/policy.yaml: valid (7 states: floor < eco < low < mid < upper < high < max)" in out


def test_policy_check_lists_every_problem_with_file_line_and_field(tmp_path, capsys):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nladder:\n  - {name: a, mode: 7W, gpu_cap_mhz: 400}\n  - {name: b, mode: 15W}\n"
                   "  - {name: c, mode: MAXN}\n")
    bad.chmod(0o644)
    assert main(["policy", "check", str(bad), "--board", "orin-nano"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{bad}:5: ladder.2.mode: no power mode 'MAXN' on simulated orin-nano (have: 15W, 7W)" in out
    assert any(line.startswith(f"{bad}:4: ladder.0.mode / ladder.1.mode: 7W → 15W needs a reboot: "
                               "TPC_PG_MASK 252 ≠ 240") for line in out)
    assert any("400 MHz is not in simulated orin-nano's table" in line and "snaps to 306 MHz" in line
               for line in out)


def test_policy_check_reports_schema_errors_and_thresholds(tmp_path, capsys):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nladder:\n  - {name: a, mode: 15W, batch_size: 0}\n"
                   "thermal: {warm_c: 90, hot_c: 80, critical_c: 95}\n")
    assert main(["policy", "check", str(bad), "--board", "orin-nano-super"]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:3: ladder.0.batch_size: Input should be greater than or equal to 1" in out
    assert f"{bad}:4: thermal: Value error, thresholds must satisfy warm_c < hot_c < critical_c" in out


def test_policy_check_refuses_a_group_writable_file_unless_told_not_to(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nladder:\n  - {name: a, mode: 15W}\n")
    path.chmod(0o664)
    assert main(["policy", "check", str(path), "--board", "orin-nano-super"]) == 1
    assert "writable by group" in capsys.readouterr().out
    assert main(["policy", "check", str(path), "--board", "orin-nano-super", "--ignore-permissions"]) == 0


def test_policy_schema_is_json_schema_of_every_field(capsys):
    assert main(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"ladder", "thermal", "slo", "power_budget", "dwell", "capacity", "stale_telemetry"} <= set(
        schema["properties"])
    assert "batch_wait_ms" in schema["$defs"]["LadderState"]["properties"]


def test_ladder_out_of_order_fails_policy_check_naming_the_states_out_of_place(tmp_path, capsys):
    """Issue 9 item 11: a reversed ladder passed `policy check` (+32% energy in `simulate`)."""
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nladder:\n  - {name: max, mode: MAXN_SUPER}\n  - {name: high, mode: 25W}\n"
                   "  - {name: low, mode: 15W}\n  - {name: eco, mode: 15W, gpu_cap_mhz: 408}\n")
    bad.chmod(0o644)
    assert main(["policy", "check", str(bad), "--board", "orin-nano-super"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (f"{bad}:4: ladder.1: 'high' (mode 25W, GPU ≤ 918 MHz, 6 CPU cores) is slower than ladder.0 'max' "
            "(mode MAXN_SUPER, GPU ≤ 1020 MHz, 6 CPU cores) above it; the ladder runs from the slowest state to "
            "the fastest") in out
    assert any(line.startswith(f"{bad}:5: ladder.2: 'low' (mode 15W, GPU ≤ 612 MHz") for line in out)
    assert any(line.startswith(f"{bad}:6: ladder.3: 'eco' (mode 15W, GPU ≤ 408 MHz") for line in out)
    assert (f"{bad}:2: ladder: out of place: high, low, eco; ordered by GPU clock and online cores the ladder "
            "would read eco < low < high < max") in out


def test_one_state_out_of_place_is_named_alone(tmp_path, capsys):
    bad = tmp_path / "p.yaml"
    # A cap above the mode's own GPU maximum is lowered to it: 25W at "1020" runs at 918 MHz, below MAXN_SUPER.
    bad.write_text("version: 1\nladder:\n  - {name: eco, mode: 15W, gpu_cap_mhz: 408}\n"
                   "  - {name: max, mode: MAXN_SUPER}\n  - {name: high, mode: 25W, gpu_cap_mhz: 1020}\n")
    bad.chmod(0o644)
    assert main(["policy", "check", str(bad), "--board", "orin-nano-super"]) == 1
    out = capsys.readouterr().out
    assert "out of place: high;" in out and "eco < high < max" in out


def test_states_of_equal_speed_in_any_order_are_in_order(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nladder:\n  - {name: a, mode: 15W, batch_size: 8}\n"
                    "  - {name: b, mode: 15W, batch_size: 2}\n  - {name: c, mode: 15W, gpu_cap_mhz: 612}\n")
    path.chmod(0o644)
    assert main(["policy", "check", str(path), "--board", "orin-nano-super"]) == 0, capsys.readouterr().out


def test_policy_check_refuses_an_alias_bomb_and_a_directory_with_one_line(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).parent / "faults"))
    from bad_inputs import ALIAS_BOMB

    bomb = tmp_path / "p.yaml"
    bomb.write_text(ALIAS_BOMB)
    assert main(["policy", "check", str(bomb), "--board", "orin-nano-super"]) == 1
    assert capsys.readouterr().out == f"{bomb}:2: alias *a refused: YAML aliases are not allowed in this file " \
                                      "(write the value out where it is needed)\n"
    assert main(["policy", "check", str(tmp_path), "--board", "orin-nano-super"]) == 1
    assert capsys.readouterr().out == f"{tmp_path}: is a directory, not a file (give the path of the YAML file " \
                                      "itself)\n"
