"""Alibaba Cloud RPC wire details that are not about ECS: the two signatures and the two body formats.

- Signature V1 (``Signature`` query parameter, HMAC-SHA1), as aliyunsdkcore's
  ``auth/composer/rpc_signature_composer.py`` computes it.
- Signature V3 (``Authorization: ACS3-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=...``),
  the default of the Tea-based SDKs, as documented in "Request syntax and signature method V3"
  (alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature) and computed by
  ``alibabacloud_tea_openapi.utils.Utils.get_authorization``.
- ``Format=JSON`` (default) or ``Format=XML`` bodies: the XML root is ``<{Action}Response>``, a JSON
  list becomes repeated elements, an error is ``<Error>`` with RequestId, HostId, Code and Message
  (alibabacloud.com/help/doc-detail/67698.htm, "Responses").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, unquote_plus
from xml.sax.saxutils import escape

V3_ALGORITHM = "ACS3-HMAC-SHA256"
_V3_AUTH = re.compile(
    r"^(?P<algorithm>ACS3-[A-Z0-9-]+)\s+Credential=(?P<key>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)"
    r"\s*,\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)
# Headers the V3 document lists as common request headers; each must be present.
V3_REQUIRED_HEADERS = ("x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")
XML_CONTENT_TYPE = "application/xml;charset=utf-8"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as both signatures define it (space -> %20, ``~`` kept)."""
    return quote(value, safe="-_.~")


# ---- signature V1 ------------------------------------------------------------------------------


def v1_string_to_sign(method: str, params: dict[str, str]) -> str:
    """``METHOD&%2F&`` + the encoded, key-sorted query (aliyunsdkcore rpc_signature_composer)."""
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&%2F&{percent_encode(canonical)}"


def v1_sign(method: str, params: dict[str, str], secret: str) -> str:
    """Base64 HMAC-SHA1 keyed with ``secret + "&"``: what the SDK puts in ``Signature``."""
    digest = hmac.new(f"{secret}&".encode(), v1_string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# ---- signature V3 ------------------------------------------------------------------------------


@dataclass(frozen=True)
class V3Authorization:
    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_v3_authorization(header: str) -> V3Authorization | None:
    match = _V3_AUTH.match(header.strip())
    if match is None:
        return None
    signed = tuple(match["signed"].lower().split(";"))
    return V3Authorization(match["algorithm"], match["key"], signed, match["signature"].lower())


def v3_canonical_query(raw_query: str) -> str:
    """Each ``k=v`` decoded (``+`` is a space on the wire) and RFC 3986 re-encoded, sorted by key."""
    pairs = []
    for item in raw_query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((percent_encode(unquote_plus(key)), percent_encode(unquote_plus(value))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def v3_canonical_request(
    method: str, path: str, raw_query: str, headers: dict[str, str], signed: tuple[str, ...], payload_hash: str
) -> str:
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
    return "\n".join(
        [
            method.upper(),
            quote(unquote(path or "/"), safe="/~"),
            v3_canonical_query(raw_query),
            canonical_headers,
            ";".join(signed),
            payload_hash,
        ]
    )


def v3_signature(secret: str, canonical_request: str) -> str:
    """hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\\n" + hex(SHA256(canonical request))))."""
    string_to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def v3_unsigned_headers(headers: dict[str, str], signed: tuple[str, ...]) -> list[str]:
    """Headers the V3 document says must be signed when present (host, content-type, every x-acs-*)."""
    must = [h for h in headers if h in ("host", "content-type") or h.startswith("x-acs-")]
    return sorted(h for h in must if h not in signed)


# ---- host -> region ----------------------------------------------------------------------------

_REGIONAL_HOST = re.compile(r"^ecs[.-](?P<region>[a-z0-9-]+)\.aliyuncs\.com(:\d+)?$")


def region_of_host(host: str) -> str | None:
    """``ecs.cn-shanghai.aliyuncs.com`` / ``ecs-cn-hangzhou.aliyuncs.com`` -> the region, else None."""
    match = _REGIONAL_HOST.match(host.lower())
    return match["region"] if match else None


# ---- body formats ------------------------------------------------------------------------------


def wants_xml(params: dict[str, str]) -> bool:
    return params.get("Format", "").upper() == "XML"


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else escape(str(value))


def _xml_members(payload: dict[str, Any]) -> str:
    """A JSON object as XML children: a list under key K becomes repeated ``<K>`` elements."""
    out = []
    for key, value in payload.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            inner = _xml_members(item) if isinstance(item, dict) else _xml_value(item)
            out.append(f"<{key}>{inner}</{key}>")
    return "".join(out)


def render(root: str, payload: dict[str, Any], xml: bool) -> tuple[bytes, str]:
    """The body and its content type: JSON as is, or XML under ``<root>``."""
    if not xml:
        return json.dumps(payload, ensure_ascii=False).encode(), JSON_CONTENT_TYPE
    document = f'<?xml version="1.0" encoding="UTF-8"?><{root}>{_xml_members(payload)}</{root}>'
    return document.encode(), XML_CONTENT_TYPE
