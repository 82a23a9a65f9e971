"""Names, ownership tags and idempotency keys of the images imagebak makes: the one home of these facts.

Tag keys use only letters, digits and '-', the subset every vendor accepts (Huawei refuses ':').
The key tag is what lets a resumed run find an image whose creation it cannot remember finishing.
Engine, steps and adapters (Huawei tags, the JD description marker) all read the names from here.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timezone

TAG_POLICY = "imagebak-policy"
TAG_INSTANCE = "imagebak-instance"
TAG_RUN = "imagebak-run"
TAG_KEY = "imagebak-key"  # the idempotency key of the submission that made the image


def run_id(moment: datetime) -> str:
    """When the execution started, plus a random suffix: two forced runs in one second stay distinct."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


def idempotency_key(*parts: object) -> str:
    """A short, stable token: the same inputs give the same key in any process (<= 40 chars, [a-z0-9-])."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"ib-{digest[:32]}"


def image_name(template: str, *, policy: str, instance: str, region: str, moment: datetime) -> str:
    stamp = moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%MZ")
    return template.format(policy=policy, instance=instance, region=region, time=stamp)[:128]


def ownership_tags(*, policy: str, instance: str, run: str, key: str) -> dict[str, str]:
    """Small on purpose: JD keeps these in a 256-character description. The run id carries the time."""
    return {TAG_POLICY: policy, TAG_INSTANCE: instance, TAG_RUN: run, TAG_KEY: key}


_TAG_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def tag_value(text: str, limit: int = 43) -> str:
    """A tag value every vendor accepts: ``text`` itself if it is ASCII letters, digits, ``_ . -`` and fits
    ``limit``; otherwise a stable ASCII slug of it plus a short hash, so distinct texts stay distinct
    (a Chinese policy name keeps its full form in the image description).
    """
    if text and len(text) <= limit and not _TAG_VALUE_BAD.search(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    slug = _TAG_VALUE_BAD.sub("-", text).strip("-.")[: max(0, limit - len(digest) - 1)].rstrip("-.")
    return f"{slug}-{digest}" if slug else f"h-{digest}"
