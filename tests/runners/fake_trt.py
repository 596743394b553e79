"""Recorded stand-ins of `tensorrt` and `pycuda.driver` for testing the TensorRT runner and builder off a board.

They speak the real APIs' names and signatures at the version they pretend to be (class names, methods, enum
members and which calls raise DeprecationWarning are held to tests/runners/trt_surfaces.json, recorded from the
real binding wheels of 8.6.1, 10.3.0, 10.16.1, 11.0.0 and 11.4.0), and enforce the contracts the runner and the
builder depend on, so a bug that would fail on a Jetson fails here too:

- TensorRT 8.2 has only the binding API (`num_bindings`, `set_binding_shape`, `execute_async_v2`); 10.x and 11.x
  only the tensor-name API (`set_input_shape`, `set_tensor_address`, `execute_async_v3`); 8.5/8.6 have both, the
  binding calls raising DeprecationWarning as the real 8.6 bindings do (an error under filterwarnings=error).
- The builder: `max_workspace_size` before 10, `set_memory_pool_limit` from 8.4; `BuilderFlag.FP16/INT8`,
  `IInt8EntropyCalibrator2`, `int8_calibrator` and `set_calibration_profile` up to 10.x (the last three warn
  from 10.1 on) and gone in 11; `EXPLICIT_BATCH` before 11, `STRONGLY_TYPED` from 10 (11 is always strongly
  typed); a strongly typed network refuses precision flags, a weakly typed one with Q/DQ layers needs INT8.
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
import functools
import json
import threading
import warnings
from pathlib import Path
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


def _address(arr: np.ndarray) -> int:
    return int(arr.__array_interface__["data"][0])


class RegisteredHostMemory:
    """pycuda.driver.RegisteredHostMemory: the page-lock of an existing array (`base`), until `unregister()`.
    It exposes the registered array's memory (`__array_interface__`), so the array `register_host_memory` returns
    has it as its `base`, as pycuda's does."""

    def __init__(self, cuda: "FakeCuda", ary: np.ndarray) -> None:
        self._cuda = cuda
        self.base = ary
        self.address = int(ary.__array_interface__["data"][0])
        self.nbytes = int(ary.nbytes)
        self.valid = True
        self.__array_interface__ = dict(ary.__array_interface__)

    def unregister(self) -> None:
        # pycuda's free() activates the context the memory was registered in itself: no current context needed.
        if not self.valid:
            raise LogicError("registered_host_memory::free failed: invalid resource handle")
        self.valid = False
        self._cuda.registered.remove(self)
        self._cuda.calls.append(("unregister", self.address, self.nbytes))


