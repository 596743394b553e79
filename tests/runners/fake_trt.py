"""Recorded stand-ins of `tensorrt` and `pycuda.driver` for testing the TensorRT runner and builder off a board.

They speak the real APIs' names and signatures, and enforce the contracts the runner depends on, so a bug that
would fail on a Jetson fails here too:

- TensorRT 8.2 has only the binding API (`num_bindings`, `set_binding_shape`, `execute_async_v2`); 10.x only the
  tensor-name API (`set_input_shape`, `set_tensor_address`, `execute_async_v3`); 8.6 has both, its binding calls
  raise DeprecationWarning as the real 8.6 bindings do (an error under pytest's filterwarnings=error).
- Input shapes outside the optimisation profile are refused (the setter returns False), execution without every
  shape and address set returns False, a deserialised blob of another version or a truncated one gives None with
  an ERROR on the logger, `trt.ILogger.__init__` must be called by subclasses.
- CUDA calls need a current context on the calling thread; async copies and kernels run only at
  `stream.synchronize()` (a legal schedule of the real thing, and one that catches a read before the sync);
  copies check contiguity and allocation bounds; a kernel reading past an allocation is an illegal address.

Every call is appended to `.calls` as (name, *args). The fake engine's "network" computes
logits[i, k] = (k + 1) * mean(input[i]) in float32, so outputs are checkable values.
"""

import enum
import json
import threading
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

MAGIC = b"FAKETRT\x00"


# ---------------------------------------------------------------------------------------------------------
# pycuda.driver


class Error(Exception):
    """pycuda.driver.Error"""


class LogicError(Error):
    """pycuda.driver.LogicError"""


class DeviceAllocation:
    def __init__(self, cuda: "FakeCuda", ptr: int, size: int) -> None:
        self._cuda, self.ptr, self.size = cuda, ptr, size
        self.freed = False

    def __int__(self) -> int:
        return self.ptr

    def free(self) -> None:
        self._cuda._require_context("cuMemFree")
        if self.freed:
            raise LogicError("cuMemFree failed: invalid value (double free)")
        self.freed = True
        self._cuda.calls.append(("free", self.ptr))


class FakeStream:
    def __init__(self, cuda: "FakeCuda", handle: int) -> None:
        self._cuda, self.handle = cuda, handle
        self.pending: List[Any] = []

    def synchronize(self) -> None:
        self._cuda._require_context("cuStreamSynchronize")
        self._cuda.calls.append(("synchronize", self.handle))
        ops, self.pending = self.pending, []
        for op in ops:
            op()


class FakeContext:
    def __init__(self, cuda: "FakeCuda") -> None:
        self._cuda = cuda

    def push(self) -> None:
        self._cuda._stack().append(self)
        self._cuda.calls.append(("ctx_push", threading.get_ident()))

    def pop(self) -> None:  # pycuda's Context.pop() pops whatever is current on this thread
        stack = self._cuda._stack()
        if not stack:
            raise LogicError("cuCtxPopCurrent failed: invalid device context")
        stack.pop()
        self._cuda.calls.append(("ctx_pop", threading.get_ident()))

    def detach(self) -> None:
        self._cuda.retained -= 1
        self._cuda.calls.append(("ctx_detach",))


class FakeDevice:
    def __init__(self, cuda: "FakeCuda", ordinal: int) -> None:
        if not cuda.initialised:
            raise LogicError("cuDeviceGet failed: initialization error (call cuda.init() first)")
        if ordinal >= cuda.device_count:
            raise LogicError(f"cuDeviceGet failed: invalid device ordinal {ordinal}")
        self._cuda = cuda

    def compute_capability(self) -> Tuple[int, int]:
        return self._cuda.cc

    def name(self) -> str:
        return self._cuda.gpu_name

    def retain_primary_context(self) -> FakeContext:
        self._cuda.retained += 1
        self._cuda.calls.append(("retain_primary_context",))
        return FakeContext(self._cuda)


