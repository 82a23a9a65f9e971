"""Vendor name rules as data: what a name may be (``problems``) and how any text becomes one (``render``).

Each adapter declares its vendor's rules (``TextRule``) and exposes ``render_name(text)`` and
``name_problems(name)``; ``policy validate`` can call the latter, the adapter calls the former on
every name it sends. Rendering never loses what makes a name unique and useful: a trailing
timestamp (``20261122T0100Z``, what ``ownership.image_name`` writes for ``{time}``) and any fixed
suffix (a Huawei ``-vdb``) are kept whole; the text before them is shortened, and a short hash of
what was cut keeps two long names that differ only at the end apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

# The {time} of image names (UTC, minutes; seconds tolerated), and what may follow it (-vdb, -data1).
_STAMP = re.compile(r"\d{8}T\d{4}(?:\d{2})?Z?(?:-[A-Za-z0-9]+)*$")
_HASH_LEN = 6


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LEN]


@dataclass(frozen=True)
class TextRule:
    """One vendor's rule for a name or description.

    ``allowed`` matches one allowed character; ``start`` matches an allowed first character;
    ``forbidden_prefixes`` are compared case-insensitively; ``fill`` replaces a refused character
    and ``lead`` is put in front of a text that may not start as it does.
    """

    what: str  # "image name", "description", ...
    min_len: int
    max_len: int
    allowed: re.Pattern[str]
    start: re.Pattern[str] | None = None
    forbidden_prefixes: tuple[str, ...] = ()
    fill: str = "-"
    lead: str = "img-"
    strip: str = field(default="", compare=False)  # characters a name may not end with (Huawei: spaces)

    def problems(self, text: str) -> list[str]:
        """Everything wrong with ``text`` as this vendor's ``what``; empty when the cloud accepts it."""
        found: list[str] = []
        if not self.min_len <= len(text) <= self.max_len:
            found.append(f"{self.what} must be {self.min_len}-{self.max_len} characters, not {len(text)}")
        bad = sorted({c for c in text if not self.allowed.fullmatch(c)})
        if bad:
            found.append(f"{self.what} may not contain {' '.join(repr(c) for c in bad)}")
        if text and self.start is not None and not self.start.fullmatch(text[0]):
            found.append(f"{self.what} must start with a letter or a Chinese character")
        lowered = text.lower()
        prefix = next((p for p in self.forbidden_prefixes if lowered.startswith(p)), None)
        if prefix:
            found.append(f"{self.what} may not start with {prefix!r}")
        if self.strip and text and (text[0] in self.strip or text[-1] in self.strip):
            found.append(f"{self.what} may not start or end with {self.strip!r}")
        return found

    def render(self, text: str, suffix: str = "") -> str:
        """``text`` + ``suffix`` made acceptable; the suffix and a trailing timestamp are never cut."""
        cleaned = "".join(c if self.allowed.fullmatch(c) else self.fill for c in text).strip(self.strip)
        lowered = cleaned.lower()
        if (
            not cleaned
            or (self.start is not None and not self.start.fullmatch(cleaned[0]))
            or lowered.startswith(self.forbidden_prefixes)
        ):
            cleaned = self.lead + cleaned
        stamp = _STAMP.search(cleaned)
        head, tail = (cleaned[: stamp.start()], cleaned[stamp.start() :]) if stamp else (cleaned, "")
        tail += suffix
        if len(head) + len(tail) <= self.max_len:
            name = head + tail
        else:
            keep = self.max_len - len(tail) - _HASH_LEN - 2  # cut head, "-", hash, "-", tail
            if keep < 1:  # nothing worth keeping whole: cut the end instead
                head, tail, keep = head + tail, "", self.max_len - _HASH_LEN - 2
            cut = head[:keep].rstrip(self.fill + self.strip + ".") or self.lead.rstrip(self.fill)
            name = f"{cut}{self.fill}{_digest(cleaned + suffix)}" + (self.fill + tail.lstrip(self.fill) if tail else "")
        return name if len(name) >= self.min_len else name.ljust(self.min_len, self.fill)
