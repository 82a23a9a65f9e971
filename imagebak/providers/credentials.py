"""Credentials from each vendor's standard environment variables or credential files.

Secrets never come from policies.yaml. An account may name a profile (a section of the
vendor's credential file) or the environment variables to read; otherwise the vendor's
standard variables are used, then the file's default profile.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from imagebak.errors import ExitCode, ImagebakError


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret: str = field(repr=False)

    def __repr__(self) -> str:  # never print the secret, even in a debugger dump
        return f"Credentials(access_key_id={self.access_key_id!r}, secret=***)"


@dataclass(frozen=True)
class VendorCredentialSource:
    env_id: tuple[str, ...]  # environment variables for the access key id, first found wins
    env_secret: tuple[str, ...]
    file: str  # the vendor's standard INI credential file
    file_id_key: str
    file_secret_key: str
    default_profile: str


SOURCES: dict[str, VendorCredentialSource] = {
    "aliyun": VendorCredentialSource(
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_ID"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIYUN_ACCESS_KEY_SECRET"),
        "~/.alibabacloud/credentials",
        "access_key_id",
        "access_key_secret",
        "default",
    ),
    "huawei": VendorCredentialSource(
        ("HUAWEICLOUD_SDK_AK",),
        ("HUAWEICLOUD_SDK_SK",),
        "~/.huaweicloud/credentials",
        "ak",
        "sk",
        "basic",
    ),
    "jdcloud": VendorCredentialSource(
        ("JDCLOUD_ACCESS_KEY",),
        ("JDCLOUD_SECRET_KEY",),
        "~/.jdc/config",
        "access_key",
        "secret_key",
        "default",
    ),
}


def resolve_credentials(
    vendor: str,
    account: str,
    *,
    profile: str | None = None,
    id_env: str | None = None,
    secret_env: str | None = None,
    environ: dict[str, str] | None = None,
) -> Credentials:
    """Find the account's credentials or raise one clear error saying where we looked."""
    env = os.environ if environ is None else environ
    source = SOURCES[vendor]
    if profile is None:
        id_names = (id_env,) if id_env else source.env_id
        secret_names = (secret_env,) if secret_env else source.env_secret
        key_id = next((env[n] for n in id_names if env.get(n)), None)
        secret = next((env[n] for n in secret_names if env.get(n)), None)
        if key_id and secret:
            return Credentials(key_id, secret)
        if id_env or secret_env:
            raise ImagebakError(
                f"account {account}: set environment variables {id_names[0]} and {secret_names[0]}",
                ExitCode.CONFIG,
            )
    section = profile or source.default_profile
    path = Path(os.path.expanduser(source.file))
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error) as exc:
        raise ImagebakError(f"account {account}: cannot read {path}: {exc}", ExitCode.CONFIG) from None
    if parser.has_section(section):
        key_id = parser.get(section, source.file_id_key, fallback="")
        secret = parser.get(section, source.file_secret_key, fallback="")
        if key_id and secret:
            return Credentials(key_id, secret)
    raise ImagebakError(
        f"account {account}: no {vendor} credentials: set {source.env_id[0]} and {source.env_secret[0]}, "
        f"or add [{section}] with {source.file_id_key}/{source.file_secret_key} to {source.file}",
        ExitCode.CONFIG,
    )
