"""Record the real TensorRT Python API surface of several releases into tests/runners/trt_surfaces.json.

    python tests/runners/record_trt_surfaces.py            # downloads the binding wheels, rewrites the fixture

What it does, for each release in RELEASES:
1. `pip download --no-deps` NVIDIA's binding wheel from PyPI (`tensorrt_bindings` 8.6.1, `tensorrt-cu12-bindings`
   10.x / 11.x): the pybind11 module `tensorrt_bindings/tensorrt.so` and its `__init__.py`, without the
   TensorRT libraries (those are in the separate multi-GB `tensorrt-cu12-libs` wheel, and need a GPU).
2. Builds stub libraries (gcc) named as the module's DT_NEEDED entries (libnvinfer.so.N, libnvonnxparser.so.N,
   libnvinfer_plugin.so.N, and 8.6's libnvparsers.so.8) that define the few C entry points the module links
   against (createInferBuilder_INTERNAL, createInferRuntime_INTERNAL, getPluginRegistry, ...) as functions
   returning NULL. Registering the classes and enums at import calls none of them, so the module imports and
   its classes, methods, properties and enum members can be read without a GPU. Nothing is ever called.
3. Walks the module in a child Python (LD_LIBRARY_PATH at the stubs) and writes, per release: every public
   class with its methods (first docstring line = pybind11's signature) and properties (read-only or not),
   every enum with its members, module functions, and deprecations:
   - `deprecated`: the "[DEPRECATED] ..." note of the docstring (for methods, properties via the class's
     `:ivar name:` lines, enum members via the enum's "Members:" list, classes via their own docstring);
   - `warns`: the call emits DeprecationWarning at run time. TensorRT wraps such methods in
     `tensorrt::utils::DeprecatedFunc` / `DeprecatedMemberFunc`, which call `issueDeprecationWarning`; the child
     reads each pybind11 function record's `impl` pointer (through the capsule in `__self__`) and looks its
     symbol up in the module's ELF symbol table (`nm`): an implementation instantiated for a Deprecated*
     wrapper warns. (8.6 marks its binding-index API that way without a "[DEPRECATED]" docstring.)

Needs: pip, gcc, binutils (nm), network access to PyPI, a CPython whose tag the wheels are built for (3.8-3.12
for 8.6.1). The wheels are not committed; only this script and the JSON it writes.
"""

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "trt_surfaces.json"
# (pip requirement, soname major). 8.6.1: JetPack 6.0's TensorRT release (8.6.2 there; the Python API of a patch
# release is the same); 10.3.0: JetPack 6.1/6.2; 10.16.1: the last 10.x; 11.0 and 11.4: JetPack 7.2.2+.
RELEASES = (
    ("tensorrt_bindings==8.6.1", 8),
    ("tensorrt-cu12-bindings==10.3.0", 10),
    ("tensorrt-cu12-bindings==10.16.1.11", 10),
    ("tensorrt-cu12-bindings==11.0.0.114", 11),
    ("tensorrt-cu12-bindings==11.4.0.106", 11),
)
STUB_C = """/* Stand-in entry points of libnvinfer & co: every one returns NULL; the recorder never calls them. */
#define S(name) void *name(void) { return 0; }
S(createInferBuilder_INTERNAL) S(createInferRefitter_INTERNAL) S(createInferRuntime_INTERNAL)
S(createNvOnnxParserRefitter_INTERNAL) S(createNvOnnxParser_INTERNAL) S(getBuilderPluginRegistry)
S(getNvOnnxParserVersion) S(getPluginRegistry) S(initLibNvInferPlugins)
"""
# TensorRT 8.6 still links the UFF and Caffe parsers (libnvparsers.so.8), whose C++ entry points it references.
STUB_CXX = """namespace nvuffparser { enum FieldType : int {};
struct FieldMap { FieldMap(char const*, void const*, FieldType, int); };
FieldMap::FieldMap(char const*, void const*, FieldType, int) {} void *createUffParser() { return 0; } }
namespace nvcaffeparser1 { void *createCaffeParser() { return 0; } void shutdownProtobufLibrary() {} }
"""
DEPRECATED_RE = re.compile(r"\[DEPRECATED[^\]]*\][^\n]*")


# -- parent: download, stub, run the child ------------------------------------------------------------------


