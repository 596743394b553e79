"""The GPU's devfreq node: find it, read its limits, cap its maximum frequency safely.

>>> path = find_gpu_devfreq(tree)                       # doctest: +SKIP
>>> gpu = GpuDevfreq(tree, path)                        # doctest: +SKIP
>>> gpu.set_cap_hz(600_000_000, mode_max_hz=None)      # Nano: snaps down to 537600000  # doctest: +SKIP
"""

import errno
import os
from typing import List, Optional, Tuple

from jetvit_daemon.errors import ActuationError
from jetvit_daemon.hardware.base import GpuFreqState
from jetvit_daemon.hardware.sysfs import SysfsTree

DEVFREQ_CLASS = "/sys/class/devfreq"

# `device/of_node/name` of the GPU's devfreq device, as NVIDIA's jetson_clocks matches it (jetson-reference
# README): gp10b (TX2), gv11b (Xavier), ga10b (Orin, JetPack 5), gb10b (Thor), gpu (Nano, Orin JetPack 6).
GPU_OF_NODE_NAMES = ("gv11b", "gp10b", "ga10b", "gb10b", "gpu")

# Where the GPU devfreq directory sits when /sys/class/devfreq offers no match (old kernels without
# of_node links), from the jetson-reference README table, newest first.
KNOWN_GPU_DEVFREQ_PATHS = (
    "/sys/class/devfreq/gpu-gpc-0",  # Thor
    "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu",  # Orin, JetPack 6
    "/sys/devices/17000000.ga10b/devfreq/17000000.ga10b",  # Orin, JetPack 5
    "/sys/devices/17000000.gv11b/devfreq/17000000.gv11b",  # Xavier
    "/sys/devices/17000000.gp10b/devfreq/17000000.gp10b",  # TX2
    "/sys/devices/57000000.gpu/devfreq/57000000.gpu",  # Nano / TX1
    "/sys/devices/gpu.0/devfreq/57000000.gpu",  # Nano / TX1, the path nvpmodel.conf names
)


def _candidate_rank(class_name: str) -> Tuple[int, str]:
    # Thor has one devfreq node per GPU clock domain (gpu-gpc-0, gpu-nvd-0); the graphics clusters (GPC)
    # are what the inference load runs on.
    return (0 if "gpc" in class_name else 1, class_name)


def find_gpu_devfreq(tree: SysfsTree) -> Optional[str]:
    """The GPU's devfreq directory as a *resolved* board path (under /sys/devices, through `tree.realpath`),
    or None on a board without one.

    Resolved, so the same node found through /sys/class/devfreq or through the fallback table gives one
    path, the one that appears in the kernel's own device tree (and, on JetPack 4/5, in nvpmodel.conf).
    """
    matches: List[str] = []
    by_dir_name: List[str] = []
    for entry in tree.listdir(DEVFREQ_CLASS):
        class_path = f"{DEVFREQ_CLASS}/{entry}"
        name = tree.read_optional(f"{class_path}/device/of_node/name")
        if name is not None:
            if name.strip("\x00 \n") in GPU_OF_NODE_NAMES:
                matches.append(entry)
        elif any(entry.endswith("." + n) or entry.startswith(n + "-") for n in GPU_OF_NODE_NAMES):
            # No of_node link (some vendor kernels): the node's own name still says gpu/ga10b/....
            by_dir_name.append(entry)
    for found in (matches, by_dir_name):
        if found:
            best = sorted(found, key=_candidate_rank)[0]
            return tree.realpath(f"{DEVFREQ_CLASS}/{best}")
    for path in KNOWN_GPU_DEVFREQ_PATHS:
        if tree.exists(f"{path}/available_frequencies"):
            return tree.realpath(path)
    return None


def _describe(exc: OSError) -> str:
    """`EACCES (Permission denied)`: the errno name first, so logs can be grepped for it."""
    if exc.errno is None:
        return str(exc)
    name = errno.errorcode.get(exc.errno, str(exc.errno))
    return f"{name} ({exc.strerror or os.strerror(exc.errno)})"


