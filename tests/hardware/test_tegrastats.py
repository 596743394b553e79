# ruff: noqa: E501  (the 32 captured lines are kept verbatim, one per line)
"""The tegrastats parser against the 32 real lines of jetson-reference/tegrastats, and against what the
README says the parser must survive beyond them."""

import datetime
import json
import time
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jetvit_daemon.errors import TelemetryParseError
from jetvit_daemon.hardware.tegrastats import (
    CpuCore,
    Rail,
    board_power_from_rails,
    parse_line,
    parse_lines,
    reading_to_json,
    reading_to_sample,
)

# jetson-reference/tegrastats/samples.txt, verbatim (boards per line in samples.tsv; checked against the
# shared copy below when it is present).
SAMPLES = [
    "RAM 3607/3983MB (lfb 47x4MB) SWAP 873/8192MB (cached 281MB) cpu [17%,11%,65%,0%]@1734 EMC 1%@1600 APE 25 GR3D 39%@76",
    "RAM 3468/3983MB (lfb 48x4MB) SWAP 873/8192MB (cached 295MB) cpu [17%,13%,29%,5%]@408 EMC 1%@408 APE 25 GR3D 3%@76",
    "RAM 1179/3983MB (lfb 120x4MB) IRAM 0/252kB(lfb 252kB) CPU [1%@102,4%@102,0%@102,0%@102] EMC_FREQ 7%@408 GR3D_FREQ 0%@76 APE 25 AO@42.5C CPU@37.5C GPU@39C PLL@37C Tdiode@42.75C PMIC@100C Tboard@42C thermal@38.5C VDD_IN 2532/2698 VDD_CPU 76/178 VDD_GPU 19/19",
    "RAM 2594/3483MB (lfb 2x2MB) SWAP 366/4096MB (cached 14MB) CPU [9%@306,9%@306,12%@306,8%@306] GR3D_FREQ 2% LCPU@36.5C CPU@33C Charger@115C Tdiode@40C PLL@32C GPU@32.5C thermal@39C AO@41.5C max170xx@38.9C PMIC@100C Tboard@39C",
    "RAM 1180/3965MB (lfb 1x2MB) SWAP 149/1024MB (cached 7MB) IRAM 0/252kB(lfb 252kB) CPU [30%@1036,33%@1036,28%@1036,26%@1036] EMC_FREQ 10%@1600 GR3D_FREQ 0%@76 NVENC 716 NVDEC 716 APE 25 PLL@57C CPU@60.5C PMIC@100C GPU@59C AO@65C thermal@59.75C POM_5V_IN 4520/4680 POM_5V_GPU 0/0 POM_5V_CPU 1078/1205",
    "RAM 1923/3964MB (lfb 2x2MB) SWAP 191/1982MB (cached 6MB) IRAM 0/252kB(lfb 252kB) CPU [5%@1224,4%@1224,3%@1224,6%@1224] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 APE 25 PLL@37C CPU@40C PMIC@50C GPU@40C AO@45C thermal@40C POM_5V_IN 1750/1628 POM_5V_GPU 0/0 POM_5V_CPU 366/406",
    "RAM 534/3964MB (lfb 98x4MB) SWAP 5/1982MB (cached 1MB) IRAM 0/252kB(lfb 252kB) CPU [16%@204,9%@204,0%@204,0%@204] EMC_FREQ 0%@204 GR3D_FREQ 0%@76 APE 25 PLL@34C CPU@36.5C PMIC@100C GPU@36C AO@39.5C thermal@36.25C POM_5V_IN 1022/1022 POM_5V_GPU 0/0 POM_5V_CPU 204/204",
    "RAM 1345/7829MB (lfb 1290x4MB) SWAP 0/512MB (cached 0MB) CPU [2%@345,off,off,off,off,off] EMC_FREQ 13%@40 GR3D_FREQ 0%@114 APE 150 BCPU@35C MCPU@35C GPU@41C PLL@35C AO@35.5C Tboard@35C Tdiode@36C PMIC@100C thermal@35.5C VDD_IN 2003/2658 VDD_CPU 320/518 VDD_GPU 400/735 VDD_SOC 400/415 VDD_WIFI 0/0 VDD_DDR 240/348",
    "RAM 1873/3830MB (lfb 144x4MB) CPU [8%@2016,26%@2034,24%@2035,7%@2026,7%@2034,6%@2034] EMC_FREQ 0%@1600 GR3D_FREQ 0%@114 APE 150 MTS fg 0% bg 1% PLL@39C MCPU@39C PMIC@50C Tboard@35C GPU@37C BCPU@39C thermal@38.5C Tdiode@37C VDD_SYS_GPU 77/77 VDD_SYS_SOC 539/539 VDD_IN 2930/3405 VDD_SYS_CPU 539/937 VDD_SYS_DDR 727/758",
    "RAM 3276/7859MB (lfb 5x4MB) SWAP 1626/12122MB (cached 181MB) CPU [44%@1421,49%@2031,67%@2034,17%@1420,25%@1419,8%@1420] EMC_FREQ 1%@1866 GR3D_FREQ 0%@114 APE 150 MTS fg 1% bg 1% PLL@42.5C MCPU@42.5C PMIC@50C Tboard@38C GPU@39.5C BCPU@42.5C thermal@41.3C Tdiode@39.25C VDD_SYS_GPU 182/182 VDD_SYS_SOC 730/730 VDD_4V0_WIFI 0/0 VDD_IN 5297/5297 VDD_SYS_CPU 1917/1917 VDD_SYS_DDR 1241/1241",
    "RAM 896/7859MB (lfb 26x4MB) SWAP 0/3929MB (cached 0MB) CPU [4%@2035,4%@345,4%@345,1%@2035,0%@2035,0%@2035] EMC_FREQ 0% GR3D_FREQ 0% PLL@34.5C MCPU@34.5C PMIC@100C Tboard@29C GPU@31C BCPU@34.5C thermal@32.8C Tdiode@30.5C VDD_SYS_GPU 153/153 VDD_SYS_SOC 383/383 VDD_4V0_WIFI 0/0 VDD_IN 1840/1840 VDD_SYS_CPU 306/306 VDD_SYS_DDR 269/269",
    "RAM 1387/7859MB (lfb 5x4MB) SWAP 0/3929MB (cached 0MB) CPU [1%@345,74%@2035,10%@2035,0%@345,0%@345,1%@345] EMC_FREQ 0% GR3D_FREQ 32% PLL@35.5C MCPU@35.5C PMIC@100C Tboard@29C GPU@32C BCPU@35.5C thermal@34.1C Tdiode@31.5C VDD_SYS_GPU 153/153 VDD_SYS_SOC 766/622 VDD_4V0_WIFI 0/0 VDD_IN 4519/3774 VDD_SYS_CPU 1225/1123 VDD_SYS_DDR 1211/849",
    "RAM 2344/7852MB (lfb 1154x4MB) SWAP 0/3926MB (cached 0MB) CPU [1%@345,off,off,1%@345,0%@345,2%@345] EMC_FREQ 4%@1600 GR3D_FREQ 0%@624 APE 150 PLL@37.5C MCPU@37.5C PMIC@100C Tboard@32C GPU@35C BCPU@37.5C thermal@36.5C Tdiode@34.25C VDD_SYS_GPU 152/152 VDD_SYS_SOC 687/687 VDD_4V0_WIFI 0/0 VDD_IN 3056/3056 VDD_SYS_CPU 152/152 VDD_SYS_DDR 883/883",
    "RAM 1736/15827MB (lfb 3283x4MB) CPU [1%@1160,2%@1161,0%@1189,0%@1189,off,off,off,off] EMC_FREQ 0%@665 GR3D_FREQ 0%@114 APE 150 MTS fg 0% bg 0% AO@29C GPU@30C iwlwifi@34C Tboard@30C Tdiode@33C AUX@29C CPU@30C thermal@29.45C PMIC@100C GPU 466/466 CPU 466/466 SOC 932/932 CV 0/0 VDDRQ 0/0 SYS5V 1854/1854",
    "RAM 1733/15827MB (lfb 3283x4MB) CPU [1%@1190,0%@1190,0%@1190,0%@1190,off,off,off,off] EMC_FREQ 0% GR3D_FREQ 4% AO@25.5C GPU@26.5C iwlwifi@32C Tboard@27C Tdiode@29.75C AUX@25.5C CPU@26.5C thermal@26.1C PMIC@100C GPU 621/621 CPU 465/465 SOC 1397/1397 CV 0/0 VDDRQ 0/0 SYS5V 2053/2053",
    "RAM 721/31927MB (lfb 7291x4MB) SWAP 0/15963MB (cached 0MB) CPU [2%@1190,0%@1190,0%@1190,0%@1190,off,off,off,off] EMC_FREQ 0%@665 GR3D_FREQ 0%@318 APE 150 MTS fg 0% bg 0% AO@37.5C GPU@37.5C Tdiode@40C PMIC@100C AUX@36C CPU@37.5C thermal@36.9C Tboard@37C GPU 0/0 CPU 311/311 SOC 932/932 CV 0/0 VDDRQ 621/621 SYS5V 1482/1482",
    "RAM 1903/15692MB (lfb 3251x4MB) CPU [1%@1190,1%@1190,2%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190] EMC_FREQ 0% GR3D_FREQ 0% AO@32.5C GPU@32C Tboard@32C Tdiode@34.75C AUX@31.5C CPU@33.5C thermal@32.9C PMIC@100C GPU 0/0 CPU 216/216 SOC 864/864 CV 0/0 VDDRQ 144/144 SYS5V 1889/1889",
    "05-02-2024 19:51:57 RAM 2890/30991MB (lfb 6284x4MB) SWAP 0/15495MB (cached 0MB) CPU [33%@2264,0%@2264,33%@2264,25%@2265,0%@2263,33%@2257,0%@2263,0%@2255] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[114] VIC_FREQ 1036 APE 150 AUX@45C CPU@47.5C thermal@46.5C Tboard@46C AO@45C GPU@47.5C Tdiode@49C PMIC@50C GPU 0mW/0mW CPU 2330mW/2330mW SOC 2329mW/2329mW CV 0mW/0mW VDDRQ 310mW/310mW SYS5V 2924mW/2924mW",
    "05-06-2024 11:26:29 RAM 7978/30991MB (lfb 4088x4MB) SWAP 0/15495MB (cached 0MB) CPU [29%@2264,75%@2263,30%@2264,23%@2263,20%@2265,23%@2264,26%@2263,25%@2266] EMC_FREQ 37%@2133 GR3D_FREQ 67%@[1377] VIC_FREQ 1036 APE 150 AUX@51C CPU@55.5C thermal@54.75C Tboard@51C AO@53C GPU@57.5C Tdiode@56.25C PMIC@50C GPU 11832mW/11832mW CPU 4456mW/4456mW SOC 4300mW/4300mW CV 0mW/0mW VDDRQ 2151mW/2151mW SYS5V 4240mW/4240mW",
    "RAM 4412/7772MB (lfb 237x4MB) SWAP 139/3886MB (cached 2MB) CPU [9%@1190,6%@1190,6%@1190,5%@1190,4%@1190,8%@1267] EMC_FREQ 10%@1600 GR3D_FREQ 62%@306 APE 150 MTS fg 0% bg 0% AO@41.5C GPU@43C PMIC@100C AUX@41.5C CPU@43.5C thermal@42.55C VDD_IN 4067/4067 VDD_CPU_GPU_CV 738/738 VDD_SOC 1353/1353",
    "RAM 5246/7771MB (lfb 7x4MB) SWAP 983/20269MB (cached 280MB) CPU [47%@1420,23%@1420,32%@1420,22%@1420,31%@1420,96%@1420] EMC_FREQ 2%@1600 GR3D_FREQ 0%@1109 APE 150 MTS fg 1% bg 9% AO@29C GPU@31.5C PMIC@100C AUX@30C CPU@33.5C thermal@31.35C VDD_IN 6140/5510 VDD_CPU_GPU_CV 2706/2119 VDD_SOC 1074/1051",
    "07-09-2024 13:31:31 RAM 3168/6851MB (lfb 2x4MB) SWAP 161/3426MB (cached 0MB) CPU [23%@1397,17%@1192,16%@1190,13%@1190,23%@1190,10%@1190] EMC_FREQ 2%@204 GR3D_FREQ 0%@[114] VIC_FREQ 115 APE 150 AUX@45C CPU@46.5C thermal@45.6C AO@45C GPU@45.5C PMIC@50C VDD_IN 2763mW/2846mW VDD_CPU_GPU_CV 650mW/670mW VDD_SOC 650mW/711mW",
    "04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C SOC2@40.093C Tdiode@33C SOC0@41.093C CV1@-256C GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW",
    "05-09-2026 18:42:07 RAM 18202/62841MB (lfb 466x4MB) SWAP 86/31420MB (cached 0MB) CPU [16%@1949,6%@1761,4%@1222,4%@2201,4%@1036,33%@1036,0%@1036,40%@1036,3%@1190,46%@1190,6%@1190,2%@1190] EMC_FREQ 3%@2133 GR3D_FREQ 0%@[0,0] NVENC 78%@166 NVDEC off NVJPG off NVJPG1 off VIC 32%@115 OFA off NVDLA0 off NVDLA1 off PVA0_FREQ off APE 174 cpu@52.343C soc2@48.343C soc0@49.062C tj@52.343C soc1@49.531C VDD_GPU_SOC 2412mW/2412mW VDD_CPU_CV 1607mW/1607mW VIN_SYS_5V0 4607mW/4657mW",
    "05-09-2026 18:42:06 RAM 18207/62841MB (lfb 466x4MB) SWAP 86/31420MB (cached 0MB) CPU [14%@2188,5%@2112,8%@2035,14%@2201,46%@1267,47%@1267,2%@1267,10%@1267,4%@1036,5%@1036,6%@1036,10%@1036] EMC_FREQ 3%@2133 GR3D_FREQ 0%@[0,0] NVENC 79%@166 NVDEC off NVJPG off NVJPG1 off VIC 36%@115 OFA off NVDLA0 off NVDLA1 off PVA0_FREQ off APE 174 cpu@52.562C soc2@48.437C soc0@49.093C tj@52.562C soc1@49.656C VDD_GPU_SOC 2412mW/2412mW VDD_CPU_CV 1607mW/1607mW VIN_SYS_5V0 4707mW/4707mW",
    "11-04-2025 01:46:53 RAM 7822/62841MB (lfb 73x4MB) SWAP 0/31421MB (cached 0MB) CPU [25%@2201,20%@2201,40%@2201,0%@2201,33%@729,0%@1190,25%@1190,25%@1190,50%@1574,33%@729,25%@729,25%@729] EMC_FREQ 1%@2133 GR3D_FREQ 31%@[305,305] NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off NVDLA0 off NVDLA1 off PVA0_FREQ off APE 174 cpu@50.281C tboard@38.5C soc2@46.375C tdiode@39.5C soc0@47.562C gpu@45.5C tj@50.281C soc1@46.843C VDD_GPU_SOC 3188mW/3188mW VDD_CPU_CV 2390mW/2390mW VIN_SYS_5V0 4614mW/4614mW VDDQ_VDD2_1V8AO 802mW/802mW",
    "07-25-2026 09:08:28 RAM 20642/62817MB (lfb 1x2MB) CPU [23%@2201,10%@2201,4%@2201,14%@2201,30%@2201,18%@2201,10%@2201,10%@2201,33%@2201,7%@2201,5%@2201,27%@2201] EMC_FREQ 3%@3199 GR3D_FREQ 12%@[1300,1300] NVENC0 off NVDEC0 off NVJPG0 off NVJPG1 off VIC off OFA off NVDLA0 off NVDLA1 off PVA0_FREQ off APE 174 cpu@52.968C/52.968C soc2@48.406C/48.406C soc0@49.531C/49.531C gpu@47.625C/47.625C VDD_GPU_SOC 5139mW/5139mW/5139mW VDD_CPU_CV 3268mW/3268mW/3268mW VIN_SYS_5V0 5500mW/5500mW/5500mW",
    "06-07-2023 14:39:03 RAM 18220/24402MB (lfb 872x4MB) CPU [48%@2009,29%@2009,38%@2009,28%@2008,34%@2008,37%@2010,35%@2010,47%@2009,28%@2001,44%@2009,32%@2009,37%@2021] EMC_FREQ @3199 GR3D_FREQ 99%@1274 GR3D2_FREQ 99%@1274 NVENC_LOAD 7% NVDEC_LOAD 0% VIC_LOAD 0% NVDLA0_LOAD 0% NVDLA1_LOAD 0% APE 81 CV0@73.218C CPU@74.343C SOC2@73.906C SOC0@72.5C CV1@72.031C GPU@78.937C tj@78.937C SOC1@74.187C CV2@70.968C",
    "11-15-2024 08:38:09 RAM 6185/7620MB (lfb 8x2MB) SWAP 851/3810MB (cached 1MB) CPU [15%@729,11%@729,14%@729,13%@729,11%@729,8%@729] EMC_FREQ 43%@2133 GR3D_FREQ 63%@[621] NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@53.968C soc2@52.437C soc0@50.75C gpu@53.343C tj@53.968C soc1@51.656C VDD_IN 12479mW/12479mW VDD_CPU_GPU_CV 4667mW/4667mW VDD_SOC 2817mW/2817mW",
    "06-18-2025 11:25:24 RAM 3452/7620MB (lfb 25x4MB) SWAP 1518/16384MB (cached 174MB) CPU [1%@1420,2%@1420,0%@1420,2%@1420,2%@729,1%@729] GR3D_FREQ 0% cpu@50.031C soc2@49.031C soc0@50C gpu@49.031C tj@50.25C soc1@50.25C VDD_IN 4824mW/4824mW VDD_CPU_GPU_CV 518mW/518mW VDD_SOC 1475mW/1475mW",
    "05-17-2026 10:00:33 RAM 4280/125773MB (lfb 29x4MB) SWAP 0/2048MB (cached 0MB) CPU [0%@972,0%@972,0%@972,0%@972,1%@972,0%@972,1%@972,0%@972,0%@2601,17%@2601,1%@972,9%@972,0%@972,1%@972] EMC_FREQ 0%@665 GR3D_FREQ @[0,0,0] NVENC0_FREQ @0 NVENC1_FREQ @0 NVDEC0_FREQ @0 NVDEC1_FREQ @0 NVJPG0_FREQ @0 VIC off OFA_FREQ @0 PVA0_FREQ off APE 300 cpu@35.25C tj@36.031C soc012@36.062C soc345@34.5C VDD_GPU 0mW/0mW VDD_CPU_SOC_MSS 4923mW/4544mW VIN_SYS_5V0 4327mW/4227mW",
    "05-17-2026 10:00:32 RAM 4208/125773MB (lfb 31x4MB) SWAP 0/2048MB (cached 0MB) CPU [1%@972,0%@972,0%@972,0%@972,1%@972,0%@972,1%@972,1%@972,0%@972,0%@972,3%@972,0%@972,0%@972,1%@972] EMC_FREQ 0%@665 GR3D_FREQ @[0,0,0] NVENC0_FREQ @0 NVENC1_FREQ @0 NVDEC0_FREQ @0 NVDEC1_FREQ @0 NVJPG0_FREQ @0 VIC off OFA_FREQ @0 PVA0_FREQ off APE 300 cpu@34.468C tj@34.5C soc012@33.781C soc345@34.5C VDD_GPU 0mW/0mW VDD_CPU_SOC_MSS 4165mW/4165mW VIN_SYS_5V0 4126mW/4126mW",
]

REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "jetson-reference" / "tegrastats"


class Expect(NamedTuple):
    board: str
    timestamp: Optional[str]
    ram_mb: Tuple[int, int]
    swap_mb: Optional[Tuple[int, int]]
    cores: int
    offline: int
    emc: Tuple[Optional[float], Optional[int]]  # (load %, MHz)
    gpu_load_pct: Optional[float]
    gpu_freq_mhz: Tuple[int, ...]
    temps: Dict[str, float]  # a few, lower-cased
    board_power_mw: Optional[float]


# One row per line of samples.txt (1-based line = index + 1), values read off the line by hand.
EXPECTED = [
    Expect("TX1 L4T 28.1", None, (3607, 3983), (873, 8192), 4, 0, (1, 1600), 39, (76,), {}, None),
    Expect("TX1 L4T 28.1", None, (3468, 3983), (873, 8192), 4, 0, (1, 408), 3, (76,), {}, None),
    Expect(
        "TX1", None, (1179, 3983), None, 4, 0, (7, 408), 0, (76,), {"cpu": 37.5, "tdiode": 42.75, "pmic": 100}, 2532
    ),
    Expect(
        "T210 non-root",
        None,
        (2594, 3483),
        (366, 4096),
        4,
        0,
        (None, None),
        2,
        (),
        {"lcpu": 36.5, "max170xx": 38.9},
        None,
    ),
    Expect(
        "Nano JP4.2", None, (1180, 3965), (149, 1024), 4, 0, (10, 1600), 0, (76,), {"cpu": 60.5, "thermal": 59.75}, 4520
    ),
    Expect("Nano JP4.6.1", None, (1923, 3964), (191, 1982), 4, 0, (0, 1600), 0, (76,), {"gpu": 40, "pmic": 50}, 1750),
    Expect("Nano JP4", None, (534, 3964), (5, 1982), 4, 0, (0, 204), 0, (76,), {"ao": 39.5, "thermal": 36.25}, 1022),
    Expect(
        "TX2 L4T 28", None, (1345, 7829), (0, 512), 6, 5, (13, 40), 0, (114,), {"bcpu": 35, "mcpu": 35, "gpu": 41}, 2003
    ),
    Expect("TX2 4GB", None, (1873, 3830), None, 6, 0, (0, 1600), 0, (114,), {"tboard": 35, "tdiode": 37}, 2930),
    Expect("TX2", None, (3276, 7859), (1626, 12122), 6, 0, (1, 1866), 0, (114,), {"thermal": 41.3}, 5297),
    Expect("TX2 non-root", None, (896, 7859), (0, 3929), 6, 0, (0, None), 0, (), {"gpu": 31}, 1840),
    Expect("TX2 non-root", None, (1387, 7859), (0, 3929), 6, 0, (0, None), 32, (), {"thermal": 34.1}, 4519),
    Expect("TX2", None, (2344, 7852), (0, 3926), 6, 2, (4, 1600), 0, (624,), {"tdiode": 34.25}, 3056),
    Expect(
        "AGX Xavier JP4.1",
        None,
        (1736, 15827),
        None,
        8,
        4,
        (0, 665),
        0,
        (114,),
        {"iwlwifi": 34, "thermal": 29.45},
        466 + 466 + 932 + 0 + 0 + 1854,
    ),
    Expect(
        "AGX Xavier non-root",
        None,
        (1733, 15827),
        None,
        8,
        4,
        (0, None),
        4,
        (),
        {"aux": 25.5, "gpu": 26.5},
        621 + 465 + 1397 + 0 + 0 + 2053,
    ),
    Expect(
        "AGX Xavier 32GB",
        None,
        (721, 31927),
        (0, 15963),
        8,
        4,
        (0, 665),
        0,
        (318,),
        {"tdiode": 40},
        0 + 311 + 932 + 0 + 621 + 1482,
    ),
    Expect(
        "AGX Xavier non-root",
        None,
        (1903, 15692),
        None,
        8,
        0,
        (0, None),
        0,
        (),
        {"tdiode": 34.75},
        0 + 216 + 864 + 0 + 144 + 1889,
    ),
    Expect(
        "AGX Xavier JP5",
        "2024-05-02T19:51:57",
        (2890, 30991),
        (0, 15495),
        8,
        0,
        (0, 2133),
        0,
        (114,),
        {"cpu": 47.5, "tdiode": 49},
        0 + 2330 + 2329 + 0 + 310 + 2924,
    ),
    Expect(
        "AGX Xavier JP5",
        "2024-05-06T11:26:29",
        (7978, 30991),
        (0, 15495),
        8,
        0,
        (37, 2133),
        67,
        (1377,),
        {"gpu": 57.5},
        11832 + 4456 + 4300 + 0 + 2151 + 4240,
    ),
    Expect(
        "Xavier NX JP4",
        None,
        (4412, 7772),
        (139, 3886),
        6,
        0,
        (10, 1600),
        62,
        (306,),
        {"cpu": 43.5, "thermal": 42.55},
        4067,
    ),
    Expect("Xavier NX JP4.1.1", None, (5246, 7771), (983, 20269), 6, 0, (2, 1600), 0, (1109,), {"gpu": 31.5}, 6140),
    Expect(
        "Xavier NX JP5.1.2",
        "2024-07-09T13:31:31",
        (3168, 6851),
        (161, 3426),
        6,
        0,
        (2, 204),
        0,
        (114,),
        {"thermal": 45.6},
        2763,
    ),
    Expect(
        "AGX Orin JP5",
        "2025-04-11T10:36:27",
        (4321, 62801),
        (19, 31400),
        12,
        0,
        (0, 2133),
        0,
        (0, 0),
        {"cpu": 44.562, "tj": 44.343, "soc0": 41.093},
        2340 + 390 + 4025,
    ),
    Expect(
        "AGX Orin JP6.2.1",
        "2026-05-09T18:42:07",
        (18202, 62841),
        (86, 31420),
        12,
        0,
        (3, 2133),
        0,
        (0, 0),
        {"cpu": 52.343, "tj": 52.343},
        2412 + 1607 + 4607,
    ),
    Expect(
        "AGX Orin JP6.2.1",
        "2026-05-09T18:42:06",
        (18207, 62841),
        (86, 31420),
        12,
        0,
        (3, 2133),
        0,
        (0, 0),
        {"soc1": 49.656},
        2412 + 1607 + 4707,
    ),
    Expect(
        "AGX Orin JP6",
        "2025-11-04T01:46:53",
        (7822, 62841),
        (0, 31421),
        12,
        0,
        (1, 2133),
        31,
        (305, 305),
        {"gpu": 45.5, "tboard": 38.5},
        3188 + 2390 + 4614,
    ),
    Expect(
        "AGX Orin JP7.2 R39",
        "2026-07-25T09:08:28",
        (20642, 62817),
        None,
        12,
        0,
        (3, 3199),
        12,
        (1300, 1300),
        {"cpu": 52.968, "gpu": 47.625},
        5139 + 3268 + 5500,
    ),
    Expect(
        "Orin-class 2023",
        "2023-06-07T14:39:03",
        (18220, 24402),
        None,
        12,
        0,
        (None, 3199),
        99,
        (1274, 1274),
        {"cv0": 73.218, "gpu": 78.937, "tj": 78.937},
        None,
    ),
    Expect(
        "Orin Nano JP6",
        "2024-11-15T08:38:09",
        (6185, 7620),
        (851, 3810),
        6,
        0,
        (43, 2133),
        63,
        (621,),
        {"tj": 53.968, "gpu": 53.343},
        12479,
    ),
    Expect(
        "Orin Nano JP6 non-root",
        "2025-06-18T11:25:24",
        (3452, 7620),
        (1518, 16384),
        6,
        0,
        (None, None),
        0,
        (),
        {"tj": 50.25, "soc0": 50},
        4824,
    ),
    Expect(
        "Thor JP7.1",
        "2026-05-17T10:00:33",
        (4280, 125773),
        (0, 2048),
        14,
        0,
        (0, 665),
        None,
        (0, 0, 0),
        {"soc012": 36.062, "tj": 36.031},
        None,
    ),
    Expect(
        "Thor JP7.1",
        "2026-05-17T10:00:32",
        (4208, 125773),
        (0, 2048),
        14,
        0,
        (0, 665),
        None,
        (0, 0, 0),
        {"soc345": 34.5, "cpu": 34.468},
        None,
    ),
]


