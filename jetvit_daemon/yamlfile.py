"""YAML files validated with pydantic, with errors that name the file, the line and the field path.

The one loader of every YAML file the daemon reads: daemon.yaml, policy.yaml (the live watcher and `policy
check`), model manifests and simulator scenarios. An operator editing any of them must be told exactly what is
wrong and what would be valid, e.g. `config/policy.yaml:14: ladder.1.gpu_cap_mhz: Input should be a valid
integer (got 'fast')`.

    config = load_yaml_model(Path("daemon.yaml"), DaemonConfig)    # YamlProblem, one line per problem

Whatever the file holds, the loader raises nothing but `YamlProblem`, in time and memory bounded by the caps
below (a policy file can be written by an operator's typo or by whoever got write access; either way the daemon
must answer with an error, not with gigabytes or minutes):
- aliases (`*name`) are refused: PyYAML hands an alias back as the same object, and everything that walks the
  tree (line map, pydantic, the checks) walks it once per reference, so 346 bytes of nested aliases become
  gigabytes (the "billion laughs"). None of the daemon's files has a use for them.
- a key repeated in one mapping is an error naming both lines (YAML says keys are unique; PyYAML silently keeps
  the last, so an operator's second `hot_c:` would win unseen).
- files over MAX_FILE_BYTES, nesting deeper than MAX_DEPTH and documents of more than MAX_NODES values are
  refused while reading or composing, before anything is built from them.
- content that is not UTF-8, a directory, an unreadable file: one line naming the file.
Thread-safe: no shared state.
"""

import codecs
import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from jetvit_daemon.fileio import read_fd

T = TypeVar("T", bound=BaseModel)
PathKey = Tuple[Any, ...]

# The largest real file is the commented config/policy.yaml at ~5 KB; 256 KiB leaves room for a 64-state ladder
# with comments fifty times over and parses in well under a second on a Jetson Nano core.
MAX_FILE_BYTES = 256 * 1024
# config/daemon.yaml nests 3 deep, a manifest 3; 32 is far beyond any valid file and far below Python's
# recursion limit (the composer recurses once per level, pydantic a few frames per level).
MAX_DEPTH = 32
# Scalars, sequences and mappings in one document: a 64-state ladder with every field set is ~900.
MAX_NODES = 20_000


