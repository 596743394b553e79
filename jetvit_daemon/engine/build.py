"""ONNX model → TensorRT engine plus manifest (`jetvit-daemon engine build`), on the board that will run it.

    plan = plan_build(BuildOptions(Path("vit_fp16.onnx")))     # the model's own precision (engine export --precision)
    engine = build_engine(plan)          # TensorRT's builder API, else trtexec, else TensorRTUnavailable
    print(trtexec_argv(plan, tensorrt_version="10.3.0"))       # what trtexec of that release would be given

Precision comes from the ONNX model (fp16 weights, or Q/DQ int8 from `engine export --precision`), which TensorRT
8.6, 10 and 11 build alike; the builder calls differ per release and are chosen from `tensorrt.__version__`
(names checked against the real bindings, tests/runners/trt_surfaces.json):

| release | network | fp16 model | int8 (Q/DQ) model | fp32 model + --precision fp16 / int8 |
|---|---|---|---|---|
| 8.6 | EXPLICIT_BATCH | FP16 flag | INT8 + FP16 flags | FP16 flag / INT8 flag + IInt8EntropyCalibrator2 |
| 10.x | STRONGLY_TYPED | - | - | FP16 flag / calibrator (deprecated since 10.1: warns) |
| 11.x | (always strongly typed) | - | - | refused: no precision flags, no calibration |

Two ways in: TensorRT's Python builder API (JetPack's python3-libnvinfer) or the `trtexec` tool JetPack installs
at /usr/src/tensorrt/bin, whose flags differ per release too (`--stronglyTyped` from 10, no `--fp16`/`--int8`/
`--calib` on 11). Either way the engine gets a `<engine>.manifest.json` recording the TensorRT version, GPU and
JetPack it was built on, its precision and how it was obtained, and the command that rebuilds it, which the
runner checks before loading. Every TensorRT failure is an EngineError saying how to retry. Functions with no
shared state: thread-safe.
"""

import contextlib
import importlib
import logging
import re
import shlex
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from jetvit_daemon.engine.calibration import calibration_batches as _batches
from jetvit_daemon.engine.calibration import calibration_images
from jetvit_daemon.errors import EngineError
from jetvit_daemon.hardware.commands import CommandRunner, SubprocessRunner
from jetvit_daemon.hardware.probe import detect_board
from jetvit_daemon.hardware.sysfs import SysfsTree
from jetvit_daemon.runners.engine_check import SystemFacts, version_key
from jetvit_daemon.runners.manifest import (
    BatchRange,
    BuildInfo,
    Manifest,
    PrecisionSource,
    load_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)

# JetPack's TensorRT package puts trtexec here, off PATH (L4T 32.x through 36.x, `dpkg -L libnvinfer-bin`).
TRTEXEC_PATHS = ("/usr/src/tensorrt/bin/trtexec",)
# A ViT-B/16 build on an Orin Nano takes minutes; INT8 calibration more. An hour is a stuck build.
BUILD_TIMEOUT_S = 3600.0
PRECISIONS = ("fp32", "fp16", "int8")
# How the engine gets its precision: from the model's own types ("graph"), or from builder flags on an fp32
# model ("builder-fp16", "implicit-calibration"), which TensorRT 11 no longer has.
ROUTES = ("graph", "builder-fp16", "implicit-calibration")
# trtexec's flags when its release cannot be found out here (no TensorRT, no libnvinfer): JetPack 6.1/6.2's.
DEFAULT_TRTEXEC_TARGET = "10.3.0"
# Where JetPack puts libnvinfer.so.<major>.<minor>.<patch> (dpkg -L libnvinfer10 / libnvinfer8).
LIBNVINFER_DIRS = ("/usr/lib/aarch64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/local/cuda/lib64")
ELEVEN_ADVICE = ("TensorRT 11 removed the FP16/INT8 builder flags and implicit INT8 calibration: carry the precision "
                 "in the model instead, `jetvit-daemon engine export ... --precision fp16` (or `--precision int8 "
                 "--calib-images DIR`), then build that model")


