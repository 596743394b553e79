"""Workload profiles: how long one batch of the model takes on a simulated board, so a scenario can run a
model the board can actually serve (a Nano cannot run ViT-B/16 within a 250 ms target; a ViT-Tiny it can).

A profile (YAML, `sim/workloads/<name>.yaml` or any path; docs/SIMULATION.md "Workload profiles") gives, for
the model, either or both of:
- `measurements`: ms per batch at a GPU clock on a board (from `jetvit-daemon bench` on that board, or
  published): with one point the per-batch overhead is the board's ViT-B/16 fit's (or `overhead_ms`), two or
  more points at different clocks or batches fix overhead and work by least squares;
- `relative_work`: the work per image relative to ViT-B/16, scaling the board's own ViT-B/16 calibration
  (sim/boards.py) where the profile has no measurement for that board.

The simulator's inference time is then t(b, f) = t0 + (b + s)·W/(n_tpc·f), as for ViT-B/16 (sim/board.py).

    profile = load_workload("vit-tiny16")
    timing = profile.timing(get_profile("nano"))   # sim/boards.py   # a ViTModel for BoardPhysics(..., vit=timing)

Immutable; thread-safe.
"""

from pathlib import Path
from typing import List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.sim.board import ViTModel
from jetvit_daemon.sim.boards import PROFILES, BoardProfile
from jetvit_daemon.yamlfile import YamlProblem, load_yaml_model

WORKLOAD_DIR = Path(__file__).resolve().parent / "workloads"
DEFAULT_WORKLOAD = "vit-b16"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Measurement(_Strict):
    """One batch's time on a board at a GPU clock (the board's full TPC count unless `tpcs` says)."""

    board: str
    gpu_mhz: float = Field(gt=0)
    batch: int = Field(ge=1, le=256)
    ms_per_batch: float = Field(gt=0)
    tpcs: Optional[int] = Field(None, ge=1)
    source: str = ""

    @model_validator(mode="after")
    def _known_board(self) -> "Measurement":
        if self.board not in PROFILES:
            raise ValueError(f"no simulated board {self.board!r}; valid: {', '.join(sorted(PROFILES))}")
        return self


class WorkloadProfile(_Strict):
    version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str = ""
    source: str = Field(min_length=1)  # where the numbers come from: a measurement, a paper, an estimate
    max_batch: int = Field(32, ge=1, le=256)
    relative_work: Optional[float] = Field(None, gt=0, le=100)
    overhead_ms: Optional[float] = Field(None, ge=0)
    batch_penalty: Optional[float] = Field(None, ge=0)
    measurements: List[Measurement] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_go_by(self) -> "WorkloadProfile":
        if self.relative_work is None and not self.measurements:
            raise ValueError("give relative_work (work per image / ViT-B/16's) or measurements (ms per batch)")
        return self

    def boards_covered(self) -> List[str]:
        return sorted({m.board for m in self.measurements})

    def timing(self, board: BoardProfile) -> ViTModel:
        """The batch time model of this workload on `board`; ConfigError when the profile cannot say."""
        base = ViTModel(board.physics.vit)
        penalty = base.penalty if self.batch_penalty is None else self.batch_penalty
        own = [m for m in self.measurements if m.board == board.name]
        if own:
            return _fit(own, board, base, penalty, self.overhead_ms)
        if self.relative_work is None:
            raise ConfigError(f"workload {self.name}: no measurement for {board.name} and no relative_work "
                              f"(measured on: {', '.join(self.boards_covered())})")
        overhead = base.overhead_s if self.overhead_ms is None else self.overhead_ms / 1000.0
        return ViTModel.from_parameters(overhead, base.work_tpc_cycles * self.relative_work, penalty)


def _fit(points: List[Measurement], board: BoardProfile, base: ViTModel, penalty: float,
         overhead_ms: Optional[float]) -> ViTModel:
    """t = t0 + x·W with x = (b + s)/(n·f): W from one point (t0 given), both by least squares from more."""
    tpcs = board.physics.tpcs_module
    xs = [(m.batch + penalty) / ((m.tpcs or tpcs) * m.gpu_mhz * 1e6) for m in points]
    ts = [m.ms_per_batch / 1000.0 for m in points]
    distinct = len({round(x, 15) for x in xs}) > 1
    if overhead_ms is not None or not distinct:
        t0 = base.overhead_s if overhead_ms is None else overhead_ms / 1000.0
        work = sum(max(t - t0, 0.0) * x for x, t in zip(xs, ts)) / sum(x * x for x in xs)
    else:
        n = len(xs)
        mx, mt = sum(xs) / n, sum(ts) / n
        work = sum((x - mx) * (t - mt) for x, t in zip(xs, ts)) / sum((x - mx) ** 2 for x in xs)
        t0 = mt - work * mx
        if t0 < 0:  # the points say "no overhead": fit through the origin
            t0, work = 0.0, sum(t * x for x, t in zip(xs, ts)) / sum(x * x for x in xs)
    if work <= 0:
        raise ConfigError(f"{board.name}: measurements {[(m.gpu_mhz, m.batch, m.ms_per_batch) for m in points]} "
                          "give no positive work per image (a faster clock must not take longer)")
    return ViTModel.from_parameters(t0, work, penalty)


def builtin_workloads() -> List[str]:
    return sorted(p.stem for p in WORKLOAD_DIR.glob("*.yaml"))


def workload_file(name_or_path: str, relative_to: Optional[Path] = None) -> Path:
    """A built-in profile by name, else a path (relative to `relative_to`'s directory when given)."""
    builtin = WORKLOAD_DIR / f"{name_or_path}.yaml"
    if "/" not in name_or_path and not name_or_path.endswith((".yaml", ".yml")):
        if builtin.exists():
            return builtin
        raise ConfigError(f"no workload profile {name_or_path!r}: built-in ones are "
                          f"{', '.join(builtin_workloads())}, or give a path to a profile file")
    path = Path(name_or_path)
    if relative_to is not None and not path.is_absolute():
        path = relative_to.parent / path
    return path


def load_workload(name_or_path: str, relative_to: Optional[Path] = None) -> WorkloadProfile:
    try:
        return load_yaml_model(workload_file(name_or_path, relative_to), WorkloadProfile)
    except YamlProblem as exc:
        raise ConfigError(str(exc)) from None


def board_timing(board: BoardProfile, workload: Optional[str]) -> ViTModel:
    """The batch time model for `workload` (a name or a resolved path; None: the board's ViT-B/16)."""
    if workload is None:
        return ViTModel(board.physics.vit)
    return load_workload(workload).timing(board)
