"""Load YAML into plain data while remembering where every key and value stands.

We build the data ourselves from the parser's events (libyaml's C parser when PyYAML has it,
else PyYAML's own), which gives every key and value its ``FILE:LINE:COL`` and lets us refuse,
as diagnostics and never as exceptions, what a generic loader would let through or crash on:

- duplicate keys (PyYAML would silently keep the last one) and merge keys;
- values a tag cannot construct (``!!int abc``, ``!!bool maybe``, ``2026-13-45``), and numbers too
  large to print;
- characters YAML does not allow (control characters);
- nesting deeper than ``MAX_DEPTH`` (libyaml's own composer recurses in C and crashes the
  process on deep input; this builder keeps an explicit stack);
- aliases that refer to the node containing them, and aliases that expand to more than
  ``MAX_ALIAS_VALUES`` values in all (a 700-byte "billion laughs" file would otherwise expand
  to 10^9 values).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from imagebak.config.diagnostics import Diagnostic, Path, format_path

try:  # libyaml's parser is ~10x faster than PyYAML's own; the events (and their marks) are the same
    from yaml import CSafeLoader as _Loader

    _ENCODE = True  # libyaml reads UTF-8 bytes faster than str
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

    _ENCODE = False

MAX_DEPTH = 100  # a policy file nests 5 levels deep
MAX_ALIAS_VALUES = 100_000  # values that aliases may add to the document, in all
_MAX_INT_DIGITS = 4000  # below Python's 4300-digit limit on printing an int
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_MERGE = "tag:yaml.org,2002:merge"
_YAML_TAG = "tag:yaml.org,2002:"
# What the YAML 1.1 reader accepts (PyYAML's Reader.NON_PRINTABLE, whose error has no line).
_NOT_ALLOWED = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SKIP = object()  # a key or value that was reported, and is left out of the data
_OPEN = object()  # an anchor whose node is still being built


@dataclass
class Positions:
    """1-based (line, column) of each value and each mapping key, by key path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of ``path``, or of its nearest ancestor that has one."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in table:
                return table[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return (1, 1)


@dataclass
class YamlDocument:
    file: str
    data: Any
    positions: Positions
    errors: list[Diagnostic]
    # Values that were reported here and left out of ``data``: schema errors about them would repeat it.
    reported: set[Path] = field(default_factory=set)

    def diagnostic(self, path: Path, message: str, *, key: bool = False) -> Diagnostic:
        line, column = self.positions.of(path, key=key)
        return Diagnostic(self.file, line, column, format_path(path), message)


class _Stop(Exception):
    """The document cannot be read any further; reported as one diagnostic at ``mark``."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def _mark(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


@dataclass(slots=True)
class _Collection:
    """A mapping or sequence being built. ``path`` is None inside a mapping key (not recorded)."""

    value: Any  # dict[str, Any] or list[Any]
    is_mapping: bool
    path: Path | None
    anchor: str | None
    mark: Any
    size: int = 1  # values in it once aliases are expanded, itself included
    key: Any = None  # mappings: the key whose value comes next; None while a key is expected
    first_line: dict[str, int] = field(default_factory=dict)  # mappings: line of each key


class _Builder:
    """Turns the event stream of one document into plain data, positions and diagnostics.

    Written for speed as much as for clarity: it runs once per node, 66,000 times for a policy file
    of 2,000 policies.
    """

    def __init__(self, file: str, loader: Any) -> None:
        self.file = file
        self.loader = loader
        self.positions = Positions()
        self.errors: list[Diagnostic] = []
        self.reported: set[Path] = set()
        self.stack: list[_Collection] = []
        self.anchors: dict[str, Any] = {}  # name -> (value, size), or _OPEN while it is being built
        self.alias_values = 0
        self.root: Any = None
        # Plain scalars whose first character no implicit resolver looks at are text (what
        # Resolver.resolve concludes too, slower); with path or catch-all resolvers, always ask it.
        resolvers = loader.yaml_implicit_resolvers
        self.resolved_by_first = None if loader.yaml_path_resolvers or None in resolvers else frozenset(resolvers)

    def run(self) -> Any:
        handlers = {
            yaml.ScalarEvent: self._scalar,
            yaml.AliasEvent: self._alias,
            yaml.MappingStartEvent: self._start,
            yaml.SequenceStartEvent: self._start,
            yaml.MappingEndEvent: self._end,
            yaml.SequenceEndEvent: self._end,
        }
        documents = 0
        get_event = self.loader.get_event
        while True:
            event = get_event()
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Stop(event.start_mark, "expected a single document, but found another one")
            elif isinstance(event, yaml.StreamEndEvent):
                return None if self.root is _SKIP else self.root

    # -- events --------------------------------------------------------------------------------

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        text, tag = event.value, event.tag
        if tag is None or tag == "!":
            tag = self._resolve(text, event.implicit)
        path = self._child_path()
        if path is not None:
            self.positions.values[path] = (event.start_mark.line + 1, event.start_mark.column + 1)
        if tag == _STR:
            value = text
        elif tag == _MERGE and path is None and self._expects_key():
            value = _SKIP  # reported by _key
        else:
            value = self._construct(event, tag, path)
        if event.anchor is not None:
            self._define(event.anchor, event.start_mark, (value, 1))
        self._place(value, 1, event.start_mark, path, tag)

    def _alias(self, event: yaml.AliasEvent) -> None:
        path = self._child_path()
        self._record(path, event.start_mark)
        entry = self.anchors.get(event.anchor)
        if entry is None:
            raise _Stop(event.start_mark, f"alias *{event.anchor} refers to no anchor &{event.anchor} before it")
        if entry is _OPEN:
            raise _Stop(event.start_mark, f"alias *{event.anchor} refers to a value that contains it")
        value, size = entry
        self.alias_values += size
        if self.alias_values > MAX_ALIAS_VALUES:
            raise _Stop(
                event.start_mark,
                f"aliases expand to more than {MAX_ALIAS_VALUES} values; write the values out instead",
            )
        self._place(value, size, event.start_mark, path)

    def _start(self, event: yaml.CollectionStartEvent) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _Stop(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        path = self._child_path()
        self._record(path, event.start_mark)
        if event.anchor is not None:
            self._define(event.anchor, event.start_mark, _OPEN)
        mapping = isinstance(event, yaml.MappingStartEvent)
        self.stack.append(_Collection({} if mapping else [], mapping, path, event.anchor, event.start_mark))

    def _end(self, event: yaml.CollectionEndEvent) -> None:
        done = self.stack.pop()
        if done.anchor is not None:
            self.anchors[done.anchor] = (done.value, done.size)
        self._place(done.value, done.size, done.mark, done.path)

    # -- building --------------------------------------------------------------------------------

    def _resolve(self, text: str, implicit: tuple[bool, bool]) -> str:
        first = self.resolved_by_first
        if first is not None and (not implicit[0] or (text and text[0] not in first)):
            return _STR
        return str(self.loader.resolve(yaml.ScalarNode, text, implicit))

    def _expects_key(self) -> bool:
        return bool(self.stack) and self.stack[-1].is_mapping and self.stack[-1].key is None

    def _child_path(self) -> Path | None:
        """Where the next node goes; None for a mapping key (recorded once known) or inside one."""
        if not self.stack:
            return ()
        parent = self.stack[-1]
        if parent.path is None:
            return None
        if not parent.is_mapping:
            return (*parent.path, len(parent.value))
        if parent.key is None or parent.key is _SKIP:
            return None  # a key, or the value of an entry left out
        return (*parent.path, parent.key)

    def _place(self, value: Any, size: int, mark: Any, path: Path | None, tag: str | None = None) -> None:
        """Put a finished node where it belongs: the root, a list item, a mapping key or value."""
        if value is _SKIP and path is not None:
            self.reported.add(path)  # reported already: schema errors about this path would repeat it
        if not self.stack:
            self.root = value
            return
        parent = self.stack[-1]
        parent.size += size
        if not parent.is_mapping:
            parent.value.append(None if value is _SKIP else value)
        elif parent.key is None:
            parent.key = self._key(parent, value, mark, tag)
        else:
            if parent.key is not _SKIP and value is not _SKIP:
                parent.value[parent.key] = value
            parent.key = None

    def _key(self, parent: _Collection, value: Any, mark: Any, tag: str | None) -> Any:
        if type(value) is not str:
            if tag == _MERGE:
                return self._skip(mark, parent.path or (), "YAML merge keys (<<) are not supported; write the keys out")
            if value is _SKIP:
                return _SKIP
            if not isinstance(value, int) or isinstance(value, bool):
                message = f"keys must be text, got {type(value).__name__} {_shown(value)}"
                return self._skip(mark, parent.path or (), message)
            value = str(value)
        line = mark.line + 1
        if value in parent.first_line:
            message = f"duplicate key {value!r} (first defined on line {parent.first_line[value]})"
            return self._skip(mark, (*(parent.path or ()), value), message)
        parent.first_line[value] = line
        if parent.path is not None:
            self.positions.keys[(*parent.path, value)] = (line, mark.column + 1)
        return value

    def _construct(self, event: yaml.ScalarEvent, tag: str, path: Path | None) -> Any:
        """The value the tag makes of the text; one it cannot make is reported and left out."""
        if tag == _INT and len(event.value) > _MAX_INT_DIGITS:
            problem = f"number too large ({len(event.value)} digits)"
        else:
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            try:
                value = self.loader.construct_object(node, deep=True)
            except yaml.MarkedYAMLError as exc:
                problem = exc.problem or "cannot be read"
            except Exception as exc:  # the constructors raise ValueError, KeyError, TypeError...
                detail = f" ({exc})" if isinstance(exc, (ValueError, OverflowError)) else ""
                problem = f"{_shown(event.value)} is not a valid {tag.removeprefix(_YAML_TAG)}{detail}"
            else:
                if not isinstance(value, int) or value.bit_length() <= _MAX_INT_DIGITS * 3:
                    return value
                problem = f"number too large ({value.bit_length()} bits)"
        if path is None:
            path = (self.stack[-1].path or ()) if self.stack else ()
        self._error(event.start_mark, path, problem)
        return _SKIP

    def _define(self, anchor: str, mark: Any, entry: Any) -> None:
        if anchor in self.anchors:
            raise _Stop(mark, f"anchor &{anchor} is defined twice")
        self.anchors[anchor] = entry

    def _skip(self, mark: Any, path: Path, message: str) -> Any:
        self._error(mark, path, message)
        return _SKIP

    def _error(self, mark: Any, path: Path, message: str) -> None:
        line, column = _mark(mark)
        self.errors.append(Diagnostic(self.file, line, column, format_path(path), message))

    def _record(self, path: Path | None, mark: Any) -> None:
        if path is not None:
            self.positions.values[path] = _mark(mark)


def load_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document; every problem becomes a diagnostic, never an exception."""
    bad = _NOT_ALLOWED.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        message = f"YAML syntax: the character U+{ord(bad.group()):04X} is not allowed in YAML; remove it"
        return _failed(file, line, column, message)
    loader = _Loader(text.encode("utf-8") if _ENCODE else text)
    try:
        builder = _Builder(file, loader)
        data = builder.run()
        return YamlDocument(file, data, builder.positions, builder.errors, builder.reported)
    except _Stop as stop:
        return _failed(file, *_mark(stop.mark), f"YAML: {stop.message}")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _mark(mark) if mark else (1, 1)
        problem = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        return _failed(file, line, column, f"YAML syntax: {problem}")
    except yaml.YAMLError as exc:
        return _failed(file, 1, 1, f"YAML: {exc}")
    finally:
        loader.dispose()


def _failed(file: str, line: int, column: int, message: str) -> YamlDocument:
    return YamlDocument(file, None, Positions(), [Diagnostic(file, line, column, "(root)", message)])