class FakeCuda:
    """Stand-in of `pycuda.driver`. `host_register`: how `register_host_memory` behaves: "ok"; "unsupported"
    (Jetson TX2's CUDA: LogicError "cuMemHostRegister failed: operation not supported", pycuda issue #229);
    "numpy-base" (pycuda 2024.1 and later: the memory gets registered, then building the returned array fails,
    SystemError from ValueError "Cannot set the NumPy array 'base' dependency more than once", pycuda issue
    #459; the registration is never released)."""

    Error = Error
    LogicError = LogicError
    PAGE = 4096  # pycuda's register_host_memory documentation: the data address and size must be page-aligned

    def __init__(self, cc: Tuple[int, int] = (8, 7), gpu_name: str = "Orin", device_count: int = 1,
                 host_register: str = "ok") -> None:
        self.cc, self.gpu_name, self.device_count = cc, gpu_name, device_count
        self.host_register = host_register
        self.registered: List[RegisteredHostMemory] = []
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
        return any(r.address <= start and start + arr.nbytes <= r.address + r.nbytes for r in self.registered)

    def register_host_memory(self, ary: Any, flags: int = 0) -> np.ndarray:
        """pycuda.driver.register_host_memory(ary, flags=0): page-lock an existing contiguous numpy array; returns
        an array sharing its memory whose `base` is the RegisteredHostMemory (whose `base` is `ary`)."""
        if not isinstance(ary, np.ndarray):
            raise LogicError("register_host_memory failed: invalid argument - ary argument is not a numpy array")
        if not ary.flags.c_contiguous:
            raise LogicError("register_host_memory failed: invalid argument - ary argument is not contiguous")
        self._require_context("cuMemHostRegister")
        if self.host_register == "unsupported":
            raise LogicError("cuMemHostRegister failed: operation not supported")
        address, nbytes = int(ary.__array_interface__["data"][0]), int(ary.nbytes)
        if address % self.PAGE or nbytes % self.PAGE or nbytes == 0:
            raise LogicError("cuMemHostRegister failed: invalid argument")
        if any(r.address < address + nbytes and address < r.address + r.nbytes for r in self.registered):
            raise LogicError("cuMemHostRegister failed: part or all of the requested memory range is already "
                             "mapped")
        regmem = RegisteredHostMemory(self, ary)
        self.registered.append(regmem)
        self.calls.append(("register_host_memory", address, nbytes, flags))
        if self.host_register == "numpy-base":
            try:
                raise ValueError("Cannot set the NumPy array 'base' dependency more than once")
            except ValueError as exc:
                raise SystemError("<Boost.Python.function object> returned a result with an exception set") from exc
        return np.asarray(regmem)

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
        self.calls.append(("memcpy_htod_async", int(dest), src.nbytes, _address(src), self.is_pinned(src)))

        def copy() -> None:  # the DMA reads host memory when it runs, not when it is enqueued
            mem[offset : offset + src.nbytes] = src.tobytes()

        self._enqueue(stream, copy)

    def memcpy_dtoh_async(self, dest: Any, src: Any, stream: Optional[FakeStream] = None) -> None:
        self._require_context("cuMemcpyDtoHAsync")
        dest = self._check_host(dest, "memcpy_dtoh_async", writable=True)
        mem, offset = self._region(int(src), dest.nbytes, "cuMemcpyDtoHAsync")
        self.calls.append(("memcpy_dtoh_async", int(src), dest.nbytes, _address(dest), self.is_pinned(dest)))

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
#
# What exists at which version is decided here, by version number, from NVIDIA's release notes; which of it the
# real module really has, and which of it warns, is in tests/runners/trt_surfaces.json, recorded from the real
# binding wheels by tests/runners/record_trt_surfaces.py. tests/runners/test_fake_trt_surface.py holds every
# public name the stand-in offers at a recorded release to that release's surface, and the stand-in raises
# DeprecationWarning from exactly the recorded members that warn in the real module (`_apply_deprecations`).

SURFACES = Path(__file__).resolve().with_name("trt_surfaces.json")
# Attributes a test reads back from the stand-in; they are not TensorRT's and code under test never uses them.
FAKE_ONLY = frozenset({"calls", "configs", "calibration_batches", "cuda", "dla_cores", "fail_create"})


@functools.lru_cache(maxsize=None)
def recorded_surfaces() -> Dict[str, Any]:
    """{release: surface} as recorded from the real wheels."""
    return dict(json.loads(SURFACES.read_text())["releases"])


def recorded_release(version: str) -> Optional[str]:
    """The recorded release with this version's major.minor ("10.3.0.30" → "10.3.0"), or None (8.2, 8.5)."""
    key = tuple(version.split(".")[:2])
    for release in recorded_surfaces():
        if tuple(release.split(".")[:2]) == key:
            return release
    return None


def version_tuple(version: str) -> Tuple[int, int]:
    major, minor = (int(p) for p in version.split(".")[:2])
    return major, minor


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
                 outputs: Sequence[Tuple[str, int]] = (("logits", 10),), dla_core: Optional[int] = None,
                 precision: str = "fp32") -> bytes:
    """A serialised fake engine: what `trt.Runtime.deserialize_cuda_engine` of the fake accepts. `precision`:
    what its layers run in (the builder records what the network and flags asked for)."""
    if input_shape[0] == -1 and profile is None:
        item = list(input_shape[1:])
        profile = [[1, *item], [4, *item], [8, *item]]
    spec = {"version": version, "input": {"name": input_name, "shape": list(input_shape), "dtype": dtype,
                                          "profile": profile},
            "outputs": [{"name": n, "classes": k} for n, k in outputs], "dla_core": dla_core,
            "precision": precision}
    return MAGIC + json.dumps(spec).encode()


def engine_spec(blob: bytes) -> Dict[str, Any]:
    """What a fake engine file says about itself (its input, outputs, precision, DLA core)."""
    assert blob.startswith(MAGIC), "not a fake engine"
    return dict(json.loads(blob[len(MAGIC):].decode()))


