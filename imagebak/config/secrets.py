"""No credentials in the policy file: keys that would hold one, and values shaped like an access key.

A value that looks like a key is reported by where it is, never echoed: not here, and not later,
because it is dropped from the document before anything else reads it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from imagebak.config.diagnostics import Diagnostic, Path
from imagebak.config.yamlsource import YamlDocument
from imagebak.vendors import find_key_ids, key_shape

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
# Account keys that name where credentials are: what each must hold instead of a key.
NAME_KEYS = {
    "access_key_id_env": "an environment variable",
    "secret_env": "an environment variable",
    "profile": "a credential-file profile",
}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what a shell can export


def strip_inline_secrets(doc: YamlDocument, data: dict[str, Any]) -> list[Diagnostic]:
    """Report (and drop, so they are not reported twice or echoed) credentials written into the file."""
    found: list[Diagnostic] = []
    accounts = data.get("accounts")
    if isinstance(accounts, dict):
        for name, account in accounts.items():
            if isinstance(account, dict):
                found += _strip_key_names(doc, account, ("accounts", name))
    return found + _strip_secrets(doc, data)


def _strip_key_names(doc: YamlDocument, account: dict[str, Any], path: Path) -> list[Diagnostic]:
    """``secret_env: <the secret itself>`` passes for a name: refuse values shaped like a key, unechoed."""
    found = []
    for key, holds in NAME_KEYS.items():
        value = account.get(key)
        if not isinstance(value, str):
            continue
        kind = key_shape(value)
        if kind:
            message = (
                f"this looks like {kind}, not the name of {holds}; credentials never go in the policy file "
                "(the value is not shown)"
            )
        elif holds == "an environment variable" and not ENV_NAME.fullmatch(value):
            message = "not an environment variable name: use letters, digits and '_', not a digit first"
        else:
            continue
        found.append(doc.diagnostic((*path, key), message))
        del account[key]
    return found


def _strip_secrets(doc: YamlDocument, node: Any, path: Path = ()) -> list[Diagnostic]:
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
                found += _strip_secrets(doc, node[key], (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += _strip_secrets(doc, item, (*path, index))
    elif isinstance(node, str) and find_key_ids(node):
        found.append(doc.diagnostic(path, "this looks like an access key; credentials never go in the policy file"))
    return found


@lru_cache(maxsize=1024)  # a policy file repeats the same few key names thousands of times
def _normalised(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")