def test_embedded_samples_match_the_reference_capture():
    path = REFERENCE_DIR / "samples.txt"
    if not path.exists():
        pytest.skip("jetson-reference not checked out beside the repository")
    assert path.read_text(encoding="utf-8").splitlines() == SAMPLES
    tsv_rows = (REFERENCE_DIR / "samples.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(tsv_rows) == len(SAMPLES) == len(EXPECTED) == 32


@pytest.mark.parametrize("number", range(1, 33))
def test_reference_line(number):
    exp = EXPECTED[number - 1]
    r = parse_line(SAMPLES[number - 1])
    assert (r.timestamp.isoformat() if r.timestamp else None) == exp.timestamp
    assert (r.ram_used_mb, r.ram_total_mb) == exp.ram_mb
    assert ((r.swap_used_mb, r.swap_total_mb) if r.swap_total_mb is not None else None) == exp.swap_mb
    assert r.cpus is not None and len(r.cpus) == exp.cores
    assert sum(c is None for c in r.cpus) == exp.offline
    assert (r.emc_load_pct, r.emc_freq_mhz) == exp.emc
    assert r.gpu_load_pct == exp.gpu_load_pct
    assert r.gpu_freq_mhz == exp.gpu_freq_mhz
    for name, temp_c in exp.temps.items():
        assert r.temps_c[name] == pytest.approx(temp_c)
    assert r.board_power_mw == exp.board_power_mw
    assert all(k == k.lower() for k in r.temps_c)


def test_l4t28_cpu_list_shares_one_clock():
    r = parse_line(SAMPLES[0])
    assert r.cpus == (CpuCore(17, 1734), CpuCore(11, 1734), CpuCore(65, 1734), CpuCore(0, 1734))
    assert r.temps_c == {} and r.rails_mw == {}


def test_offline_cores_keep_their_position():
    r = parse_line(SAMPLES[12])  # TX2: [1%@345,off,off,1%@345,0%@345,2%@345]
    assert r.cpus == (CpuCore(1, 345), None, None, CpuCore(1, 345), CpuCore(0, 345), CpuCore(2, 345))


def test_sensor_off_minus_256_is_left_out():
    r = parse_line(SAMPLES[22])  # AGX Orin JP5: CV0@-256C CV1@-256C GPU@-256C CV2@-256C
    assert set(r.temps_c) == {"cpu", "tboard", "soc2", "tdiode", "soc0", "tj", "soc1"}
    assert all(v > -40 for v in r.temps_c.values())


def test_nc_rails_are_skipped_and_sub_rails_not_summed():
    r = parse_line(SAMPLES[22])
    assert set(r.rails_mw) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}
    assert r.rails_mw["VDD_GPU_SOC"] == Rail(2340, 2340)
    assert r.board_power_mw == 6755  # VDDQ_VDD2_1V8AO (301 mW) is not part of the sum