class FakeCuda:
    """Stand-in of `pycuda.driver`."""

    Error = Error
    LogicError = LogicError

    def __init__(self, cc: Tuple[int, int] = (8, 7), gpu_name: str = "Orin", device_count: int = 1) -> None:
        self.cc, self.gpu_name, self.device_count = cc, gpu_name, device_count
        self.calls: List[Tuple[Any, ...]] = []
        self.initialised = False
        self.retained = 0
        self.allocations: Dict[int, DeviceAllocation] = {}
        self.memory: Dict[int, bytearray] = {}
        self.streams: Dict[int, FakeStream] = {}
        self.pinned: List[np.ndarray] = []
        self._next_ptr = 0x7F0000000000
        self._local = threading.local()

    # -- contexts
    def _stack(self) -> List[FakeContext]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def _require_context(self, what: str) -> None:
        if not self._stack():
            raise LogicError(f"{what} failed: invalid device context (no context is current on this thread)")

    def init(self) -> None:
        self.initialised = True

    def Device(self, ordinal: int) -> FakeDevice:
        return FakeDevice(self, ordinal)

    # -- memory
    def pagelocked_empty(self, shape: Any, dtype: Any) -> np.ndarray:
        self._require_context("cuMemHostAlloc")
        arr = np.empty(shape, dtype)
        self.pinned.append(arr)
        self.calls.append(("pagelocked_empty", tuple(np.atleast_1d(shape)), np.dtype(dtype).name))
        return arr

    def is_pinned(self, arr: np.ndarray) -> bool:
        start = arr.__array_interface__["data"][0]
        for p in self.pinned:
            base = p.__array_interface__["data"][0]
            if base <= start and start + arr.nbytes <= base + p.nbytes:
                return True
        return False

    def mem_alloc(self, nbytes: int) -> DeviceAllocation:
        self._require_context("cuMemAlloc")
        ptr = self._next_ptr
        self._next_ptr += (int(nbytes) + 0xFFFF) & ~0xFFF
        alloc = DeviceAllocation(self, ptr, int(nbytes))
        self.allocations[ptr] = alloc
        self.memory[ptr] = bytearray(int(nbytes))
        self.calls.append(("mem_alloc", int(nbytes)))
        return alloc

    def _region(self, address: int, nbytes: int, what: str) -> Tuple[bytearray, int]:
        for ptr, alloc in self.allocations.items():
            if ptr <= address < ptr + max(alloc.size, 1):
                if alloc.freed:
                    raise LogicError(f"{what} failed: invalid argument (freed memory)")
                if address + nbytes > ptr + alloc.size:
                    raise LogicError(f"{what} failed: invalid argument ({nbytes} bytes past a {alloc.size}-byte "
                                     "allocation)")
                return self.memory[ptr], address - ptr
        raise LogicError(f"{what} failed: invalid argument (not device memory)")

    def Stream(self) -> FakeStream:
        self._require_context("cuStreamCreate")
        stream = FakeStream(self, 0x5000 + len(self.streams))
        self.streams[stream.handle] = stream
        self.calls.append(("Stream", stream.handle))
        return stream

    def _check_host(self, arr: Any, what: str, writable: bool) -> np.ndarray:
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{what}: expected a host buffer, got {type(arr).__name__}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"{what}: ndarray is not contiguous")
        if writable and not arr.flags.writeable:
            raise ValueError(f"{what}: buffer is read-only")
        return arr

    def memcpy_htod_async(self, dest: Any, src: Any, stream: Optional[FakeStream] = None) -> None:
        self._require_context("cuMemcpyHtoDAsync")
        src = self._check_host(src, "memcpy_htod_async", writable=False)
        mem, offset = self._region(int(dest), src.nbytes, "cuMemcpyHtoDAsync")
        self.calls.append(("memcpy_htod_async", int(dest), src.nbytes, self.is_pinned(src)))

        def copy() -> None:  # the DMA reads host memory when it runs, not when it is enqueued
            mem[offset : offset + src.nbytes] = src.tobytes()

        self._enqueue(stream, copy)

    def memcpy_dtoh_async(self, dest: Any, src: Any, stream: Optional[FakeStream] = None) -> None:
        self._require_context("cuMemcpyDtoHAsync")
        dest = self._check_host(dest, "memcpy_dtoh_async", writable=True)
        mem, offset = self._region(int(src), dest.nbytes, "cuMemcpyDtoHAsync")
        self.calls.append(("memcpy_dtoh_async", int(src), dest.nbytes, self.is_pinned(dest)))

        def copy() -> None:
            dest.reshape(-1).view(np.uint8)[:] = np.frombuffer(bytes(mem[offset : offset + dest.nbytes]), np.uint8)

        self._enqueue(stream, copy)

    def memcpy_htod(self, dest: Any, src: Any) -> None:
        self._require_context("cuMemcpyHtoD")
        src = self._check_host(src, "memcpy_htod", writable=False)
        mem, offset = self._region(int(dest), src.nbytes, "cuMemcpyHtoD")
        mem[offset : offset + src.nbytes] = src.tobytes()
        self.calls.append(("memcpy_htod", int(dest), src.nbytes))

    def _enqueue(self, stream: Optional[FakeStream], op: Any) -> None:
        if stream is None:
            op()
        else:
            stream.pending.append(op)

    def read(self, address: int, nbytes: int, what: str) -> bytes:
        try:
            mem, offset = self._region(address, nbytes, what)
        except LogicError:
            raise Error(f"{what}: an illegal memory access was encountered") from None
        return bytes(mem[offset : offset + nbytes])

    def write(self, address: int, data: bytes, what: str) -> None:
        try:
            mem, offset = self._region(address, len(data), what)
        except LogicError:
            raise Error(f"{what}: an illegal memory access was encountered") from None
        mem[offset : offset + len(data)] = data


