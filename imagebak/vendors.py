"""The clouds imagebak knows: the one list that config, providers and the emulator all use."""

from __future__ import annotations

import re
from typing import Literal

Vendor = Literal["aliyun", "huawei", "jdcloud"]
VENDORS: tuple[Vendor, ...] = ("aliyun", "huawei", "jdcloud")

# What the vendors' keys look like, so that one pasted where a name belongs is refused and never echoed
# (docs/credentials.md, "Key shapes", gives the sources). Whole values are matched, except the two
# prefixed key ids, which ``find_key_ids`` also finds inside longer text.
_KEY_IDS = re.compile(r"\b(?:LTAI[0-9A-Za-z]{12,28}|STS\.[0-9A-Za-z]{16,})\b")  # Aliyun AccessKey / STS ids
_KEY_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an Alibaba Cloud AccessKey ID", re.compile(r"LTAI[0-9A-Za-z]{12,28}|STS\.[0-9A-Za-z]{16,}")),
    ("a Huawei Cloud access key (AK)", re.compile(r"(?=.*[0-9])(?=.*[A-Z])[A-Z0-9]{20}")),
    ("a JD Cloud AccessKey or SecretKey", re.compile(r"[0-9A-Fa-f]{32}")),
    # Aliyun AccessKey secrets (30), Huawei SKs (40), STS and security tokens (hundreds, base64): long,
    # mixed-case letters and digits, which no environment variable or profile name is.
    ("a secret key or security token", re.compile(r"(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])[A-Za-z0-9+/=]{24,}")),
)
_WORDS = re.compile(r"[A-Za-z0-9+/=.]{16,}")


def key_shape(value: str) -> str | None:
    """What kind of access key or secret ``value`` looks like (``"a JD Cloud AccessKey or SecretKey"``), or None."""
    text = value.strip()
    return next((kind for kind, shape in _KEY_SHAPES if shape.fullmatch(text)), None)


def find_key_ids(text: str) -> bool:
    """Whether ``text`` contains an Alibaba Cloud AccessKey or STS key id anywhere."""
    return ("LTAI" in text or "STS." in text) and _KEY_IDS.search(text) is not None


def redact_keys(text: str) -> str:
    """``text`` with every word shaped like a key, a secret or a token replaced by ``***``."""
    return _WORDS.sub(lambda m: "***" if key_shape(m.group()) or find_key_ids(m.group()) else m.group(), text)
