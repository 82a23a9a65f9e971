"""`imagebak doctor`: is everything in place before the first cron tick?

Offline (the default) it reads files only: the policy file, the state and log folders, and for each
account its SDK and where its credentials come from (never the secret). ``--connect`` adds cloud
calls that change nothing: one look-up of imagebak's images per account and region (the endpoint
answers, the credentials and a read permission are accepted) and one look-up per configured instance.
Permissions to create, copy and delete cannot be tested without doing it: they are listed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from imagebak.commands.connect import Connector, connected
from imagebak.commands.context import AppContext, pass_app
from imagebak.config import LoadedConfig
from imagebak.config.schema import Policy
from imagebak.errors import ExitCode, ImagebakError, one_line
from imagebak.output import emit_json, format_option, table
from imagebak.ownership import TAG_KEY
from imagebak.providers.base import ErrorKind, Provider, ProviderError
from imagebak.providers.retry import RetryPolicy

T = TypeVar("T")

# The exit code of each kind of failed check; with several, the first of this order wins.
EXIT_CODES = {
    "sdk": ExitCode.ACCOUNT,
    "credentials": ExitCode.ACCOUNT,
    "state": ExitCode.STATE,
    "log": ExitCode.STATE,
    "endpoint": ExitCode.CLOUD,
    "instance": ExitCode.PARTIAL_FAILURE,
}
# The module each vendor's adapter cannot work without (its extra installs them).
SDK_MODULES = {
    "aliyun": ("aliyunsdkecs", "alibabacloud_credentials"),
    "huawei": ("huaweicloudsdkims", "huaweicloudsdkecs", "huaweicloudsdkevs"),
    "jdcloud": ("jdcloud_sdk",),
}
# Every API operation the adapters call (providers/<vendor>.py), with the IAM action that allows it where
# the vendor documents one (docs/credentials.md, "Permissions"). tests/test_doctor.py keeps it complete.
_ALIYUN_OPERATIONS = (
    "DescribeInstances DescribeDisks DescribeImages DescribeSnapshots CreateImage CreateSnapshot CopyImage "
    "CancelCopyImage DeleteImage DeleteSnapshot"
)
PERMISSIONS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "aliyun": tuple((operation, f"ecs:{operation}") for operation in _ALIYUN_OPERATIONS.split()),
    "huawei": (
        ("ShowServer", "ecs:cloudServers:get"),
        ("ListServerBlockDevices", None),
        ("ListVolumes", "evs:volumes:list"),
        ("CreateWholeImage", "ims:wholeImages:create"),
        ("CreateImage", "ims:serverImages:create"),
        ("ListImages", "ims:images:list"),
        ("ListImageByTags", None),
        ("BatchAddOrDeleteTags", None),
        ("ShowImageQuota", None),
        ("ShowJob", None),
        ("ShowJobProgress", None),
        ("CopyImageCrossRegion", None),
        ("GlanceDeleteImage", "ims:images:delete"),
    ),
    "jdcloud": (
        ("describeInstance", "vm:describeInstance"),
        ("describeInstances", "vm:describeInstances"),
        ("describeQuotas", "vm:describeQuotas"),
        ("describeQuota", "disk:describeQuota"),
        ("describeImages", "vm:describeImages"),
        ("createImage", "vm:createImage"),
        ("copyImages", "vm:copyImages"),
        ("modifyImageAttribute", "vm:modifyImageAttribute"),
        ("deleteImage", "vm:deleteImage"),
    ),
}
PERMISSION_NOTES = {
    "huawei": "whole-machine images also need the CBR Admin role (or CSBS Administrator); cross-region copies "
    "need the account's agency to hold IMS CrossCopyAgencyCBRPolicy (whole-machine) or IMS CrossCopyAgencyPolicy",
}
# Doctor asks each question once or twice and says what it got, rather than retrying for minutes.
QUICK_RETRY = RetryPolicy(max_attempts=2, initial_wait=0.5, max_wait=2.0, deadline_seconds=20.0)


@dataclass(frozen=True)
class Check:
    check: str  # config, state, log, sdk, credentials, endpoint, instance
    subject: str
    ok: bool
    detail: str


@click.command()
@click.option("--connect", is_flag=True, help="Also call the clouds (read-only): endpoints, credentials, instances.")
@format_option
@pass_app
def doctor(app: AppContext, connect: bool, fmt: str) -> None:
    """Check the set-up before the first cron tick: files, SDKs, credentials; with --connect, the clouds.

    Never prints a secret. Exit 0: every check passed; 12: an account has no SDK or no credentials;
    4: the state folder cannot be written; 8: a cloud did not answer or refused the credentials;
    1: a configured instance does not exist; 3: the policy file is missing or invalid.
    """
    loaded = app.load()  # an invalid file is exit 3 with every problem listed, as for every command
    checks = [_config_check(loaded), *_folder_checks(loaded, app.store(loaded).path)]
    with connected(loaded) as connector:
        connector.retry = QUICK_RETRY
        usable = []
        for name, account in loaded.model.accounts.items():
            found = _account_checks(connector, name, account.provider, connect)
            checks += found
            if all(c.ok for c in found):
                usable.append(name)
        if connect:
            checks += _cloud_checks(connector, loaded, usable)
    failed = [c for c in checks if not c.ok]
    code = next((EXIT_CODES[kind] for kind in EXIT_CODES if any(c.check == kind for c in failed)), ExitCode.OK)
    vendors = sorted({a.provider for a in loaded.model.accounts.values()})
    if fmt == "json":
        emit_json(
            {
                "ok": not failed,
                "exit_code": int(code),
                "connected": connect,
                "checks": [asdict(c) for c in checks],
                "permissions": {v: [{"operation": o, "action": a} for o, a in PERMISSIONS[v]] for v in vendors},
            }
        )
    else:
        rows = [(c.check, c.subject, "ok" if c.ok else "FAILED", c.detail) for c in checks]
        click.echo(table(("CHECK", "SUBJECT", "RESULT", "DETAIL"), rows))
        click.echo("\npermissions the accounts need (IAM actions; the API operation where none is documented):")
        for vendor in vendors:
            actions = ", ".join(action or operation for operation, action in PERMISSIONS[vendor])
            click.echo(f"  {vendor}: {actions}")
            if vendor in PERMISSION_NOTES:
                click.echo(f"    ({PERMISSION_NOTES[vendor]})")
        if not connect:
            click.echo("\nno cloud was called: `imagebak doctor --connect` checks endpoints, credentials and instances")
        verdict = f"{len(failed)} check(s) failed (exit {int(code)})" if failed else "all checks passed"
        click.echo(f"\n{verdict}")
    if code:
        raise click.exceptions.Exit(int(code))


def _config_check(loaded: LoadedConfig) -> Check:
    model = loaded.model
    detail = f"valid: {len(model.accounts)} account(s), {len(model.policies)} policy(ies)"
    return Check("config", str(loaded.path), True, detail)


def _folder_checks(loaded: LoadedConfig, state: Path) -> list[Check]:
    checks = []
    for what, path in (("state", state), ("log", loaded.resolve(loaded.model.log))):
        problem = _unwritable(path.parent)
        checks.append(Check(what, str(path), problem is None, problem or "its folder is writable"))
    return checks


def _unwritable(folder: Path) -> str | None:
    """Why imagebak could not create files in ``folder`` (creating it first if needed), or None."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable by this user" if existing == folder else f"cannot create {folder}"
    return None


