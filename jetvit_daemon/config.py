"""The daemon's settings (daemon.yaml), validated with pydantic. Every field is documented in
config/daemon.yaml; errors name the file, the line and the field."""

import os
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jetvit_daemon.config_sinks import SinkConfigs
from jetvit_daemon.errors import ConfigError
from jetvit_daemon.pipeline.capture.uri import SourceUri, parse_uri
from jetvit_daemon.yamlfile import YamlProblem, load_yaml_model

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_MODEL = ASSETS / "vit_digits" / "vit_digits.onnx"
# Port chosen to collide with no common exporter: node_exporter 9100, DCGM 9400, Triton 8002, jetson exporters
# on 9100/9101/8000. Documented in README and systemd unit.
DEFAULT_METRICS_PORT = 9847


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The simulated boards (jetvit_daemon/sim/boards.py PROFILES; a test keeps the two in step). A Literal, so a
# typo in daemon.yaml is told the valid names.
SimBoardName = Literal["nano", "orin-nano", "orin-nano-super", "orin-nx-16gb", "agx-orin-64gb"]
BOARD_NAMES: Tuple[str, ...] = get_args(SimBoardName)


class SimulatorConfig(_Strict):
    board: SimBoardName = "orin-nano-super"
    root_dir: Optional[Path] = Field(
        None, description="where the simulated board keeps its sysfs tree; null: <state_dir>/simboard/<board>")
    ambient_c: float = Field(25.0, ge=-40, le=85)
    cooling: Literal["fan", "passive", "enclosure"] = "fan"
    simulate_speed: bool = Field(False, description="slow inference to the simulated GPU's speed")
    tick_s: float = Field(0.1, gt=0, le=5)


class RunnerConfig(_Strict):
    name: Literal["auto", "onnxruntime", "tensorrt"] = "auto"
    model: Optional[Path] = Field(None, description="model/engine file; null: the bundled ViT")
    providers: List[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_threads: int = Field(1, ge=0)
    warmup_iterations: int = Field(3, ge=0)
    python: Optional[str] = Field(
        None, description="the interpreter of the inference worker process; null: the daemon's own. "
        "JetPack 4.6 (Jetson Nano): /usr/bin/python3.6, the only Python its TensorRT bindings exist for")


class SourceConfig(_Strict):
    """One camera, named by URI (docs/SOURCES.md): csi://0, v4l2:///dev/video0, rtsp://host/path,
    file:///path (video, image, directory, glob), synthetic://. The old form `type: synthetic` (+ `count`)
    still works and means `uri: synthetic://`."""

    uri: str = Field("synthetic://", description="csi://N, v4l2:///dev/..., rtsp://..., file://..., synthetic://")
    type: Optional[Literal["synthetic"]] = Field(None, description="old form of uri: synthetic://")
    name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,48}$",
                                description="label in metrics, /status and results; null: from the URI")
    count: int = Field(1, ge=1, le=16, description="synthetic:// only: number of such cameras")
    fps: float = Field(30.0, gt=0, le=240, description="the camera's rate (synthetic; asked of csi/v4l2)")
    max_fps: Optional[float] = Field(None, gt=0, le=240,
                                     description="frames above this rate are skipped before conversion")
    width: Optional[int] = Field(None, ge=32, le=7680, description="capture width; null: source default")
    height: Optional[int] = Field(None, ge=32, le=4320, description="capture height; null: source default")
    seed: int = 0
    loop: bool = Field(False, description="file://: start again at the end")
    pace: Literal["realtime", "fast"] = Field("realtime", description="file://: at the file's rate, or as fast "
                                                                      "as inference takes frames")
    protocol: Literal["tcp", "udp"] = Field("tcp", description="rtsp://: RTP transport")
    latency_ms: int = Field(200, ge=0, le=10000, description="rtsp://: jitter buffer")
    codec: Literal["auto", "h264", "h265"] = Field("auto", description="rtsp://: auto lets decodebin pick")
    format: Literal["auto", "mjpeg", "yuyv"] = Field("auto", description="v4l2://: pixel format to ask for")
    sensor_mode: Optional[int] = Field(None, ge=0, le=31, description="csi://: nvarguscamerasrc sensor-mode")
    flip: int = Field(0, ge=0, le=7, description="csi://: nvvidconv flip-method")
    restart_argus: bool = Field(False, description="csi://: restart nvargus-daemon when it is wedged")
    backend: Literal["auto", "gstreamer", "opencv"] = "auto"
    start_timeout_s: float = Field(10.0, gt=0, le=300, description="first frame of an attempt")
    failed_retry_s: float = Field(60.0, gt=0, le=3600, description="retry interval after a permanent error")

    @field_validator("uri")
    @classmethod
    def _valid_uri(cls, value: str) -> str:
        parse_uri(value)  # raises ValueError naming what is valid
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "SourceConfig":
        if self.type is not None and self.uri != "synthetic://":
            raise ValueError("give either type: synthetic (the old form) or uri:, not both")
        if self.count > 1 and not self.uri.startswith("synthetic://"):
            raise ValueError("count is for synthetic:// only; give each camera its own entry")
        if (self.width is None) != (self.height is None):
            raise ValueError("give width and height together")
        return self

    def parsed_uri(self) -> SourceUri:
        return parse_uri(self.uri)


