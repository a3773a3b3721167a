"""Typed, located loading of YAML into frozen dataclasses.

The config and every rule file go through here, so that each error a user sees names the
file, the line and the key, and all errors of a file are reported together rather than
one per run.

A schema is a dataclass whose field types are drawn from: str, int, float, bool, Literal,
Optional, list[...] / tuple[..., ...], dict[str, ...], nested dataclasses, and
``Annotated[T, check]`` where ``check(value)`` returns the (possibly converted) value or
raises ValueError with a message for the user.  A dataclass may define
``check(self) -> Iterable[tuple[str, str]]`` for cross-field checks: each pair is a key
relative to the dataclass and a message.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

T = TypeVar("T")


@dataclass(frozen=True)
class SourceError:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key or '(top level)'}: {self.message}"


class SchemaError(Exception):
    """One or more problems in a YAML file; ``errors`` lists all of them."""

    def __init__(self, errors: list[SourceError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def _positive(value: int | float) -> int | float:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")
    return value


Regex = Annotated[str, _regex]
Positive = Annotated[int, _positive]
PositiveFloat = Annotated[float, _positive]

_constructor = yaml.constructor.SafeConstructor()
# libyaml's parser is about ten times faster, and its nodes carry the same line marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _scalar(node: ScalarNode) -> Any:
    return _constructor.construct_object(node, deep=True)


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if get_origin(tp) in (list, tuple):
        return "a list"
    if get_origin(tp) is dict:
        return "a mapping"
    if get_origin(tp) is Annotated:
        return _type_name(get_args(tp)[0])
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false"}.get(tp, str(tp))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.errors: list[SourceError] = []
        self.lines: dict[str, int] = {}

    def error(self, node: Node | None, key: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else self.lines.get(key)
        self.errors.append(SourceError(self.file, line, key, message))

    def build(self, tp: Any, node: Node, key: str) -> Any:
        self.lines.setdefault(key, node.start_mark.line + 1)
        origin = get_origin(tp)
        if origin is Annotated:
            base, *checks = get_args(tp)
            value = self.build(base, node, key)
            if value is _INVALID:
                return value
            for check in checks:
                try:
                    value = check(value)
                except ValueError as exc:
                    self.error(node, key, str(exc))
                    return _INVALID
            return value
        if origin in (Union, types.UnionType):
            options = [a for a in get_args(tp) if a is not type(None)]
            if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                if type(None) in get_args(tp):
                    return None
            if len(options) == 1:
                return self.build(options[0], node, key)
            raise TypeError(f"unsupported union {tp}")
        if dataclasses.is_dataclass(tp):
            return self.build_dataclass(tp, node, key)
        if origin in (list, tuple):
            if not isinstance(node, SequenceNode):
                self.error(node, key, f"expected a list, got {_describe(node)}")
                return _INVALID
            item_tp = get_args(tp)[0]
            items = [self.build(item_tp, item, f"{key}[{i}]") for i, item in enumerate(node.value)]
            items = [i for i in items if i is not _INVALID]
            return tuple(items) if origin is tuple else items
        if origin is dict:
            if not isinstance(node, MappingNode):
                self.error(node, key, f"expected a mapping, got {_describe(node)}")
                return _INVALID
            _, value_tp = get_args(tp)
            result: dict[str, Any] = {}
            for knode, vnode in node.value:
                name = str(_scalar(knode)) if isinstance(knode, ScalarNode) else "?"
                sub = f"{key}.{name}" if key else name
                if name in result:
                    self.error(knode, sub, "appears twice")
                    continue
                value = self.build(value_tp, vnode, sub)
                if value is not _INVALID:
                    result[name] = value
            return result
        if origin is Literal:
            if isinstance(node, ScalarNode):
                value = _scalar(node)
                if value in get_args(tp):
                    return value
            self.error(node, key, f"expected {_type_name(tp)}, got {_describe(node)}")
            return _INVALID
        if tp is Any:
            return yaml.load(yaml.serialize(node), Loader=yaml.SafeLoader)
        if not isinstance(node, ScalarNode):
            self.error(node, key, f"expected {_type_name(tp)}, got {_describe(node)}")
            return _INVALID
        value = _scalar(node)
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if tp is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = node.value  # a port or a number written where text is expected: keep as written
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            self.error(node, key, f"expected {_type_name(tp)}, got {_describe(node)}")
            return _INVALID
        return value

    def build_dataclass(self, cls: Any, node: Node, key: str) -> Any:
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            node = MappingNode("tag:yaml.org,2002:map", [], node.start_mark, node.end_mark)
        if not isinstance(node, MappingNode):
            self.error(node, key, f"expected a mapping, got {_describe(node)}")
            return _INVALID
        hints = _type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")}
        values: dict[str, Any] = {}
        failed = False
        for knode, vnode in node.value:
            name = str(_scalar(knode)) if isinstance(knode, ScalarNode) else "?"
            sub = f"{key}.{name}" if key else name
            if name not in fields:
                known = ", ".join(sorted(fields))
                self.error(knode, sub, f"unknown key (known keys here: {known})")
                failed = True
                continue
            if name in values:
                self.error(knode, sub, "appears twice")
                continue
            value = self.build(hints[name], vnode, sub)
            if value is _INVALID:
                failed = True
            else:
                values[name] = value
        for name, f in fields.items():
            if name in values:
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                sub = f"{key}.{name}" if key else name
                self.errors.append(
                    SourceError(self.file, node.start_mark.line + 1, sub, "required but missing")
                )
                failed = True
        if failed:
            return _INVALID
        try:
            obj = cls(**values)
        except ValueError as exc:
            self.error(node, key, str(exc))
            return _INVALID
        check = getattr(obj, "check", None)
        if callable(check):
            for rel, message in check():
                sub = ".".join(p for p in (key, rel) if p)
                sub = sub.replace(".[", "[")
                self.errors.append(SourceError(self.file, self._line_for(sub, node), sub, message))
        return obj

    def _line_for(self, key: str, fallback: Node) -> int:
        while key:
            if key in self.lines:
                return self.lines[key]
            parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", key)
            key = "" if parent == key else parent
        return fallback.start_mark.line + 1


class _Invalid:
    pass


_INVALID: Any = _Invalid()


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = node.value if isinstance(node, ScalarNode) else node
    return repr(value)


def load_text(text: str, file: str, cls: type[T]) -> T:
    """Parse ``text`` (named ``file`` in messages) into ``cls`` or raise SchemaError."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SchemaError([SourceError(file, line, "", f"not valid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise SchemaError([SourceError(file, None, "", f"not valid YAML: {exc}")]) from None
    if node is None:  # an empty file: every key takes its default
        node = MappingNode("tag:yaml.org,2002:map", [], None, None)
        node.start_mark = yaml.Mark(file, 0, 0, 0, "", 0)
    builder = _Builder(file)
    value = builder.build(cls, node, "")
    if builder.errors or value is _INVALID:
        raise SchemaError(builder.errors or [SourceError(file, None, "", "invalid")])
    return typing.cast(T, value)


def load_file(path: Path, cls: type[T]) -> T:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError([SourceError(str(path), None, "", f"not UTF-8 text: {exc}")]) from None
    except OSError as exc:
        raise SchemaError([SourceError(str(path), None, "", f"cannot be read: {exc.strerror}")]) from None
    return load_text(text, str(path), cls)


def check_unique(items: Iterable[Any], attr: str, where: str) -> list[tuple[str, str]]:
    """Cross-field helper: report items whose ``attr`` repeats an earlier one."""
    seen: set[Any] = set()
    problems = []
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            problems.append((f"{where}[{i}].{attr}", f"duplicate name {value!r}"))
        seen.add(value)
    return problems


Check = Callable[[Any], Any]
