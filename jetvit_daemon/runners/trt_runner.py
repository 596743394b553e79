"""TensorRT runner for Jetson boards: a prebuilt engine driven with pycuda.

Both TensorRT Python APIs are spoken, chosen by what the loaded engine offers (never by a version number):
- the tensor-name API, TensorRT 8.5 and later (JetPack 5.1: 8.5.2; 6.0: 8.6.2; 6.1 and 6.2: 10.3; 7: 10.x):
  `set_input_shape`, `set_tensor_address`, `execute_async_v3`. 8.5/8.6 still carry the binding API, but
  deprecated (its calls emit DeprecationWarning), so the name API wins where both exist;
- the binding-index API, TensorRT 8.0 to 8.4 (JetPack 4.6: 8.2.1): `set_binding_shape`,
  `execute_async_v2(bindings, stream_handle)`. TensorRT 10 removed it.

Buffers are allocated once, for the largest batch the engine takes (its optimisation profile's max, or its
fixed batch): page-locked host buffers and device buffers, one CUDA stream, copy in → execute → copy out
asynchronously, one synchronize. A batch smaller than the engine's minimum is zero-padded and the padding's
outputs dropped. In the inference worker the shared slots are page-locked too (`pin_host_memory`, where pycuda
can): a batch is then copied to the GPU straight from its slot and the outputs straight into the slot
(`infer_into`), with no host copy through the runner's own buffers; where it cannot, the reason is logged and
batches take that one extra copy each way. The CUDA context is the device's primary context (the one
TensorRT's runtime API uses), pushed around every call, so `infer` works from the pipeline's thread although
the runner was built on another.

It runs in the inference worker, on JetPack 4.6's Python 3.6 too: given `manifest` (a `PlainManifest` there)
and `board_facts`, it imports neither the pydantic manifest nor the board probe.
"""

import collections
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Type

import numpy as np

from jetvit_daemon.errors import EngineError
from jetvit_daemon.runners.base import Runner, RunnerInfo
from jetvit_daemon.runners.engine_check import SystemFacts, check_engine_manifest, rebuild_command

if TYPE_CHECKING:
    from jetvit_daemon.hardware.sysfs import SysfsTree
    from jetvit_daemon.runners.manifest import Manifest

log = logging.getLogger(__name__)

TENSORRT_HINT = ("TensorRT's Python bindings come with JetPack (package python3-libnvinfer): create the daemon's "
                 "venv with --system-site-packages so it sees them")
PYCUDA_HINT = ("pip install pycuda, or pip install 'jetvit-daemon[tensorrt]' (it compiles against JetPack's CUDA: "
               "put /usr/local/cuda/bin on PATH first)")


def import_tensorrt() -> Any:
    """The `tensorrt` module, or EngineError saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise EngineError(f"TensorRT is not available here ({exc}): {TENSORRT_HINT}") from None
    return tensorrt


def import_pycuda() -> Any:
    """`pycuda.driver`, or EngineError saying how to get it."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise EngineError(f"pycuda is not available here ({exc}): {PYCUDA_HINT}") from None
    return cuda


# TensorRT treats the logger as a process-wide singleton (TensorRT 8 Python API: "multiple instances of Runtime
# and/or Builder must all use the same logger"): one per imported tensorrt module.
_LOGGERS: Dict[int, Any] = {}
_LOGGERS_LOCK = threading.Lock()


def trt_logger(trt: Any) -> Any:
    """The `trt.ILogger` that sends TensorRT's messages to the `logging` module and keeps its last errors
    (`.errors`) for error messages. TensorRT may call it from its own threads: deque appends are atomic."""
    with _LOGGERS_LOCK:
        existing = _LOGGERS.get(id(trt))
        if existing is not None:
            return existing
        severity = trt.ILogger.Severity

        class _Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: Deque[str] = collections.deque(maxlen=8)

            def log(self, sev: Any, msg: str) -> None:
                if sev in (severity.INTERNAL_ERROR, severity.ERROR):
                    self.errors.append(msg)
                    log.error("TensorRT: %s", msg)
                elif sev == severity.WARNING:
                    log.warning("TensorRT: %s", msg)
                elif sev == severity.INFO:
                    log.debug("TensorRT: %s", msg)

        logger = _Logger()
        _LOGGERS[id(trt)] = logger
        return logger