class YamlProblem(Exception):
    """The file's problems, one line each, already formatted `file:line: field: message`."""

    def __init__(self, problems: List[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class YamlDocument:
    """A parsed file: its data (plain dicts, lists and scalars) and the line of every field path."""

    data: Any
    lines: Dict[PathKey, int]


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, duplicate keys, deep nesting and oversized documents while composing
    (before any object is built). Raises YamlProblem; one instance per document."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.depth = 0
        self.nodes = 0

    def _refuse(self, mark: Any, message: str) -> YamlProblem:
        where = f"{self.source}:{mark.line + 1}" if mark is not None else self.source
        return YamlProblem([f"{where}: {message}"])

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise self._refuse(event.start_mark, f"alias *{event.anchor} refused: YAML aliases are not allowed "
                                                 "in this file (write the value out where it is needed)")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self._refuse(self.peek_event().start_mark,
                               f"more than {MAX_NODES} values in one file: not a file the daemon reads")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self._refuse(self.peek_event().start_mark,
                                   f"nested more than {MAX_DEPTH} levels deep: not a file the daemon reads")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        seen: Dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a complex key: the constructor refuses it if it cannot be hashed, pydantic otherwise
            line = key_node.start_mark.line + 1
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise self._refuse(key_node.start_mark, f"duplicate key {key_node.value!r} (first at line "
                                                        f"{seen[key]}, again at line {line}): keep one of them")
            seen[key] = line
        return node


def read_bounded(path: Path, max_bytes: int = MAX_FILE_BYTES + 1) -> bytes:
    """At most `max_bytes` of a regular file, never blocking: a FIFO, a device (/dev/zero) or a 10 GB file
    planted as the path costs at most `max_bytes`. IsADirectoryError for a directory, OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"not a regular file ({stat.filemode(st.st_mode)})", str(path))
        return read_fd(fd, max_bytes)
    finally:
        os.close(fd)


def read_yaml_bytes(path: Path) -> bytes:
    """The bytes of a YAML file, at most MAX_FILE_BYTES; YamlProblem naming the file otherwise."""
    try:
        data = read_bounded(path)
    except IsADirectoryError:
        raise YamlProblem([f"{path}: is a directory, not a file (give the path of the YAML file itself)"]) from None
    except OSError as exc:
        raise YamlProblem([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return check_size(data, str(path))


def check_size(data: bytes, source: str) -> bytes:
    if len(data) > MAX_FILE_BYTES:
        raise YamlProblem([f"{source}: larger than {MAX_FILE_BYTES // 1024} KiB: not a file the daemon reads"])
    return data


def read_yaml_text(path: Path) -> str:
    """The text of a YAML file, at most MAX_FILE_BYTES of UTF-8; YamlProblem naming the file otherwise."""
    return decode_text(read_yaml_bytes(path), str(path))


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 bytes → text (a leading byte-order mark dropped); YamlProblem naming the line of a bad byte."""
    try:
        return codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlProblem([f"{source}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                           "save the file as UTF-8"]) from None


def parse_yaml(text: str, source: str) -> YamlDocument:
    """One YAML document → its data and line map; YamlProblem (and only that) for anything else."""
    if len(text) > MAX_FILE_BYTES:
        raise YamlProblem([f"{source}: larger than {MAX_FILE_BYTES // 1024} KiB: not a file the daemon reads"])
    loader: Optional[_BoundedLoader] = None
    try:
        loader = _BoundedLoader(text, source)  # its reader refuses control characters here already
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise YamlProblem([f"{source}:{line}: not valid YAML: character U+{code:04X} is not allowed "
                           "(a control character: is this a binary file?)"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem([f"{where}: not valid YAML: {problem}"]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # The safe constructor's own conversions: e.g. an integer of more digits than Python converts.
        raise YamlProblem([f"{source}: a value cannot be read: {exc}"]) from None
    except (RecursionError, MemoryError):
        raise YamlProblem([f"{source}: too large or too deeply nested to read"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: Dict[PathKey, int] = {}
    _line_map(node, (), lines)
    return YamlDocument(data, lines)


def _line_map(node: Optional[yaml.Node], prefix: PathKey, out: Dict[PathKey, int]) -> None:
    if node is None:
        return
    out.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a complex key is no field name
            key = key_node.value
            # A field is reported at its key's line; its children at their own lines.
            path = (*prefix, key)
            out[path] = key_node.start_mark.line + 1
            _line_map(value_node, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*prefix, i), out)


def line_map(text: str) -> Dict[PathKey, int]:
    """Field path → line number (1-based) of a YAML text; empty when the text is not a valid file."""
    try:
        return parse_yaml(text, "<text>").lines
    except YamlProblem:
        return {}


def where(source: str, lines: Dict[PathKey, int], loc: PathKey) -> str:
    """`source:line` for the deepest part of `loc` present in the file, or just `source`."""
    line = _line_for(lines, loc)
    return f"{source}:{line}" if line is not None else source


def _line_for(lines: Dict[PathKey, int], loc: PathKey) -> Optional[int]:
    """The line of the deepest part of `loc` present in the file (a missing field points at its parent)."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


# user:password@ inside a URL (an RTSP camera's credentials): echoed back as user:***@, never in clear.
_URL_PASSWORD = re.compile(r"(://[^/:@\s'\"]*:)[^@/\s'\"]*@")


def _short_input(value: Any) -> str:
    text = _URL_PASSWORD.sub(r"\1***@", repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _models_in(annotation: Any) -> List[Type[BaseModel]]:
    """The models inside an annotation: X, Optional[X], List[X], a (tagged) union of models."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: List[Type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found.extend(m for m in _models_in(arg) if m not in found)
    return found


def _tag_of(model: Type[BaseModel]) -> Tuple[Any, ...]:
    field = model.model_fields.get("type")
    return getattr(field.annotation, "__args__", ()) if field is not None else ()


def _walk(model: Type[BaseModel], loc: PathKey) -> Tuple[PathKey, List[Type[BaseModel]]]:
    """`loc` without the tags pydantic inserts for a tagged union (`sinks.0.mqtt.port` → `sinks.0.port`), and
    the models valid at its end."""
    current: List[Type[BaseModel]] = [model]
    out: List[Any] = []
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            continue
        owner = next((m for m in current if part in m.model_fields), None)
        if owner is not None:
            out.append(part)
            current = _models_in(owner.model_fields[part].annotation)
            continue
        tagged = [m for m in current if part in _tag_of(m)]
        if tagged:
            current = tagged
            continue
        out.append(part)
        current = []
    return tuple(out), current


def _fields_at(model: Type[BaseModel], loc: PathKey) -> List[str]:
    """The field names valid at `loc` (a path of field names and list indices) inside `model`."""
    _, models = _walk(model, loc)
    return sorted(models[0].model_fields) if len(models) == 1 else []


def format_validation_error(
    source: str, exc: ValidationError, lines: Dict[PathKey, int], model: Optional[Type[BaseModel]] = None
) -> List[str]:
    problems: List[Tuple[int, str]] = []
    for err in exc.errors():
        loc = _walk(model, tuple(err["loc"]))[0] if model is not None else tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_for(lines, loc)
        where = f"{source}:{line}" if line is not None else source
        msg = err["msg"]
        if err.get("type") not in ("missing", "extra_forbidden") and "input" in err:
            msg += f" (got {_short_input(err['input'])})"
        if err.get("type") == "extra_forbidden":
            valid = _fields_at(model, tuple(err["loc"])[:-1]) if model is not None else []
            msg = "unknown field" + ("; valid here: " + ", ".join(valid) if valid else "")
        problems.append((line or 0, f"{where}: {field}: {msg}"))
    return [text for _, text in sorted(problems, key=lambda p: p[0])]


def validate_document(doc: YamlDocument, source: str, model: Type[T]) -> T:
    """A parsed file → `model`; YamlProblem listing every problem with file, line and field."""
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise YamlProblem([f"{source}:1: the file must be a mapping of fields (key: value), got {type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise YamlProblem(format_validation_error(source, exc, doc.lines, model)) from None
    except (RecursionError, MemoryError):
        raise YamlProblem([f"{source}: too large or too deeply nested to validate"]) from None


def parse_yaml_model(text: str, source: str, model: Type[T]) -> T:
    """Parse YAML text into `model`; raises YamlProblem listing every problem with file, line and field."""
    return validate_document(parse_yaml(text, source), source, model)


def load_yaml_model(path: Path, model: Type[T]) -> T:
    """Read, parse and validate a YAML file; YamlProblem (and only that) for whatever is wrong with it."""
    return parse_yaml_model(read_yaml_text(path), str(path), model)
