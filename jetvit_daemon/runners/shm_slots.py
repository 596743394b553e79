"""Shared-memory slots between the daemon and the inference worker: one mmap'd file holding N slots, each an
input batch area and an area per output, laid out once from the model's input shape/dtype, its outputs and its
largest batch, and reused for every batch (never grown).

    layout = SlotLayout(TensorLayout("input", (3, 224, 224), "float32"),
                        [TensorLayout("logits", (1000,), "float32")], max_batch=8, n_slots=2)
    slots = SlotFile.create(layout)            # the daemon: creates the file (in /dev/shm when there is one)
    slots.input(0)[:n] = batch                 # the daemon writes a batch straight into slot 0's input
    peer = SlotFile.attach(slots.path, layout) # the worker: maps the same file
    peer.output(0, "logits")[:n] = logits      # the worker writes the outputs back

Files in /dev/shm (a tmpfs on every Linux, Jetson L4T included) rather than `multiprocessing.shared_memory`:
the worker must run on Python 3.6 (JetPack 4.6's TensorRT bindings exist only for it) and shared_memory is
3.8+. This module runs on Python 3.6 with numpy 1.13 (vermin --target=3.6-). A SlotFile is not thread-safe:
which side may touch which slot when is the slot protocol's business (runners/worker_protocol.py).
"""

import mmap
import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

SHM_DIR = "/dev/shm"
# Every area starts on a 64-byte boundary: a cache line, and enough for any dtype's alignment.
ALIGN = 64
# The file is a whole number of pages: the TensorRT runner page-locks the whole mapping (cuMemHostRegister via
# pycuda's register_host_memory, whose documentation asks for a page-aligned address and size; mmap gives the
# address).
PAGE = mmap.PAGESIZE


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def default_directory() -> str:
    """/dev/shm where it is a writable directory (a tmpfs: the slots never touch a disk), else the temp dir."""
    if os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK | os.X_OK):
        return SHM_DIR
    return tempfile.gettempdir()


class TensorLayout:
    """One tensor of a slot: its name, the shape of one image's worth (no batch axis) and its dtype name."""

    def __init__(self, name: str, item_shape: Sequence[int], dtype: Any) -> None:
        self.name = str(name)
        self.item_shape = tuple(int(d) for d in item_shape)
        self.dtype = np.dtype(dtype).name
        if any(d < 1 for d in self.item_shape):
            raise ValueError(f"tensor {self.name!r}: every dimension must be positive, got {list(self.item_shape)}")
        self.item_nbytes = int(np.prod(self.item_shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "item_shape": list(self.item_shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TensorLayout":
        return cls(data["name"], data["item_shape"], data["dtype"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorLayout) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"TensorLayout({self.name!r}, {list(self.item_shape)}, {self.dtype!r})"


class SlotLayout:
    """Where everything lies in the file: slot k starts at k × slot_nbytes; inside a slot the input comes first,
    then each output, each area holding `max_batch` items and starting on an ALIGN boundary. Immutable."""

    def __init__(self, input: TensorLayout, outputs: Sequence[TensorLayout], max_batch: int, n_slots: int) -> None:
        if max_batch < 1 or n_slots < 1:
            raise ValueError(f"need max_batch >= 1 and n_slots >= 1, got {max_batch} and {n_slots}")
        self.input = input
        self.outputs = list(outputs)
        self.max_batch = int(max_batch)
        self.n_slots = int(n_slots)
        offset = 0
        self.offsets: Dict[str, int] = {}
        for tensor in [input, *self.outputs]:
            self.offsets[tensor.name] = offset
            offset += _aligned(tensor.item_nbytes * self.max_batch)
        self.slot_nbytes = offset
        self.total_nbytes = (offset * self.n_slots + PAGE - 1) // PAGE * PAGE

    def to_dict(self) -> Dict[str, Any]:
        return {"input": self.input.to_dict(), "outputs": [o.to_dict() for o in self.outputs],
                "max_batch": self.max_batch, "n_slots": self.n_slots}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SlotLayout":
        return cls(TensorLayout.from_dict(data["input"]), [TensorLayout.from_dict(o) for o in data["outputs"]],
                   data["max_batch"], data["n_slots"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SlotLayout) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"SlotLayout({self.to_dict()})"


class SlotFile:
    """The mapped file of slots and numpy views into it (made once: `input(k)` and `output(k, name)` return the
    same array objects every call, so steady state allocates nothing). The daemon `create`s and `unlink`s it;
    the worker `attach`es to it. Not thread-safe."""

    def __init__(self, path: str, layout: SlotLayout, fd: int, owner: bool) -> None:
        self.path = path
        self.layout = layout
        self._owner = owner
        self._mmap = mmap.mmap(fd, layout.total_nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)  # the mapping keeps the memory; the descriptor is not needed
        self._memory = np.frombuffer(self._mmap, dtype=np.uint8)  # the whole mapping, flat: to page-lock it
        self._inputs: List[np.ndarray] = []
        self._outputs: List[Dict[str, np.ndarray]] = []
        for k in range(layout.n_slots):
            base = k * layout.slot_nbytes
            self._inputs.append(self._view(layout.input, base))
            self._outputs.append({o.name: self._view(o, base) for o in layout.outputs})

    def _view(self, tensor: TensorLayout, base: int) -> np.ndarray:
        shape = (self.layout.max_batch, *tensor.item_shape)
        return np.ndarray(shape, dtype=np.dtype(tensor.dtype), buffer=self._mmap,
                          offset=base + self.layout.offsets[tensor.name])

    @classmethod
    def create(cls, layout: SlotLayout, directory: Optional[str] = None) -> "SlotFile":
        """A new, zero-filled file of `layout.total_nbytes` (readable by this user only), mapped."""
        where = directory or default_directory()
        fd, path = tempfile.mkstemp(prefix=f"jetvit-slots-{os.getpid()}-", dir=where)
        try:
            os.ftruncate(fd, layout.total_nbytes)
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        return cls(path, layout, fd, owner=True)

    @classmethod
    def attach(cls, path: str, layout: SlotLayout) -> "SlotFile":
        """Map an existing slot file; ValueError when its size is not the layout's (a daemon/worker mismatch)."""
        fd = os.open(path, os.O_RDWR)
        size = os.fstat(fd).st_size
        if size != layout.total_nbytes:
            os.close(fd)
            raise ValueError(f"{path}: {size} bytes, the layout needs {layout.total_nbytes}")
        return cls(path, layout, fd, owner=False)

    @property
    def n_slots(self) -> int:
        return self.layout.n_slots

    def input(self, k: int) -> np.ndarray:
        """Slot k's input area, shape [max_batch, *item_shape]: write a batch's frames into its first n rows."""
        return self._inputs[k]

    def output(self, k: int, name: str) -> np.ndarray:
        """Slot k's area for output `name`, shape [max_batch, *item_shape]."""
        return self._outputs[k][name]

    def outputs(self, k: int) -> Dict[str, np.ndarray]:
        return self._outputs[k]

    def memory(self) -> np.ndarray:
        """The whole mapping as one flat uint8 array (page-aligned, whole pages): what a GPU runner page-locks so
        its copies to and from the slots need no staging buffer."""
        return self._memory

    def close(self) -> None:
        """Unmap (when no view is still held elsewhere: then the mapping goes with the last view) and, for the
        creator, remove the file."""
        self._inputs, self._outputs = [], []
        self._memory = np.zeros(0, dtype=np.uint8)
        try:
            self._mmap.close()
        except BufferError:  # a caller still holds a view; the mapping is released with it
            pass
        if self._owner:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