# ---------------------------------------------------------------------------------------------------------
# tensorrt


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = _Severity
    INTERNAL_ERROR = _Severity.INTERNAL_ERROR
    ERROR = _Severity.ERROR
    WARNING = _Severity.WARNING
    INFO = _Severity.INFO
    VERBOSE = _Severity.VERBOSE

    def __init__(self) -> None:
        self._base_initialised = True

    def log(self, severity: Any, msg: str) -> None:
        raise NotImplementedError


class DataType(enum.Enum):
    FLOAT = "float32"
    HALF = "float16"
    INT8 = "int8"
    INT32 = "int32"
    BOOL = "bool"
    UINT8 = "uint8"


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


def nptype(dtype: DataType) -> Any:
    return np.dtype(dtype.value).type


def engine_bytes(version: str, input_name: str = "pixel_values", input_shape: Sequence[int] = (-1, 3, 32, 32),
                 dtype: str = "float32", profile: Optional[Sequence[Sequence[int]]] = None,
                 outputs: Sequence[Tuple[str, int]] = (("logits", 10),), dla_core: Optional[int] = None) -> bytes:
    """A serialised fake engine: what `trt.Runtime.deserialize_cuda_engine` of the fake accepts."""
    if input_shape[0] == -1 and profile is None:
        item = list(input_shape[1:])
        profile = [[1, *item], [4, *item], [8, *item]]
    spec = {"version": version, "input": {"name": input_name, "shape": list(input_shape), "dtype": dtype,
                                          "profile": profile},
            "outputs": [{"name": n, "classes": k} for n, k in outputs], "dla_core": dla_core}
    return MAGIC + json.dumps(spec).encode()