def test_r39_cur_max_temps_and_three_value_rails():
    r = parse_line(SAMPLES[26])  # JetPack 7.2: cpu@52.968C/52.968C, VDD_GPU_SOC 5139mW/5139mW/5139mW
    assert r.temps_c == {"cpu": 52.968, "soc2": 48.406, "soc0": 49.531, "gpu": 47.625}
    assert r.rails_mw["VDD_GPU_SOC"] == Rail(5139, 5139, 5139)
    line = "RAM 100/200MB CPU [1%@100] tj@45.375C/45.812C VDD_IN 1000mW/900mW/1500mW"
    r2 = parse_line(line)
    assert r2.temps_c == {"tj": 45.375}
    assert r2.rails_mw == {"VDD_IN": Rail(1000, 900, 1500)}
    assert reading_to_json(r2)["rails_mw"] == {"VDD_IN": {"cur": 1000, "avg": 900, "max": 1500}}


def test_agx_xavier_bare_rail_names_do_not_collide():
    r = parse_line(SAMPLES[13])  # "CPU [..]" list, "CPU 466/466" rail, "CPU@30C" temperature
    assert r.cpus is not None and len(r.cpus) == 8
    assert r.rails_mw["CPU"] == Rail(466, 466)
    assert r.rails_mw["GPU"] == Rail(466, 466)
    assert r.temps_c["cpu"] == 30 and r.temps_c["gpu"] == 30
    assert set(r.rails_mw) == {"GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"}


