"""What board is this, and who else is steering its power? Probed once at start, then branched on.

>>> detect_board(SysfsTree("/"))            # doctest: +SKIP
BoardInfo(model='NVIDIA Jetson Orin Nano Developer Kit', soc='t234', l4t_release='36.4.3', jetpack='6.2', ...)
>>> detect_conflicts(SysfsTree("/"), SubprocessRunner())        # doctest: +SKIP
>>> lock = acquire_instance_lock(Path("/var/lib/jetvit-daemon"))   # ConfigError if another daemon runs
"""

import errno
import fcntl
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from jetvit_daemon.errors import ActuationError, ConfigError
from jetvit_daemon.hardware.commands import CommandRunner
from jetvit_daemon.hardware.devfreq import GpuDevfreq, find_gpu_devfreq
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.trustfs import UntrustedPath, check_trusted_dir

NV_TEGRA_RELEASE = "/etc/nv_tegra_release"
DT_COMPATIBLE = "/proc/device-tree/compatible"
DT_MODEL = "/proc/device-tree/model"
LOCK_NAME = "jetvit-daemon.lock"
# jetson_stats keeps jtop.service's settings in <sys.base_prefix>/local/jtop/config.json (jtop/core/config.py);
# installed with the system's `sudo pip3`, as its docs say, that is /usr/local/jtop/config.json.
JTOP_CONFIG = "/usr/local/jtop/config.json"

# Knobs another controller may touch; the daemon actuates the first two, never the fan.
KNOB_POWER_MODE = "power_mode"
KNOB_GPU_FREQ = "gpu_freq"
KNOB_FAN = "fan"

_SYSTEMCTL_TIMEOUT_S = 5.0

# `# R36 (release), REVISION: 4.3, GCID: ..., BOARD: generic, ...` (L4T 32 to 38 all print this shape).
_RELEASE_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+(?:\.\d+)*)")
_SOC_RE = re.compile(r"^nvidia,tegra(\d+)$")

# L4T release → JetPack, from NVIDIA's JetPack archive; only releases we are sure of. A release missing
# here gets no guess rather than a wrong one.
JETPACK_BY_L4T = {
    "32.4.3": "4.4",
    "32.4.4": "4.4.1",
    "32.5.0": "4.5",
    "32.5.1": "4.5.1",
    "32.6.1": "4.6",
    "32.7.1": "4.6.1",
    "32.7.2": "4.6.2",
    "32.7.3": "4.6.3",
    "32.7.4": "4.6.4",
    "32.7.5": "4.6.5",
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
    "38.2.0": "7.0",
    "38.4.0": "7.1",
}


@dataclass(frozen=True)
class BoardInfo:
    """The board as its device tree and L4T release file describe it."""

    model: str
    soc: Optional[str]  # "t210", "t186", "t194", "t234", "t264", from the device tree's nvidia,tegraNNN
    l4t_release: Optional[str]  # "36.4.3"
    jetpack: Optional[str]  # "6.2" when the release is in JETPACK_BY_L4T
    compatible: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Conflict:
    """Another controller of a knob the daemon may actuate. `knobs` among power_mode, gpu_freq, fan."""

    source: str  # "jetson_clocks", "jtop.service", "nvfancontrol"
    knobs: Tuple[str, ...]
    message: str


def _dt_string(raw: Optional[str]) -> Optional[str]:
    # Device-tree strings are NUL-terminated; SysfsTree strips whitespace only.
    if raw is None:
        return None
    text = raw.replace("\x00", " ").strip()
    return text or None


def parse_l4t_release(text: str) -> Optional[str]:
    """`# R36 (release), REVISION: 4.3, ...` → "36.4.3"; a one-part revision gets ".0" (R35 REVISION: 1)."""
    m = _RELEASE_RE.search(text)
    if not m:
        return None
    parts = m.group(2).split(".")
    while len(parts) < 2:
        parts.append("0")
    return ".".join([m.group(1), *parts])


def detect_board(tree: SysfsTree) -> Optional[BoardInfo]:
    """BoardInfo when this is a Jetson (an NVIDIA Tegra device tree or an L4T release file), else None."""
    compat_raw = tree.read_optional(DT_COMPATIBLE)
    compatible = tuple(c.strip() for c in (compat_raw or "").split("\x00") if c.strip())
    release_text = tree.read_optional(NV_TEGRA_RELEASE)
    is_tegra = any(c.startswith("nvidia,tegra") for c in compatible)
    if not is_tegra and release_text is None:
        return None
    soc = None
    for c in compatible:
        m = _SOC_RE.match(c)
        if m:
            soc = "t" + m.group(1)
            break
    l4t = parse_l4t_release(release_text) if release_text is not None else None
    model = _dt_string(tree.read_optional(DT_MODEL)) or (compatible[0] if compatible else "unknown Jetson")
    return BoardInfo(
        model=model,
        soc=soc,
        l4t_release=l4t,
        jetpack=JETPACK_BY_L4T.get(l4t) if l4t else None,
        compatible=compatible,
    )


def _systemctl(runner: CommandRunner, *args: str, timeout_s: float = _SYSTEMCTL_TIMEOUT_S) -> Optional[str]:
    """systemctl's stdout, or None when it could not run (no systemd, e.g. in a container)."""
    result = runner.run(["systemctl", *args], timeout_s)
    if result.timed_out or result.returncode == 127:
        return None
    return result.stdout.strip()


