"""Records: classes whose fields carry their own rules, checked against their type hints.

The policy file and the state file are declared this way. One declaration checks a decoded document
(every problem at once, each with its path), documents it (descriptions, JSON Schema) and is the typed
object the rest of imagebak reads. A record built from a mapping with problems keeps its valid fields
and has None for the others, so the policy file's cross-entry rules still run on what is valid.

Why not pydantic: importing it and building the models took about 170 ms of the 300 ms that
``imagebak policy validate`` and ``plan`` took to start (issue #13). This needs only the standard
library; each type is compiled once into a checker.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import (
    Annotated,
    Any,
    Literal,
    NamedTuple,
    TypeVar,
    Union,
    dataclass_transform,
    get_args,
    get_origin,
    get_type_hints,
)

Path = tuple[str | int, ...]
T = TypeVar("T")
_EXAMPLE_TIME = "2026-12-01T02:00:00+08:00"


class Rules(NamedTuple):
    """What a value must satisfy beyond its type, and how to say so when it does not."""

    description: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    min_length: int | None = None  # characters of text, items of a list
    max_length: int | None = None
    pattern: str | None = None  # the whole text must match
    pattern_message: str | None = None  # said instead of "must match <pattern>"
    type_message: str | None = None  # said instead of "expected <type>, got <type>"
    before: Callable[[Any], Any] | None = None  # rewrites the raw value first (a shorthand)
    check: Callable[[Any], Any] | None = None  # the value of the right type -> itself; ValueError(message)


_NO_RULES = Rules()
_MISSING: Any = dataclasses.MISSING


class Field(NamedTuple):
    """A declared field of a record (or of a dataclass, which ``check`` reads the same way)."""

    name: str
    default: Any  # _MISSING: none
    default_factory: Any  # _MISSING: none
    rules: Rules

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is _MISSING


def spec(default: Any = _MISSING, *, default_factory: Callable[[], Any] | Any = _MISSING, **rules: Any) -> Any:
    """A record field: its default (none: required) and its ``Rules``; ``record`` names it."""
    return Field("", default, default_factory, Rules(**rules))


@dataclass_transform(kw_only_default=True, field_specifiers=(spec,))
def record(cls: type[T]) -> type[T]:
    """Make ``cls`` a record: keyword-only construction, equality and repr over its annotated fields.

    Like a keyword-only dataclass, without generating code: ``dataclass`` takes ~1.4 ms per class,
    and the policy and state schemas are 20 classes on the start-up path of every command. A default
    stays a class attribute, read by the instances that do not set the field.
    """
    fields = []
    for name in inspect.get_annotations(cls):
        declared = cls.__dict__.get(name, _MISSING)
        given = declared if isinstance(declared, Field) else Field("", declared, _MISSING, _NO_RULES)
        fields.append(given._replace(name=name))
        if given.default is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, given.default)
    cls.__record_fields__ = tuple(fields)  # type: ignore[attr-defined]
    cls.__init__ = _init  # type: ignore[method-assign]
    cls.__eq__ = _eq  # type: ignore[method-assign,assignment]
    cls.__repr__ = _repr  # type: ignore[method-assign,assignment]
    cls.__hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq
    return cls


def _init(self: Any, **values: Any) -> None:
    fields: tuple[Field, ...] = type(self).__record_fields__
    for f in fields:
        if f.name not in values:
            if f.default_factory is not _MISSING:
                values[f.name] = f.default_factory()
            elif f.default is _MISSING:
                raise TypeError(f"{type(self).__name__}() needs {f.name}=")
    unknown = values.keys() - {f.name for f in fields}
    if unknown:
        raise TypeError(f"{type(self).__name__}() has no field {', '.join(sorted(unknown))}")
    self.__dict__.update(values)


def _eq(self: Any, other: Any) -> bool:
    if type(other) is not type(self):
        return NotImplemented
    return all(getattr(self, f.name) == getattr(other, f.name) for f in self.__record_fields__)


def _repr(self: Any) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__record_fields__)
    return f"{type(self).__name__}({shown})"


class Problem(NamedTuple):
    """One thing wrong in a document, at ``path``."""

    path: Path
    message: str
    kind: str = "value"  # "type", "missing", "unknown" (an unexpected key: ``path`` ends with it) or "value"
    value: Any = None  # the offending input, for type problems
    expected: str = ""  # for type problems: what was expected ("text", "a list"...)


class _Invalid:
    """What a checker returns for a value it reported."""


INVALID: Any = _Invalid()
Checker = Callable[[Any, Path, "_Run"], Any]


class _Run:
    """One check of one document: the problems found, and whether text is stripped of surrounding blanks."""

    def __init__(self, strip: bool) -> None:
        self.strip = strip
        self.problems: list[Problem] = []

    def fail(self, path: Path, message: str, *, kind: str = "value", value: Any = None, expected: str = "") -> Any:
        self.problems.append(Problem(path, message, kind, value, expected))
        return INVALID

    def wrong_type(self, path: Path, value: Any, expected: str, rules: Rules) -> Any:
        message = rules.type_message or f"expected {expected}, got {type_name(value)}"
        return self.fail(path, message, kind="type", value=value, expected=expected)


def check(cls: type[T], data: Any, *, strip: bool = False) -> tuple[T | None, list[Problem]]:
    """``data`` (decoded YAML or JSON) as a ``cls`` record, and every problem in it, in document order.

    With problems, the record is partial (None where a value was wrong); None if ``data`` is no mapping.
    ``strip`` removes blanks around every text value, as a hand-written file needs.
    """
    run = _Run(strip)
    value = _checker(cls, _NO_RULES)(data, (), run)
    return (None if value is INVALID else value), run.problems


def type_name(value: Any) -> str:
    """How a person calls the type of a decoded value: "text", "a list", "true/false"..."""
    if isinstance(value, bool):
        return "true/false"
    names = {list: "a list", dict: "a mapping", str: "text", int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def field_names(cls: type) -> list[str]:
    """A record's keys, in declaration order."""
    return [f.name for f in fields_of(cls)]


