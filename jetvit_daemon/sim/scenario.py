"""Scenarios for the offline simulator: data files (YAML) a user can copy and edit. The built-in ones live
in `jetvit_daemon/sim/scenarios/` (steady, bursty, hot, budget)."""

from pathlib import Path
from typing import List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from jetvit_daemon.errors import ConfigError
from jetvit_daemon.yamlfile import YamlProblem, load_yaml_model

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Activity(_Strict):
    """A camera that streams in bursts: on and off periods drawn from exponentials with these means."""

    on_mean_s: float = Field(gt=0)
    off_mean_s: float = Field(gt=0)


class CameraGroup(_Strict):
    count: int = Field(1, ge=1, le=64)
    fps: float = Field(gt=0, le=240)
    activity: Union[Literal["always"], Activity] = "always"


class Scenario(_Strict):
    version: Literal[1] = 1
    name: str
    description: str = ""
    duration_s: float = Field(3600.0, gt=0)
    ambient_c: float = Field(25.0, ge=-40, le=85)
    cooling: Literal["fan", "passive", "enclosure"] = "fan"
    power_budget_w: Optional[float] = Field(None, gt=0)
    cameras: List[CameraGroup] = Field(min_length=1)


def builtin_scenarios() -> List[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(
                f"no scenario {name_or_path!r}: built-in ones are {', '.join(builtin_scenarios())}, or give a "
                "path to a scenario file (copy one from jetvit_daemon/sim/scenarios/)"
            )
    try:
        return load_yaml_model(path, Scenario)
    except YamlProblem as exc:
        raise ConfigError(str(exc)) from None