def recent_errors(logger: Any) -> str:
    """The logger's last errors as a suffix for an error message ("; TensorRT said: ..."), or ""."""
    errors = list(getattr(logger, "errors", ()))
    return ("; TensorRT said: " + " | ".join(errors[-3:])) if errors else ""


class IoTensor:
    """One engine input or output as TensorRT describes it (shape -1 where dynamic). Immutable by convention;
    hashed by identity (each is made once per engine)."""

    __slots__ = ("dtype", "index", "is_input", "name", "shape")

    def __init__(self, name: str, index: int, is_input: bool, shape: Tuple[int, ...], dtype: np.dtype) -> None:
        self.name = name
        self.index = index  # binding index (binding API) or position among the I/O tensors (name API)
        self.is_input = is_input
        self.shape = shape
        self.dtype = dtype


class _TensorNameApi:
    """TensorRT 8.5+ and 10.x: tensors by name, addresses bound on the context, `execute_async_v3`."""

    label = "tensor-name API (execute_async_v3)"
    engine_needs = ("num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape", "get_tensor_dtype",
                    "get_tensor_profile_shape")
    context_needs = ("set_input_shape", "get_tensor_shape", "set_tensor_address", "execute_async_v3")

    def __init__(self, trt: Any, engine: Any, context: Any) -> None:
        self._trt, self._engine, self._context = trt, engine, context

    def io_tensors(self) -> List[IoTensor]:
        tensors = []
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            tensors.append(IoTensor(
                name=name, index=i,
                is_input=self._engine.get_tensor_mode(name) == self._trt.TensorIOMode.INPUT,
                shape=tuple(int(d) for d in self._engine.get_tensor_shape(name)),
                dtype=np.dtype(self._trt.nptype(self._engine.get_tensor_dtype(name))),
            ))
        return tensors

    def profile_shapes(self, tensor: IoTensor) -> Tuple[Tuple[int, ...], ...]:
        return tuple(tuple(int(d) for d in s) for s in self._engine.get_tensor_profile_shape(tensor.name, 0))

    def set_input_shape(self, tensor: IoTensor, shape: Tuple[int, ...]) -> bool:
        return bool(self._context.set_input_shape(tensor.name, shape))

    def output_shape(self, tensor: IoTensor) -> Tuple[int, ...]:
        return tuple(int(d) for d in self._context.get_tensor_shape(tensor.name))

    def bind(self, addresses: Dict[IoTensor, int]) -> None:
        for tensor, address in addresses.items():
            if not self._context.set_tensor_address(tensor.name, address):
                raise EngineError(f"TensorRT refused the device address of tensor {tensor.name!r}")

    def execute(self, stream_handle: int) -> bool:
        return bool(self._context.execute_async_v3(stream_handle=stream_handle))