def fields_of(cls: type) -> tuple[Field, ...]:
    """The fields of a record, or of a dataclass (those its ``__init__`` takes)."""
    declared = cls.__dict__.get("__record_fields__")
    if declared is not None:
        return tuple(declared)
    return tuple(Field(f.name, f.default, f.default_factory, _NO_RULES) for f in dataclasses.fields(cls) if f.init)


def _is_record(tp: Any) -> bool:
    """A record or a dataclass: a mapping of known keys."""
    return isinstance(tp, type) and ("__record_fields__" in tp.__dict__ or dataclasses.is_dataclass(tp))


# -- compiling types into checkers -------------------------------------------------------------------


def _checker(tp: Any, rules: Rules) -> Checker:
    """The checker of one field: the type's, with the field's rewrite before and its check after."""
    inner = _compile(tp, rules)
    if rules.before is None and rules.check is None:
        return inner
    before, after = rules.before, rules.check

    def checked(value: Any, path: Path, run: _Run) -> Any:
        if before is not None:
            value = before(value)
        value = inner(value, path, run)
        if after is None or value is INVALID or value is None:
            return value
        try:
            return after(value)
        except ValueError as exc:
            return run.fail(path, str(exc))

    return checked


def _compile(tp: Any, rules: Rules) -> Checker:
    origin = get_origin(tp)
    if tp is Any:
        return lambda value, path, run: value
    if origin is Annotated:
        base, *extra = get_args(tp)
        return _checker(base, next((x for x in extra if isinstance(x, Rules)), _NO_RULES))
    if origin is Union or origin is types.UnionType:
        return _union(get_args(tp), rules)
    if origin is Literal:
        return _literal(get_args(tp), rules)
    if origin is list:
        return _list(get_args(tp)[0], rules)
    if origin is dict:
        return _dict(get_args(tp)[1], rules)
    if origin is tuple:
        return _tuple(get_args(tp), rules)
    if tp is str:
        return _text(rules)
    if tp is bool:
        return _bool(rules)
    if tp is int or tp is float:
        return _number(tp, rules)
    if tp is datetime:
        return _moment(rules)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _enum(tp, rules)
    if _is_record(tp):
        return _record_checker(tp)
    raise TypeError(f"records cannot check values of type {tp!r}")


def _union(options: tuple[Any, ...], rules: Rules) -> Checker:
    nullable = type(None) in options
    branches = [_compile(option, rules) for option in options if option is not type(None)]
    if len(branches) == 1:
        only = branches[0]
        return (lambda value, path, run: None if value is None else only(value, path, run)) if nullable else only

    def check_union(value: Any, path: Path, run: _Run) -> Any:
        if value is None and nullable:
            return None
        attempts = []
        for branch in branches:
            trial = _Run(run.strip)
            result = branch(value, path, trial)
            if not trial.problems:
                return result
            attempts.append(trial.problems)
        # A branch that got inside the value (a list whose item is wrong) says what is wrong with it.
        deepest = max(attempts, key=lambda problems: max(len(p.path) for p in problems))
        if max(len(p.path) for p in deepest) > len(path):
            run.problems += deepest
            return INVALID
        if rules.type_message:
            return run.fail(path, rules.type_message, kind="type", value=value)
        return run.fail(path, " or ".join(dict.fromkeys(p.message for ps in attempts for p in ps)), value=value)

    return check_union