class _Engine:
    """The parts both APIs share; the API methods are attached per version by FakeTensorRT."""

    def __init__(self, trt: "FakeTensorRT", spec: Dict[str, Any]) -> None:
        self._trt, self._spec = trt, spec
        inp = spec["input"]
        self._tensors: List[Dict[str, Any]] = [
            {"name": inp["name"], "input": True, "shape": tuple(inp["shape"]), "dtype": DataType(inp["dtype"])}]
        for out in spec["outputs"]:
            batch = inp["shape"][0]
            self._tensors.append({"name": out["name"], "input": False, "shape": (batch, out["classes"]),
                                  "dtype": DataType.FLOAT, "classes": out["classes"]})
        self._profile = [tuple(s) for s in inp["profile"]] if inp["profile"] else None

    @property
    def num_optimization_profiles(self) -> int:
        return 1

    def create_execution_context(self) -> "_Context":
        self._trt.cuda._require_context("createExecutionContext")
        self._trt.calls.append(("create_execution_context",))
        return self._trt._context_class(self)

    def _in_profile(self, shape: Tuple[int, ...]) -> bool:
        inp = self._tensors[0]
        if len(shape) != len(inp["shape"]):
            return False
        if self._profile is None:
            return tuple(shape) == inp["shape"]
        low, _, high = self._profile
        return all(lo <= d <= hi for d, lo, hi in zip(shape, low, high))

    def _tensor(self, name: str) -> Dict[str, Any]:
        for t in self._tensors:
            if t["name"] == name:
                return t
        raise KeyError(name)


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self._engine = engine
        self._trt = engine._trt
        inp = engine._tensors[0]["shape"]
        self._input_shape: Optional[Tuple[int, ...]] = None if -1 in inp else tuple(inp)
        self._addresses: Dict[str, int] = {}

    @property
    def engine(self) -> _Engine:
        return self._engine

    def _output_shape(self, tensor: Dict[str, Any]) -> Tuple[int, ...]:
        batch = self._input_shape[0] if self._input_shape is not None else -1
        return (batch, tensor["classes"])

    def _set_shape(self, shape: Sequence[int]) -> bool:
        shape = tuple(int(d) for d in shape)
        if not self._engine._in_profile(shape):
            self._trt._logger_error(f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (shape {shape} "
                                    f"outside the profile {self._engine._profile})")
            return False
        self._input_shape = shape
        return True

    def _enqueue(self, stream_handle: int, addresses: Dict[str, int]) -> bool:
        stream = self._trt.cuda.streams.get(stream_handle)
        if stream is None:
            self._trt._logger_error("enqueue: invalid stream handle")
            return False
        self._trt.cuda._require_context("enqueue")
        shape = self._input_shape
        assert shape is not None
        engine, cuda = self._engine, self._trt.cuda
        inp = engine._tensors[0]
        dtype = np.dtype(inp["dtype"].value)

        def kernel() -> None:
            n = shape[0]
            per_item = int(np.prod(shape[1:]))
            raw = cuda.read(addresses[inp["name"]], n * per_item * dtype.itemsize, "kernel reading the input")
            x = np.frombuffer(raw, dtype).reshape(n, per_item).astype(np.float64)
            means = x.mean(axis=1)
            for out in engine._tensors[1:]:
                k = out["classes"]
                y = (means[:, None] * np.arange(1, k + 1)[None, :]).astype(np.float32)
                cuda.write(addresses[out["name"]], y.tobytes(), "kernel writing an output")

        stream.pending.append(kernel)
        return True


class _BindingEngineApi:
    """TensorRT 8.x binding-index methods, mixed into the fake engine (8.5/8.6 warn: see trt_surfaces.json)."""

    _tensors: List[Dict[str, Any]]
    _profile: Optional[List[Tuple[int, ...]]]

    @property
    def num_bindings(self) -> int:
        return len(self._tensors)

    @property
    def has_implicit_batch_dimension(self) -> bool:
        return False

    def get_binding_name(self, index: int) -> str:
        return str(self._tensors[index]["name"])

    def binding_is_input(self, index: int) -> bool:
        return bool(self._tensors[index]["input"])

    def get_binding_shape(self, index: int) -> Tuple[int, ...]:
        return tuple(self._tensors[index]["shape"])

    def get_binding_dtype(self, index: int) -> DataType:
        return self._tensors[index]["dtype"]

    def get_profile_shape(self, profile_index: int, binding: int) -> List[Tuple[int, ...]]:
        assert profile_index == 0 and self._tensors[binding]["input"]
        assert self._profile is not None
        return list(self._profile)


class _TensorEngineApi:
    _tensors: List[Dict[str, Any]]
    _profile: Optional[List[Tuple[int, ...]]]

    @property
    def num_io_tensors(self) -> int:
        return len(self._tensors)

    def get_tensor_name(self, index: int) -> str:
        return str(self._tensors[index]["name"])

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if self._tensor(name)["input"] else TensorIOMode.OUTPUT

    def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
        return tuple(self._tensor(name)["shape"])

    def get_tensor_dtype(self, name: str) -> DataType:
        return self._tensor(name)["dtype"]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> List[Tuple[int, ...]]:
        assert profile_index == 0 and self._tensor(name)["input"]
        assert self._profile is not None
        return list(self._profile)


class _BindingContextApi:
    _engine: _Engine
    _trt: "FakeTensorRT"
    _input_shape: Optional[Tuple[int, ...]]

    def set_binding_shape(self, binding: int, shape: Sequence[int]) -> bool:
        self._trt.calls.append(("set_binding_shape", binding, tuple(shape)))
        if not self._engine._tensors[binding]["input"]:
            return False
        return self._set_shape(shape)

    def get_binding_shape(self, binding: int) -> Tuple[int, ...]:
        tensor = self._engine._tensors[binding]
        if tensor["input"]:
            return self._input_shape if self._input_shape is not None else tuple(tensor["shape"])
        return self._output_shape(tensor)

    @property
    def all_binding_shapes_specified(self) -> bool:
        return self._input_shape is not None

    def execute_async_v2(self, bindings: Sequence[int], stream_handle: int, input_consumed: Any = None) -> bool:
        self._trt.calls.append(("execute_async_v2", tuple(bindings), stream_handle))
        if len(bindings) != len(self._engine._tensors) or self._input_shape is None:
            return False
        if any(int(b) == 0 for b in bindings):
            return False
        addresses = {t["name"]: int(b) for t, b in zip(self._engine._tensors, bindings)}
        return self._enqueue(stream_handle, addresses)


class _TensorContextApi:
    _engine: _Engine
    _trt: "FakeTensorRT"
    _input_shape: Optional[Tuple[int, ...]]
    _addresses: Dict[str, int]

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        self._trt.calls.append(("set_input_shape", name, tuple(shape)))
        if not self._engine._tensor(name)["input"]:
            return False
        return self._set_shape(shape)

    def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
        tensor = self._engine._tensor(name)
        if tensor["input"]:
            return self._input_shape if self._input_shape is not None else tuple(tensor["shape"])
        return self._output_shape(tensor)

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._trt.calls.append(("set_tensor_address", name, int(memory)))
        try:
            self._engine._tensor(name)
        except KeyError:
            return False
        self._addresses[name] = int(memory)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        self._trt.calls.append(("execute_async_v3", stream_handle))
        if self._input_shape is None or any(t["name"] not in self._addresses for t in self._engine._tensors):
            self._trt._logger_error("IExecutionContext::enqueueV3: Error Code 3: API Usage Error (address or "
                                    "shape not set)")
            return False
        return self._enqueue(stream_handle, dict(self._addresses))


# The real bindings construct Runtime and Builder with a pybind11 factory; when libnvinfer returns NULL (no CUDA
# device, a driver that does not match, out of memory) the constructor raises this TypeError.
NULL_FACTORY = "pybind11::init(): factory function returned nullptr"


def _check_logger(trt: "FakeTensorRT", logger: ILogger) -> None:
    if not getattr(logger, "_base_initialised", False):
        raise TypeError("tensorrt.ILogger.__init__() must be called when overriding __init__")
    trt._loggers.append(logger)
    if trt.fail_create:
        trt._logger_error("[runtime.cpp::initCudaRuntime] CUDA initialization failure with error: 35. Please check "
                          "your CUDA installation: http://docs.nvidia.com/cuda/cuda-installation-guide-linux/")
        raise TypeError(NULL_FACTORY)


class _Runtime:
    def __init__(self, trt: "FakeTensorRT", logger: ILogger) -> None:
        _check_logger(trt, logger)
        self._trt, self._logger = trt, logger
        self.DLA_core = -1

    @property
    def num_DLA_cores(self) -> int:
        return self._trt.dla_cores

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


# -- the builder API (what `engine build` uses) ---------------------------------------------------------------


class DeviceType(enum.Enum):
    GPU = "GPU"
    DLA = "DLA"


class _Calibrator2:
    """IInt8EntropyCalibrator2 (TensorRT 8.x and 10.x; gone in 11)."""

    def __init__(self) -> None:
        self._base_initialised = True


class _Network:
    def __init__(self, trt: "FakeTensorRT", flags: int) -> None:
        self._trt = trt
        self.fake_flags = flags
        self.fake_input: Optional[Dict[str, Any]] = None
        self.fake_outputs: List[Tuple[str, int]] = []
        self.fake_model_precision = "fp32"  # what the ONNX graph's own types say: fp32, fp16 or int8 (Q/DQ)

    @property
    def fake_strongly_typed(self) -> bool:
        trt = self._trt
        if trt.fake_version >= (11, 0):
            return True  # TensorRT 11: strongly typed always (the flag is ignored, see trt_surfaces.json)
        flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        return flag is not None and bool(self.fake_flags & (1 << int(flag)))


class _OnnxParser:
    def __init__(self, trt: "FakeTensorRT", network: _Network, logger: ILogger) -> None:
        self._trt, self._network = trt, network
        self._errors: List[str] = []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> str:
        return self._errors[index]

    def parse(self, model: bytes, path: Optional[str] = None) -> bool:
        import onnx

        trt = self._trt
        trt.calls.append(("parse", len(model)))
        explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
        if trt.fake_version < (10, 0) and not self._network.fake_flags & (1 << int(explicit)):
            self._errors.append("ModelImporter.cpp: the ONNX parser only supports explicit batch networks")
            return False
        try:
            proto = onnx.load_from_string(bytes(model))
        except Exception as exc:  # onnx raises DecodeError for a damaged file
            self._errors.append(f"Failed to parse ONNX model: {exc}")
            return False
        (inp,) = proto.graph.input
        dims = [d.dim_value if d.dim_value else -1 for d in inp.type.tensor_type.shape.dim]
        dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.UINT8: "uint8"}[inp.type.tensor_type.elem_type]
        if dtype == "uint8" and trt.fake_version < (8, 5):
            # UINT8 network inputs arrived in TensorRT 8.5 (its release notes; NVIDIA/TensorRT issue 1503).
            self._errors.append("Unsupported ONNX data type: UINT8 (2)")
            return False
        ops = {n.op_type for n in proto.graph.node}
        if "QuantizeLinear" in ops:
            self._network.fake_model_precision = "int8"
        elif any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer):
            self._network.fake_model_precision = "fp16"
        self._network.fake_input = {"name": inp.name, "shape": dims, "dtype": dtype}
        self._network.fake_outputs = [(o.name, o.type.tensor_type.shape.dim[1].dim_value) for o in proto.graph.output]
        return True