class _BindingApi:
    """TensorRT 8.0–8.4: binding indices, a bindings list of device addresses, `execute_async_v2`."""

    label = "binding API (execute_async_v2)"
    engine_needs = ("num_bindings", "get_binding_name", "binding_is_input", "get_binding_shape", "get_binding_dtype",
                    "get_profile_shape", "num_optimization_profiles")
    context_needs = ("set_binding_shape", "get_binding_shape", "execute_async_v2")

    def __init__(self, trt: Any, engine: Any, context: Any) -> None:
        self._trt, self._engine, self._context = trt, engine, context
        if getattr(engine, "has_implicit_batch_dimension", False):
            raise EngineError("an implicit-batch engine (TensorRT's pre-ONNX UFF/Caffe path): rebuild it from the "
                              "ONNX model, which gives an explicit batch axis")
        # With several optimisation profiles the bindings repeat per profile; the runner uses profile 0, the
        # first num_bindings / num_profiles of them, and passes 0 for the rest.
        self._bindings: List[int] = [0] * int(engine.num_bindings)
        self._per_profile = int(engine.num_bindings) // max(1, int(engine.num_optimization_profiles))

    def io_tensors(self) -> List[IoTensor]:
        return [IoTensor(
            name=self._engine.get_binding_name(i), index=i,
            is_input=bool(self._engine.binding_is_input(i)),
            shape=tuple(int(d) for d in self._engine.get_binding_shape(i)),
            dtype=np.dtype(self._trt.nptype(self._engine.get_binding_dtype(i))),
        ) for i in range(self._per_profile)]

    def profile_shapes(self, tensor: IoTensor) -> Tuple[Tuple[int, ...], ...]:
        return tuple(tuple(int(d) for d in s) for s in self._engine.get_profile_shape(0, tensor.index))

    def set_input_shape(self, tensor: IoTensor, shape: Tuple[int, ...]) -> bool:
        return bool(self._context.set_binding_shape(tensor.index, shape))

    def output_shape(self, tensor: IoTensor) -> Tuple[int, ...]:
        return tuple(int(d) for d in self._context.get_binding_shape(tensor.index))

    def bind(self, addresses: Dict[IoTensor, int]) -> None:
        for tensor, address in addresses.items():
            self._bindings[tensor.index] = address

    def execute(self, stream_handle: int) -> bool:
        return bool(self._context.execute_async_v2(bindings=self._bindings, stream_handle=stream_handle))


_ApiType = Type[Any]
_APIS: Sequence[_ApiType] = (_TensorNameApi, _BindingApi)


def select_api(trt: Any, engine: Any, context: Any) -> Any:
    """The API adapter for this engine: the name API where the engine and context have all of it, else the
    binding API; EngineError when neither is complete (TensorRT older than 8.0)."""
    for api in _APIS:
        if all(hasattr(engine, a) for a in api.engine_needs) and all(hasattr(context, a) for a in api.context_needs):
            return api(trt, engine, context)
    raise EngineError(
        "TensorRT {} offers neither the tensor-name API (8.5+) nor the binding API (8.0+) the runner speaks: "
        "use JetPack 4.6 or later".format(getattr(trt, "__version__", "?")))


class _Buffer:
    def __init__(self, tensor: IoTensor, item_shape: Tuple[int, ...], host: np.ndarray, device: Any) -> None:
        self.tensor = tensor
        self.item_shape = item_shape
        self.host = host  # page-locked, flat, room for the largest batch
        self.device = device  # pycuda DeviceAllocation
        self.item_size = int(np.prod(self.item_shape, dtype=np.int64))


def probe_board_facts(tree: Optional["SysfsTree"] = None) -> Dict[str, Optional[str]]:
    """What the engine check needs of the board ({soc, l4t_release, jetpack}; None values off a Jetson), probed
    from `tree` (default `/`). Daemon side only: the probe needs Python 3.8."""
    from jetvit_daemon.hardware.probe import detect_board
    from jetvit_daemon.hardware.sysfs import SysfsTree

    board = detect_board(tree if tree is not None else SysfsTree("/"))
    return {"soc": board.soc if board else None, "l4t_release": board.l4t_release if board else None,
            "jetpack": board.jetpack if board else None}


