"""The schema's problems, turned into positioned diagnostics a person can act on."""

from __future__ import annotations

from collections.abc import Sequence

from imagebak.config.diagnostics import Diagnostic
from imagebak.config.yamlsource import YamlDocument
from imagebak.records import Problem


def diagnostics(doc: YamlDocument, problems: Sequence[Problem]) -> list[Diagnostic]:
    """One diagnostic per problem, at its position; nothing about a value the YAML layer reported."""
    result = []
    for problem in problems:
        if any(problem.path[: len(reported)] == reported for reported in doc.reported):
            continue
        result.append(doc.diagnostic(problem.path, _message(problem), key=problem.kind == "unknown"))
    return result


def _message(problem: Problem) -> str:
    """YAML reads ``off``, ``yes`` and ``1.0`` as other things than text, and ``"20"`` as text: say so."""
    value = problem.value
    if problem.kind == "type" and problem.expected == "text" and isinstance(value, (bool, int, float)):
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        return f"YAML reads this as {shown}, not text; put the value in quotes"
    if problem.kind == "type" and problem.expected in ("a whole number", "a number") and _numeric(value):
        return f"{problem.message}; write {value.strip()} without quotes"
    return problem.message


def _numeric(value: object) -> bool:
    """Text that reads as a number (``"20"``)."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True