class _Profile:
    def __init__(self) -> None:
        self.fake_shapes: Dict[str, Tuple[Tuple[int, ...], ...]] = {}

    def set_shape(self, input: str, min: Sequence[int], opt: Sequence[int], max: Sequence[int]) -> None:
        if not all(lo <= o <= hi for lo, o, hi in zip(min, opt, max)):
            raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
        self.fake_shapes[input] = (tuple(min), tuple(opt), tuple(max))


class _BuilderConfig:
    def __init__(self, trt: "FakeTensorRT") -> None:
        self._trt = trt
        self.fake_flags: List[Any] = []
        self.fake_profiles: List[_Profile] = []
        self.fake_calibration_profile: Optional[_Profile] = None
        self.fake_calibrator: Any = None
        self.fake_pool_limits: Dict[Any, int] = {}
        self.default_device_type = DeviceType.GPU
        self.DLA_core = -1

    # TensorRT 8.0-8.3 (and deprecated in 8.4-8.6, removed in 10): the workspace as a property.
    def _get_workspace(self) -> int:
        return self.fake_pool_limits.get("WORKSPACE", 0)

    def _set_workspace(self, size: int) -> None:
        self.fake_pool_limits["WORKSPACE"] = int(size)

    # TensorRT 8.4+
    def _set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        self.fake_pool_limits[pool.name] = int(pool_size)

    def set_flag(self, flag: Any) -> None:
        assert isinstance(flag, self._trt.BuilderFlag), f"{flag!r} is not this TensorRT's BuilderFlag"
        self.fake_flags.append(flag)

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.fake_profiles.append(profile)
        return len(self.fake_profiles) - 1

    # TensorRT 8.x and 10.x (deprecated in 10.1, removed in 11): implicit INT8 calibration.
    def _get_calibrator(self) -> Any:
        return self.fake_calibrator

    def _set_calibrator(self, calibrator: Any) -> None:
        self.fake_calibrator = calibrator

    def _set_calibration_profile(self, profile: _Profile) -> bool:
        self.fake_calibration_profile = profile
        return True