def test_xavier_partial_rails_give_no_total():
    r = parse_line("RAM 1/2MB CPU [1%@1] GPU 466/466 CPU 466/466 SOC 932/932")
    assert r.board_power_mw is None


def test_thor_without_vin_has_no_total_but_with_vin_it_does():
    r = parse_line(SAMPLES[30])
    assert r.board_power_mw is None
    assert r.gpu_load_pct is None and r.gpu_freq_mhz == (0, 0, 0)
    assert r.rails_mw["VDD_CPU_SOC_MSS"] == Rail(4923, 4544)
    r2 = parse_line(SAMPLES[30] + " VIN 21000mW/20000mW")
    assert r2.board_power_mw == 21000


def test_tx2_per_domain_rails_alone_give_no_total():
    # Sample 8 without its VDD_IN: the per-domain rails sum to 1360 mW while VDD_IN said 2003 mW.
    line = SAMPLES[7].replace("VDD_IN 2003/2658 ", "")
    r = parse_line(line)
    assert "VDD_IN" not in r.rails_mw and r.board_power_mw is None


def test_multi_gpc_gpu_load_is_the_mean():
    r = parse_line("RAM 1/2MB CPU [1%@1] GR3D_FREQ 90%@1274 GR3D2_FREQ 30%@1274")
    assert r.gpu_load_pct == 60 and r.gpu_freq_mhz == (1274, 1274)