def _literal(allowed: tuple[Any, ...], rules: Rules) -> Checker:
    shown = [repr(a) for a in allowed]
    message = rules.type_message or (
        f"must be {shown[0]}" if len(shown) == 1 else f"must be one of {', '.join(shown[:-1])} or {shown[-1]}"
    )

    def check_literal(value: Any, path: Path, run: _Run) -> Any:
        for option in allowed:
            if type(value) is type(option) and value == option:
                return value
        return run.fail(path, message, kind="type", value=value)

    return check_literal


def _enum(tp: type[Enum], rules: Rules) -> Checker:
    members = {member.value: member for member in tp}
    message = rules.type_message or f"must be one of {', '.join(repr(v) for v in members)}"

    def check_enum(value: Any, path: Path, run: _Run) -> Any:
        member = members.get(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        return member if member is not None else run.fail(path, message, kind="type", value=value)

    return check_enum


def _list(item_type: Any, rules: Rules) -> Checker:
    item = _checker(item_type, _NO_RULES)
    keeps_entries = _is_record(item_type)  # a list of records keeps the entries it could build

    def check_list(value: Any, path: Path, run: _Run) -> Any:
        if type(value) is not list:
            return run.wrong_type(path, value, "a list", rules)
        items = [item(entry, (*path, index), run) for index, entry in enumerate(value)]
        if any(entry is INVALID for entry in items):
            if not keeps_entries:
                return INVALID
            items = [None if entry is INVALID else entry for entry in items]
        if rules.min_length is not None and len(items) < rules.min_length:
            return run.fail(path, f"must have at least {rules.min_length} item(s)")
        return items

    return check_list


def _dict(value_type: Any, rules: Rules) -> Checker:
    item = _checker(value_type, _NO_RULES)
    keeps_entries = _is_record(value_type)

    def check_dict(value: Any, path: Path, run: _Run) -> Any:
        if type(value) is not dict:
            return run.wrong_type(path, value, "a mapping", rules)
        entries = {}
        broken = False
        for key, entry in value.items():
            if type(key) is not str:
                run.fail((*path, str(key)), f"keys must be text, got {type_name(key)}")
                broken = True
                continue
            entries[key] = checked = item(entry, (*path, key), run)
            broken = broken or checked is INVALID
        if broken:
            if not keeps_entries:
                return INVALID
            entries = {key: None if entry is INVALID else entry for key, entry in entries.items()}
        return entries

    return check_dict


def _tuple(item_types: tuple[Any, ...], rules: Rules) -> Checker:
    items = [_checker(tp, _NO_RULES) for tp in item_types]

    def check_tuple(value: Any, path: Path, run: _Run) -> Any:
        if type(value) not in (list, tuple) or len(value) != len(items):
            return run.wrong_type(path, value, f"a list of {len(items)} items", rules)
        result = tuple(item(entry, (*path, i), run) for i, (item, entry) in enumerate(zip(items, value, strict=True)))
        return INVALID if any(entry is INVALID for entry in result) else result

    return check_tuple


def _text(rules: Rules) -> Checker:
    pattern = re.compile(rules.pattern) if rules.pattern else None
    least, most = rules.min_length, rules.max_length

    def check_text(value: Any, path: Path, run: _Run) -> Any:
        if type(value) is not str:
            return run.wrong_type(path, value, "text", rules)
        if run.strip:
            value = value.strip()
        if least is not None and len(value) < least:
            return run.fail(path, "must not be empty" if least == 1 else f"must be at least {least} characters long")
        if most is not None and len(value) > most:
            return run.fail(path, f"is {len(value)} characters long; at most {most} allowed")
        if pattern is not None and not pattern.fullmatch(value):
            return run.fail(path, rules.pattern_message or f"must match {rules.pattern}")
        return value

    return check_text


def _bool(rules: Rules) -> Checker:
    def check_bool(value: Any, path: Path, run: _Run) -> Any:
        return value if type(value) is bool else run.wrong_type(path, value, "true or false", rules)

    return check_bool


def _number(kind: type, rules: Rules) -> Checker:
    accepted = (int,) if kind is int else (int, float)
    expected = "a whole number" if kind is int else "a number"
    bounds = [
        (rules.ge, lambda v, b: v >= b, "at least"),
        (rules.gt, lambda v, b: v > b, "greater than"),
        (rules.le, lambda v, b: v <= b, "at most"),
    ]
    limits = [(bound, holds, f"must be {words} {bound:g}") for bound, holds, words in bounds if bound is not None]

    def check_number(value: Any, path: Path, run: _Run) -> Any:
        if type(value) not in accepted:
            return run.wrong_type(path, value, expected, rules)
        for bound, holds, message in limits:
            if not holds(value, bound):
                return run.fail(path, message)
        return kind(value)

    return check_number


def _moment(rules: Rules) -> Checker:
    """An aware date and time: a YAML timestamp or ISO 8601 text, with its offset."""

    def check_moment(value: Any, path: Path, run: _Run) -> Any:
        if type(value) is str:
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                return run.fail(path, f"is not a date and time in ISO 8601, e.g. {_EXAMPLE_TIME}")
        elif isinstance(value, date) and not isinstance(value, datetime):
            return run.fail(path, f"needs a time and an explicit timezone offset, e.g. {_EXAMPLE_TIME}")
        if not isinstance(value, datetime):
            return run.wrong_type(path, value, "a date and time", rules)
        if value.utcoffset() is None:
            return run.fail(path, f"needs an explicit timezone offset, e.g. {_EXAMPLE_TIME}")
        return value

    return check_moment


class _FieldPlan(NamedTuple):
    check: Checker
    required: bool


@cache
def _fields(cls: type) -> dict[str, _FieldPlan]:
    """A record's fields and their checkers, compiled the first time a record of ``cls`` is checked."""
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: _FieldPlan(_checker(hints[f.name], f.rules), f.required) for f in fields_of(cls)}


