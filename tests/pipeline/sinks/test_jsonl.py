"""JSON Lines sink: schema-v1 records, rotation by size and age, the oldest beyond `keep` removed."""

import json

import pytest
from sinkhelpers import MODEL, encoder, result, wait_until

from jetvit_daemon.clock import ManualClock
from jetvit_daemon.config_sinks import JsonlSinkConfig
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.pipeline.sinks.jsonl import JsonlSink
from jetvit_daemon.service.results import SinkInputs, build_sinks


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_follow_schema_v1(tmp_path):
    clock = ManualClock(start_s=1000.0, wall_offset_s=1.7e9)  # wall = 1_700_001_000 at monotonic 1000
    sink = JsonlSink(tmp_path / "r.jsonl", encoder(clock), clock)
    sink.start()
    sink.emit([result(41, t_capture_s=999.5, latency_s=0.0125)])
    sink.close()
    (rec,) = lines(tmp_path / "r.jsonl")
    assert rec == {
        "v": 1, "ts": "2023-11-14T22:29:59.500Z", "source": "cam0", "frame": 41, "label": "7", "class_index": 7,
        "score": 0.9, "top_k": [{"label": "7", "score": 0.9}, {"label": "1", "score": 0.06},
                                {"label": "4", "score": 0.04}],
        "model": {"name": MODEL.name, "version": MODEL.version}, "latency_s": 0.0125,
    }


def test_files_rotate_at_the_configured_size_and_only_keep_files_are_kept(tmp_path):
    clock = ManualClock()
    path = tmp_path / "results.jsonl"
    (tmp_path / "results.jsonl.7").write_text("left over from a run with a larger keep\n")
    line_bytes = len(encoder(clock).text(result(100000))) + 1
    sink = JsonlSink(path, encoder(clock), clock, max_bytes=10 * line_bytes, keep=3)
    assert not (tmp_path / "results.jsonl.7").exists()
    sink.start()
    try:
        for i in range(100000, 100095):  # 95 lines of equal length, one per batch: 9 rotations
            sink.emit([result(i)])
            wait_until(lambda i=i: sink.stats().sent_total == i - 100000 + 1, what=f"result {i}")
    finally:
        sink.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["results.jsonl", "results.jsonl.1", "results.jsonl.2", "results.jsonl.3"]
    assert sink.rotations_total == 9
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 10 * line_bytes
    # Newest in the live file, then .1, .2, .3; everything older was removed.
    frames = [rec["frame"] for name in reversed(names) for rec in lines(tmp_path / name)]
    assert frames == list(range(100095 - 35, 100095))


def test_a_file_open_longer_than_the_interval_rotates_even_without_new_results(tmp_path):
    clock = ManualClock()
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(path, encoder(clock), clock, rotate_interval_s=3600, keep=2)
    sink.start()
    try:
        sink.emit([result(1)])
        wait_until(lambda: sink.stats().sent_total == 1)
        clock.advance(3599)
        sink.emit([result(2)])
        wait_until(lambda: sink.stats().sent_total == 2)
        assert sink.rotations_total == 0
        clock.advance(2)
        wait_until(lambda: sink.rotations_total == 1, what="the age rotation")
    finally:
        sink.close()
    assert [r["frame"] for r in lines(tmp_path / "r.jsonl.1")] == [1, 2]
    assert path.read_text() == ""


def test_the_first_config_form_still_works_and_a_bad_path_is_a_config_error(tmp_path):
    from jetvit_daemon.config import DaemonConfig

    cfg = DaemonConfig.model_validate({"sinks": [{"path": str(tmp_path / "a.jsonl")}]})
    assert isinstance(cfg.sinks[0], JsonlSinkConfig) and cfg.sinks[0].keep == 5
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(b"model bytes")
    (sink,) = build_sinks(cfg.sinks, ManualClock(), "m", model_file, SinkInputs("host"))
    sink.close()
    (tmp_path / "blocker").write_text("a file where a directory should be")
    bad = DaemonConfig.model_validate({"sinks": [{"path": str(tmp_path / "blocker" / "a.jsonl")}]})
    with pytest.raises(ConfigError, match=r"sinks\.0\.path: cannot open .*blocker/a\.jsonl"):
        build_sinks(bad.sinks, ManualClock(), "m", model_file, SinkInputs("host"))