def _account_checks(connector: Connector, name: str, vendor: str, connect: bool) -> list[Check]:
    missing = [m for m in SDK_MODULES[vendor] if importlib.util.find_spec(m) is None]
    if missing:
        detail = f"not installed ({', '.join(missing)}): pip install 'imagebak[{vendor}]'"
        return [Check("sdk", name, False, detail)]
    checks = [Check("sdk", name, True, f"{vendor} SDK installed")]
    try:
        found = connector.credentials(name, connect=connect)
    except ImagebakError as exc:
        return [*checks, Check("credentials", name, False, one_line(str(exc)))]
    detail = f"from {found.source}" + ("" if found.pending else f" (key {found.shown_id})")
    return [*checks, Check("credentials", name, True, detail)]


def _cloud_checks(connector: Connector, loaded: LoadedConfig, accounts: list[str]) -> list[Check]:
    """One image look-up per account and region, then each instance: read-only calls."""
    checks = []
    for name in accounts:
        try:
            provider = connector.provider(name)
        except ImagebakError as exc:
            checks.append(Check("endpoint", name, False, one_line(str(exc))))
            continue
        checks += _provider_checks(provider, name, [p for p in loaded.model.policies if p.account == name])
    return checks


def _provider_checks(provider: Provider, name: str, policies: list[Policy]) -> list[Check]:
    checks = []
    answered = set()
    for region in dict.fromkeys(r for p in policies for r in (p.region, *(t.region for t in p.copy_to))):
        _, problem = _asked(provider.find_images, region, {TAG_KEY: "imagebak-doctor"})
        checks.append(Check("endpoint", f"{name}/{region}", problem is None, problem or "answers"))
        if problem is None:
            answered.add(region)
    for policy in (p for p in policies if p.region in answered):
        for instance in policy.instances:
            subject = f"{name}/{policy.region}/{instance}"
            info, problem = _asked(provider.get_instance, policy.region, instance)
            if problem:
                checks.append(Check("endpoint", subject, False, problem))
            elif info is None:
                checks.append(Check("instance", subject, False, f"no such instance in {policy.region}"))
            else:
                checks.append(Check("instance", subject, True, f"{info.name or '-'}, {info.status}"))
    return checks


_KIND_WORDS = {ErrorKind.AUTH: "refused", ErrorKind.TIMEOUT: "no answer", ErrorKind.UNAVAILABLE: "unavailable"}


def _asked(call: Callable[..., T], *args: Any) -> tuple[T | None, str | None]:
    """One read-only cloud call: its answer, or what went wrong in a line."""
    try:
        return call(*args), None
    except ProviderError as error:
        return None, one_line(f"{_KIND_WORDS.get(error.kind, 'failed')}: {error.describe()}")
