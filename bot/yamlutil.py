"""YAML loading that remembers where every key is, and errors a clinic admin can act on.

Every configuration-like file (config, roster, policies, texts) is read with `load_yaml`, which
returns the data together with the line of each mapping key and sequence item. Validation
errors then name the file, the line and the dotted key, e.g.::

    roster.yaml:14: patients[0].care[0].practitioner: unknown practitioner 'dr-x'. Add it
    under 'practitioners' or fix the id.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

# A path inside a YAML document: ("patients", 0, "care", 0, "practitioner").
KeyPath = tuple[str | int, ...]


def dotted(path: Iterable[str | int]) -> str:
    """("patients", 0, "care") -> "patients[0].care"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class ConfigError:
    """One problem in one file. `message` always says what to do about it."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigErrors(Exception):
    """All the problems found while loading something; str() is one error per line."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors: tuple[ConfigError, ...] = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class YamlDoc:
    """Parsed YAML data plus the line (1-based) of every mapping key and sequence item."""

    file: str
    data: Any
    lines: Mapping[KeyPath, int] = field(default_factory=dict)

    def line_for(self, path: Sequence[str | int]) -> int | None:
        """Line of `path`, or of its nearest ancestor that exists (e.g. for a missing key)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def error(self, path: Sequence[str | int], message: str) -> ConfigError:
        return ConfigError(self.file, self.line_for(path), dotted(path), message)


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], dupes: list[tuple[KeyPath, int]]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            if key in seen and key != "<<":
                dupes.append((child, key_node.start_mark.line + 1))
            seen.add(key)
            lines.setdefault(child, key_node.start_mark.line + 1)
            _walk(value_node, child, lines, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, dupes)


def load_yaml(path: str | Path, *, display: str | None = None) -> YamlDoc:
    """Read one YAML file. Raises ConfigErrors (never a YAML traceback) when it cannot.

    `display` is how the file is named in errors (default: the path as given).
    """
    path = Path(path)
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigErrors([ConfigError(name, None, "", "file not found. Create it, or fix the path that points to it.")]) from None
    except IsADirectoryError:
        raise ConfigErrors([ConfigError(name, None, "", "is a directory, not a YAML file. Point to the file itself.")]) from None
    except UnicodeDecodeError:
        raise ConfigErrors([ConfigError(name, None, "", "is not UTF-8 text. Save it as UTF-8.")]) from None
    except OSError as exc:
        raise ConfigErrors([ConfigError(name, None, "", f"cannot be read ({exc.strerror}). Check its permissions.")]) from None
    return parse_yaml(text, name)


def _bad_scalar(node: yaml.Node | None) -> tuple[int | None, KeyPath]:
    """Line and key path of the first scalar PyYAML cannot read (2026-02-30, !!int x)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, KeyPath]] = [(node, ())] if node is not None else []
    while stack:
        current, path = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.ScalarNode):
            try:
                yaml.SafeLoader("").construct_object(current, deep=True)
            except Exception:  # noqa: BLE001 - any failure is the one we are looking for
                return int(current.start_mark.line) + 1, path
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((child, path + (i,)) for i, child in reversed(list(enumerate(current.value))))
        elif isinstance(current, yaml.MappingNode):
            for key, value in reversed(current.value):
                label = key.value if isinstance(key, yaml.ScalarNode) else "?"
                stack.extend([(value, path + (label,)), (key, path)])
    return None, ()