class TensorRTUnavailable(EngineError):
    """Neither TensorRT's Python API nor trtexec is here; `command` is the trtexec line to run on the board."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True)
class BuildOptions:
    """What `engine build` was asked for; None fields take defaults from the ONNX model's manifest.
    `plan_build(BuildOptions(Path("vit.onnx"), precision="int8", calib_images=Path("calib/")))`. Immutable."""

    onnx_path: Path
    engine_path: Optional[Path] = None  # default: <onnx stem>_<precision>[_dla<N>].engine next to the model
    precision: Optional[str] = None  # default: the model's (its manifest's `precision`)
    min_batch: Optional[int] = None
    opt_batch: Optional[int] = None
    max_batch: Optional[int] = None
    dla_core: Optional[int] = None
    calib_images: Optional[Path] = None
    calib_cache: Optional[Path] = None  # default: <engine stem>.calib next to the engine
    calib_max_images: int = 512
    calib_batch: int = 8
    workspace_mib: int = 1024
    tensorrt_version: Optional[str] = None  # the release trtexec's flags are for, where it cannot be found out


@dataclass(frozen=True)
class BuildPlan:
    """Options resolved against the ONNX model's manifest (made by `plan_build`): every field set, every
    combination checked. Immutable: thread-safe."""

    options: BuildOptions
    onnx_manifest: Manifest
    engine_path: Path
    min_batch: int
    opt_batch: int
    max_batch: int
    calib_cache: Optional[Path]
    precision: str = "fp32"  # the engine's
    route: str = "graph"  # one of ROUTES

    @property
    def dynamic(self) -> bool:
        return self.onnx_manifest.input.shape[0] == -1

    def shape(self, batch: int) -> Tuple[int, ...]:
        return (batch, *self.onnx_manifest.input.item_shape)


def plan_build(options: BuildOptions) -> BuildPlan:
    """Check the options against the model's manifest and fill in the defaults; EngineError naming the option."""
    onnx_path = Path(options.onnx_path)
    if onnx_path.suffix != ".onnx" or not onnx_path.is_file():
        raise EngineError(f"{onnx_path}: no ONNX model there (export one with `jetvit-daemon engine export`)")
    manifest = load_manifest(onnx_path)
    if manifest.framework != "onnx":
        raise EngineError(f"{onnx_path}: its manifest says framework {manifest.framework!r}, not onnx")
    precision, route = _route(onnx_path, manifest, options.precision)
    if options.dla_core is not None:
        if options.dla_core < 0:
            raise EngineError(f"--dla-core {options.dla_core}: DLA cores are numbered from 0")
        if precision == "fp32":
            # TensorRT developer guide, "Working with DLA": DLA runs FP16 and INT8 networks only.
            raise EngineError("--dla-core needs --precision fp16 or int8: the DLA has no FP32")
    fixed = manifest.input.shape[0]
    if fixed > 0:
        low = high = fixed
        if any(b is not None and b != fixed for b in (options.min_batch, options.opt_batch, options.max_batch)):
            raise EngineError(f"{onnx_path}: the model has a fixed batch of {fixed}; re-export it (dynamic batch) "
                              "to build other batch sizes")
        opt = fixed
    else:
        low = options.min_batch if options.min_batch is not None else manifest.batch.min
        high = options.max_batch if options.max_batch is not None else manifest.batch.max
        if not 1 <= low <= high:
            raise EngineError(f"--min-batch {low} --max-batch {high}: need 1 <= min <= max")
        opt = options.opt_batch if options.opt_batch is not None else min(high, max(low, 8))
        if not low <= opt <= high:
            raise EngineError(f"--opt-batch {opt} is outside --min-batch {low} .. --max-batch {high}")
    engine_path = Path(options.engine_path) if options.engine_path is not None else onnx_path.with_name(
        "{}_{}{}.engine".format(onnx_path.stem.replace(f"_{precision}", ""), precision,
                                "" if options.dla_core is None else f"_dla{options.dla_core}"))
    if engine_path.suffix not in (".engine", ".plan", ".trt"):
        raise EngineError(f"--out {engine_path}: name the engine *.engine (or .plan / .trt) so `runner: auto` "
                          "picks TensorRT for it")
    calib_cache = None
    if route == "implicit-calibration":
        calib_cache = Path(options.calib_cache) if options.calib_cache is not None else engine_path.with_suffix(
            ".calib")
        if options.calib_images is None and not calib_cache.is_file():
            raise EngineError("--precision int8 of an fp32 model needs --calib-images DIR (a folder of "
                              "representative images, a few hundred) or an existing calibration cache (--calib-cache; "
                              f"{calib_cache} is absent); or export an INT8 model with `engine export --precision "
                              "int8`, which every TensorRT release builds")
        if options.calib_images is not None and not Path(options.calib_images).is_dir():
            raise EngineError(f"--calib-images {options.calib_images}: not a directory")
    return BuildPlan(options=options, onnx_manifest=manifest, engine_path=engine_path, min_batch=low, opt_batch=opt,
                     max_batch=high, calib_cache=calib_cache, precision=precision, route=route)