def test_board_power_rule():
    assert board_power_from_rails({"VDD_IN": 5000.0, "VDD_SOC": 1000.0}) == 5000
    assert board_power_from_rails({"POM_5V_IN": 1022.0, "POM_5V_CPU": 204.0}) == 1022
    assert board_power_from_rails({"vin": 20000.0, "VIN_SYS_5V0": 4000.0}) == 20000  # sysfs labels may be lower
    assert board_power_from_rails({"VDD_GPU_SOC": 1.0, "VDD_CPU_CV": 2.0, "VIN_SYS_5V0": 3.0}) == 6
    assert board_power_from_rails({"VDD_GPU_SOC": 1.0, "VIN_SYS_5V0": 3.0}) is None
    assert board_power_from_rails({}) is None


def test_runs_of_spaces_and_unknown_tokens():
    line = "  RAM  1179/3983MB   (lfb 120x4MB)  FOO_BAR 7 WIDGET x%@y  CPU  [1%@102,  4%@102]  GR3D_FREQ   5%@[76]  newthing@@  VDD_IN   2532/2698  \r\n"
    r = parse_line(line)
    assert (r.ram_used_mb, r.ram_total_mb) == (1179, 3983)
    assert r.cpus == (CpuCore(1, 102), CpuCore(4, 102))
    assert r.gpu_load_pct == 5 and r.gpu_freq_mhz == (76,)
    assert r.board_power_mw == 2532