# libyaml's parser when PyYAML has it (the wheels do): a 10,000-patient roster parses in about a
# second instead of several, which is most of a restart. Same nodes, same marks, same errors.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, name: str) -> YamlDoc:
    """Parse YAML text (named `name` in errors) into a YamlDoc. Only ConfigErrors escape."""
    node = None
    loader = None
    lines: dict[KeyPath, int] = {}
    dupes: list[tuple[KeyPath, int]] = []
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        if node is not None:
            lines[()] = node.start_mark.line + 1
            _walk(node, (), lines, dupes)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigErrors(
            [ConfigError(name, line, "", f"invalid YAML: {problem}. Check the indentation and quotes on this line or the one before.")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigErrors([ConfigError(name, None, "", f"invalid YAML: {exc}. Fix the syntax.")]) from None
    except RecursionError:
        raise ConfigErrors(
            [ConfigError(name, None, "", "invalid YAML: nested too deeply, or an alias (*name) refers to itself. Simplify the structure.")]
        ) from None
    except Exception as exc:  # noqa: BLE001 - PyYAML constructors raise anything on odd scalars
        line, path = _bad_scalar(node)
        raise ConfigErrors(
            [ConfigError(name, line, dotted(path), f"a value cannot be read ({type(exc).__name__}: {exc}). Check dates (YYYY-MM-DD, a real day) and remove any '!!' tag.")]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if dupes:
        raise ConfigErrors(
            ConfigError(name, line, dotted(p), f"key '{p[-1]}' appears twice in the same block. Keep only one.") for p, line in dupes
        )
    return YamlDoc(name, data, lines)


# --- pydantic errors -> ConfigErrors -------------------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The candidate types inside Optional/Union/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_at(model: type[BaseModel] | None, loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that the value at `loc` is validated against, if any."""
    current: Any = model
    for part in loc:
        nxt = None
        for candidate in _unwrap(current):
            if isinstance(part, str) and isinstance(candidate, type) and issubclass(candidate, BaseModel):
                info = candidate.model_fields.get(part)
                if info is not None:
                    nxt = info.annotation
                    break
            elif isinstance(part, int) and typing.get_origin(candidate) in (list, tuple, Sequence):
                nxt = typing.get_args(candidate)[0]
                break
        if nxt is None:
            return None
        current = nxt
    for candidate in _unwrap(current):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _message(err: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see the documentation"
        return f"unknown key '{loc[-1]}'; allowed keys: {allowed}. Remove it or fix its spelling."
    if kind == "missing":
        return f"missing required key '{loc[-1]}'. Add it."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a block of 'key: value' lines, got {_show(err.get('input'))}. Fix the indentation or the value."
    if kind in ("list_type", "tuple_type"):
        return f"expected a list ('- item' lines), got {_show(err.get('input'))}. Write one '- ' line per item."
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    got = _show(err.get("input"))
    if kind.startswith("date"):
        return f"expected a date written YYYY-MM-DD (like 2026-09-14), got {got}. Fix this value."
    if kind.startswith("bool"):
        return f"expected true or false, got {got}. Fix this value."
    if kind.startswith("int"):
        return f"expected a whole number, got {got}. Fix this value."
    if kind == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"expected one of {expected}, got {got}. Fix this value."
    if kind.startswith("string"):
        return f"expected text, got {got}. Quote it if needed."
    return f"{msg}; got {got}. Fix this value."


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return "a block" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def validation_errors(
    exc: ValidationError,
    doc: YamlDoc,
    model: type[BaseModel] | None = None,
    prefix: KeyPath = (),
) -> list[ConfigError]:
    """Turn a pydantic ValidationError on (part of) `doc` into located ConfigErrors.

    `model` is the class that was validated (used to list allowed keys); `prefix` is where in
    the document the validated value sits.
    """
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = (*prefix, *loc)
        out.append(ConfigError(doc.file, doc.line_for(path), dotted(path), _message(err, model)))
    return out


_WHOLE: Any = object()


def validate(model: type[BaseModel], doc: YamlDoc, value: Any = _WHOLE, prefix: KeyPath = (), context: Any = None) -> Any:
    """Validate `value` (default: the whole document) with `model`; ConfigErrors on failure."""
    try:
        return model.model_validate(doc.data if value is _WHOLE else value, context=context)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(exc, doc, model, prefix)) from None