def _route(onnx_path: Path, manifest: Manifest, asked: Optional[str]) -> Tuple[str, str]:
    """(engine precision, route): the model's precision, or an fp32 model built at fp16/int8 by builder flags."""
    model = manifest.precision
    precision = asked if asked is not None else model
    if precision not in PRECISIONS:
        raise EngineError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == model:
        return precision, "graph"
    if model != "fp32":
        how = manifest.precision_source.describe() if manifest.precision_source else "set at export"
        raise EngineError(f"{onnx_path}: the model is {model} ({how}); its precision was fixed by `engine export "
                          f"--precision {model}`: build it without --precision, or export it again with --precision "
                          f"{precision}")
    return precision, "builder-fp16" if precision == "fp16" else "implicit-calibration"


def check_route(plan: BuildPlan, tensorrt_version: str) -> None:
    """EngineError where this TensorRT release cannot build the plan's route (11: no precision flags)."""
    if plan.route != "graph" and version_key(tensorrt_version) >= (11,):
        raise EngineError(f"--precision {plan.precision} of the fp32 model {plan.options.onnx_path} needs TensorRT's "
                          f"{'FP16 builder flag' if plan.route == 'builder-fp16' else 'INT8 calibrator'}, and TensorRT "
                          f"{tensorrt_version} has none. {ELEVEN_ADVICE}")


def build_command(plan: BuildPlan) -> str:
    """The `jetvit-daemon engine build` line that reproduces this plan (absolute paths), for the manifest."""
    o = plan.options
    argv = ["jetvit-daemon", "engine", "build", str(Path(o.onnx_path).resolve()),
            "--out", str(plan.engine_path.resolve()), "--precision", plan.precision,
            "--min-batch", str(plan.min_batch), "--opt-batch", str(plan.opt_batch), "--max-batch", str(plan.max_batch)]
    if o.dla_core is not None:
        argv += ["--dla-core", str(o.dla_core)]
    if plan.route == "implicit-calibration":
        if o.calib_images is not None:
            argv += ["--calib-images", str(Path(o.calib_images).resolve())]
        if plan.calib_cache is not None:
            argv += ["--calib-cache", str(plan.calib_cache.resolve())]
    if o.workspace_mib != BuildOptions.workspace_mib:
        argv += ["--workspace-mib", str(o.workspace_mib)]
    return " ".join(shlex.quote(a) for a in argv)