class _Engine:
    """The parts both APIs share; the API methods are attached per version by FakeTensorRT."""

    def __init__(self, trt: "FakeTensorRT", spec: Dict[str, Any]) -> None:
        self._trt, self.spec = trt, spec
        inp = spec["input"]
        self.tensors: List[Dict[str, Any]] = [
            {"name": inp["name"], "input": True, "shape": tuple(inp["shape"]), "dtype": DataType(inp["dtype"])}]
        for out in spec["outputs"]:
            batch = inp["shape"][0]
            self.tensors.append({"name": out["name"], "input": False, "shape": (batch, out["classes"]),
                                 "dtype": DataType.FLOAT, "classes": out["classes"]})
        self.profile = [tuple(s) for s in inp["profile"]] if inp["profile"] else None
        self.num_optimization_profiles = 1

    def create_execution_context(self) -> "_Context":
        self._trt.cuda._require_context("createExecutionContext")
        self._trt.calls.append(("create_execution_context",))
        return self._trt._context_class(self)

    def _in_profile(self, shape: Tuple[int, ...]) -> bool:
        inp = self.tensors[0]
        if len(shape) != len(inp["shape"]):
            return False
        if self.profile is None:
            return tuple(shape) == inp["shape"]
        low, _, high = self.profile
        return all(lo <= d <= hi for d, lo, hi in zip(shape, low, high))


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self._trt = engine._trt
        inp = engine.tensors[0]["shape"]
        self.input_shape: Optional[Tuple[int, ...]] = None if -1 in inp else tuple(inp)
        self.addresses: Dict[str, int] = {}

    def _output_shape(self, tensor: Dict[str, Any]) -> Tuple[int, ...]:
        batch = self.input_shape[0] if self.input_shape is not None else -1
        return (batch, tensor["classes"])

    def _set_shape(self, shape: Sequence[int]) -> bool:
        shape = tuple(int(d) for d in shape)
        if not self.engine._in_profile(shape):
            self._trt._logger_error(f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (shape {shape} "
                                    f"outside the profile {self.engine.profile})")
            return False
        self.input_shape = shape
        return True

    def _enqueue(self, stream_handle: int, addresses: Dict[str, int]) -> bool:
        stream = self._trt.cuda.streams.get(stream_handle)
        if stream is None:
            self._trt._logger_error("enqueue: invalid stream handle")
            return False
        self._trt.cuda._require_context("enqueue")
        shape = self.input_shape
        assert shape is not None
        engine, cuda = self.engine, self._trt.cuda
        inp = engine.tensors[0]
        dtype = np.dtype(inp["dtype"].value)

        def kernel() -> None:
            n = shape[0]
            per_item = int(np.prod(shape[1:]))
            raw = cuda.read(addresses[inp["name"]], n * per_item * dtype.itemsize, "kernel reading the input")
            x = np.frombuffer(raw, dtype).reshape(n, per_item).astype(np.float64)
            means = x.mean(axis=1)
            for out in engine.tensors[1:]:
                k = out["classes"]
                y = (means[:, None] * np.arange(1, k + 1)[None, :]).astype(np.float32)
                cuda.write(addresses[out["name"]], y.tobytes(), "kernel writing an output")

        stream.pending.append(kernel)
        return True


def _deprecated(new: str) -> None:
    warnings.warn(f"Use {new} instead.", DeprecationWarning, stacklevel=3)


class _BindingEngineApi:
    """TensorRT 8.x binding-index methods, mixed into the fake engine."""

    tensors: List[Dict[str, Any]]
    _deprecate: bool

    @property
    def num_bindings(self) -> int:
        return len(self.tensors)

    @property
    def has_implicit_batch_dimension(self) -> bool:
        return False

    def get_binding_name(self, index: int) -> str:
        self._warn("get_tensor_name")
        return str(self.tensors[index]["name"])

    def binding_is_input(self, index: int) -> bool:
        self._warn("get_tensor_mode")
        return bool(self.tensors[index]["input"])

    def get_binding_shape(self, index: int) -> Tuple[int, ...]:
        self._warn("get_tensor_shape")
        return tuple(self.tensors[index]["shape"])

    def get_binding_dtype(self, index: int) -> DataType:
        self._warn("get_tensor_dtype")
        return self.tensors[index]["dtype"]

    def get_profile_shape(self, profile_index: int, binding: int) -> List[Tuple[int, ...]]:
        self._warn("get_tensor_profile_shape")
        assert profile_index == 0 and self.tensors[binding]["input"]
        assert self.profile is not None
        return list(self.profile)

    def _warn(self, new: str) -> None:
        if self._deprecate:
            _deprecated(new)


class _TensorEngineApi:
    tensors: List[Dict[str, Any]]

    def _tensor(self, name: str) -> Dict[str, Any]:
        for t in self.tensors:
            if t["name"] == name:
                return t
        raise KeyError(name)

    @property
    def num_io_tensors(self) -> int:
        return len(self.tensors)

    def get_tensor_name(self, index: int) -> str:
        return str(self.tensors[index]["name"])

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if self._tensor(name)["input"] else TensorIOMode.OUTPUT

    def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
        return tuple(self._tensor(name)["shape"])

    def get_tensor_dtype(self, name: str) -> DataType:
        return self._tensor(name)["dtype"]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> List[Tuple[int, ...]]:
        assert profile_index == 0 and self._tensor(name)["input"]
        assert self.profile is not None
        return list(self.profile)


class _BindingContextApi:
    engine: _Engine
    _trt: "FakeTensorRT"
    input_shape: Optional[Tuple[int, ...]]

    def set_binding_shape(self, binding: int, shape: Sequence[int]) -> bool:
        self._trt.calls.append(("set_binding_shape", binding, tuple(shape)))
        self.engine._warn("set_input_shape")
        if not self.engine.tensors[binding]["input"]:
            return False
        return self._set_shape(shape)

    def get_binding_shape(self, binding: int) -> Tuple[int, ...]:
        self.engine._warn("get_tensor_shape")
        tensor = self.engine.tensors[binding]
        if tensor["input"]:
            return self.input_shape if self.input_shape is not None else tuple(tensor["shape"])
        return self._output_shape(tensor)

    @property
    def all_binding_shapes_specified(self) -> bool:
        return self.input_shape is not None

    def execute_async_v2(self, bindings: Sequence[int], stream_handle: int, input_consumed: Any = None) -> bool:
        self._trt.calls.append(("execute_async_v2", tuple(bindings), stream_handle))
        self.engine._warn("execute_async_v3")
        if len(bindings) != self.engine.num_bindings or self.input_shape is None:
            return False
        if any(int(b) == 0 for b in bindings):
            return False
        addresses = {t["name"]: int(b) for t, b in zip(self.engine.tensors, bindings)}
        return self._enqueue(stream_handle, addresses)


class _TensorContextApi:
    engine: _Engine
    _trt: "FakeTensorRT"
    input_shape: Optional[Tuple[int, ...]]
    addresses: Dict[str, int]

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        self._trt.calls.append(("set_input_shape", name, tuple(shape)))
        if not self.engine._tensor(name)["input"]:
            return False
        return self._set_shape(shape)

    def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
        tensor = self.engine._tensor(name)
        if tensor["input"]:
            return self.input_shape if self.input_shape is not None else tuple(tensor["shape"])
        return self._output_shape(tensor)

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._trt.calls.append(("set_tensor_address", name, int(memory)))
        try:
            self.engine._tensor(name)
        except KeyError:
            return False
        self.addresses[name] = int(memory)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        self._trt.calls.append(("execute_async_v3", stream_handle))
        if self.input_shape is None or any(t["name"] not in self.addresses for t in self.engine.tensors):
            self._trt._logger_error("IExecutionContext::enqueueV3: Error Code 3: API Usage Error (address or "
                                    "shape not set)")
            return False
        return self._enqueue(stream_handle, dict(self.addresses))


class _Runtime:
    def __init__(self, trt: "FakeTensorRT", logger: ILogger) -> None:
        if not getattr(logger, "_base_initialised", False):
            raise TypeError("tensorrt.ILogger.__init__() must be called when overriding __init__")
        self._trt, self.logger = trt, logger
        trt._loggers.append(logger)
        self.DLA_core = -1
        self.num_DLA_cores = trt.dla_cores

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> Optional[_Engine]:
        data = bytes(serialized_engine)
        self._trt.calls.append(("deserialize_cuda_engine", len(data), self.DLA_core))
        if not data.startswith(MAGIC):
            self._trt._logger_error("1: [stdArchiveReader.cpp::StdArchiveReader::32] Error Code 1: Serialization "
                                    "(Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not "
                                    "match)")
            return None
        try:
            spec = json.loads(data[len(MAGIC):].decode())
        except ValueError:
            self._trt._logger_error("1: [runtime.cpp::parsePlan::314] Error Code 1: Serialization (Serialization "
                                    "assertion plan->header.magicTag == rt::kPLAN_MAGIC_TAG failed.)")
            return None
        if spec["version"] != self._trt.__version__:
            self._trt._logger_error("6: The engine plan file is not compatible with this version of TensorRT, "
                                    f"expecting library version {self._trt.__version__} got {spec['version']}, "
                                    "please rebuild.")
            return None
        return self._trt._engine_class(self._trt, spec)


class FakeTensorRT:
    """Stand-in of the `tensorrt` module at `version`: 8.2.x (binding API), 8.6.x (both, binding deprecated) or
    10.x (tensor-name API). Pass `cuda` (a FakeCuda) so kernels read and write its memory."""

    ILogger = ILogger
    DataType = DataType

    def __init__(self, version: str, cuda: FakeCuda, dla_cores: int = 0) -> None:
        self.__version__ = version
        self.cuda = cuda
        self.dla_cores = dla_cores
        self.calls: List[Tuple[Any, ...]] = []
        self._loggers: List[ILogger] = []
        major, minor = (int(p) for p in version.split(".")[:2])
        binding = major < 10
        names = (major, minor) >= (8, 5)
        engine_bases: Tuple[type, ...] = ((_BindingEngineApi,) if binding else ()) + (
            (_TensorEngineApi,) if names else ())
        context_bases: Tuple[type, ...] = ((_BindingContextApi,) if binding else ()) + (
            (_TensorContextApi,) if names else ())
        deprecate = binding and names
        self._engine_class = type("ICudaEngine", (*engine_bases, _Engine), {"_deprecate": deprecate})
        if not names:  # the tensor helper is needed by the context's name API only
            self._engine_class._tensor = _TensorEngineApi._tensor
        self._context_class = type("IExecutionContext", (*context_bases, _Context), {})
        if names:
            self.TensorIOMode = TensorIOMode

    def nptype(self, dtype: DataType) -> Any:
        return nptype(dtype)

    def Runtime(self, logger: ILogger) -> _Runtime:
        return _Runtime(self, logger)

    def _logger_error(self, msg: str) -> None:
        for logger in self._loggers[-1:]:
            logger.log(ILogger.Severity.ERROR, msg)


# ---------------------------------------------------------------------------------------------------------
# tensorrt builder API (what `engine build` uses)


class BuilderFlag(enum.Enum):
    FP16 = "FP16"
    INT8 = "INT8"
    GPU_FALLBACK = "GPU_FALLBACK"


class MemoryPoolType(enum.Enum):
    WORKSPACE = "WORKSPACE"


class DeviceType(enum.Enum):
    GPU = "GPU"
    DLA = "DLA"


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0


class IInt8EntropyCalibrator2:
    def __init__(self) -> None:
        self._base_initialised = True


class _Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.input: Optional[Dict[str, Any]] = None
        self.outputs: List[Tuple[str, int]] = []


class _OnnxParser:
    def __init__(self, trt: "FakeBuilderTensorRT", network: _Network, logger: ILogger) -> None:
        self._trt, self._network = trt, network
        self.errors: List[str] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]

    def parse(self, model: bytes) -> bool:
        import onnx

        self._trt.calls.append(("parse", len(model)))
        major = int(self._trt.__version__.split(".")[0])
        if major < 10 and not self._network.flags & (1 << int(NetworkDefinitionCreationFlag.EXPLICIT_BATCH)):
            self.errors.append("ModelImporter.cpp: the ONNX parser only supports explicit batch networks")
            return False
        try:
            proto = onnx.load_from_string(bytes(model))
        except Exception as exc:  # onnx raises DecodeError for a damaged file
            self.errors.append(f"Failed to parse ONNX model: {exc}")
            return False
        (inp,) = proto.graph.input
        dims = [d.dim_value if d.dim_value else -1 for d in inp.type.tensor_type.shape.dim]
        dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.UINT8: "uint8"}[inp.type.tensor_type.elem_type]
        if dtype == "uint8" and tuple(int(p) for p in self._trt.__version__.split(".")[:2]) < (8, 5):
            # UINT8 network inputs arrived in TensorRT 8.5 (its release notes; NVIDIA/TensorRT issue 1503).
            self.errors.append("Unsupported ONNX data type: UINT8 (2)")
            return False
        self._network.input = {"name": inp.name, "shape": dims, "dtype": dtype}
        self._network.outputs = [(o.name, o.type.tensor_type.shape.dim[1].dim_value) for o in proto.graph.output]
        return True