def test_formats_beyond_the_samples():
    r = parse_line("RAM 100/200MB SWAP 2048/4096kB CPU [off,50%] EMC_FREQ 3% GR3D_FREQ 7% NVENC off ape@30C")
    assert (r.swap_used_mb, r.swap_total_mb) == (2, 4)
    assert r.cpus == (None, CpuCore(50, None))
    assert (r.emc_load_pct, r.emc_freq_mhz) == (3, None)
    assert r.gpu_load_pct == 7 and r.gpu_freq_mhz == ()
    assert r.temps_c == {"ape": 30}
    r2 = parse_line("RAM 1/2MB GR3D_FREQ @[1300,1300,1300] EMC_FREQ 1%@[2133]")
    assert r2.gpu_freq_mhz == (1300, 1300, 1300) and r2.gpu_load_pct is None and r2.emc_freq_mhz == 2133
    assert r2.cpus is None


def test_invalid_timestamp_is_dropped_not_fatal():
    r = parse_line("13-45-2024 10:00:00 RAM 1/2MB")
    assert r.timestamp is None and r.ram_used_mb == 1


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "hello world",
        '{"RAM": "3607/3983MB", "CPU": "[1%@102]"}',
        "RAM lots/3983MB CPU [x]",
        "CPU@37.5C GPU@39C VDD_IN 2532/2698",  # temps and rails but no RAM or CPU token
        "\x00\xff\x7f",
        "RAM 1/2TB",
        "CPU []",
    ],
)
def test_non_tegrastats_lines_raise(line):
    with pytest.raises(TelemetryParseError):
        parse_line(line)


def test_non_text_raises_parse_error():
    with pytest.raises(TelemetryParseError):
        parse_line(b"RAM 1/2MB")  # type: ignore[arg-type]


def test_reading_to_json_keys_and_values():
    obj = reading_to_json(parse_line(SAMPLES[25]))  # AGX Orin JP6, per-cluster clocks
    assert list(obj) == [
        "timestamp", "ram_used_mb", "ram_total_mb", "swap_used_mb", "swap_total_mb", "cpus",
        "emc_load_pct", "emc_freq_mhz", "gpu_load_pct", "gpu_freq_mhz", "temps_c", "rails_mw",
        "board_power_mw",
    ]  # fmt: skip
    assert obj["timestamp"] == "2025-11-04T01:46:53"
    assert obj["cpus"][0] == {"load_pct": 25, "freq_mhz": 2201}
    assert obj["gpu_freq_mhz"] == [305, 305]
    assert obj["rails_mw"]["VDD_GPU_SOC"] == {"cur": 3188, "avg": 3188}
    assert obj["board_power_mw"] == 10192
    assert json.loads(json.dumps(obj)) == obj
    l4t28 = reading_to_json(parse_line(SAMPLES[0]))
    assert l4t28["timestamp"] is None and l4t28["temps_c"] == {} and l4t28["board_power_mw"] is None
    xavier = reading_to_json(parse_line(SAMPLES[7]))
    assert xavier["cpus"][1] is None


