"""The manifest that sits next to every model or engine: what the model takes, how to preprocess frames for
it, and what it was built for. `<model>.onnx` / `<model>.engine` is described by `<model>.manifest.json`
(or `<model>.manifest.yaml`).

    manifest = load_manifest(Path("vit.engine"))       # EngineError naming the file and field if invalid
    write_manifest(Path("vit.engine"), manifest)       # -> vit.manifest.json
"""

import json
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jetvit_daemon.errors import EngineError
from jetvit_daemon.yamlfile import YamlProblem, parse_yaml, read_yaml_text

# Looked for in this order next to the model.
MANIFEST_SUFFIXES = (".manifest.json", ".manifest.yaml", ".manifest.yml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    name: str
    shape: List[int] = Field(description="with -1 for the dynamic batch axis")
    dtype: Literal["float32", "float16", "uint8"] = "float32"
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    @model_validator(mode="after")
    def _four_dims(self) -> "InputSpec":
        if len(self.shape) != 4 or any(d < 1 for d in self.shape[1:]) or self.shape[0] == 0 or self.shape[0] < -1:
            raise ValueError(f"need [batch, ...3 positive dims] with batch -1 (dynamic) or > 0, got {self.shape}")
        channels = self.shape[1] if self.layout == "NCHW" else self.shape[3]
        if channels != 3:
            raise ValueError(f"a {self.layout} input needs 3 channels, shape {self.shape} has {channels}")
        return self

    @property
    def height_width(self) -> Tuple[int, int]:
        if self.layout == "NCHW":
            return self.shape[2], self.shape[3]
        return self.shape[1], self.shape[2]

    @property
    def item_shape(self) -> Tuple[int, ...]:
        """The shape of one image (the input shape without its batch axis)."""
        return tuple(self.shape[1:])

    def with_batch(self, batch: int) -> "InputSpec":
        """The same input with batch axis `batch` (-1: dynamic)."""
        return InputSpec(name=self.name, shape=[batch, *self.shape[1:]], dtype=self.dtype, layout=self.layout)


class PreprocessSpec(_Strict):
    """How a BGR uint8 camera frame becomes the model input.

    resize: `center_crop` (crop the centred square, then resize), `stretch` (resize the whole frame), or
    `none` (the graph takes uint8 frames of the input size itself).
    normalize: `cpu` (the daemon applies scale, mean and std and feeds floats) or `graph` (they are folded
    into the model, which takes uint8 frames; the values here then only record what the graph does, and
    `channel_order` is the order the graph expects its uint8 input in).
    """

    resize: Literal["center_crop", "stretch", "none"] = "center_crop"
    interpolation: Literal["area", "linear", "nearest"] = "area"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1.0 / 255.0
    mean: List[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: List[float] = Field(default_factory=lambda: [1.0, 1.0, 1.0])
    normalize: Literal["cpu", "graph"] = "cpu"


class BatchRange(_Strict):
    min: int = 1
    max: int = 32

    @model_validator(mode="after")
    def _ordered(self) -> "BatchRange":
        if not 1 <= self.min <= self.max:
            raise ValueError(f"need 1 <= min <= max, got min={self.min} max={self.max}")
        return self


class BuildInfo(_Strict):
    """Where a TensorRT engine was built; an engine runs only on the same TensorRT, GPU and JetPack.

    device: the GPU in words, e.g. "t234 Orin sm_87"; compute_capability: "8.7" (what the check compares).
    command: the exact command that rebuilds this engine from its ONNX model (printed on a mismatch).
    """

    tensorrt_version: str
    device: str
    compute_capability: Optional[str] = None
    jetpack: Optional[str] = None
    l4t_release: Optional[str] = None
    dla_core: Optional[int] = None
    source_model: Optional[str] = None
    command: Optional[str] = None


class PrecisionSource(_Strict):
    """How the model or engine got its precision (the manifest's `precision_source`).

    method: `exported` (fp32 as trained), `fp16-weights` (weights and compute converted to float16 by `engine
    export --precision fp16`, the ops in `kept_float32` left in float32), `qdq` (explicit quantization: Q/DQ pairs
    calibrated on `calibration_images` images with `calibration_method`, per-channel weights), `builder-fp16`
    (TensorRT's FP16 builder flag on an fp32 model; TensorRT 8.x/10.x), `implicit-calibration` (TensorRT's INT8
    calibrator on an fp32 model; TensorRT 8.x/10.x, gone in 11).
    """

    method: Literal["exported", "fp16-weights", "qdq", "builder-fp16", "implicit-calibration"]
    kept_float32: Optional[List[str]] = None
    calibration_images: Optional[int] = None
    calibration_method: Optional[Literal["entropy", "percentile", "minmax"]] = None
    percentile: Optional[float] = None
    per_channel: Optional[bool] = None

    def describe(self) -> str:
        """In words, for logs and `engine check`: "QDQ calibrated on 256 images (entropy, per-channel weights)"."""
        if self.method == "fp16-weights":
            kept = ", ".join(self.kept_float32 or [])
            return "fp16 weights and compute" + (f" (float32 kept for {kept})" if kept else "")
        if self.method in ("qdq", "implicit-calibration"):
            how = "QDQ calibrated" if self.method == "qdq" else "TensorRT INT8 calibration"
            detail: List[str] = [self.calibration_method or "?"]
            if self.percentile is not None:
                detail.append(f"{self.percentile:g}th percentile")
            if self.per_channel:
                detail.append("per-channel weights")
            return f"{how} on {self.calibration_images} images ({', '.join(detail)})"
        return {"exported": "as exported (float32)", "builder-fp16": "TensorRT FP16 builder flag"}[self.method]


class Manifest(_Strict):
    format: Literal[1] = 1
    model_name: str
    framework: Literal["onnx", "tensorrt"]
    input: InputSpec
    outputs: List[str]
    preprocess: PreprocessSpec
    labels: Optional[str] = None  # file next to the manifest, one label per line
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    precision_source: Optional[PrecisionSource] = None
    batch: BatchRange = Field(default_factory=BatchRange)
    build: Optional[BuildInfo] = None

    @model_validator(mode="after")
    def _consistent(self) -> "Manifest":
        if self.preprocess.normalize == "graph" and self.input.dtype != "uint8":
            raise ValueError(f"preprocess.normalize 'graph' needs a uint8 input, the input is {self.input.dtype}")
        if self.input.shape[0] > 0 and not self.batch.min <= self.input.shape[0] <= self.batch.max:
            raise ValueError(f"fixed batch {self.input.shape[0]} is outside batch {self.batch.min}..{self.batch.max}")
        if not self.outputs:
            raise ValueError("outputs: name at least one output")
        return self


def manifest_path_for(model_path: Path) -> Path:
    """The manifest that describes `model_path`: the first of .manifest.json/.yaml/.yml that exists, else the
    .json name (where a new manifest is written)."""
    for suffix in MANIFEST_SUFFIXES:
        candidate = model_path.with_name(model_path.stem + suffix)
        if candidate.exists():
            return candidate
    return model_path.with_name(model_path.stem + MANIFEST_SUFFIXES[0])


MODEL_SUFFIXES = (".onnx", ".engine", ".plan", ".trt")


def check_model_file(model_path: Path) -> None:
    """EngineError saying exactly what is wrong when `model_path` is not a model file: missing (and whether
    its directory exists), or a directory (listing the model files inside)."""
    if model_path.is_dir():
        inside = sorted(p.name for p in model_path.iterdir() if p.suffix in MODEL_SUFFIXES)[:5]
        hint = ("model files in it: " + ", ".join(inside)) if inside else \
            f"it holds no model file ({', '.join(MODEL_SUFFIXES)})"
        raise EngineError(f"{model_path}: is a directory, not a model file; give the model file itself "
                          f"(runner.model in daemon.yaml or --model); {hint}")
    if not model_path.exists():
        where = "" if model_path.parent.is_dir() else f"; its directory {model_path.parent} does not exist either"
        raise EngineError(f"{model_path}: no such model file{where} (runner.model in daemon.yaml or --model)")


def load_manifest(model_path: Path) -> Manifest:
    """Load the manifest next to `model_path`, with errors that name the file and the field. Whatever the file
    holds, raises nothing but EngineError (the bounds of jetvit_daemon/yamlfile.py apply to .json too)."""
    model_path = Path(model_path)
    path = manifest_path_for(model_path)
    if not path.exists() and (model_path.is_dir() or not model_path.exists()):
        check_model_file(model_path)  # the model itself is what is missing: say that, not "no manifest"
    try:
        text = read_yaml_text(path)
    except YamlProblem as exc:
        if not path.exists():
            raise EngineError(
                f"{model_path}: no manifest next to the model (expected {path.name}); `jetvit-daemon engine export` "
                "and `engine build` write one, docs/ENGINES.md describes its fields"
            ) from None
        raise EngineError(f"cannot read manifest: {exc}") from None
    data = _parse_manifest(text, path)
    if not isinstance(data, dict):
        raise EngineError(f"{path}: a manifest is a mapping of fields, got {type(data).__name__}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            "{}: {}".format(".".join(str(p) for p in err["loc"]) or "(top)", err["msg"]) for err in exc.errors()
        )
        raise EngineError(f"{path}: invalid manifest: {problems}") from None
    except (RecursionError, MemoryError):
        raise EngineError(f"{path}: invalid manifest: too large or too deeply nested") from None


def _parse_manifest(text: str, path: Path) -> Any:
    """JSON for .json (duplicate keys refused, as in YAML), the bounded YAML loader otherwise."""
    if path.suffix != ".json":
        try:
            return parse_yaml(text, str(path)).data
        except YamlProblem as exc:
            raise EngineError(f"cannot parse manifest: {exc}") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:  # JSONDecodeError, and a duplicate key
        raise EngineError(f"{path}: cannot parse manifest: {exc}") from None
    except (RecursionError, MemoryError):
        raise EngineError(f"{path}: cannot parse manifest: too deeply nested") from None


def _no_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}: keep one of them")
        out[key] = value
    return out


def write_manifest(model_path: Path, manifest: Manifest) -> Path:
    """Write `<model>.manifest.json` next to `model_path`; returns its path."""
    path = model_path.with_name(model_path.stem + MANIFEST_SUFFIXES[0])
    data = manifest.model_dump(mode="json", exclude_none=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def load_labels(model_path: Path, manifest: Manifest) -> Optional[List[str]]:
    if manifest.labels is None:
        return None
    path = model_path.parent / manifest.labels
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise EngineError(f"{path}: labels file named by the manifest cannot be read: {exc}") from None
