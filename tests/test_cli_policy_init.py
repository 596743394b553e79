"""`policy init`, the shipped per-board policies, `policy check`'s exact MHz and boot group, and `simulate`
refusing a policy the board can never apply."""

import pytest

from jetvit_daemon.cli import main
from jetvit_daemon.governor.policy import load_policy, parse_policy
from jetvit_daemon.governor.policy_init import BOARD_POLICY_DIR, board_policy, shipped_policy_for
from jetvit_daemon.sim.boards import PROFILES

# The boot mode each shipped policy is written for: the conf's default, the AGX in its high-performance group.
SHIPPED_BOOT = {"nano": None, "orin-nano": None, "orin-nano-super": None, "orin-nx-16gb": None,
                "agx-orin-64gb": "MAXN"}


@pytest.mark.parametrize("board", sorted(PROFILES))
def test_every_simulated_board_has_a_shipped_policy_that_passes_policy_check(board, capsys):
    path = board_policy(board)
    assert path is not None and path.exists()
    args = ["policy", "check", str(path), "--board", board, "--ignore-permissions"]
    if SHIPPED_BOOT[board]:
        args += ["--boot-mode", SHIPPED_BOOT[board]]
    assert main(args) == 0, capsys.readouterr().out
    assert ": valid (" in capsys.readouterr().out


@pytest.mark.parametrize("board", sorted(PROFILES))
def test_policy_init_writes_a_valid_commented_policy_for_the_boards_reboot_group(board, tmp_path, capsys):
    out = tmp_path / "policy.yaml"
    args = ["policy", "init", "--board", board, "--out", str(out)]
    if SHIPPED_BOOT[board]:
        args += ["--boot-mode", SHIPPED_BOOT[board]]
    assert main(args) == 0
    text = out.read_text()
    assert text.startswith("# jetvit-daemon power policy") and "docs/POLICY.md" in text
    policy = parse_policy(text, str(out))
    check = ["policy", "check", str(out), "--board", board, "--ignore-permissions", "--boot-mode",
             SHIPPED_BOOT[board] or policy.ladder[0].mode]
    assert main(check) == 0
    assert all(s.batch_size <= 32 for s in policy.ladder)  # the bundled model's manifest: batch ≤ 32
    assert len(policy.ladder) >= 2 or board == "orin-nano"


def test_policy_init_keeps_to_the_boot_mode_s_group_and_the_model_s_max_batch(tmp_path, capsys):
    assert main(["policy", "init", "--board", "orin-nx-16gb", "--boot-mode", "MAXN", "--max-batch", "4"]) == 0
    policy = parse_policy(capsys.readouterr().out, "stdout")
    assert {s.mode for s in policy.ladder} <= {"MAXN", "25W"}
    assert {s.batch_size for s in policy.ladder} == {4}
    assert main(["policy", "init", "--board", "orin-nx-16gb"]) == 0  # default 15W: its group is 10W, 15W
    assert {s.mode for s in parse_policy(capsys.readouterr().out, "stdout").ladder} <= {"10W", "15W"}


def test_policy_init_never_overwrites_without_force(tmp_path, capsys):
    out = tmp_path / "p.yaml"
    out.write_text("mine")
    assert main(["policy", "init", "--board", "nano", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "mine"
    assert main(["policy", "init", "--board", "nano", "--out", str(out), "--force"]) == 0
    assert "mode: MAXN" in out.read_text()


def test_policy_check_prints_frequencies_exactly_and_accepts_decimals(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nladder:\n  - {name: a, mode: MODE_30W, gpu_cap_mhz: 318.75}\n"
                    "  - {name: b, mode: MODE_30W, gpu_cap_mhz: 400}\n")
    assert load_policy(path).ladder[0].gpu_cap_hz == 318_750_000
    assert main(["policy", "check", str(path), "--board", "agx-orin-64gb", "--ignore-permissions"]) == 0
    out = capsys.readouterr().out
    assert "400 MHz is not in simulated agx-orin-64gb's table (114.75, 216.75, 318.75," in out
    assert "it snaps to 318.75 MHz" in out


def test_policy_check_with_a_boot_mode_refuses_a_ladder_of_another_reboot_group(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nladder:\n  - {name: a, mode: MODE_30W}\n")
    args = ["policy", "check", str(path), "--board", "agx-orin-64gb", "--ignore-permissions"]
    assert main(args) == 0
    assert main([*args, "--boot-mode", "MAXN"]) == 1
    assert (f"{path}:3: ladder.0.mode: MAXN → MODE_30W needs a reboot" in capsys.readouterr().out)


def test_simulate_refuses_a_policy_the_board_can_never_apply(tmp_path, capsys):
    # The default policy's modes are the Orin Nano Super's: the AGX has none of them.
    assert main(["simulate", "--board", "agx-orin-64gb", "--policy", "config/policy.yaml",
                 "--duration", "10"]) == 2
    err = capsys.readouterr().err
    assert "ladder.0.mode: no power mode '15W' on simulated agx-orin-64gb" in err
    # The AGX's shipped ladder is in the MAXN group: booted in MODE_30W it can never be applied.
    agx = str(BOARD_POLICY_DIR / "agx-orin-64gb.yaml")
    assert main(["simulate", "--board", "agx-orin-64gb", "--policy", agx, "--duration", "10"]) == 2
    assert "needs a reboot" in capsys.readouterr().err
    assert main(["simulate", "--board", "agx-orin-64gb", "--policy", agx, "--boot-mode", "MAXN",
                 "--duration", "10", "--json"]) == 0
    assert main(["simulate", "--board", "agx-orin-64gb", "--boot-mode", "TURBO", "--duration", "10"]) == 2
    assert "--boot-mode TURBO: no such power mode on agx-orin-64gb" in capsys.readouterr().err


def test_simulate_default_policy_is_the_board_s_own(capsys):
    assert main(["simulate", "--board", "nano", "--scenario", "steady", "--duration", "10", "--json"]) == 0
    assert '"controller": "nano.yaml"' in capsys.readouterr().out


def test_simulate_slo_ms_scores_baselines_against_the_same_target(capsys):
    assert main(["simulate", "--policy", "static:15W", "--slo-ms", "40", "--duration", "30", "--json"]) == 0
    assert '"slo_target_ms": 40.0' in capsys.readouterr().out


def test_threshold_warns_when_it_degenerates_to_one_mode(capsys):
    assert main(["simulate", "--board", "nano", "--policy", "threshold", "--duration", "10", "--json"]) == 0
    err = capsys.readouterr().err
    assert "warning: threshold: MAXN's reboot group has one mode, MAXN" in err
    assert main(["simulate", "--policy", "threshold", "--duration", "10", "--json"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_daemon_picks_the_board_s_shipped_policy_by_its_device_tree():
    for name, profile in PROFILES.items():
        path, found = shipped_policy_for(profile.compatible)
        assert found == name and path == board_policy(name)
    path, found = shipped_policy_for(("vendor,unknown",))
    assert found is None and path.name == "policy.yaml"
