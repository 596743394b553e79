import json
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "jetson-reference" / "tegrastats" / "samples.txt"

LINE_29 = (
    "11-15-2024 08:38:09 RAM 6185/7620MB (lfb 8x2MB) SWAP 851/3810MB (cached 1MB) CPU [15%@729,11%@729,14%@729,"
    "13%@729,11%@729,8%@729] EMC_FREQ 43%@2133 GR3D_FREQ 63%@[621] NVDEC off NVJPG off NVJPG1 off VIC off OFA off "
    "APE 200 cpu@53.968C soc2@52.437C soc0@50.75C gpu@53.343C tj@53.968C soc1@51.656C VDD_IN 12479mW/12479mW "
    "VDD_CPU_GPU_CV 4667mW/4667mW VDD_SOC 2817mW/2817mW"
)


def run_cli(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "jetvit_daemon", "tegrastats", "parse", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_parse_from_stdin_prints_one_object_per_line_and_an_error_object_for_a_bad_line():
    proc = run_cli(stdin="hello world\n\n" + LINE_29 + "\n")
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1  # one line failed
    assert objects[0]["line"] == 1 and "not a tegrastats line" in objects[0]["error"]
    reading = objects[1]
    assert reading["timestamp"] == "2024-11-15T08:38:09"
    assert reading["gpu_load_pct"] == 63 and reading["gpu_freq_mhz"] == [621]
    assert reading["board_power_mw"] == 12479
    assert reading["temps_c"]["tj"] == 53.968
    assert len(reading["cpus"]) == 6


def test_parse_a_file_of_every_reference_line_succeeds(tmp_path):
    log = tmp_path / "tegrastats.log"
    log.write_text(SAMPLES.read_text() if SAMPLES.exists() else LINE_29 + "\n")
    proc = run_cli(str(log))
    assert proc.returncode == 0, proc.stdout
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all("error" not in o for o in objects)
    assert len(objects) == len([ln for ln in log.read_text().splitlines() if ln.strip()])


def test_missing_file_is_a_clear_error(tmp_path):
    proc = run_cli(str(tmp_path / "none.log"))
    assert proc.returncode == 2
    assert "none.log: cannot read: No such file or directory" in proc.stderr


def test_a_100_mb_line_costs_no_more_memory_than_a_short_one(tmp_path):
    """Issue 9 item 3: `tegrastats parse` of a 100 MB line cost 2 GB. It is reported as one skipped line, read in
    64 KiB pieces; the peak memory of the CLI (measured by a fresh parent, so only this child counts) stays
    near its baseline."""
    big = tmp_path / "big.txt"
    with open(big, "w") as f:
        f.write(LINE_29 + "\n")
        chunk = "x" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write("\n" + LINE_29 + "\n")
    measure = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run([sys.executable, '-m', 'jetvit_daemon', 'tegrastats', 'parse', sys.argv[1]],\n"
        "                   capture_output=True, text=True)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stdout.write(p.stdout)\n"
    )
    proc = subprocess.run([sys.executable, "-c", measure, str(big)], capture_output=True, text=True, timeout=120)
    first, *objects = proc.stdout.splitlines()
    code, maxrss_kib = (int(x) for x in first.split())
    assert code == 1  # one bad line
    parsed = [json.loads(line) for line in objects]
    assert parsed[0]["board_power_mw"] == 12479 and parsed[2]["board_power_mw"] == 12479
    assert parsed[1] == {"line": 2, "error": f"a line of {100 * (1 << 20) + 1} characters, longer than any "
                                             "tegrastats line (at most 65536): skipped"}
    assert maxrss_kib < 200 * 1024, f"peak RSS {maxrss_kib / 1024:.0f} MiB for a 100 MB line"
