import json
import subprocess
import sys


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "jetvit_daemon", *args], capture_output=True, text=True,
                          timeout=60)


def test_probe_json_describes_the_simulated_board(tmp_path):
    cfg = tmp_path / "d.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\nsimulator: {{board: orin-nano}}\n")
    proc = run_cli("probe", "--json", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["simulated"] is True
    assert report["jetson"] is False  # regression: the simulated board's Jetson files made this true
    assert report["board"]["soc"] == "t234"
    modes = {m["name"]: m for m in report["power_modes"]}
    # Orin Nano 8GB, JetPack 6.0 conf: 15W (default) and 7W differ in TPC_PG_MASK and online cores.
    assert modes["15W"]["current"] is True
    assert modes["7W"]["reachable_without_reboot"] is False
    assert modes["7W"]["gpu_max_freq_hz"] == 408_000_000
    assert report["gpu"]["available_hz"][0] == 306_000_000
    assert {z["name"] for z in report["sensors"]["thermal_zones"]} >= {"cpu", "gpu", "tj"}
    assert report["sensors"]["board_power_w"] > 0
    assert report["conflicts"] == [] and report["problems"] == []


def test_probe_text_marks_current_and_reboot_needing_modes(tmp_path):
    cfg = tmp_path / "d.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\nsimulator: {{board: orin-nano}}\n")
    proc = run_cli("probe", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("board: simulated Jetson Orin Nano")
    assert any(ln.strip().startswith("*  0 15W") for ln in lines)
    assert any(ln.strip().startswith("~  1 7W") for ln in lines)
    assert any(ln.startswith("GPU devfreq ") for ln in lines)