class _Builder:
    def __init__(self, trt: "FakeTensorRT", logger: ILogger) -> None:
        _check_logger(trt, logger)
        self._trt = trt

    @property
    def num_DLA_cores(self) -> int:
        return self._trt.dla_cores

    def create_network(self, flags: int = 0) -> _Network:
        return _Network(self._trt, int(flags))

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def create_builder_config(self) -> _BuilderConfig:
        config = self._trt._classes["IBuilderConfig"](self._trt)
        self._trt.configs.append(config)
        return config

    def build_serialized_network(self, network: _Network, config: _BuilderConfig) -> Optional[bytes]:
        trt = self._trt
        trt.calls.append(("build_serialized_network",))
        inp = network.fake_input
        assert inp is not None, "parse the network first"
        profile = None
        if -1 in inp["shape"]:
            if not config.fake_profiles or inp["name"] not in config.fake_profiles[0].fake_shapes:
                trt._logger_error(f"4: [network.cpp::validate] Error Code 4: Internal Error ({inp['name']}: dynamic "
                                  "input is missing dimensions in profile 0.)")
                return None
            profile = [list(s) for s in config.fake_profiles[0].fake_shapes[inp["name"]]]
        flags = {f.name for f in config.fake_flags}
        if network.fake_strongly_typed and flags & {"FP16", "INT8"}:
            # TensorRT 10 developer guide, "Strongly Typed Networks": precision flags are refused.
            trt._logger_error("3: [builderConfig.cpp::validate] Error Code 3: API Usage Error (Parameter check failed, "
                              "condition: !(flags & (kFP16 | kINT8 | kBF16)). Precision flags are not allowed for "
                              "strongly typed networks.)")
            return None
        precision = self._precision(network, flags, config)
        if precision is None:
            return None
        if config.default_device_type == DeviceType.DLA and precision == "fp32":
            trt._logger_error("DLA supports only FP16 and INT8")
            return None
        dla = config.DLA_core if config.default_device_type == DeviceType.DLA else None
        return engine_bytes(trt.__version__, input_name=inp["name"], input_shape=inp["shape"], dtype=inp["dtype"],
                            profile=profile, outputs=network.fake_outputs, dla_core=dla, precision=precision)

    def _precision(self, network: _Network, flags: Any, config: _BuilderConfig) -> Optional[str]:
        """What the engine's layers run in: the graph's types if strongly typed, else what the flags allow."""
        model = network.fake_model_precision
        if network.fake_strongly_typed:
            return model
        if model == "int8" and "INT8" not in flags:
            # Weakly typed networks with Q/DQ layers need the INT8 flag (TensorRT 8.6 developer guide,
            # "Explicit Versus Implicit Quantization").
            self._trt._logger_error("4: [network.cpp::validate] Error Code 4: Internal Error (Network has Q/DQ "
                                    "layers but kINT8 is not set.)")
            return None
        if model == "int8":
            return "int8"
        if "INT8" in flags:
            self._calibrate(network.fake_input or {}, config)
            return "int8"
        if "FP16" in flags:
            return "fp16"
        return "fp32"  # weak typing: without the FP16 flag a float16 graph's layers may all run in FP32

    def _calibrate(self, inp: Dict[str, Any], config: _BuilderConfig) -> None:
        calibrator = config.fake_calibrator
        assert calibrator is not None and getattr(calibrator, "_base_initialised", False)
        trt = self._trt
        cached = calibrator.read_calibration_cache()
        if cached:
            trt.calls.append(("calibration_cache_used", len(cached)))
            return
        batch = calibrator.get_batch_size()
        if -1 in inp["shape"]:
            assert config.fake_calibration_profile is not None, "dynamic shapes need a calibration profile"
            assert config.fake_calibration_profile.fake_shapes[inp["name"]][0][0] == batch
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