def _record_checker(cls: type) -> Checker:
    def check_record(value: Any, path: Path, run: _Run) -> Any:
        if type(value) is not dict:
            return run.wrong_type(path, value, "a mapping", _NO_RULES)
        fields = _fields(cls)
        values = {}
        for name, plan in fields.items():
            if name in value:
                checked = plan.check(value[name], (*path, name), run)
                values[name] = None if checked is INVALID else checked
            elif plan.required:
                run.fail((*path, name), f"required key {name!r} is missing", kind="missing")
                values[name] = None
        for key in value:
            if key not in fields:
                run.fail((*path, key), _unknown_key(key, list(fields)), kind="unknown")
        return cls(**values)

    return check_record


def _unknown_key(key: Any, allowed: list[str]) -> str:
    import difflib  # only when a key is wrong: a valid file does not pay for it

    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
    return f"unknown key {key!r}; {hint}"


# -- documenting -----------------------------------------------------------------------------------


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a record: what ``check`` accepts, with every description."""
    definitions: dict[str, Any] = {}
    root = _record_schema(cls, definitions)
    if definitions:
        root["$defs"] = definitions
    return root


def _record_schema(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    hints = get_type_hints(cls, include_extras=True)
    properties: dict[str, Any] = {}
    required = []
    for f in fields_of(cls):
        prop = _schema_of(hints[f.name], f.rules, definitions)
        if f.rules.description:
            prop["description"] = f.rules.description
        if f.required:
            required.append(f.name)
        elif isinstance(f.default, (str, int, float, bool, type(None))):
            prop["default"] = f.default
        properties[f.name] = prop
    schema: dict[str, Any] = {"type": "object", "title": cls.__name__}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _schema_of(tp: Any, rules: Rules, definitions: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin is Annotated:
        base, *extra = get_args(tp)
        return _schema_of(base, next((x for x in extra if isinstance(x, Rules)), _NO_RULES), definitions)
    if origin is Union or origin is types.UnionType:
        return {"anyOf": [_schema_of(option, rules, definitions) for option in get_args(tp)]}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin is list:
        schema = {"type": "array", "items": _schema_of(get_args(tp)[0], _NO_RULES, definitions)}
        return schema | ({"minItems": rules.min_length} if rules.min_length is not None else {})
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(get_args(tp)[1], _NO_RULES, definitions)}
    if origin is tuple:
        items = [_schema_of(item, _NO_RULES, definitions) for item in get_args(tp)]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if tp is type(None):
        return {"type": "null"}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"enum": [member.value for member in tp]}
    if _is_record(tp):
        if tp.__name__ not in definitions:
            definitions[tp.__name__] = {}  # a placeholder: a record may contain itself
            definitions[tp.__name__] = _record_schema(tp, definitions)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    return _scalar_schema(tp, rules)


def _scalar_schema(tp: Any, rules: Rules) -> dict[str, Any]:
    if tp is datetime:
        return {"type": "string", "format": "date-time"}
    schema: dict[str, Any] = {str: {"type": "string"}, bool: {"type": "boolean"}, int: {"type": "integer"}}.get(
        tp, {"type": "number"}
    )
    keywords = {
        "minLength": rules.min_length,
        "maxLength": rules.max_length,
        "pattern": rules.pattern,
        "minimum": rules.ge,
        "exclusiveMinimum": rules.gt,
        "maximum": rules.le,
    }
    return schema | {key: value for key, value in keywords.items() if value is not None}