def _stub_libraries(so: Path, out: Path) -> None:
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(lib[^\]]+)\]",
                        subprocess.run(["readelf", "-d", str(so)], check=True, capture_output=True,
                                       text=True).stdout)
    (out / "stub.c").write_text(STUB_C)
    (out / "stub.cpp").write_text(STUB_CXX)
    for name in needed:
        if name.startswith(("libnvinfer", "libnvonnxparser", "libnvparsers")):
            subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out / name), str(out / "stub.c"),
                            str(out / "stub.cpp"), f"-Wl,-soname,{name}", "-lstdc++"], check=True)


def record_release(requirement: str, work: Path) -> Dict[str, Any]:
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), requirement],
                   check=True)
    version = requirement.split("==")[1]
    wheel = next(p for p in wheels.glob("*.whl") if f"-{version}-" in p.name or f"-{version}." in p.name)
    tree = work / f"unpacked-{version}"
    with zipfile.ZipFile(str(wheel)) as z:
        z.extractall(str(tree))
    so = tree / "tensorrt_bindings" / "tensorrt.so"
    stubs = work / f"stubs-{version}"
    stubs.mkdir()
    _stub_libraries(so, stubs)
    env = dict(os.environ, LD_LIBRARY_PATH=str(stubs), PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-W", "ignore", __file__, "--child", str(so)], env=env, check=True,
                         capture_output=True, text=True).stdout
    surface = json.loads(out)
    surface["wheel"] = wheel.name
    return surface


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", metavar="SO", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args()
    if args.child:
        json.dump(walk_module(Path(args.child)), sys.stdout, sort_keys=True)
        return 0
    releases: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for requirement, _ in RELEASES:
            work = Path(tmp) / requirement.replace("=", "_")
            work.mkdir()
            surface = record_release(requirement, work)
            releases[surface["version"]] = surface
            print(f"{surface['version']}: {len(surface['classes'])} classes, {len(surface['enums'])} enums "
                  f"({surface['wheel']})", file=sys.stderr)
    warned = sum(m.get("warns", False) for r in releases.values() for c in r["classes"].values()
                 for m in list(c.get("methods", {}).values()) + list(c.get("properties", {}).values()))
    if not warned:
        raise SystemExit("no method records a run-time DeprecationWarning: the function-record layout moved")
    doc = {"generated_by": "tests/runners/record_trt_surfaces.py", "releases": releases}
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return 0


# -- child: walk the imported module ------------------------------------------------------------------------


class _Symbols:
    """Maps a code address inside the module to its ELF symbol (the module is not stripped: .symtab is there)."""

    def __init__(self, so: Path) -> None:
        out = subprocess.run(["nm", "--defined-only", "-C", str(so)], check=True, capture_output=True,
                             text=True).stdout
        self.by_offset: Dict[int, str] = {}
        for line in out.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1] in "tTwW":
                self.by_offset[int(parts[0], 16)] = parts[2]
        self.base = self._load_base(so)

    @staticmethod
    def _load_base(so: Path) -> int:
        real = os.path.realpath(str(so))
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                if len(fields) >= 6 and os.path.realpath(fields[5]) == real and int(fields[2], 16) == 0:
                    return int(fields[0].split("-")[0], 16)
        raise RuntimeError(f"{so} is not mapped")

    def name(self, address: int) -> Optional[str]:
        return self.by_offset.get(address - self.base)


_GET_NAME = ctypes.pythonapi.PyCapsule_GetName
_GET_NAME.restype = ctypes.c_char_p
_GET_NAME.argtypes = [ctypes.py_object]
_GET_POINTER = ctypes.pythonapi.PyCapsule_GetPointer
_GET_POINTER.restype = ctypes.c_void_p
_GET_POINTER.argtypes = [ctypes.py_object, ctypes.c_char_p]
# pybind11's function_record starts: char *name, *doc, *signature; std::vector<argument_record> args (three
# pointers); handle (*impl)(function_call &). So impl is the seventh pointer.
_IMPL_INDEX = 6


def _warns(func: Any, symbols: _Symbols) -> bool:
    """Does this pybind11 function's implementation go through TensorRT's deprecation wrapper?"""
    func = getattr(func, "__func__", func)
    holder = getattr(func, "__self__", None)
    if holder is None:
        return False
    if type(holder).__name__ == "PyCapsule":  # pybind11 2.x: the record pointer is in a capsule
        record = _GET_POINTER(holder, _GET_NAME(holder))
    elif type(holder).__name__.startswith("pybind11_detail_function_record"):
        # pybind11 3.x (TensorRT 10.16, 11.x): a Python object whose struct holds, after PyObject_HEAD (refcount
        # and type pointers), the function_record pointer.
        record = ctypes.cast(id(holder), ctypes.POINTER(ctypes.c_void_p))[2]
    else:
        return False
    impl = ctypes.cast(record, ctypes.POINTER(ctypes.c_void_p))[_IMPL_INDEX]
    name = symbols.name(int(impl or 0)) or ""
    return "tensorrt::utils::Deprecated" in name