def trtexec_argv(plan: BuildPlan, trtexec: str = "trtexec",
                 tensorrt_version: str = DEFAULT_TRTEXEC_TARGET) -> List[str]:
    """The trtexec command line for this plan, with only the flags trtexec of `tensorrt_version` accepts
    (`trtexec --help` of 8.6, 10.x and 11.x): a model carrying its precision is built `--stronglyTyped` on 10+,
    with `--fp16` (`--int8` for Q/DQ) on 8.x; `--fp16`/`--int8`/`--calib` exist up to 10.x only."""
    check_route(plan, tensorrt_version)
    o = plan.options
    name = plan.onnx_manifest.input.name
    argv = [trtexec, f"--onnx={o.onnx_path}", f"--saveEngine={plan.engine_path}"]
    if plan.dynamic:
        for flag, batch in (("min", plan.min_batch), ("opt", plan.opt_batch), ("max", plan.max_batch)):
            argv.append("--{}Shapes={}:{}".format(flag, name, "x".join(str(d) for d in plan.shape(batch))))
    major = version_key(tensorrt_version)[:1]
    if plan.route == "graph" and major >= (10,):
        argv.append("--stronglyTyped")
    elif plan.precision in ("fp16", "int8"):
        argv.append("--fp16")  # INT8 builds keep FP16 for the layers that have no INT8 kernel
        if plan.precision == "int8":
            argv.append("--int8")
        if plan.route == "implicit-calibration":
            argv.append(f"--calib={plan.calib_cache}")
    if o.dla_core is not None:
        argv += [f"--useDLACore={o.dla_core}", "--allowGPUFallback"]
    return argv


def trtexec_target(options: BuildOptions, tree: SysfsTree, trt: Any = None) -> Tuple[str, str]:
    """(TensorRT release trtexec's flags are for, how it was found): --tensorrt-version, the Python module, the
    installed libnvinfer.so.X.Y.Z, else DEFAULT_TRTEXEC_TARGET."""
    if options.tensorrt_version:
        return options.tensorrt_version, "--tensorrt-version"
    if trt is not None:
        return str(trt.__version__), "the installed tensorrt module"
    for folder in LIBNVINFER_DIRS:
        for path in tree.glob(folder + "/libnvinfer.so.*.*"):
            m = re.search(r"libnvinfer\.so\.(\d+\.\d+\.\d+)$", path)
            if m:
                return m.group(1), path
    return DEFAULT_TRTEXEC_TARGET, ("no TensorRT found here; JetPack 6.1/6.2's release (give --tensorrt-version "
                                    "for another)")


def engine_manifest(plan: BuildPlan, facts: SystemFacts, source: Optional[PrecisionSource] = None) -> Manifest:
    """The manifest of the built engine: the ONNX model's, plus precision (and how, where the builder set it),
    batch range and build facts."""
    src = plan.onnx_manifest
    build: BuildInfo = facts.build_info(plan.options.dla_core, Path(plan.options.onnx_path).name, build_command(plan))
    return src.model_copy(update={
        "framework": "tensorrt",
        "precision": plan.precision,
        "precision_source": source if source is not None else src.precision_source,
        "batch": BatchRange(min=plan.min_batch, max=plan.max_batch),
        "build": build,
    })


def probe_facts(trt: Any, cuda: Any, tree: SysfsTree, runtime: Any = None) -> SystemFacts:
    """This system's TensorRT version, GPU (through pycuda, if installed), L4T/JetPack and DLA cores."""
    cc: Optional[Tuple[int, int]] = None
    name = None
    if cuda is not None:
        try:
            cuda.init()
            device = cuda.Device(0)
            major, minor = device.compute_capability()
            cc, name = (int(major), int(minor)), str(device.name())
        except cuda.Error as exc:
            log.warning("CUDA device 0 cannot be queried (%s); the manifest will not name the GPU", exc)
    board = detect_board(tree)
    return SystemFacts(
        tensorrt_version=str(trt.__version__) if trt is not None else None,
        compute_capability=cc, gpu_name=name,
        soc=board.soc if board else None,
        l4t_release=board.l4t_release if board else None,
        jetpack=board.jetpack if board else None,
        dla_cores=int(runtime.num_DLA_cores) if runtime is not None else None,
    )


