"""Diagnostics on stderr through ``logging``: imagebak's own at the chosen level, vendor SDKs only with -vv.

The SDKs log their own view of errors imagebak already classifies and reports (and the JD SDK,
when not silenced, logs request headers); under cron that text would land in the JSON log. So
records from loggers outside ``imagebak`` are dropped unless the user asks for debug output.
"""

from __future__ import annotations

import logging

LEVELS = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}


class _OnlyOurs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "imagebak" or record.name.startswith("imagebak.")


def configure(verbosity: int) -> None:
    """``verbosity``: -1 quiet, 0 default (warnings), 1 ``-v`` (info), 2+ ``-vv`` (debug, SDKs included)."""
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(logging.Formatter("imagebak: %(levelname)s %(name)s: %(message)s"))
    if verbosity < 2:
        handler.addFilter(_OnlyOurs())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_imagebak", False):
            root.removeHandler(old)
    handler._imagebak = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else LEVELS[max(-1, verbosity)])
