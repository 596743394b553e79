"""YAML files validated with pydantic, with errors that name the file, the line and the field path.

Used for daemon.yaml and policy.yaml: an operator editing either must be told exactly what is wrong and what
would be valid, e.g. `config/policy.yaml:14: ladder.1.gpu_cap_mhz: Input should be a valid integer (got 'fast')`.
"""

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)
PathKey = Tuple[Any, ...]


class YamlProblem(Exception):
    """The file's problems, one line each, already formatted `file:line: field: message`."""

    def __init__(self, problems: List[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _line_map(node: Optional[yaml.Node], prefix: PathKey, out: Dict[PathKey, int]) -> None:
    if node is None:
        return
    out.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            # A field is reported at its key's line; its children at their own lines.
            path = (*prefix, key)
            out[path] = key_node.start_mark.line + 1
            _line_map(value_node, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*prefix, i), out)


def line_map(text: str) -> Dict[PathKey, int]:
    """Field path → line number (1-based) of a YAML text; empty when the text is not valid YAML."""
    lines: Dict[PathKey, int] = {}
    try:
        _line_map(yaml.compose(text, Loader=yaml.SafeLoader), (), lines)
    except yaml.YAMLError:
        pass
    return lines


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


def parse_yaml_model(text: str, source: str, model: Type[T]) -> T:
    """Parse YAML text into `model`; raises YamlProblem listing every problem with file, line and field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem([f"{where}: not valid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise YamlProblem([f"{source}:1: the file must be a mapping of fields (key: value), got {type(data).__name__}"])
    lines: Dict[PathKey, int] = {}
    _line_map(node, (), lines)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise YamlProblem(format_validation_error(source, exc, lines, model)) from None


def load_yaml_model(path: Path, model: Type[T]) -> T:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlProblem([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return parse_yaml_model(text, str(path), model)