def find_trtexec(tree: SysfsTree) -> Optional[str]:
    """trtexec on PATH, else JetPack's install location; None if neither."""
    found = shutil.which("trtexec")
    if found:
        return found
    for path in TRTEXEC_PATHS:
        if tree.exists(path):
            return path
    return None


def build_engine(
    plan: BuildPlan,
    *,
    method: str = "auto",
    trt_module: Any = None,
    cuda_module: Any = None,
    commands: Optional[CommandRunner] = None,
    tree: Optional[SysfsTree] = None,
    trtexec: Optional[str] = None,
) -> Path:
    """Build the engine and write its manifest; returns the engine path.

    method: `api` (TensorRT's Python builder), `trtexec`, or `auto` (the API if `tensorrt` imports, else trtexec
    if found). Raises TensorRTUnavailable (with the trtexec command line) when neither is here."""
    tree = tree if tree is not None else SysfsTree("/")
    if method not in ("auto", "api", "trtexec"):
        raise EngineError(f"--with {method!r}: choose auto, api or trtexec")
    trt = trt_module
    if trt is None and method in ("auto", "api"):
        try:
            trt = importlib.import_module("tensorrt")
        except ImportError:
            trt = None
    if trt is not None and method != "trtexec":
        return _build_with_api(plan, trt, cuda_module, tree)
    tool = trtexec or find_trtexec(tree)
    version, found = trtexec_target(plan.options, tree)
    if tool is None or method == "api":
        command = " ".join(shlex.quote(a) for a in trtexec_argv(plan, tensorrt_version=version))
        what = "TensorRT's Python API" if method == "api" else "TensorRT (neither its Python API nor trtexec)"
        raise TensorRTUnavailable(
            f"{what} is not installed here, so the engine cannot be built on this machine. Engines are built on "
            "the board that runs them: copy the .onnx and its .manifest.json there and run `jetvit-daemon engine "
            "build` there; it uses TensorRT's Python API, or runs trtexec itself, and writes the engine's manifest. "
            f"The trtexec command above has the flags of TensorRT {version} ({found})", command)
    return _build_with_trtexec(plan, tool, commands or SubprocessRunner(), tree, version)


# -- TensorRT builder API -----------------------------------------------------------------------------------


def retry_advice(plan: BuildPlan) -> str:
    """What to do after a TensorRT failure: the command to re-run once the cause is fixed."""
    return ("Check that the GPU is usable (tegrastats shows GR3D; the user is in the video and render groups; "
            "nothing else holds the GPU's memory), then build again with:\n  " + build_command(plan))


@contextlib.contextmanager
def tensorrt_errors(plan: BuildPlan, trt: Any, logger: Any, what: str) -> Iterator[None]:
    """Turn what TensorRT raises (RuntimeError, TypeError from a failed factory, a name this release lacks) into
    an EngineError naming the step, TensorRT's own last errors and the retry advice."""
    from jetvit_daemon.runners.trt_runner import recent_errors

    try:
        yield
    except EngineError:
        raise
    except (RuntimeError, TypeError, ValueError, AttributeError, MemoryError) as exc:
        raise EngineError(f"{plan.options.onnx_path}: TensorRT {getattr(trt, '__version__', '?')} failed to {what}: "
                          f"{exc}{recent_errors(logger)}. {retry_advice(plan)}") from None


