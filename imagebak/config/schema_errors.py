"""Pydantic's validation errors, turned into positioned diagnostics a person can act on."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from imagebak.config.diagnostics import Diagnostic, Path
from imagebak.config.schema import Account, CopyTarget, EmulatorSettings, Policy, PolicyFile, RetrySettings
from imagebak.config.yamlsource import YamlDocument

_FRIENDLY = {
    ("string_pattern_mismatch", "name"): "may contain only Chinese characters, letters, digits, '_' and '-'",
    ("string_pattern_mismatch", "every"): "must be a whole number with unit h, d or w, e.g. 12h, 1d, 2w",
    ("string_pattern_mismatch", "disks"): "device names look like vda, vdb, vdc",
    ("timezone_aware", "start"): "needs an explicit timezone offset, e.g. 2026-12-01T02:00:00+08:00",
    ("literal_error", "disks"): "must be 'all' or a list of device names such as [vda, vdb]",
    ("list_type", "disks"): "must be 'all' or a list of device names such as [vda, vdb]",
}
# The schema model that governs the mapping at a path (for suggesting key names).
_SHAPES: list[tuple[tuple[Any, ...], type[BaseModel]]] = [
    ((), PolicyFile),
    (("emulator",), EmulatorSettings),
    (("retry",), RetrySettings),
    (("accounts", str), Account),
    (("policies", int), Policy),
    (("policies", int, "copy_to", int), CopyTarget),
]


def from_pydantic(doc: YamlDocument, exc: ValidationError, data: Any) -> list[Diagnostic]:
    """One diagnostic per path, at that path's position; nothing about a value the YAML layer reported."""
    located = [(*_data_path(error["loc"], data), error) for error in exc.errors(include_url=False)]
    grouped: dict[Path, list[ErrorDetails]] = {}
    for path, branch, error in located:
        if branch and any(len(other) > len(path) and other[: len(path)] == path for other, _, _ in located):
            continue  # another branch of this union got further: its error is the useful one
        if any(path[: len(reported)] == reported for reported in doc.reported):
            continue
        grouped.setdefault(path, []).append(error)
    result = []
    for path, errors in grouped.items():
        if any(e["type"] == "extra_forbidden" for e in errors):
            result.append(doc.diagnostic(path, _unknown_key_message(path), key=True))
            continue
        messages = list(dict.fromkeys(_message(e, path) for e in errors))
        result.append(doc.diagnostic(path, " or ".join(messages)))
    return result


def type_name(value: Any) -> str:
    return {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _model_at(path: Path) -> type[BaseModel] | None:
    for shape, model in _SHAPES:
        if len(shape) == len(path) and all(
            part == want if not isinstance(want, type) else isinstance(part, want)
            for part, want in zip(path, shape, strict=True)
        ):
            return model
    return None


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[Path, bool]:
    """Follow pydantic's ``loc`` through the data, dropping union-branch markers like "list[str]".

    Also says whether a marker was dropped, i.e. whether the error is one branch of a union.
    """
    path: list[str | int] = []
    node = data
    branch = False
    for part in loc:
        in_mapping = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part.isidentifier():
            node = None  # a missing key: the path names it, the position is its parent's
        else:
            branch = True
            continue
        path.append(part)
    return tuple(path), branch


def _unknown_key_message(path: Path) -> str:
    key = str(path[-1])
    model = _model_at(path[:-1])
    if model is None:
        return f"unknown key {key!r}"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
    return f"unknown key {key!r}; {hint}"


def _message(error: ErrorDetails, path: Path) -> str:
    kind = error["type"]
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    if (kind, field) in _FRIENDLY:
        return _FRIENDLY[(kind, field)]
    if kind == "string_type" and isinstance(error["input"], (bool, int, float)):
        shown = str(error["input"]).lower() if isinstance(error["input"], bool) else repr(error["input"])
        return f"YAML reads this as {shown}, not text; put the value in quotes"
    if kind == "missing":
        return f"required key {path[-1]!r} is missing" if path else "required key is missing"
    if kind == "string_too_long":
        return f"is {len(error['input'])} characters long; at most {error['ctx']['max_length']} allowed"
    if kind == "string_too_short":
        return "must not be empty"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
