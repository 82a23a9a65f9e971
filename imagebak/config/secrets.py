"""No credentials in the policy file: keys that would hold one, and values shaped like an access key."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from imagebak.config.diagnostics import Diagnostic, Path
from imagebak.config.yamlsource import YamlDocument

# Keys that would hold a credential. Their names are compared without case, '-' and '_'.
SECRET_KEYS = frozenset(
    {
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
)
SECRET_VALUE = re.compile(r"\bLTAI[0-9A-Za-z]{12,}\b")  # the shape of an Aliyun AccessKey id (contains "LTAI")


def strip_inline_secrets(doc: YamlDocument, node: Any, path: Path = ()) -> list[Diagnostic]:
    """Report (and drop, so they are not reported twice) credentials written into the file."""
    found: list[Diagnostic] = []
    if isinstance(node, dict):
        for key in list(node):
            if _normalised(key) in SECRET_KEYS:
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
                found += strip_inline_secrets(doc, node[key], (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += strip_inline_secrets(doc, item, (*path, index))
    elif isinstance(node, str) and "LTAI" in node and SECRET_VALUE.search(node):
        found.append(doc.diagnostic(path, "this looks like an access key; credentials never go in the policy file"))
    return found


@lru_cache(maxsize=1024)  # a policy file repeats the same few key names thousands of times
def _normalised(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")