def _build_with_api(plan: BuildPlan, trt: Any, cuda: Any, tree: SysfsTree) -> Path:
    from jetvit_daemon.runners.trt_runner import PYCUDA_HINT, trt_logger

    o = plan.options
    check_route(plan, str(trt.__version__))
    if cuda is None:
        try:
            cuda = importlib.import_module("pycuda.driver")
        except ImportError:
            if plan.route == "implicit-calibration" and o.calib_images is not None:
                raise EngineError(f"INT8 calibration feeds images to the GPU through pycuda: {PYCUDA_HINT}") from None
            cuda = None
    logger = trt_logger(trt)
    logger.errors.clear()
    with tensorrt_errors(plan, trt, logger, "create its builder and runtime (no usable GPU?)"):
        builder = trt.Builder(logger)
        runtime = trt.Runtime(logger)
    facts = probe_facts(trt, cuda, tree, runtime)
    if o.dla_core is not None and facts.dla_cores is not None and o.dla_core >= facts.dla_cores:
        raise EngineError(f"--dla-core {o.dla_core}: this system has {facts.dla_cores} DLA core(s)")
    # The calibrator copies batches with pycuda's driver API, which needs a current context on this thread: the
    # device's primary context, the one TensorRT's runtime API works in.
    ctx = cuda.Device(0).retain_primary_context() if cuda is not None else None
    if ctx is not None:
        ctx.push()
    try:
        with tensorrt_errors(plan, trt, logger, "build the engine"):
            serialized, source = _run_builder(plan, trt, cuda, builder, logger)
    finally:
        if ctx is not None:
            ctx.pop()
            ctx.detach()
    plan.engine_path.parent.mkdir(parents=True, exist_ok=True)
    plan.engine_path.write_bytes(serialized)
    _finish(plan, facts, source)
    return plan.engine_path


def _network_flags(plan: BuildPlan, trt: Any) -> int:
    """8.x: EXPLICIT_BATCH (ONNX models have one; 10 makes it the only mode and 11 removes the name). 10.x: a model
    carrying its precision is built STRONGLY_TYPED, every layer in the graph's own types. 11: always strongly
    typed (the flag is deprecated and ignored there, so it is not passed)."""
    version = version_key(str(trt.__version__))
    creation = trt.NetworkDefinitionCreationFlag
    if version < (10,):
        return 1 << int(creation.EXPLICIT_BATCH)
    if version < (11,) and plan.route == "graph":
        return 1 << int(creation.STRONGLY_TYPED)
    return 0


def _precision_flags(plan: BuildPlan, trt: Any) -> List[Any]:
    """Builder flags for the plan (none for a strongly typed network): a weakly typed network runs float16 layers
    only with FP16 set, Q/DQ layers only with INT8 set (TensorRT 8.6 developer guide, "Explicit Quantization")."""
    if plan.precision == "fp32" or (plan.route == "graph" and version_key(str(trt.__version__)) >= (10,)):
        return []
    flags = [trt.BuilderFlag.FP16]  # INT8 builds keep FP16 for the layers that have no INT8 kernel
    if plan.precision == "int8":
        flags.append(trt.BuilderFlag.INT8)
    return flags


def _run_builder(plan: BuildPlan, trt: Any, cuda: Any, builder: Any, logger: Any
                 ) -> Tuple[bytes, Optional[PrecisionSource]]:
    from jetvit_daemon.runners.trt_runner import recent_errors

    o = plan.options
    network = builder.create_network(_network_flags(plan, trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(o.onnx_path).read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineError("{}: TensorRT {} cannot parse the ONNX model: {}".format(
            o.onnx_path, trt.__version__, "; ".join(errors) or "no reason given"))
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):  # TensorRT 8.4+ (max_workspace_size is gone in 10)
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, o.workspace_mib << 20)
    else:
        config.max_workspace_size = o.workspace_mib << 20
    for flag in _precision_flags(plan, trt):
        config.set_flag(flag)
    name = plan.onnx_manifest.input.name
    if plan.dynamic:
        profile = builder.create_optimization_profile()
        profile.set_shape(name, plan.shape(plan.min_batch), plan.shape(plan.opt_batch), plan.shape(plan.max_batch))
        config.add_optimization_profile(profile)
    calibrator = None
    if plan.route == "implicit-calibration":
        calibrator = _attach_calibrator(plan, trt, cuda, builder, config)
    if o.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = o.dla_core
        # Layers the DLA cannot run go to the GPU, silently (TensorRT developer guide, "GPU Fallback Mode").
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    log.info("building %s from %s with TensorRT %s (%s, %s, batch %d/%d/%d)%s; this takes minutes", plan.engine_path,
             o.onnx_path, trt.__version__, plan.precision, plan.route, plan.min_batch, plan.opt_batch, plan.max_batch,
             "" if o.dla_core is None else f" on DLA core {o.dla_core}")
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.release()
    if serialized is None:
        raise EngineError(f"{o.onnx_path}: TensorRT could not build the engine{recent_errors(logger)}. "
                          f"{retry_advice(plan)}")
    source = None
    if plan.route == "builder-fp16":
        source = PrecisionSource(method="builder-fp16")
    elif calibrator is not None:
        source = PrecisionSource(method="implicit-calibration", calibration_images=calibrator.used or None,
                                 calibration_method="entropy")
    return bytes(serialized), source


