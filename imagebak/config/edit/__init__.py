"""Policy management without hand-editing YAML: the consoles' policy operations as edits of policies.yaml.

``edit_policy_file(path, change)`` reads the file (``roundtrip.py``), lets ``change`` (one of the
verbs in ``verbs.py``) edit it, renders the new text with comments, order and layout kept, and
validates it exactly as `imagebak policy validate` does. The ``Outcome`` has the
diff, the diagnostics and ``write()``, which replaces the file atomically, keeping its mode.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from imagebak.config.diagnostics import Diagnostic
from imagebak.config.edit.roundtrip import PolicyDocument, edit_text
from imagebak.config.loader import validate_file, validate_text
from imagebak.errors import ConfigError, ExitCode, ImagebakError
from imagebak.fsutil import atomic_write

__all__ = ["Outcome", "PolicyDocument", "edit_policy_file"]


@dataclass(frozen=True)
class Outcome:
    path: Path
    raw: bytes  # the file as it was read
    old: str
    new: str
    notes: list[str]
    diagnostics: list[Diagnostic]  # of the new text; empty when it is valid or unchanged

    @property
    def changed(self) -> bool:
        return self.new != self.old

    def diff(self) -> str:
        """Unified diff of the file before and after."""
        name = str(self.path)
        lines = difflib.unified_diff(self.old.splitlines(True), self.new.splitlines(True), name, name)
        return "".join(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n" for line in lines)

    def write(self) -> None:
        """Replace the file (through a link, its target) atomically with the new text, keeping its mode."""
        target = Path(os.path.realpath(self.path))
        try:
            if target.read_bytes() != self.raw:
                raise ImagebakError(f"{self.path} changed while it was being edited; run the command again")
            mode = stat.S_IMODE(target.stat().st_mode)
            atomic_write(target, self.new.encode("utf-8"), mode=mode)
            os.chmod(target, mode)  # the umask applied to the new file's mode
        except OSError as exc:
            raise ImagebakError(f"cannot write {self.path}: {exc.strerror or exc}", ExitCode.CONFIG) from None


def edit_policy_file(path: Path, change: Callable[[PolicyDocument], str | list[str]]) -> Outcome:
    """Apply ``change`` to the file's data; ConfigError if the file cannot be read or edited as YAML."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        diagnostics = validate_file(path)[1]
        raise ConfigError("\n".join(str(d) for d in diagnostics) or f"{path}: cannot read") from None
    said, new = edit_text(text, str(path), change)
    diagnostics = validate_text(new, str(path))[1] if new != text else []
    return Outcome(path, raw, text, new, [said] if isinstance(said, str) else said, diagnostics)