def test_parse_lines_yields_objects_and_numbered_errors():
    out = list(parse_lines([SAMPLES[0], "", "hello world", SAMPLES[29]]))
    assert len(out) == 3
    assert out[0]["ram_used_mb"] == 3607
    assert out[1]["line"] == 3 and "not a tegrastats line" in out[1]["error"] and "hello world" in out[1]["error"]
    assert out[2]["board_power_mw"] == 4824


def test_reading_to_sample_units():
    s = reading_to_sample(parse_line(SAMPLES[28]), t_mono_s=12.5)  # Orin Nano, GPU 63% at 621 MHz
    assert s.t_mono_s == 12.5
    assert s.gpu_freq_hz == 621e6 and s.gpu_load_pct == 63
    assert s.board_power_w == pytest.approx(12.479)
    assert s.cpu_load_pct == pytest.approx((15 + 11 + 14 + 13 + 11 + 8) / 6)
    assert s.rails_w["VDD_SOC"] == pytest.approx(2.817)
    assert s.temp_c("tj") == pytest.approx(53.968)
    # Offline cores do not dilute the mean; the fastest cluster is the GPU clock.
    s2 = reading_to_sample(parse_line(SAMPLES[12]), t_mono_s=0.0)
    assert s2.cpu_load_pct == pytest.approx((1 + 1 + 0 + 2) / 4)
    s3 = reading_to_sample(parse_line("RAM 1/2MB GR3D_FREQ 1%@[300,600]"), t_mono_s=0.0)
    assert s3.gpu_freq_hz == 600e6 and s3.cpu_load_pct is None and s3.board_power_w is None
    assert s3.swap_used_bytes is None and s3.emc_load_pct is None and s3.cpu_freq_hz is None


def test_reading_to_sample_memory_emc_and_cpu_clock():
    s = reading_to_sample(parse_line(SAMPLES[28]), t_mono_s=0.0)  # RAM 6185/7620MB SWAP 851/3810MB EMC 43%@2133
    assert (s.ram_used_bytes, s.ram_total_bytes) == (6185 * 2**20, 7620 * 2**20)
    assert (s.swap_used_bytes, s.swap_total_bytes) == (851 * 2**20, 3810 * 2**20)
    assert s.emc_load_pct == 43 and s.emc_freq_hz == 2133e6
    assert s.cpu_freq_hz == 729e6


def test_pathological_input_is_fast():
    huge = [
        "CPU [" + "1%@1," * 200_000,
        "RAM " + "9" * 100_000 + "/1MB",
        "RAM 1/2MB " + "a" * 1_000_000 + "@1C",
        "RAM 1/2MB " + "GR3D_FREQ 1%@[" + "1," * 100_000,
        "RAM 1/2MB " + "x@" * 200_000,
        "RAM 1/2MB " + "[ " * 200_000,
    ]
    for line in huge:
        start = time.perf_counter()
        try:
            parse_line(line)
        except TelemetryParseError:
            pass
        assert time.perf_counter() - start < 2.0


_TOKENS = st.sampled_from(
    ["RAM", "SWAP", "CPU", "cpu", "EMC_FREQ", "GR3D_FREQ", "GR3D2_FREQ", "GR3D", "VDD_IN", "NC", "GPU", "off",
     "1/2MB", "3/4kB", "[1%@2,off]", "[1%,2%]@3", "1%@2", "@[1,2]", "5%", "1mW/2mW", "1/2", "1/2/3",
     "cpu@-256C", "tj@45.1C/46C", "05-02-2024", "19:51:57", "[", "]", "@", "%", ",", "(lfb", "2x4MB)"]
)  # fmt: skip


def _mutate(line: str, data: st.DataObject) -> str:
    chars = list(line)
    for _ in range(data.draw(st.integers(0, 8))):
        op = data.draw(st.integers(0, 2))
        pos = data.draw(st.integers(0, max(0, len(chars) - 1)))
        if op == 0 and chars:
            del chars[pos]
        elif op == 1:
            chars.insert(pos, data.draw(st.characters()))
        elif chars:
            chars[pos] = data.draw(st.sampled_from(" %@[],/C0-9x"))
    return "".join(chars)


def _parse_ok_or_parse_error(line: str) -> None:
    try:
        r = parse_line(line)
    except TelemetryParseError:
        return
    json.dumps(reading_to_json(r))
    reading_to_sample(r, 0.0)


@settings(max_examples=300, deadline=1000)
@given(st.text(max_size=400))
def test_fuzz_random_text(text):
    _parse_ok_or_parse_error(text)


@settings(max_examples=300, deadline=1000)
@given(st.lists(_TOKENS, max_size=30), st.text(alphabet=" \t", min_size=1, max_size=3))
def test_fuzz_token_soup(tokens, sep):
    _parse_ok_or_parse_error(sep.join(tokens))


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_mutated_real_lines(line, data):
    _parse_ok_or_parse_error(_mutate(line, data))


def test_timestamp_is_naive_local_time():
    r = parse_line(SAMPLES[17])
    assert r.timestamp == datetime.datetime(2024, 5, 2, 19, 51, 57)
    assert r.timestamp is not None and r.timestamp.tzinfo is None