def _attach_calibrator(plan: BuildPlan, trt: Any, cuda: Any, builder: Any, config: Any) -> Any:
    """TensorRT 8.x/10.x implicit INT8 calibration (IInt8EntropyCalibrator2 over the folder or the cache). 10.1
    deprecated it, and its calls warn there: that is known and said once, not raised."""
    deprecated = version_key(str(trt.__version__)) >= (10, 1)
    if deprecated:
        log.warning("implicit INT8 calibration is deprecated in TensorRT %s and gone in 11: export an INT8 model "
                    "instead (`engine export --precision int8 --calib-images DIR`)", trt.__version__)
    with warnings.catch_warnings():
        if deprecated:
            warnings.simplefilter("ignore", DeprecationWarning)
        calibrator = _make_calibrator(trt, cuda, plan)
        config.int8_calibrator = calibrator
        if plan.dynamic:
            batch = min(max(plan.options.calib_batch, plan.min_batch), plan.max_batch)
            calib_profile = builder.create_optimization_profile()
            calib_profile.set_shape(plan.onnx_manifest.input.name, plan.shape(batch), plan.shape(batch),
                                    plan.shape(batch))
            config.set_calibration_profile(calib_profile)
    return calibrator


def calibration_batches(plan: BuildPlan, batch: int) -> Iterator[np.ndarray]:
    """Batches of the plan's calibration images preprocessed exactly as the daemon will feed the engine."""
    assert plan.options.calib_images is not None
    files = calibration_images(plan.options.calib_images, plan.options.calib_max_images)
    return _batches(plan.onnx_manifest, files, batch)


def _make_calibrator(trt: Any, cuda: Any, plan: BuildPlan) -> Any:
    """An IInt8EntropyCalibrator2 over the calibration folder that reads/writes the calibration cache."""
    assert plan.calib_cache is not None
    cache_path: Path = plan.calib_cache
    batch = min(max(plan.options.calib_batch, plan.min_batch), plan.max_batch)
    images = plan.options.calib_images
    if images is not None:
        found = len(calibration_images(images, plan.options.calib_max_images))
        if found < batch:
            raise EngineError(f"--calib-images {images}: {found} image(s), fewer than one calibration batch of "
                              f"{batch}; NVIDIA suggests about 500 representative images")
    shape = plan.shape(batch)
    dtype = np.dtype(plan.onnx_manifest.input.dtype)

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = calibration_batches(plan, batch) if images is not None else iter(())
            self._device: Any = None
            self.used = 0

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            data = next(self._batches, None)
            if data is None:
                return None
            if self._device is None:
                self._device = cuda.mem_alloc(int(np.prod(shape)) * dtype.itemsize)
            cuda.memcpy_htod(self._device, np.ascontiguousarray(data, dtype=dtype))
            self.used += len(data)
            return [int(self._device)]

        def read_calibration_cache(self) -> Optional[bytes]:
            if images is None and cache_path.is_file():
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_bytes(bytes(cache))
            log.info("INT8 calibration cache (%d images) written to %s", self.used, cache_path)

        def release(self) -> None:
            if self._device is not None:
                self._device.free()
                self._device = None

    return _Calibrator()


