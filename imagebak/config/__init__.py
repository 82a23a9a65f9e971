"""Read and validate policies.yaml, reporting every problem at once with its position."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from imagebak.config.diagnostics import Diagnostic, Path, sort_diagnostics
from imagebak.config.rules import check_all
from imagebak.config.schema import Account, CopyTarget, EmulatorSettings, Policy, PolicyFile, RetrySettings
from imagebak.config.yamlsource import YamlDocument, load_yaml
from imagebak.errors import ConfigError

DEFAULT_CONFIG = "policies.yaml"
CONFIG_ENV = "IMAGEBAK_CONFIG"

# Keys that would hold a credential. Their names are compared without case, '-' and '_'.
_SECRET_KEYS = {
    "secret",
    "secretkey",
    "secretaccesskey",
    "accesskeysecret",
    "accesssecret",
    "sk",
    "ak",
    "accesskey",
    "accesskeyid",
    "password",
    "token",
    "securitytoken",
}
_SECRET_VALUE = re.compile(r"\bLTAI[0-9A-Za-z]{12,}\b")  # the shape of an Aliyun AccessKey id

_FRIENDLY = {
    ("string_pattern_mismatch", "name"): "may contain only Chinese characters, letters, digits, '_' and '-'",
    ("string_pattern_mismatch", "every"): "must be a whole number with unit h, d or w, e.g. 12h, 1d, 2w",
    ("string_pattern_mismatch", "disks"): "device names look like vda, vdb, vdc",
    ("timezone_aware", "start"): "needs an explicit timezone offset, e.g. 2026-12-01T02:00:00+08:00",
    ("literal_error", "disks"): "must be 'all' or a list of device names such as [vda, vdb]",
    ("list_type", "disks"): "must be 'all' or a list of device names such as [vda, vdb]",
}


@dataclass(frozen=True)
class LoadedConfig:
    """A valid policy file and where it came from (relative paths resolve against its folder)."""

    path: FsPath
    model: PolicyFile

    def resolve(self, relative: str) -> FsPath:
        candidate = FsPath(os.path.expanduser(relative))
        return candidate if candidate.is_absolute() else self.path.parent / candidate

    def policy(self, name: str) -> Policy | None:
        return next((p for p in self.model.policies if p.name == name), None)


def config_path(explicit: str | None) -> FsPath:
    return FsPath(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def validate_file(path: FsPath) -> tuple[PolicyFile | None, list[Diagnostic]]:
    """Every problem in the file, in file order; the model only when there are none."""
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None, [
            Diagnostic(
                file, 1, 1, "(root)", f"file not found; create it or pass -c/--config (or set {CONFIG_ENV})"
            )
        ]
    except UnicodeDecodeError as exc:
        return None, [Diagnostic(file, 1, 1, "(root)", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    except OSError as exc:
        return None, [Diagnostic(file, 1, 1, "(root)", f"cannot read: {exc.strerror}")]
    return validate_text(text, file)


def validate_text(text: str, file: str) -> tuple[PolicyFile | None, list[Diagnostic]]:
    doc = load_yaml(text, file)
    diagnostics = list(doc.errors)
    if doc.data is None and not diagnostics:
        diagnostics.append(doc.diagnostic((), "file is empty; expected version, accounts and policies"))
    if doc.data is not None and not isinstance(doc.data, dict):
        diagnostics.append(doc.diagnostic((), f"expected a mapping at the top, got {_type_name(doc.data)}"))
    if doc.data is None or not isinstance(doc.data, dict):
        return None, sort_diagnostics(diagnostics)
    data = doc.data
    diagnostics += _strip_inline_secrets(doc, data, ())
    model = None
    try:
        model = PolicyFile.model_validate(data)
    except ValidationError as exc:
        diagnostics += _from_pydantic(doc, exc, data)
    accounts = _valid_items(data.get("accounts"), Account)
    policies = _valid_items(data.get("policies"), Policy)
    for path, message in check_all(dict(accounts), policies):
        diagnostics.append(doc.diagnostic(path, message))
    if diagnostics:
        return None, sort_diagnostics(diagnostics)
    return model, []


def load_config(explicit: str | None = None) -> LoadedConfig:
    """The valid config, or a ConfigError listing every problem (one per line)."""
    path = config_path(explicit)
    model, diagnostics = validate_file(path)
    if model is None:
        raise ConfigError("\n".join(str(d) for d in diagnostics))
    return LoadedConfig(path.resolve(), model)


def _valid_items(section: Any, model: type[BaseModel]) -> list[tuple[Any, Any]]:
    """Entries with each valid field set (invalid or missing ones None), so cross-checks still run."""
    if isinstance(section, dict):
        items = list(section.items())
    elif isinstance(section, list):
        items = list(enumerate(section))
    else:
        return []
    result = []
    for key, raw in items:
        if not isinstance(raw, dict):
            continue
        try:
            result.append((key, model.model_validate(raw)))
            continue
        except ValidationError:
            pass
        entry = model.model_construct(
            **{name: None for name, f in model.model_fields.items() if f.is_required()}
        )
        for name in model.model_fields.keys() & raw.keys():
            try:
                model.__pydantic_validator__.validate_assignment(entry, name, raw[name])
            except ValidationError:
                setattr(entry, name, None)
        result.append((key, entry))
    return result


def _strip_inline_secrets(doc: YamlDocument, node: Any, path: Path) -> list[Diagnostic]:
    """Report (and drop, so they are not reported twice) credentials written into the file."""
    found: list[Diagnostic] = []
    if isinstance(node, dict):
        for key in list(node):
            if re.sub(r"[-_]", "", key.lower()) in _SECRET_KEYS:
                found.append(
                    doc.diagnostic(
                        (*path, key),
                        "credentials must not be written in the policy file; "
                        "use the vendor's environment variables, access_key_id_env/secret_env, or profile",
                        key=True,
                    )
                )
                del node[key]
            else:
                found += _strip_inline_secrets(doc, node[key], (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += _strip_inline_secrets(doc, item, (*path, index))
    elif isinstance(node, str) and _SECRET_VALUE.search(node):
        found.append(
            doc.diagnostic(path, "this looks like an access key; credentials never go in the policy file")
        )
    return found


def _model_at(path: Path) -> type[BaseModel] | None:
    """The schema model that governs the mapping at ``path`` (for suggesting key names)."""
    shapes: list[tuple[tuple[Any, ...], type[BaseModel]]] = [
        ((), PolicyFile),
        (("emulator",), EmulatorSettings),
        (("retry",), RetrySettings),
        (("accounts", str), Account),
        (("policies", int), Policy),
        (("policies", int, "copy_to", int), CopyTarget),
    ]
    for shape, model in shapes:
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


def _from_pydantic(doc: YamlDocument, exc: ValidationError, data: Any) -> list[Diagnostic]:
    located = [(*_data_path(error["loc"], data), error) for error in exc.errors(include_url=False)]
    grouped: dict[Path, list[dict[str, Any]]] = {}
    for path, branch, error in located:
        if branch and any(len(other) > len(path) and other[: len(path)] == path for other, _, _ in located):
            continue  # another branch of this union got further: its error is the useful one
        grouped.setdefault(path, []).append(error)
    result = []
    for path, errors in grouped.items():
        if any(e["type"] == "extra_forbidden" for e in errors):
            result.append(doc.diagnostic(path, _unknown_key_message(path), key=True))
            continue
        messages = list(dict.fromkeys(_message(e, path) for e in errors))
        result.append(doc.diagnostic(path, " or ".join(messages)))
    return result


def _unknown_key_message(path: Path) -> str:
    key = str(path[-1])
    model = _model_at(path[:-1])
    if model is None:
        return f"unknown key {key!r}"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
    return f"unknown key {key!r}; {hint}"


def _message(error: dict[str, Any], path: Path) -> str:
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


def _type_name(value: Any) -> str:
    return {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )
