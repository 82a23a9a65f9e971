"""Load YAML into plain data while remembering where every key and value stands.

PyYAML's composer gives each node a start mark; we walk the node tree ourselves so that
duplicate keys become errors (PyYAML would silently keep the last one) and every later
validation error can be reported as ``FILE:LINE:COL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from imagebak.config.diagnostics import Diagnostic, Path, format_path


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

    def diagnostic(self, path: Path, message: str, *, key: bool = False) -> Diagnostic:
        line, column = self.positions.of(path, key=key)
        return Diagnostic(self.file, line, column, format_path(path), message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.positions = Positions()
        self.errors: list[Diagnostic] = []

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.positions.values[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._error(key_node, path, "YAML merge keys (<<) are not supported; write the keys out")
                continue
            key = self.build(key_node, (*path, "<key>"))
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                self._error(key_node, path, f"keys must be text, got {type(key).__name__} {key!r}")
                continue
            key = str(key)
            if key in first_seen:
                self._error(
                    key_node, (*path, key), f"duplicate key {key!r} (first defined on line {first_seen[key]})"
                )
                continue
            first_seen[key] = _mark(key_node)[0]
            self.positions.keys[(*path, key)] = _mark(key_node)
            result[key] = self.build(value_node, (*path, key))
        self.positions.values.pop((*path, "<key>"), None)
        return result

    def _error(self, node: yaml.Node, path: Path, message: str) -> None:
        line, column = _mark(node)
        self.errors.append(Diagnostic(self.file, line, column, format_path(path), message))


def load_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document; syntax problems become diagnostics, never exceptions."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(file, None, Positions(), [])
        builder = _Builder(file, loader)
        data = builder.build(node, ())
        return YamlDocument(file, data, builder.positions, builder.errors)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        return YamlDocument(
            file, None, Positions(), [Diagnostic(file, line, column, "(root)", f"YAML syntax: {problem}")]
        )
    except yaml.YAMLError as exc:
        return YamlDocument(file, None, Positions(), [Diagnostic(file, 1, 1, "(root)", f"YAML: {exc}")])
    finally:
        loader.dispose()