def running_process_names(tree: SysfsTree) -> List[str]:
    """`comm` of every process in /proc (processes that exit while scanning are skipped)."""
    names = []
    for comm_path in tree.glob("/proc/[0-9]*/comm"):
        try:
            comm = tree.read_optional(comm_path)
        except OSError:
            continue
        if comm:
            names.append(comm)
    return names


def detect_conflicts(tree: SysfsTree, runner: CommandRunner) -> List[Conflict]:
    """Other controllers that would fight the daemon over power mode, GPU clocks or fan."""
    conflicts: List[Conflict] = []
    gpu_dir = find_gpu_devfreq(tree)
    if gpu_dir is not None:
        gpu = GpuDevfreq(tree, gpu_dir)
        try:
            state = gpu.state()
        except ActuationError:  # an unreadable node is reported by whoever uses it; here it is no conflict
            state = None
        if state is not None and state.pinned:
            conflicts.append(
                Conflict(
                    source="jetson_clocks",
                    knobs=(KNOB_GPU_FREQ,),
                    message=(
                        f"GPU clocks are pinned (min_freq = max_freq = {state.max_hz} Hz in {gpu_dir}), "
                        "as jetson_clocks leaves them; undo with `jetson_clocks --restore`"
                    ),
                )
            )
    if _systemctl(runner, "is-active", "jtop.service") == "active":
        conflicts.append(_jtop_conflict(tree))
    if "nvfancontrol" in running_process_names(tree):
        conflicts.append(
            Conflict(
                source="nvfancontrol",
                knobs=(KNOB_FAN,),
                message="nvfancontrol is running and owns the fan (the daemon never sets the fan)",
            )
        )
    return conflicts


def _jtop_conflict(tree: SysfsTree) -> Conflict:
    """jtop.service as a controller: by itself it serves telemetry to jtop clients and touches nothing; it
    acts on the board at boot only as its config says (jetson_stats 4.x, jtop/core/jetson_clocks.py and
    fan.py: `jetson_clocks.boot`, default false, and stored fan profiles), and otherwise only on a client's
    request (someone using jtop's controls: the governor's read-back then sees the change)."""
    config = _read_jtop_config(tree)
    knobs: List[str] = []
    if bool((config.get("jetson_clocks") or {}).get("boot")):
        knobs.append(KNOB_GPU_FREQ)
    if config.get("fan"):
        knobs.append(KNOB_FAN)
    if not knobs:
        return Conflict(source="jtop.service", knobs=(), message=(
            f"jtop.service is active as a telemetry server; its config ({JTOP_CONFIG}) sets nothing at boot"))
    return Conflict(source="jtop.service", knobs=tuple(knobs), message=(
        f"jtop.service is configured in {JTOP_CONFIG} to set "
        + " and ".join({KNOB_GPU_FREQ: "jetson_clocks at boot", KNOB_FAN: "a fan profile"}[k] for k in knobs)))


def _read_jtop_config(tree: SysfsTree) -> Dict[str, Any]:
    try:
        text = tree.read_optional(JTOP_CONFIG)
    except OSError:
        return {}
    if not text:
        return {}
    try:
        config = json.loads(text)
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def system_is_stopping(runner: CommandRunner, timeout_s: float = _SYSTEMCTL_TIMEOUT_S) -> bool:
    """True while systemd shuts the system down (`systemctl is-system-running` prints "stopping"):
    restoring then is pointless and can delay shutdown. No systemctl, or no answer within `timeout_s` →
    False (restore)."""
    return _systemctl(runner, "is-system-running", timeout_s=timeout_s) == "stopping"


@dataclass
class InstanceLock:
    """An exclusive `flock` on `state_dir/jetvit-daemon.lock`, held until `release()` or process exit
    (the kernel drops it with the file descriptor, so a crashed daemon never leaves a stale lock)."""

    path: Path
    fd: Optional[int] = field(default=None, repr=False)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "InstanceLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def open_state_dir(state_dir: Path) -> Path:
    """Create the state directory if needed (0700) and check it can be trusted: owned by the daemon's user,
    writable by nobody else, reached through directories no other non-root user can change (trustfs.py).
    Its journal decides what the board is restored to, and a root daemon writes its lock there, so an
    untrusted one is refused: ConfigError naming the directory and what is wrong."""
    state_dir = Path(state_dir)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create state directory {state_dir}: {exc.strerror}") from exc
    try:
        check_trusted_dir(state_dir)
    except UntrustedPath as exc:
        raise ConfigError(f"state directory {state_dir} refused: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"state directory {state_dir}: {exc.strerror or exc}") from None
    return state_dir


def acquire_instance_lock(state_dir: Path) -> InstanceLock:
    """Check the state directory (`open_state_dir`) and take the daemon's instance lock; ConfigError
    "another jetvit-daemon (pid N) holds …" when taken. The lock file is never followed through a symlink
    and must be a regular file of the daemon's user."""
    state_dir = open_state_dir(state_dir)
    path = state_dir / LOCK_NAME
    try:
        fd = os.open(str(path), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symbolic link: refused (the daemon never follows links in its "
                              "state directory; remove it)") from None
        raise ConfigError(f"cannot open {path}: {exc.strerror}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise ConfigError(f"{path} is not a regular file of uid {os.geteuid()} ({stat.filemode(st.st_mode)}, "
                          f"uid {st.st_uid}): refused; remove it")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise ConfigError(
                f"another jetvit-daemon (pid {holder}) holds {path}; stop it first "
                "(a second instance would fight it over the power mode and GPU clocks)"
            ) from None
        raise ConfigError(f"cannot lock {path}: {exc.strerror}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return InstanceLock(path=path, fd=fd)
