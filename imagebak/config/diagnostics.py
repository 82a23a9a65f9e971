"""One validation finding, pinned to a file position and a key path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from imagebak.errors import one_line

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``("policies", 0, "every")`` -> ``policies[0].every``; the empty path is ``(root)``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


class Diagnostic(NamedTuple):
    file: str
    line: int  # 1-based
    column: int  # 1-based
    path: str
    message: str

    def __str__(self) -> str:
        """One line, whatever the file name, keys and values quoted in the message contain."""
        return one_line(f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}")

    def to_json(self) -> dict[str, object]:
        return dict(self._asdict())


def sort_diagnostics(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """File order, so a reader can walk the file top to bottom; duplicates dropped."""
    return sorted(set(diagnostics), key=lambda d: (d.file, d.line, d.column, d.path, d.message))
