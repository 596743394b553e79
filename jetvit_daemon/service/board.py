"""Which board the daemon (and `restore`, `probe`) talks to: the Jetson it runs on, or else the simulated board.

Either way the result is the same pair of seams, a `SysfsTree` and a `CommandRunner`: the code above them does
not know which board it drives.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from jetvit_daemon.clock import Clock
from jetvit_daemon.config import DaemonConfig
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.hardware.commands import CommandRunner, SubprocessRunner
from jetvit_daemon.hardware.probe import detect_board
from jetvit_daemon.hardware.sysfs import SysfsTree

log = logging.getLogger("jetvit_daemon")


class BusyRelay:
    """The simulated GPU's load: whatever `source` says (the pipeline's busy fraction, once it is built).
    Called from the board's physics thread; `source` is set once by the composition root."""

    def __init__(self) -> None:
        self.source: Callable[[], float] = lambda: 0.0

    def __call__(self) -> float:
        return self.source()


@dataclass
class BoardAccess:
    tree: SysfsTree
    runner: CommandRunner
    description: str
    sim: Any = None  # the SimulatedBoard, when there is no Jetson (owner: whoever called open_board)
    busy: BusyRelay = field(default_factory=BusyRelay)  # feeds the simulated board's GPU load


def open_board(
    config: DaemonConfig,
    clock: Clock,
    host_root: Path = Path("/"),
) -> BoardAccess:
    """Detect a Jetson under `host_root`; without one, start the configured simulated board (its physics thread
    runs until `access.sim.stop()`). For the tools (`restore`, `probe`)."""
    access = select_board(config, clock, host_root)
    if access.sim is not None:
        access.sim.start()
    return access


def select_board(config: DaemonConfig, clock: Clock, host_root: Path = Path("/")) -> BoardAccess:
    """Detect a Jetson under `host_root`; without one, the configured simulated board, its tree prepared but
    its physics thread not started (the daemon starts it as one of its stages)."""
    info = None if config.hardware.board == "simulated" else detect_board(SysfsTree(host_root))
    if info is not None:
        description = f"{info.model} (L4T {info.l4t_release or 'unknown'})"
        log.info("Jetson detected: %s", description)
        return BoardAccess(SysfsTree(host_root), SubprocessRunner(), description)
    if config.hardware.board == "jetson":
        raise ConfigError(f"hardware.board is 'jetson' but no Jetson was found under {host_root}")
    from jetvit_daemon.sim.live import SimulatedBoard  # only where there is no board

    sim_cfg = config.simulator
    root = sim_cfg.root_dir or config.resolved_state_dir() / "simboard" / sim_cfg.board
    busy = BusyRelay()
    sim = SimulatedBoard(
        profile=sim_cfg.board, root_dir=root, clock=clock, ambient_c=sim_cfg.ambient_c, cooling=sim_cfg.cooling,
        gpu_busy=busy, tick_s=sim_cfg.tick_s,
    )
    try:
        sim.prepare()
    except OSError as exc:
        raise ConfigError(f"simulator.root_dir: cannot create the simulated board in {root}: "
                          f"{exc.strerror or exc}") from None
    reason = "as configured" if config.hardware.board == "simulated" else "no Jetson detected"
    log.info("%s: using the %s (sysfs tree in %s)", reason, sim.description, root)
    return BoardAccess(sim.tree, SubprocessRunner(sim.programs), sim.description, sim, busy)


def close_board(access: Optional[BoardAccess]) -> None:
    if access is not None and access.sim is not None:
        access.sim.stop()
