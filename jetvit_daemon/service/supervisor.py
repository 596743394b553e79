"""The supervisor: starts the stages in order, runs one tick loop, stops the started stages in reverse under
ONE deadline for the whole stop, the restore included.

>>> sup = Supervisor([Stage("platform", p.start, p.stop, p.workers, restore=True), ...], clock)  # doctest: +SKIP
>>> sup.start(); ...; sup.stop(hurry=lambda: False)                                            # doctest: +SKIP

The stop budget (STOP_BUDGET_S) fits systemd's TimeoutStopSec=20 of the shipped unit with 5 s to spare. The
restoring stage (the platform: power mode and GPU limits back) is promised RESTORE_RESERVE_S of it whatever the
stages before it took; the drain (HTTP, governor, pipeline, runner) shares the rest, and when `hurry()` (a
second SIGTERM/SIGINT) turns true the remaining drain stages get a token timeout, but the restore still runs.
Not thread-safe: the owner's (main) thread only.
"""

import logging
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from jetvit_daemon.clock import Clock
from jetvit_daemon.workers import WorkerThread

log = logging.getLogger("jetvit_daemon")

STOP_BUDGET_S = 15.0  # the whole stop; systemd/jetvit-daemon.service has TimeoutStopSec=20
RESTORE_RESERVE_S = 9.0  # kept for the restore: nvpmodel -q and -m (seconds each on a loaded board) + devfreq
HURRIED_STEP_S = 0.2  # what a drain stage may take once the operator asked twice


@dataclass
class Stage:
    """One component's lifecycle for the supervisor. `stop(timeout_s)` must return within about `timeout_s`.
    `workers()` lists its long-lived threads (watched for death and heartbeat while running)."""

    name: str
    start: Callable[[], None]
    stop: Callable[[float], None]
    workers: Callable[[], Sequence[WorkerThread]] = field(default=lambda: ())
    restore: bool = False  # the stage that puts the board back: gets the reserve, runs even when hurried
    max_stop_s: Optional[float] = None  # the most this stage may take even when more is left (a drain stage
    #                                     waiting on a thread that the restore will end anyway should not)


class Supervisor:
    """Owns the order of the stages and the stop deadline; see the module docstring."""

    def __init__(self, stages: Sequence[Stage], clock: Clock, stop_budget_s: float = STOP_BUDGET_S,
                 restore_reserve_s: float = RESTORE_RESERVE_S) -> None:
        self.stages = list(stages)
        self.clock = clock
        self.stop_budget_s = stop_budget_s
        self.restore_reserve_s = min(restore_reserve_s, stop_budget_s)
        self.started: List[Stage] = []
        self.stop_report: List[str] = []  # "name: took s / allowed s", for logs and tests

    def start(self) -> None:
        """Start every stage in order; on a failure, stop what started (in reverse) and re-raise."""
        for stage in self.stages:
            log.debug("starting %s", stage.name)
            try:
                stage.start()
            except BaseException:
                self.stop(lambda: False)
                raise
            self.started.append(stage)

    def workers(self) -> List[WorkerThread]:
        return [w for stage in self.started for w in stage.workers()]

    def stop(self, hurry: Callable[[], bool]) -> None:
        """Stop the started stages in reverse, all within `stop_budget_s` (see the module docstring)."""
        deadline_s = self.clock.monotonic() + self.stop_budget_s
        for stage in reversed(list(self.started)):
            now = self.clock.monotonic()
            left_s = max(0.0, deadline_s - now)
            if stage.restore:
                allowed_s = max(left_s, min(self.restore_reserve_s, 1.0))
            elif hurry():
                allowed_s = min(HURRIED_STEP_S, left_s)
            else:
                restore_after = any(s.restore for s in self.started[: self.started.index(stage)])
                allowed_s = max(0.0, left_s - (self.restore_reserve_s if restore_after else 0.0))
            if stage.max_stop_s is not None and not stage.restore:
                allowed_s = min(allowed_s, stage.max_stop_s)
            self._stop_one(stage, allowed_s)
            self.started.remove(stage)
            self.stop_report.append(f"{stage.name}: {self.clock.monotonic() - now:.2f} s of {allowed_s:.2f} s")

    def _stop_one(self, stage: Stage, allowed_s: float) -> None:
        try:
            stage.stop(allowed_s)
        except Exception:  # one stage failing to stop must not keep the others (the restore) from running
            log.error("stopping %s failed", stage.name, exc_info=True)

    def first_dead(self) -> Optional[WorkerThread]:
        """A started worker that died (its body raised), if any."""
        for w in self.workers():
            if w.failure is not None or (w.started and not w.alive and not w.stopping):
                return w
        return None