class TensorRTRunner(Runner):
    """Runs a serialised TensorRT engine with pycuda. `infer` from one thread at a time (any thread).

    >>> runner = TensorRTRunner(Path("vit_fp16.engine"))     # doctest: +SKIP
    >>> runner.infer(batch)["logits"]                        # doctest: +SKIP

    `trt_module`, `cuda_module` and `tree` are seams for tests (stand-ins of `tensorrt`, `pycuda.driver` and the
    board's files); by default the real modules and `/`. `board_facts` ({soc, l4t_release, jetpack}, values
    None off a Jetson) replaces the probe of `tree`: the worker gets them from the daemon.
    """

    def __init__(
        self,
        model_path: Path,
        device_id: int = 0,
        *,
        trt_module: Any = None,
        cuda_module: Any = None,
        tree: Optional["SysfsTree"] = None,
        manifest: Optional["Manifest"] = None,
        board_facts: Optional[Mapping[str, Optional[str]]] = None,
    ) -> None:
        self.model_path = Path(model_path)
        if manifest is None:
            from jetvit_daemon.runners.manifest import load_manifest

            manifest = load_manifest(self.model_path)
        self.manifest = manifest
        self._trt = trt_module if trt_module is not None else import_tensorrt()
        self._cuda = cuda_module if cuda_module is not None else import_pycuda()
        self._closed = False
        self._ctx: Any = None
        self._buffers: List[_Buffer] = []
        self._engine: Any = None
        self._context: Any = None
        self._pinned: Any = None  # the array register_host_memory returned; its .base is the registration
        self._pinned_range = (0, 0)  # [start, end) addresses of the page-locked region
        cuda = self._cuda
        try:
            cuda.init()
            device = cuda.Device(device_id)
            major, minor = device.compute_capability()
            gpu_name = str(device.name())
        except cuda.Error as exc:
            raise EngineError(f"{self.model_path}: CUDA device {device_id} cannot be opened: {exc}") from None
        self._logger = trt_logger(self._trt)
        try:
            self._runtime = self._trt.Runtime(self._logger)
        except (RuntimeError, TypeError) as exc:  # a pybind11 factory that got NULL from libnvinfer raises TypeError
            raise EngineError(
                f"{self.model_path}: TensorRT {self._trt.__version__} cannot create its runtime on GPU {gpu_name} "
                f"({exc}{recent_errors(self._logger)}): the CUDA driver or the GPU is not usable (is another process "
                "holding all of its memory? is the user in the video and render groups?). If the board's JetPack "
                "changed since the engine was built, rebuild it with:\n  "
                f"{rebuild_command(self.model_path, self.manifest)}") from None
        board = dict(board_facts) if board_facts is not None else probe_board_facts(tree)
        self.facts = SystemFacts(
            tensorrt_version=str(self._trt.__version__),
            compute_capability=(int(major), int(minor)),
            gpu_name=gpu_name,
            soc=board.get("soc"),
            l4t_release=board.get("l4t_release"),
            jetpack=board.get("jetpack"),
            dla_cores=int(self._runtime.num_DLA_cores),
        )
        check_engine_manifest(self.model_path, self.manifest, self.facts)
        data = self._read_engine()
        self._ctx = device.retain_primary_context()
        self._ctx.push()
        try:
            self._load(data)
        except BaseException:
            self._free()
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None
            raise
        self._ctx.pop()

    # -- loading --------------------------------------------------------------------------------------------
    def _read_engine(self) -> bytes:
        try:
            data = self.model_path.read_bytes()
        except OSError as exc:
            raise EngineError(f"{self.model_path}: cannot read the engine: {exc.strerror or exc}") from None
        if not data:
            raise EngineError(f"{self.model_path}: the engine file is empty (an interrupted copy?); rebuild it "
                              f"with:\n  {rebuild_command(self.model_path, self.manifest)}")
        return data

    def _load(self, data: bytes) -> None:
        build = self.manifest.build
        self.dla_core = build.dla_core if build is not None else None
        if self.dla_core is not None:
            # A DLA engine runs on the core the runtime names; it must be set before deserialising.
            self._runtime.DLA_core = self.dla_core
        self._logger.errors.clear()
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise EngineError(
                f"{self.model_path}: TensorRT {self.facts.tensorrt_version} cannot deserialise this engine "
                f"({len(data):,} bytes): the file is corrupt or truncated (compare its size with the original), or "
                f"not an engine for this TensorRT{recent_errors(self._logger)}. Rebuild it with:\n"
                f"  {rebuild_command(self.model_path, self.manifest)}")
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise EngineError(f"{self.model_path}: TensorRT could not create an execution context (out of GPU "
                              f"memory?){recent_errors(self._logger)}")
        self._api = select_api(self._trt, engine, self._context)
        tensors = self._api.io_tensors()
        self._input = self._check_input([t for t in tensors if t.is_input])
        outputs = [t for t in tensors if not t.is_input]
        missing = [n for n in self.manifest.outputs if n not in [t.name for t in outputs]]
        if missing:
            raise EngineError(f"{self.model_path}: manifest outputs {missing} are not in the engine (it has "
                              f"{[t.name for t in outputs]})")
        self._min_batch, self._max_batch, self._dynamic = self._batch_range(self._input)
        if (self._min_batch, self._max_batch) != (self.manifest.batch.min, self.manifest.batch.max):
            log.warning("%s: the engine takes batch %d..%d, the manifest says %d..%d; using the engine's",
                        self.model_path, self._min_batch, self._max_batch, self.manifest.batch.min,
                        self.manifest.batch.max)
        self._allocate(outputs)
        self._stream = self._cuda.Stream()
        log.info("TensorRT %s engine %s: %s, batch %d..%d%s, on %s", self.facts.tensorrt_version,
                 self.model_path.name, self._api.label, self._min_batch, self._max_batch,
                 " (dynamic)" if self._dynamic else " (fixed)", self._device_text())

    def _check_input(self, inputs: List[IoTensor]) -> IoTensor:
        if len(inputs) != 1:
            raise EngineError(f"{self.model_path}: the engine has {len(inputs)} inputs {[t.name for t in inputs]}; "
                              "the daemon feeds exactly one image tensor")
        (tensor,) = inputs
        spec = self.manifest.input
        if tensor.name != spec.name:
            raise EngineError(f"{self.model_path}: the engine's input is {tensor.name!r}, the manifest names "
                              f"{spec.name!r}")
        if len(tensor.shape) != len(spec.shape) or tensor.shape[1:] != spec.item_shape:
            raise EngineError(f"{self.model_path}: the engine's input shape is {list(tensor.shape)}, the manifest "
                              f"says {spec.shape} (only the batch axis may differ or be dynamic)")
        if tensor.dtype.name != spec.dtype:
            raise EngineError(f"{self.model_path}: the engine's input is {tensor.dtype.name}, the manifest says "
                              f"{spec.dtype}")
        return tensor

    def _batch_range(self, tensor: IoTensor) -> Tuple[int, int, bool]:
        if tensor.shape[0] != -1:
            return tensor.shape[0], tensor.shape[0], False
        shapes = self._api.profile_shapes(tensor)
        if len(shapes) != 3:
            raise EngineError(f"{self.model_path}: the engine has no optimisation profile for its dynamic input "
                              f"{tensor.name!r}")
        low, _, high = shapes
        item = tensor.shape[1:]
        if low[1:] != item or high[1:] != item:
            raise EngineError(f"{self.model_path}: the engine's profile lets input dims other than the batch vary "
                              f"(min {list(low)}, max {list(high)}); build it with only the batch dynamic")
        return low[0], high[0], True

    def _allocate(self, outputs: List[IoTensor]) -> None:
        cuda = self._cuda
        top = self._max_batch
        if self._dynamic and not self._api.set_input_shape(self._input, (top, *self._input.shape[1:])):
            raise EngineError(f"{self.model_path}: TensorRT refused input shape {[top, *self._input.shape[1:]]}"
                              f"{recent_errors(self._logger)}")
        self._current_batch = top
        shapes = {self._input: (top, *self._input.shape[1:])}
        for tensor in outputs:
            shape = self._api.output_shape(tensor) if self._dynamic else tensor.shape
            if len(shape) < 1 or shape[0] != top or any(d < 1 for d in shape):
                raise EngineError(f"{self.model_path}: output {tensor.name!r} has shape {list(shape)} for a batch "
                                  f"of {top}; the runner needs the batch as the first axis of every output")
            shapes[tensor] = shape
        for tensor, shape in shapes.items():
            host = cuda.pagelocked_empty(int(np.prod(shape, dtype=np.int64)), tensor.dtype)
            self._buffers.append(_Buffer(tensor, shape[1:], host, cuda.mem_alloc(host.nbytes)))
        self._api.bind({b.tensor: int(b.device) for b in self._buffers})
        self._in_buf = self._buffers[0]
        self._out_bufs = self._buffers[1:]

    # -- running --------------------------------------------------------------------------------------------
    def _device_text(self) -> str:
        where = f"DLA core {self.dla_core} of {self.facts.device_text()}" if self.dla_core is not None else (
            f"GPU {self.facts.device_text()}")
        return f"{where}, TensorRT {self.facts.tensorrt_version}"

    @property
    def api_label(self) -> str:
        """Which TensorRT API drives the engine: "tensor-name API (...)" or "binding API (...)"."""
        return str(self._api.label)

    def info(self) -> RunnerInfo:
        spec = self.manifest.input.with_batch(-1 if self._dynamic else self._max_batch)
        return RunnerInfo(runner="tensorrt", device=self._device_text(), model_path=str(self.model_path),
                          input=spec, output_names=tuple(b.tensor.name for b in self._out_bufs),
                          max_batch=self._max_batch)

    def infer(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        n = self._check_batch(batch)
        outputs = {out.tensor.name: np.empty((n, *out.item_shape), dtype=out.tensor.dtype) for out in self._out_bufs}
        self._run(batch, n, outputs)
        return outputs

    def infer_into(self, batch: np.ndarray, outputs: Mapping[str, np.ndarray]) -> None:
        n = self._check_batch(batch)
        for out in self._out_bufs:
            dest = outputs[out.tensor.name]
            if dest.shape != (n, *out.item_shape) or dest.dtype != out.tensor.dtype:
                raise EngineError(f"{self.model_path}: output {out.tensor.name!r} goes into a {dest.dtype} array "
                                  f"of shape {list(dest.shape)}; it is {out.tensor.dtype.name} of shape "
                                  f"{[n, *out.item_shape]}")
        self._run(batch, n, outputs)

    def _check_batch(self, batch: np.ndarray) -> int:
        if self._closed:
            raise EngineError(f"{self.model_path}: the runner is closed")
        inp = self._in_buf
        if not isinstance(batch, np.ndarray) or batch.dtype != inp.tensor.dtype or batch.shape[1:] != inp.item_shape:
            raise EngineError("{}: a batch must be a {} array of shape [n, {}], got {} {}".format(
                self.model_path, inp.tensor.dtype.name, ", ".join(str(d) for d in inp.item_shape),
                getattr(batch, "dtype", type(batch).__name__), list(getattr(batch, "shape", []))))
        n = int(batch.shape[0])
        if not 1 <= n <= self._max_batch:
            raise EngineError(f"{self.model_path}: batch of {n}; this engine takes 1..{self._max_batch} images")
        return n

    def _run(self, batch: np.ndarray, n: int, outputs: Mapping[str, np.ndarray]) -> None:
        """Copy in, execute, copy out on the stream, one synchronize. Page-locked memory (the pinned slots) is
        copied from and into directly; anything else goes through the runner's own page-locked buffers."""
        inp = self._in_buf
        run = max(n, self._min_batch)
        cuda, stream = self._cuda, self._stream
        self._ctx.push()
        try:
            if self._dynamic and run != self._current_batch:
                if not self._api.set_input_shape(inp.tensor, (run, *inp.item_shape)):
                    raise EngineError(f"{self.model_path}: TensorRT refused batch {run} (profile "
                                      f"{self._min_batch}..{self._max_batch}){recent_errors(self._logger)}")
                self._current_batch = run
            if run == n and self._is_pinned(batch):
                cuda.memcpy_htod_async(inp.device, batch, stream)
            else:
                size = inp.item_size
                np.copyto(inp.host[: n * size], batch.reshape(-1))
                if run > n:
                    inp.host[n * size : run * size] = 0
                cuda.memcpy_htod_async(inp.device, inp.host[: run * size], stream)
            if not self._api.execute(stream.handle):
                stream.synchronize()
                raise EngineError(f"{self.model_path}: TensorRT failed to run a batch of {run}"
                                  f"{recent_errors(self._logger)}")
            staged = []
            for out in self._out_bufs:
                dest = outputs[out.tensor.name]
                if self._is_pinned(dest):  # the first n rows on the device are this batch's
                    cuda.memcpy_dtoh_async(dest, out.device, stream)
                else:
                    cuda.memcpy_dtoh_async(out.host[: run * out.item_size], out.device, stream)
                    staged.append((out, dest))
            stream.synchronize()
            for out, dest in staged:
                np.copyto(dest, out.host[: n * out.item_size].reshape(dest.shape))
        except cuda.Error as exc:
            raise EngineError(f"{self.model_path}: CUDA error while running a batch of {run}: {exc}") from None
        finally:
            self._ctx.pop()

    # -- page-locked shared memory ---------------------------------------------------------------------------
    def _is_pinned(self, array: np.ndarray) -> bool:
        """Whether `array` is C-contiguous and lies inside the page-locked region."""
        if self._pinned is None or not array.flags.c_contiguous:
            return False
        address = int(array.__array_interface__["data"][0])
        return self._pinned_range[0] <= address and address + array.nbytes <= self._pinned_range[1]

    def pin_host_memory(self, region: np.ndarray) -> Optional[str]:
        """Page-lock `region` (pycuda's `register_host_memory`, cuMemHostRegister) so batches in it are copied
        by DMA straight from and into it. None when done; else why not (logged; batches then take the staged
        path, which is correct, one host copy slower each way)."""
        if self._closed:
            return "the runner is closed"
        self.unpin_host_memory()
        register = getattr(self._cuda, "register_host_memory", None)
        if register is None:
            return self._not_pinned(region, "this pycuda has no register_host_memory (it needs CUDA 4.0+)")
        self._ctx.push()
        try:
            # flags 0: pinned for this context, the device's primary context, the one TensorRT's runtime uses.
            pinned = register(region)
        except Exception as exc:  # whatever refuses, the staged path still works
            # Seen in the wild: pycuda.driver.LogicError "cuMemHostRegister failed: operation not supported"
            # (Jetson TX2, pycuda issue #229); SystemError/ValueError "Cannot set the NumPy array 'base'
            # dependency more than once" from pycuda 2024.1 on, for every array (pycuda issue #459).
            cause = exc.__cause__ or exc.__context__
            why = f"{type(exc).__name__}: {exc}" + (f" ({type(cause).__name__}: {cause})" if cause else "")
            return self._not_pinned(region, why)
        finally:
            self._ctx.pop()
        start = int(region.__array_interface__["data"][0])
        self._pinned, self._pinned_range = pinned, (start, start + region.nbytes)
        log.info("page-locked the shared slots (%d bytes): batches are copied to and from the GPU straight from "
                 "them", region.nbytes)
        return None

    def _not_pinned(self, region: np.ndarray, reason: str) -> str:
        log.warning("the shared slots (%d bytes) could not be page-locked (%s): batches go through the runner's "
                    "own page-locked buffers, one more host copy each way", region.nbytes, reason)
        return reason

    def unpin_host_memory(self) -> None:
        """Unregister the page-locked region (before it is unmapped)."""
        pinned, self._pinned, self._pinned_range = self._pinned, None, (0, 0)
        if pinned is None or self._ctx is None:
            return
        self._ctx.push()
        try:
            pinned.base.unregister()  # pycuda: the array's base is the RegisteredHostMemory
        except self._cuda.Error as exc:
            log.warning("unregistering the page-locked shared slots failed: %s", exc)
        finally:
            self._ctx.pop()

    def warm_up(self, iterations: int = 3, batch_sizes: Sequence[int] = ()) -> None:
        """Dummy batches at the smallest and largest batch (both shapes' kernels get loaded)."""
        sizes = list(batch_sizes) or sorted({self._min_batch, self._max_batch})
        super().warm_up(iterations, sizes)

    # -- closing --------------------------------------------------------------------------------------------
    def _free(self) -> None:
        """Release device memory and TensorRT objects; the context must be current."""
        for buf in self._buffers:
            buf.device.free()
        self._buffers = []
        self._in_buf = None  # type: ignore[assignment]
        self._out_bufs = []
        self._context = None
        self._engine = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ctx is None:
            return
        self.unpin_host_memory()
        self._ctx.push()
        try:
            self._free()
            self._stream = None
        finally:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None
