"""One status snapshot, rendered everywhere: `/status` (JSON), the status line in the log (and systemd's
`STATUS=`), the Prometheus collectors, `/healthz`, `/readyz` and `jetvit-daemon status`.

>>> snap = service.snapshot()                    # doctest: +SKIP
>>> status_line(snap); snapshot_json(snap)       # doctest: +SKIP

A `StatusSnapshot` is a frozen value taken at one moment; whoever renders it never reads the live components,
so the views cannot disagree with each other.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from jetvit_daemon.hardware.base import TelemetrySample
from jetvit_daemon.pipeline.pipeline import PipelineStats

# A worker whose loop has not turned for this long is considered wedged (the longest loop wait is the policy
# interval, at most 60 s; inference batches take well under a second).
HEARTBEAT_MAX_AGE_S = 90.0


@dataclass(frozen=True)
class WorkerHealth:
    name: str
    alive: bool
    heartbeat_age_s: float
    failure: Optional[str] = None  # repr of the exception that killed it

    @property
    def problem(self) -> Optional[str]:
        if self.failure is not None:
            return f"{self.name} died: {self.failure}"
        if not self.alive:
            return f"{self.name} is not running"
        if self.heartbeat_age_s > HEARTBEAT_MAX_AGE_S:
            return f"{self.name} has not turned for {self.heartbeat_age_s:.0f} s"
        return None


@dataclass(frozen=True)
class ReloadResult:
    result: str  # "ok" | "error"
    message: str
    at_unix_s: float


@dataclass(frozen=True)
class StatusSnapshot:
    """The daemon at one moment. `phase`: starting | running | stopping."""

    version: str
    board: str
    phase: str
    uptime_s: float
    first_inference: bool
    policy_file: str
    policy_states: Tuple[str, ...]
    last_reload: Optional[ReloadResult]
    governor: Mapping[str, Any]  # Governor.status(): state, reason, mode, gpu cap, batch, failures
    pipeline: Optional[PipelineStats]
    telemetry: Optional[TelemetrySample]
    telemetry_age_s: Optional[float]
    telemetry_stale: bool
    workers: Tuple[WorkerHealth, ...]
    inference_failing_s: Optional[float] = None  # how long every batch has failed, else None
    sinks: Tuple[Mapping[str, Any], ...] = ()  # each QueuedSink's stats (service/results.py)
    sources: Tuple[Mapping[str, Any], ...] = ()  # each source's status (pipeline/capture)
    inference: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the worker: BatchExecutor.status()

    # -- verdicts ------------------------------------------------------------------------------------------
    def health_problems(self) -> List[str]:
        """Why the daemon is not alive and well (liveness: a dead or wedged worker, a model failing)."""
        problems = [p for p in (w.problem for w in self.workers) if p is not None]
        if self.inference_failing_s is not None and self.pipeline is not None:
            problems.append(f"inference has failed every batch for {self.inference_failing_s:.0f} s "
                            f"({self.pipeline.failing_batches} batches)")
        return problems

    def ready_problems(self) -> List[str]:
        """Why the daemon is not ready to serve (readiness): empty when ready."""
        problems = []
        if self.phase == "stopping":
            problems.append("stopping")
        elif self.phase == "starting":
            problems.append("starting")
        if not self.first_inference:
            problems.append("no inference done yet")
        if self.telemetry_stale:
            problems.append("telemetry is stale")
        return problems + self.health_problems()

    @property
    def healthy(self) -> bool:
        return not self.health_problems()

    @property
    def ready(self) -> bool:
        return not self.ready_problems()


def status_line(s: StatusSnapshot) -> str:
    """The one-line summary logged every status_interval_s and sent as systemd's STATUS=."""
    p, g, t = s.pipeline, s.governor, s.telemetry

    def ms(v: Optional[float]) -> str:
        return "-" if v is None else f"{v * 1000.0:.1f}"

    cap = g.get("gpu_cap_hz")
    hottest = t.hottest_c if t is not None and not s.telemetry_stale else None
    power = t.board_power_w if t is not None and not s.telemetry_stale else None
    line = ("fps in {:.1f} out {:.1f} | infer p50 {} ms p95 {} ms | batch {} | mode {} | gpu cap {} | "
            "hottest {} | board {}").format(
        p.arrival_fps if p else 0.0, p.processed_fps if p else 0.0, ms(p.infer_p50_s if p else None),
        ms(p.infer_p95_s if p else None), p.batch_size if p else "-",
        g.get("mode") or "-", "-" if cap is None else f"{cap / 1e6:.0f} MHz",
        "-" if hottest is None else f"{hottest:.1f} °C",
        "-" if power is None else f"{power:.2f} W")
    problems = s.ready_problems() if s.phase == "running" else []
    return line + (" | NOT READY: " + "; ".join(problems) if problems else "")


