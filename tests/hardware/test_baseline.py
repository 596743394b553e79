import json
import logging
import os
from pathlib import Path

import pytest

from jetvit_daemon.hardware import baseline as baseline_module
from jetvit_daemon.hardware.baseline import Baseline, BaselineJournal

ORIN_NANO = Baseline(
    board="NVIDIA Jetson Orin Nano Developer Kit",
    mode_name="15W",
    mode_id=0,
    gpu_devfreq_dir="/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu",
    gpu_min_hz=306_000_000,
    gpu_max_hz=624_750_000,
    recorded_at=1_700_000_123.5,
    pid=4242,
)


def test_round_trip(tmp_path: Path) -> None:
    journal = BaselineJournal(tmp_path / "state")
    assert journal.load() is None
    assert journal.record(ORIN_NANO) is True
    assert journal.load() == ORIN_NANO
    data = json.loads((tmp_path / "state/baseline.json").read_text())
    assert data["version"] == 1 and data["mode_name"] == "15W" and data["gpu_max_hz"] == 624_750_000
    assert sorted(os.listdir(tmp_path / "state")) == ["baseline.json"]  # no temp file left behind


def test_first_baseline_wins(tmp_path: Path) -> None:
    journal = BaselineJournal(tmp_path)
    later = Baseline(**{**ORIN_NANO.__dict__, "mode_name": "7W", "mode_id": 1, "pid": 5151})
    assert journal.record(ORIN_NANO)
    assert journal.record(later) is False
    assert journal.load() == ORIN_NANO


def test_clear_then_record_again(tmp_path: Path) -> None:
    journal = BaselineJournal(tmp_path)
    journal.record(ORIN_NANO)
    journal.clear()
    assert not journal.exists() and journal.load() is None
    journal.clear()  # nothing there: no error
    later = Baseline(**{**ORIN_NANO.__dict__, "pid": 5151})
    assert journal.record(later) and journal.load() == later


def test_write_interrupted_before_rename_leaves_no_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = BaselineJournal(tmp_path)

    def crash(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(baseline_module.os, "replace", crash)
    with pytest.raises(OSError):
        journal.record(ORIN_NANO)
    monkeypatch.undo()
    # A reader never sees a half-written journal: either none, or a whole one.
    assert journal.load() is None
    assert not (tmp_path / "baseline.json").exists()


def test_corrupt_journal_is_quarantined_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "baseline.json").write_text('{"version": 1, "mode_name": "15W"')
    journal = BaselineJournal(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert journal.load() is None
    assert journal.quarantined == tmp_path / "baseline.json.corrupt"
    assert (tmp_path / "baseline.json.corrupt").read_text() == '{"version": 1, "mode_name": "15W"'
    assert not journal.exists()
    assert f"restore journal {tmp_path / 'baseline.json'} is corrupt" in caplog.text
    assert journal.record(ORIN_NANO)  # the daemon can record a fresh baseline


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("mode_id", "0", "field 'mode_id' must be int, got '0'"),
        ("mode_id", True, "field 'mode_id' must be int, got True"),
        ("gpu_max_hz", 6.2e8, "field 'gpu_max_hz' must be int"),
        ("version", 2, "expected version 1, got 2"),
    ],
)
def test_wrong_field_types_are_corrupt(tmp_path: Path, field: str, value: object, message: str) -> None:
    data = {**ORIN_NANO.to_json(), field: value}
    with pytest.raises(ValueError) as info:
        Baseline.from_json(data, "j.json")
    assert str(info.value).startswith("j.json: ") and message in str(info.value)
    (tmp_path / "baseline.json").write_text(json.dumps(data))
    assert BaselineJournal(tmp_path).load() is None
    assert (tmp_path / "baseline.json.corrupt").exists()


def test_optional_gpu_fields(tmp_path: Path) -> None:
    no_gpu = Baseline(**{**ORIN_NANO.__dict__, "gpu_devfreq_dir": None, "gpu_min_hz": None, "gpu_max_hz": None})
    journal = BaselineJournal(tmp_path)
    journal.record(no_gpu)
    assert journal.load() == no_gpu
    assert no_gpu.describe() == "power mode 15W (id 0), no GPU limits, recorded by pid 4242"
