"""The state directory is not trusted blindly: its owner and mode are checked, and its files are never followed
through a symlink (issue 9, defect 8)."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.baseline import Baseline, BaselineJournal, SwitchRecord
from jetvit_daemon.hardware.probe import LOCK_NAME, acquire_instance_lock

BASELINE = Baseline(board="NVIDIA Jetson Orin Nano Developer Kit", mode_name="25W", mode_id=1,
                    gpu_devfreq_dir="/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu",
                    gpu_min_hz=306_000_000, gpu_max_hz=1_020_000_000, recorded_at=1_700_000_000.0, pid=4242)


def _state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    return state


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "shadow"
    victim.write_text("root:secret\n")
    victim.chmod(0o600)
    return victim


def test_regression_a_lock_symlink_planted_in_the_state_directory_never_overwrites_its_target(tmp_path):
    """The lock was opened with O_CREAT and no O_NOFOLLOW: a planted symlink made the root daemon truncate
    and overwrite a root-only file with its pid."""
    state, victim = _state(tmp_path), _victim(tmp_path)
    (state / LOCK_NAME).symlink_to(victim)
    with pytest.raises(ConfigError, match=rf"{state / LOCK_NAME} is a symbolic link: refused"):
        acquire_instance_lock(state)
    assert victim.read_text() == "root:secret\n"


def test_a_lock_that_is_not_a_regular_file_is_refused(tmp_path):
    state = _state(tmp_path)
    os.mkfifo(state / LOCK_NAME)
    with pytest.raises(ConfigError, match="is not a regular file"):
        acquire_instance_lock(state)


def test_regression_a_planted_baseline_symlink_is_not_restored_from(tmp_path):
    """A planted baseline.json symlink made the daemon "restore" the attacker's chosen mode and clocks."""
    state = _state(tmp_path)
    attacker = tmp_path / "attacker.json"
    attacker.write_text(json.dumps(dataclasses.replace(BASELINE, mode_name="7W", mode_id=3).to_json()))
    (state / "baseline.json").symlink_to(attacker)
    with pytest.raises(ConfigError, match=r"baseline\.json is a symbolic link to .*attacker\.json.*: refused"):
        BaselineJournal(state).load()


def test_writing_the_journal_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path):
    state, victim = _state(tmp_path), _victim(tmp_path)
    (state / "baseline.json").symlink_to(victim)
    BaselineJournal(state).update(BASELINE)
    assert victim.read_text() == "root:secret\n"
    assert not (state / "baseline.json").is_symlink()
    assert BaselineJournal(state).load() == BASELINE
    assert oct((state / "baseline.json").stat().st_mode & 0o777) == "0o600"


def test_a_stale_temp_file_symlink_is_not_written_through(tmp_path):
    state, victim = _state(tmp_path), _victim(tmp_path)
    (state / f".baseline.json.tmp{os.getpid()}").symlink_to(victim)
    BaselineJournal(state).update(BASELINE)
    assert victim.read_text() == "root:secret\n" and BaselineJournal(state).load() == BASELINE


def test_a_state_directory_others_can_write_is_refused_by_name(tmp_path):
    state = _state(tmp_path)
    state.chmod(0o777)
    with pytest.raises(ConfigError, match=rf"state directory {state} refused: {state} is writable by group and "
                                          rf"others \(drwxrwxrwx; fix: chmod go-w {state}\)"):
        acquire_instance_lock(state)
    assert not (state / LOCK_NAME).exists()


def test_a_missing_state_directory_is_created_private(tmp_path):
    state = tmp_path / "new" / "state"
    lock = acquire_instance_lock(state)
    try:
        assert (state.stat().st_mode & 0o777) == 0o700
        assert ((state / LOCK_NAME).stat().st_mode & 0o777) == 0o600
    finally:
        lock.release()


def test_an_in_flight_switch_round_trips_through_the_journal(tmp_path):
    state = _state(tmp_path)
    journal = BaselineJournal(state)
    switch = SwitchRecord(target_id=2, target_name="MAXN_SUPER", argv=["nvpmodel", "-m", "2"],
                          started_at=1_700_000_001.0, timeout_s=10.0, pid=31337, start_ticks=123456)
    journal.update(dataclasses.replace(BASELINE, switch=switch))
    loaded = journal.load()
    assert loaded is not None and loaded.switch == switch
    assert "switch" not in json.loads(json.dumps(BASELINE.to_json()))  # the common case reads as before