def snapshot_json(s: StatusSnapshot) -> Dict[str, Any]:
    """The snapshot as JSON-able data (`/status`, `jetvit-daemon status --json`)."""
    t = s.telemetry
    return {
        "version": s.version,
        "board": s.board,
        "phase": s.phase,
        "uptime_s": round(s.uptime_s, 3),
        "ready": s.ready,
        "ready_problems": s.ready_problems(),
        "healthy": s.healthy,
        "health_problems": s.health_problems(),
        "status_line": status_line(s),
        "first_inference": s.first_inference,
        "policy": {
            "file": s.policy_file,
            "states": list(s.policy_states),
            "last_reload": None if s.last_reload is None else dataclasses.asdict(s.last_reload),
        },
        "governor": dict(s.governor),
        "pipeline": None if s.pipeline is None else dataclasses.asdict(s.pipeline),
        "telemetry": None if t is None else {
            "age_s": s.telemetry_age_s, "stale": s.telemetry_stale, "temps_c": dict(t.temps_c),
            "board_power_w": t.board_power_w, "rails_w": dict(t.rails_w), "gpu_load_pct": t.gpu_load_pct,
            "gpu_freq_hz": t.gpu_freq_hz, "cpu_load_pct": t.cpu_load_pct},
        "workers": [dataclasses.asdict(w) for w in s.workers],
        "inference_failing_s": s.inference_failing_s,
        "sinks": [dict(x) for x in s.sinks],
        "sources": [dict(x) for x in s.sources],
        "inference": dict(s.inference),
    }


def format_status(data: Mapping[str, Any]) -> str:
    """`jetvit-daemon status` for people, from the JSON the daemon answered."""
    gov = data.get("governor") or {}
    policy = data.get("policy") or {}
    reload = policy.get("last_reload")
    out = [
        f"jetvit-daemon {data.get('version')} on {data.get('board')}: {data.get('phase')}, "
        + ("ready" if data.get("ready") else "NOT READY (" + "; ".join(data.get("ready_problems") or []) + ")"),
        f"  {data.get('status_line')}",
        f"  governor: state {gov.get('state')} (applied: {gov.get('applied_state') or '-'}); "
        f"last reason: {gov.get('last_reason') or '-'}",
        f"  policy: {policy.get('file')} ({' < '.join(policy.get('states') or [])}); last reload: "
        + ("none" if not reload else f"{reload.get('result')}" + (f" ({reload.get('message')})"
                                                                   if reload.get("message") else "")),
    ]
    inf = data.get("inference") or {}
    if inf.get("mode") == "worker":
        rss = inf.get("rss_bytes")
        out.append(f"  inference worker: {inf.get('state')}, pid {inf.get('pid')} (Python "
                   f"{inf.get('python_version') or '?'}), {inf.get('restarts_total', 0)} restarts"
                   + (f" (last: {inf['last_restart_reason']})" if inf.get("last_restart_reason") else "")
                   + ("" if rss is None else f", RSS {rss / 2**20:.0f} MiB"))
    for w in data.get("workers") or []:
        state = "alive" if w.get("alive") else "DEAD"
        extra = f" ({w['failure']})" if w.get("failure") else ""
        out.append(f"  worker {w.get('name')}: {state}, heartbeat {w.get('heartbeat_age_s', 0):.1f} s ago{extra}")
    return "\n".join(out)