# -- the module -----------------------------------------------------------------------------------------------


def _warning(cls_name: str, member: str, version: str) -> None:
    warnings.warn(f"{cls_name}.{member} is deprecated in TensorRT {version}.", DeprecationWarning, stacklevel=3)


def _warning_method(func: Any, cls_name: str, member: str, version: str) -> Any:
    @functools.wraps(func)
    def warned(*args: Any, **kwargs: Any) -> Any:
        _warning(cls_name, member, version)
        return func(*args, **kwargs)

    return warned


def _warning_property(prop: property, cls_name: str, member: str, version: str) -> property:
    def fget(obj: Any) -> Any:
        _warning(cls_name, member, version)
        return prop.fget(obj)  # type: ignore[misc]

    def fset(obj: Any, value: Any) -> None:
        _warning(cls_name, member, version)
        prop.fset(obj, value)  # type: ignore[misc]

    return property(fget, fset if prop.fset is not None else None)


class FakeTensorRT:
    """Stand-in of the `tensorrt` module at `version`, runtime side: 8.2.x (binding API), 8.5/8.6 (both, the
    binding calls warn), 10.x and 11.x (tensor-name API). Pass `cuda` (a FakeCuda) so kernels read and write its
    memory. `fail_create`: Runtime()/Builder() fail as when libnvinfer cannot start (no GPU)."""

    def __init__(self, version: str, cuda: FakeCuda, dla_cores: int = 0, fail_create: bool = False) -> None:
        self.__version__ = version
        self.fake_version = version_tuple(version)
        self.cuda = cuda
        self.dla_cores = dla_cores
        self.fail_create = fail_create
        self.calls: List[Tuple[Any, ...]] = []
        self._loggers: List[ILogger] = []
        v = self.fake_version
        binding = v < (10, 0)
        names = v >= (8, 5)
        engine_bases: Tuple[type, ...] = ((_BindingEngineApi,) if binding else ()) + (
            (_TensorEngineApi,) if names else ())
        context_bases: Tuple[type, ...] = ((_BindingContextApi,) if binding else ()) + (
            (_TensorContextApi,) if names else ())
        self._engine_class = type("ICudaEngine", (*engine_bases, _Engine), {})
        self._context_class = type("IExecutionContext", (*context_bases, _Context), {})
        self._classes: Dict[str, Any] = {"ICudaEngine": self._engine_class, "IExecutionContext": self._context_class,
                                         "Runtime": type("Runtime", (_Runtime,), {})}
        self.ILogger = ILogger
        self.DataType = DataType
        if names:
            self.TensorIOMode = TensorIOMode
        self._define_builder()
        _apply_deprecations(self)

    def _define_builder(self) -> None:
        """Nothing at this level: FakeBuilderTensorRT adds the builder API."""

    def nptype(self, dtype: DataType) -> Any:
        return nptype(dtype)

    def Runtime(self, logger: ILogger) -> _Runtime:
        return self._classes["Runtime"](self, logger)  # type: ignore[no-any-return]

    def _logger_error(self, msg: str) -> None:
        for logger in self._loggers[-1:]:
            logger.log(ILogger.Severity.ERROR, msg)