class _Profile:
    def __init__(self) -> None:
        self.shapes: Dict[str, Tuple[Tuple[int, ...], ...]] = {}

    def set_shape(self, input: str, min: Sequence[int], opt: Sequence[int], max: Sequence[int]) -> None:
        if not all(lo <= o <= hi for lo, o, hi in zip(min, opt, max)):
            raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
        self.shapes[input] = (tuple(min), tuple(opt), tuple(max))


class _BuilderConfig:
    def __init__(self, trt: "FakeBuilderTensorRT") -> None:
        self._trt = trt
        self.flags: List[BuilderFlag] = []
        self.profiles: List[_Profile] = []
        self.calibration_profile: Optional[_Profile] = None
        self.int8_calibrator: Any = None
        self.default_device_type = DeviceType.GPU
        self.DLA_core = -1
        self.pool_limits: Dict[MemoryPoolType, int] = {}

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        self.pool_limits[pool] = pool_size

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags.append(flag)

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def set_calibration_profile(self, profile: _Profile) -> bool:
        self.calibration_profile = profile
        return True


class _Builder:
    def __init__(self, trt: "FakeBuilderTensorRT", logger: ILogger) -> None:
        if not getattr(logger, "_base_initialised", False):
            raise TypeError("tensorrt.ILogger.__init__() must be called when overriding __init__")
        self._trt = trt
        trt._loggers.append(logger)
        self.platform_has_fast_fp16 = True

    def create_network(self, flags: int = 0) -> _Network:
        return _Network(flags)

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def create_builder_config(self) -> _BuilderConfig:
        config = _BuilderConfig(self._trt)
        self._trt.configs.append(config)
        return config

    def build_serialized_network(self, network: _Network, config: _BuilderConfig) -> Optional[bytes]:
        trt = self._trt
        trt.calls.append(("build_serialized_network",))
        inp = network.input
        assert inp is not None, "parse the network first"
        profile = None
        if -1 in inp["shape"]:
            if not config.profiles or inp["name"] not in config.profiles[0].shapes:
                trt._logger_error(f"4: [network.cpp::validate] Error Code 4: Internal Error ({inp['name']}: dynamic "
                                  "input is missing dimensions in profile 0.)")
                return None
            profile = [list(s) for s in config.profiles[0].shapes[inp["name"]]]
        if config.default_device_type == DeviceType.DLA and not (
                {BuilderFlag.FP16, BuilderFlag.INT8} & set(config.flags)):
            trt._logger_error("DLA supports only FP16 and INT8")
            return None
        if BuilderFlag.INT8 in config.flags:
            self._calibrate(inp, config)
        dla = config.DLA_core if config.default_device_type == DeviceType.DLA else None
        return engine_bytes(trt.__version__, input_name=inp["name"], input_shape=inp["shape"], dtype=inp["dtype"],
                            profile=profile, outputs=network.outputs, dla_core=dla)

    def _calibrate(self, inp: Dict[str, Any], config: _BuilderConfig) -> None:
        calibrator = config.int8_calibrator
        assert calibrator is not None and getattr(calibrator, "_base_initialised", False)
        trt = self._trt
        cached = calibrator.read_calibration_cache()
        if cached:
            trt.calls.append(("calibration_cache_used", len(cached)))
            return
        batch = calibrator.get_batch_size()
        if -1 in inp["shape"]:
            assert config.calibration_profile is not None, "dynamic shapes need a calibration profile"
            assert config.calibration_profile.shapes[inp["name"]][0][0] == batch
        per_item = int(np.prod(inp["shape"][1:]))
        dtype = np.dtype(inp["dtype"])
        while True:
            pointers = calibrator.get_batch([inp["name"]])
            if pointers is None:
                break
            raw = trt.cuda.read(pointers[0], batch * per_item * dtype.itemsize, "calibration batch")
            trt.calibration_batches.append(np.frombuffer(raw, dtype).reshape(batch, *inp["shape"][1:]).copy())
        calibrator.write_calibration_cache(b"TRT-8502-EntropyCalibration2\n" + str(len(trt.calibration_batches))
                                           .encode())


class FakeBuilderTensorRT(FakeTensorRT):
    """FakeTensorRT plus the builder API: Builder, OnnxParser, builder config, profiles, INT8 calibrator."""

    BuilderFlag = BuilderFlag
    MemoryPoolType = MemoryPoolType
    DeviceType = DeviceType
    NetworkDefinitionCreationFlag = NetworkDefinitionCreationFlag
    IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    def __init__(self, version: str, cuda: FakeCuda, dla_cores: int = 0) -> None:
        super().__init__(version, cuda, dla_cores)
        self.configs: List[_BuilderConfig] = []
        self.calibration_batches: List[np.ndarray] = []

    def Builder(self, logger: ILogger) -> _Builder:
        return _Builder(self, logger)

    def OnnxParser(self, network: _Network, logger: ILogger) -> _OnnxParser:
        return _OnnxParser(self, network, logger)