class GpuDevfreq:
    """Reads and caps one GPU devfreq node (`available_frequencies`, `min_freq`, `max_freq`, `cur_freq`, Hz).

    >>> gpu = GpuDevfreq(SysfsTree("/"), "/sys/devices/17000000.ga10b/devfreq/17000000.ga10b")
    >>> gpu.state().max_hz                                                               # doctest: +SKIP

    Not thread-safe for writes: one owner (the platform, on the governor's thread) actuates.
    """

    def __init__(self, tree: SysfsTree, path: str) -> None:
        self.tree = tree
        self.path = path.rstrip("/")

    def __repr__(self) -> str:
        return f"GpuDevfreq({self.path!r})"

    def _file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def _read_int(self, name: str) -> int:
        try:
            return self.tree.read_int(self._file(name))
        except OSError as exc:
            raise ActuationError(f"cannot read {self._file(name)}: {_describe(exc)}") from exc

    def available_hz(self) -> List[int]:
        path = self._file("available_frequencies")
        try:
            text = self.tree.read_text(path)
        except OSError as exc:
            raise ActuationError(f"cannot read {path}: {_describe(exc)}") from exc
        try:
            table = sorted({int(word) for word in text.split()})
        except ValueError:
            raise ActuationError(f"{path}: expected frequencies in Hz, got {text!r}") from None
        if not table:
            raise ActuationError(f"{path} is empty: no GPU frequency table")
        return table

    def state(self) -> GpuFreqState:
        cur: Optional[int]
        try:
            cur = self.tree.read_int(self._file("cur_freq"))
        except OSError:
            # cur_freq can fail while the GPU is rail-gated; the limits are what matter for control.
            cur = None
        return GpuFreqState(
            available_hz=self.available_hz(),
            min_hz=self._read_int("min_freq"),
            max_hz=self._read_int("max_freq"),
            cur_hz=cur,
        )

    def is_pinned(self) -> bool:
        """min_freq == max_freq: what `jetson_clocks` leaves behind (it pins both to the mode's maximum)."""
        return self.state().pinned

    @staticmethod
    def snap_down(table: List[int], request_hz: int) -> int:
        """The highest table frequency not above `request_hz`; the lowest when the request is below it."""
        below = [f for f in table if f <= request_hz]
        return below[-1] if below else table[0]

    def set_cap_hz(self, cap_hz: Optional[int], mode_max_hz: Optional[int], force: bool = False) -> int:
        """Cap max_freq at `cap_hz` (None: the mode's own cap), never above `mode_max_hz` (None: no mode cap),
        snapped down to the table. Returns the cap applied, verified by reading back.

        Refuses (ActuationError) while the clocks are pinned (min == max), unless `force`: pinned clocks
        usually mean jetson_clocks, whose owner did not ask us to change them. A min_freq above the new cap
        is lowered to the table's lowest frequency (what nvpmodel's `GPU MIN_FREQ 0` sets).
        """
        state = self.state()
        if state.pinned and not force:
            raise ActuationError(
                f"clocks are pinned (jetson_clocks?) at {state.min_hz} Hz: {self._file('min_freq')} equals "
                f"{self._file('max_freq')}; run `jetson_clocks --restore` or leave the GPU alone"
            )
        table = list(state.available_hz)
        ceiling = table[-1] if mode_max_hz is None else min(mode_max_hz, table[-1])
        request = ceiling if cap_hz is None else min(cap_hz, ceiling)
        new_max = self.snap_down(table, request)
        new_min = state.min_hz if state.min_hz <= new_max else table[0]
        self._apply(state, new_min, new_max)
        return new_max

    def restore(self, min_hz: int, max_hz: int) -> None:
        """Write back recorded limits (a baseline), keeping min ≤ max at every step."""
        if min_hz > max_hz:
            raise ActuationError(f"cannot restore {self.path}: recorded min {min_hz} Hz > max {max_hz} Hz")
        self._apply(self.state(), min_hz, max_hz)

    def _apply(self, state: GpuFreqState, new_min: int, new_max: int) -> None:
        # devfreq rejects (newer kernels: EINVAL) or clamps a max below min, so order the two writes so
        # that min ≤ max holds after each (jetson-reference README): raising min above the current max
        # needs the max first; otherwise the min goes first (lowering the cap below the current min too).
        writes = [("min_freq", new_min), ("max_freq", new_max)]
        if new_min > state.max_hz:
            writes.reverse()
        current = {"min_freq": state.min_hz, "max_freq": state.max_hz}
        for name, value in writes:
            if current[name] != value:
                self._write_verified(name, value)

    def _write_verified(self, name: str, value_hz: int) -> None:
        path = self._file(name)
        try:
            self.tree.write_text(path, str(value_hz))
        except OSError as exc:
            raise ActuationError(f"writing {value_hz} to {path} failed: {_describe(exc)}") from exc
        read = self._read_int(name)
        if read != value_hz:
            raise ActuationError(f"{path}: wrote {value_hz} but read back {read}")