class FakeBuilderTensorRT(FakeTensorRT):
    """FakeTensorRT plus the builder API (Builder, OnnxParser, builder config, profiles) as the version has it:
    precision flags and implicit INT8 calibration up to 10.x, STRONGLY_TYPED networks from 10.0 (always, in 11),
    set_memory_pool_limit from 8.4 (max_workspace_size before 10). The built engine records what its layers run
    in (`engine_spec(blob)["precision"]`): the graph's types when strongly typed, else what the flags allow."""

    def __init__(self, version: str, cuda: FakeCuda, dla_cores: int = 0, fail_create: bool = False) -> None:
        self.configs: List[_BuilderConfig] = []
        self.calibration_batches: List[np.ndarray] = []
        super().__init__(version, cuda, dla_cores, fail_create)

    def _define_builder(self) -> None:
        v = self.fake_version
        flags = ["GPU_FALLBACK"] if v >= (11, 0) else ["FP16", "INT8", "GPU_FALLBACK"]
        self.BuilderFlag = enum.Enum("BuilderFlag", flags)  # type: ignore[misc]
        creation = ([] if v >= (11, 0) else ["EXPLICIT_BATCH"]) + (["STRONGLY_TYPED"] if v >= (10, 0) else [])
        self.NetworkDefinitionCreationFlag = enum.IntEnum(  # type: ignore[misc]
            "NetworkDefinitionCreationFlag", [(n, i) for i, n in enumerate(creation)])
        self.DeviceType = DeviceType
        config_members: Dict[str, Any] = {}
        if v >= (8, 4):
            self.MemoryPoolType = enum.Enum("MemoryPoolType", ["WORKSPACE"])  # type: ignore[misc]
            config_members["set_memory_pool_limit"] = _BuilderConfig._set_memory_pool_limit
        if v < (10, 0):
            config_members["max_workspace_size"] = property(_BuilderConfig._get_workspace,
                                                            _BuilderConfig._set_workspace)
        if v < (11, 0):
            self.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (_Calibrator2,), {})
            config_members["int8_calibrator"] = property(_BuilderConfig._get_calibrator,
                                                         _BuilderConfig._set_calibrator)
            config_members["set_calibration_profile"] = _BuilderConfig._set_calibration_profile
        config = type("IBuilderConfig", (_BuilderConfig,), config_members)
        self._classes.update({"IBuilderConfig": config, "Builder": type("Builder", (_Builder,), {}),
                              "OnnxParser": type("OnnxParser", (_OnnxParser,), {})})

    def Builder(self, logger: ILogger) -> _Builder:
        return self._classes["Builder"](self, logger)  # type: ignore[no-any-return]

    def OnnxParser(self, network: _Network, logger: ILogger) -> _OnnxParser:
        return self._classes["OnnxParser"](self, network, logger)  # type: ignore[no-any-return]