class PipelineConfig(_Strict):
    queue_size: Optional[int] = Field(None, ge=1, le=10000, description="no longer used: each source has its "
                                      "own slot (accepted so old configs still load; a note is logged)")
    max_batch_wait_ms: float = Field(20.0, ge=0, le=1000)
    stats_window_s: float = Field(10.0, gt=0, le=600)


class TelemetryConfig(_Strict):
    source: Literal["tegrastats", "sysfs", "jtop"] = "tegrastats"
    interval_s: float = Field(1.0, ge=0.05, le=60)


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_METRICS_PORT, ge=0, le=65535, description="0: any free port (tests)")


class HardwareConfig(_Strict):
    board: Literal["auto", "jetson", "simulated"] = Field(
        "auto", description="auto: a Jetson when one is found, else the simulated board")
    on_conflict: Literal["refuse", "leave_alone"] = "refuse"
    nvpmodel_timeout_s: float = Field(15.0, gt=0, le=120)
    restore_on_stop: bool = True


class DaemonConfig(_Strict):
    version: Literal[1] = 1
    state_dir: Optional[Path] = Field(
        None, description="persistent state (baseline journal); null: $STATE_DIRECTORY or ~/.local/state")
    policy_file: Optional[Path] = Field(None, description="null: the bundled default policy")
    policy_permissions: Literal["strict", "ignore"] = Field(
        "strict", description="strict: refuse a policy file writable by group/others or owned by another user")
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    sources: List[SourceConfig] = Field(default_factory=lambda: [SourceConfig()])
    sinks: SinkConfigs = Field(default_factory=list, description="config_sinks.py: jsonl, mqtt, http")
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    status_interval_s: float = Field(5.0, gt=0, description="one-line status every this many seconds")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Optional[Literal["text", "journal", "json"]] = Field(
        None, description="null: journal when stderr is systemd's journal, else text; json: one object a line")

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        # systemd's StateDirectory= sets STATE_DIRECTORY (systemd.exec(5)): the service's contract, not a hook.
        env = os.environ.get("STATE_DIRECTORY")
        if env:
            return Path(env.split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME")
        base = Path(xdg) if xdg else Path.home() / ".local" / "state"
        return base / "jetvit-daemon"

    def model_path(self) -> Path:
        return self.runner.model if self.runner.model is not None else DEFAULT_MODEL


def load_config(path: Optional[Path]) -> DaemonConfig:
    """The config from `path`, or the defaults when None. Relative paths inside resolve against the file."""
    if path is None:
        return DaemonConfig()
    try:
        config = load_yaml_model(path, DaemonConfig)
    except YamlProblem as exc:
        raise ConfigError(str(exc)) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeError as exc:  # before ValueError: UnicodeDecodeError is one
        raise ConfigError(f"{path}: not a text file (not UTF-8: {exc})") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be loaded as a config: {type(exc).__name__}") from None
    return _resolve_relative(config, Path(path).resolve().parent)


def _resolve_relative(config: DaemonConfig, base: Path) -> DaemonConfig:
    def fix(p: Optional[Path]) -> Optional[Path]:
        return None if p is None or p.is_absolute() else base / p

    updates: Dict[str, Any] = {}
    if fix(config.state_dir) is not None:
        updates["state_dir"] = fix(config.state_dir)
    if fix(config.policy_file) is not None:
        updates["policy_file"] = fix(config.policy_file)
    if fix(config.runner.model) is not None:
        updates["runner"] = config.runner.model_copy(update={"model": fix(config.runner.model)})
    if fix(config.simulator.root_dir) is not None:
        updates["simulator"] = config.simulator.model_copy(update={"root_dir": fix(config.simulator.root_dir)})
    if any(sc.uri.startswith("file://") for sc in config.sources):
        updates["sources"] = [_resolve_file_uri(sc, base) for sc in config.sources]
    if config.sinks:
        updates["sinks"] = [s.resolve_paths(fix) for s in config.sinks]
    return config.model_copy(update=updates) if updates else config


def _resolve_file_uri(source: SourceConfig, base: Path) -> SourceConfig:
    if not source.uri.startswith("file://"):
        return source
    path = source.uri[len("file://"):]
    if Path(path).is_absolute():
        return source
    return source.model_copy(update={"uri": "file://" + str(base / path)})
