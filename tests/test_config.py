from pathlib import Path

import pytest

from jetvit_daemon.cli import main
from jetvit_daemon.config import DEFAULT_METRICS_PORT, DaemonConfig, load_config
from jetvit_daemon.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_daemon_yaml_equals_the_defaults_but_names_the_policy_beside_it():
    # Installed as the README says (config/*.yaml → /etc/jetvit-daemon/), the daemon must obey the installed
    # policy.yaml, not the copy inside the package (issue 10).
    shipped = load_config(REPO / "config" / "daemon.yaml")
    assert shipped.policy_file == REPO / "config" / "policy.yaml"
    assert shipped.model_copy(update={"policy_file": None}) == DaemonConfig()
    assert DaemonConfig().http.port == DEFAULT_METRICS_PORT not in (9100, 9400, 8002)


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "d.yaml").write_text("state_dir: state\nsimulator: {root_dir: board}\nsinks: [{path: out.jsonl}]\n")
    cfg = load_config(tmp_path / "d.yaml")
    assert cfg.resolved_state_dir() == tmp_path / "state"
    assert cfg.simulator.root_dir == tmp_path / "board"
    assert cfg.sinks[0].path == tmp_path / "out.jsonl"


def test_malformed_daemon_yaml_lists_every_problem_with_line_and_field(tmp_path):
    bad = tmp_path / "daemon.yaml"
    bad.write_text("version: 1\nhttp:\n  port: high\n  hots: x\nsources:\n  - fps: -3\nsimulator: {board: tx9}\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    lines = str(info.value).splitlines()
    assert lines[0] == (
        f"{bad}:3: http.port: Input should be a valid integer, unable to parse string as an integer (got 'high')"
    )
    assert lines[1] == f"{bad}:4: http.hots: unknown field; valid here: host, port"
    assert lines[2].startswith(f"{bad}:6: sources.0.fps: Input should be greater than 0")
    assert lines[3].startswith(f"{bad}:7: simulator.board: Input should be 'nano', 'orin-nano', 'orin-nano-super'")


def test_cli_reports_a_bad_config_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "daemon.yaml"
    bad.write_text("http: [\n")
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:2: not valid YAML")


def test_cli_reports_a_missing_config_file(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read: No such file or directory" in capsys.readouterr().err


def test_the_simulator_board_names_are_the_simulated_profiles():
    from jetvit_daemon.config import BOARD_NAMES
    from jetvit_daemon.sim.boards import PROFILES

    assert set(BOARD_NAMES) == set(PROFILES)


def test_old_sources_form_still_loads_and_means_synthetic(tmp_path):
    (tmp_path / "d.yaml").write_text("sources:\n  - type: synthetic\n    count: 2\n    fps: 15\n    width: 320\n"
                                     "    height: 240\npipeline: {queue_size: 64}\n")
    cfg = load_config(tmp_path / "d.yaml")
    src = cfg.sources[0]
    assert (src.uri, src.type, src.count, src.fps, src.width) == ("synthetic://", "synthetic", 2, 15, 320)
    assert cfg.pipeline.queue_size == 64  # accepted (and ignored, with a note in the log)


def test_camera_uris_are_validated_with_line_field_and_no_password(tmp_path):
    bad = tmp_path / "d.yaml"
    bad.write_text("sources:\n  - uri: synthetic://\n  - uri: http://admin:hunter2@cam/live\n"
                   "  - uri: file://clips/a.mp4\n    count: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    text = str(info.value)
    assert "hunter2" not in text
    assert f"{bad}:3: sources.1.uri: Value error, 'http://admin:***@cam/live': unknown scheme 'http'" in text
    assert f"{bad}:4: sources.2: Value error, count is for synthetic:// only" in text


def test_relative_file_uris_resolve_against_the_config_file(tmp_path):
    (tmp_path / "d.yaml").write_text("sources:\n  - uri: file://clips/a.mp4\n  - uri: file:///abs/b.mp4\n")
    cfg = load_config(tmp_path / "d.yaml")
    assert [s.uri for s in cfg.sources] == [f"file://{tmp_path}/clips/a.mp4", "file:///abs/b.mp4"]