# -- trtexec ------------------------------------------------------------------------------------------------

# trtexec's first line: "&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # ..." (8.x: major*1000+minor*100+patch,
# 10.x: major*10000+minor*100+patch, e.g. v100300).
_TRTEXEC_VERSION_RE = re.compile(r"TensorRT\.trtexec \[TensorRT v(\d+)\]")
_TRTEXEC_CC_RE = re.compile(r"Compute Capability:\s*(\d+)\.(\d+)")
_TRTEXEC_DEVICE_RE = re.compile(r"Selected Device:\s*(.+)")


def parse_trtexec_version(number: str) -> str:
    value = int(number)
    if value >= 100000:
        major, rest = divmod(value, 10000)
    else:
        major, rest = divmod(value, 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def _build_with_trtexec(plan: BuildPlan, tool: str, commands: CommandRunner, tree: SysfsTree, version: str) -> Path:
    if plan.route == "implicit-calibration" and (plan.calib_cache is None or not plan.calib_cache.is_file()):
        raise EngineError("trtexec cannot calibrate INT8 from a folder of images (it would calibrate on random "
                          "data); build with TensorRT's Python API (JetPack's python3-libnvinfer in the venv) or "
                          "give --calib-cache made by such a build; or export an INT8 model (`engine export "
                          "--precision int8`), which trtexec builds as it is")
    argv = trtexec_argv(plan, tool, tensorrt_version=version)
    log.info("running %s", " ".join(shlex.quote(a) for a in argv))
    plan.engine_path.parent.mkdir(parents=True, exist_ok=True)
    result = commands.run(argv, BUILD_TIMEOUT_S)
    output = result.stdout + "\n" + result.stderr
    if not result.ok or not plan.engine_path.is_file():
        tail = "\n".join(output.strip().splitlines()[-8:])
        raise EngineError(f"{result.describe()}; the engine was not built:\n{tail}")
    printed = _TRTEXEC_VERSION_RE.search(output)
    cc = _TRTEXEC_CC_RE.search(output)
    device = _TRTEXEC_DEVICE_RE.search(output)
    board = detect_board(tree)
    facts = SystemFacts(
        tensorrt_version=parse_trtexec_version(printed.group(1)) if printed else None,
        compute_capability=(int(cc.group(1)), int(cc.group(2))) if cc else None,
        gpu_name=device.group(1).strip() if device else None,
        soc=board.soc if board else None,
        l4t_release=board.l4t_release if board else None,
        jetpack=board.jetpack if board else None,
    )
    if facts.tensorrt_version is None:
        log.warning("trtexec did not print its TensorRT version; the manifest records it as unknown and the runner "
                    "will refuse the engine until it is rebuilt with `engine build`")
    source = {"builder-fp16": PrecisionSource(method="builder-fp16"),
              "implicit-calibration": PrecisionSource(method="implicit-calibration", calibration_method="entropy")
              }.get(plan.route)
    _finish(plan, facts, source)
    return plan.engine_path


def _finish(plan: BuildPlan, facts: SystemFacts, source: Optional[PrecisionSource] = None) -> None:
    manifest = engine_manifest(plan, facts, source)
    src = plan.onnx_manifest
    if src.labels:
        labels = Path(plan.options.onnx_path).parent / src.labels
        target = plan.engine_path.parent / src.labels
        if labels.is_file() and labels.resolve() != target.resolve():
            shutil.copyfile(str(labels), str(target))
    path = write_manifest(plan.engine_path, manifest)
    how = manifest.precision_source.describe() if manifest.precision_source else "precision source unrecorded"
    log.info("wrote %s (%s: %s; %s) and %s", plan.engine_path, manifest.precision, how, facts.device_text(), path.name)