def _signature(func: Any) -> str:
    doc = (getattr(func, "__doc__", None) or "").strip()
    first = doc.splitlines()[0] if doc else ""
    return first.replace("tensorrt_bindings.tensorrt.", "tensorrt.")


def _deprecated(doc: Optional[str]) -> Optional[str]:
    """The "[DEPRECATED] Deprecated in TensorRT 10.1. Superseded by ..." note, cut after its second sentence."""
    m = DEPRECATED_RE.search(doc or "")
    if not m:
        return None
    sentences = re.split(r"(?<=\.)\s+", m.group(0).strip())
    return " ".join(sentences[:2])[:160]


def _entry(**fields: Any) -> Dict[str, Any]:
    """A JSON entry without its empty fields (False, None): the fixture stays readable."""
    return {k: v for k, v in fields.items() if v not in (None, False)}


def _ivars(doc: str) -> Dict[str, str]:
    """`:ivar name: text` lines of a class docstring (what pybind11 properties are documented by)."""
    out: Dict[str, str] = {}
    for m in re.finditer(r":ivar (\w+):(.*?)(?=\n\s*:ivar |\Z)", doc, re.S):
        out[m.group(1)] = m.group(2)
    return out


def _enum_members(cls: Any) -> Dict[str, Optional[str]]:
    doc = cls.__doc__ or ""
    notes: Dict[str, str] = {}
    body = doc.split("Members:", 1)[1] if "Members:" in doc else ""
    for m in re.finditer(r"^\s{2}(\w+) :(.*?)(?=^\s{2}\w+ :|\Z)", body, re.S | re.M):
        notes[m.group(1)] = m.group(2)
    return {name: _deprecated(notes.get(name)) for name in cls.__members__}


def walk_module(so: Path) -> Dict[str, Any]:
    import tensorrt_bindings as trt  # the wheel's package; `tensorrt` on a Jetson

    symbols = _Symbols(so)
    classes: Dict[str, Any] = {}
    enums: Dict[str, Any] = {}
    functions: Dict[str, Any] = {}
    values: Dict[str, str] = {}
    for name in sorted(dir(trt)):
        if name.startswith("_"):
            continue
        obj = getattr(trt, name)
        if isinstance(obj, type) and hasattr(obj, "__members__") and hasattr(obj, "__entries"):
            enums[name] = _entry(members=_enum_members(obj), deprecated=_deprecated(obj.__doc__))
        elif isinstance(obj, type):
            classes[name] = _walk_class(obj, symbols)
        elif callable(obj):
            functions[name] = _entry(signature=_signature(obj), warns=_warns(obj, symbols),
                                     deprecated=_deprecated(obj.__doc__))
        else:
            values[name] = type(obj).__name__
    return {"version": trt.__version__, "classes": classes, "enums": enums, "functions": functions,
            "values": values}


def _walk_class(cls: Any, symbols: _Symbols) -> Dict[str, Any]:
    ivars = _ivars(cls.__doc__ or "")
    methods: Dict[str, Any] = {}
    properties: Dict[str, Any] = {}
    nested: Dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ in ("builtins", "pybind11_builtins"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") and name != "__init__":
                continue
            if isinstance(member, property):
                fset = member.fset
                properties[name] = _entry(
                    writable=fset is not None,
                    warns=_warns(member.fget, symbols) or (fset is not None and _warns(fset, symbols)),
                    deprecated=_deprecated(ivars.get(name)) or _deprecated(member.__doc__),
                )
            elif isinstance(member, type):
                nested[name] = _enum_members(member) if hasattr(member, "__members__") else {}
            elif callable(member) or isinstance(member, (staticmethod, classmethod)):
                func = getattr(member, "__func__", member)
                methods[name] = _entry(signature=_signature(func), warns=_warns(func, symbols),
                                       deprecated=_deprecated(func.__doc__))
            else:
                properties.setdefault(name, {"constant": type(member).__name__})
    bases = [b.__name__ for b in cls.__mro__[1:] if b.__module__ not in ("builtins", "pybind11_builtins")]
    return _entry(bases=bases, deprecated=_deprecated(cls.__doc__), methods=methods, properties=properties,
                  nested=nested or None)


if __name__ == "__main__":
    sys.exit(main())