def _apply_deprecations(trt: FakeTensorRT) -> None:
    """Make the stand-in's members warn exactly where the recorded real release's do (DeprecationWarning)."""
    release = recorded_release(trt.__version__)
    if release is None:
        return
    surface = recorded_surfaces()[release]["classes"]
    for name, cls in trt._classes.items():
        recorded = surface.get(name, {})
        for member, entry in recorded.get("methods", {}).items():
            if entry.get("warns") and callable(getattr(cls, member, None)):
                setattr(cls, member, _warning_method(getattr(cls, member), name, member, release))
        for member, entry in recorded.get("properties", {}).items():
            attr = _class_attribute(cls, member)
            if entry.get("warns") and isinstance(attr, property):
                setattr(cls, member, _warning_property(attr, name, member, release))


def _class_attribute(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


# ---------------------------------------------------------------------------------------------------------
# as importable modules, for another process


def write_importable(directory: Path, version: str, cc: Tuple[int, int] = (8, 7), gpu_name: str = "Orin",
                     host_register: str = "ok") -> Path:
    """Modules `tensorrt` and `pycuda.driver` in `directory` that ARE this stand-in (one FakeTensorRT at `version`
    over one shared FakeCuda), for a process that imports them by name (the inference worker, started by the real
    daemon): put `directory` on that process's PYTHONPATH. Returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "_fake_gpu.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import fake_trt\n"
        f"CUDA = fake_trt.FakeCuda(cc={tuple(cc)!r}, gpu_name={gpu_name!r}, host_register={host_register!r})\n"
        f"TRT = fake_trt.FakeTensorRT({version!r}, CUDA)\n")
    # A module may replace itself in sys.modules while it is imported: `import tensorrt` then gives the object.
    replace = "import sys\nimport _fake_gpu\nsys.modules[__name__] = _fake_gpu.{}\n"
    (directory / "tensorrt.py").write_text(replace.format("TRT"))
    (directory / "pycuda").mkdir(exist_ok=True)
    (directory / "pycuda" / "__init__.py").write_text("")
    (directory / "pycuda" / "driver.py").write_text(replace.format("CUDA"))
    return directory
