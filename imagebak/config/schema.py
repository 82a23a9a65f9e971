"""The policy file's schema: one declarative description that validates and documents.

``imagebak policy schema`` prints it as JSON Schema for editors; the README's config
reference is written from it. Rules that span several entries (unique names, one policy per
instance, the per-region quota, copy rules per provider) live in ``rules.py``. The records are
checked by ``imagebak.records`` (``loader.py`` says how).
"""

# No `from __future__ import annotations`: the records' field types are read at run time, and
# evaluated annotations spare ``typing.get_type_hints`` compiling each one from text.

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from imagebak.records import Rules, record, spec
from imagebak.records import json_schema as record_schema
from imagebak.vendors import Vendor

EMULATOR_ENDPOINT = "emulator"

NAME_PATTERN = r"^[\u4e00-\u9fa5A-Za-z0-9_-]+$"
INTERVAL_PATTERN = r"^([1-9][0-9]*)([hdw])$"
DEVICE_PATTERN = r"^vd[a-z]{1,2}$"
DESCRIPTION_LIMIT = 256
MIN_INTERVAL = timedelta(hours=12)
MAX_INTERVAL = timedelta(days=365)
# Times imagebak schedules in: a grid slot, a year's interval and any offset stay within datetime's range.
EARLIEST_START = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_START = datetime(9000, 1, 1, tzinfo=timezone.utc)
_INTERVAL = re.compile(INTERVAL_PATTERN)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_interval(text: str) -> timedelta:
    """``"12h"`` -> 12 hours. Days and weeks are fixed 24h / 168h spans in UTC."""
    match = _INTERVAL.fullmatch(text)
    if not match:
        raise ValueError(f"interval {text!r} must be a whole number with unit h, d or w, e.g. 12h, 1d, 2w")
    count, unit = match.groups()
    if len(count) > 6:  # a million hours is 114 years; a few more digits overflow timedelta
        raise ValueError(f"{text} is longer than the one-year (365d) maximum interval")
    return int(count) * _UNITS[unit]


@record
class Account:
    """A cloud account. Credentials are never written here: they come from the environment."""

    provider: Vendor = spec(description="Which cloud this account is on.")
    endpoint: str | None = spec(
        None,
        description="'emulator' runs against the embedded local cloud emulator; an http(s) URL points at a "
        "running `imagebak emulator serve` or a private endpoint; omit for the vendor's public endpoints.",
    )
    profile: str | None = spec(
        None,
        description="Section of the vendor's credential file (~/.alibabacloud/credentials, "
        "~/.huaweicloud/credentials, ~/.jdc/config) to read.",
    )
    access_key_id_env: str | None = spec(None, description="Environment variable holding the access key id.")
    secret_env: str | None = spec(None, description="Environment variable holding the secret access key.")
    projects: dict[str, str] = spec(
        default_factory=dict,
        description="Huawei: project id per region (region: project-id), for every region used.",
    )
    agency: str | None = spec(None, description="Huawei: IAM agency name used for cross-region image copies.")
    project_names: dict[str, str] = spec(
        default_factory=dict,
        description="Huawei: project name per destination region, for sub-projects (default: the region id).",
    )
    policy_quota: int = spec(
        20, ge=1, le=1000, description="Most policies allowed per region (20 by default, as on the consoles)."
    )
    concurrency: int | None = spec(None, ge=1, le=64, description="Instances worked on at once for this account.")
    extra_regions: list[str] = spec(
        default_factory=list, description="Regions to accept besides those imagebak knows for the provider."
    )


def _file_path(value: str) -> str:
    """A path the operating system can open: no NUL character (YAML can write one as "\\0")."""
    if "\0" in value:
        raise ValueError("a file path cannot contain a NUL character (\\0)")
    return value


def _span(value: str) -> str:
    parse_interval(value)
    return value


def _start_in_range(value: datetime) -> datetime:
    if not EARLIEST_START <= value < LATEST_START:
        raise ValueError(
            f"{value.isoformat()} is out of range; start must be from {EARLIEST_START.year} "
            f"up to {LATEST_START.year - 1}"
        )
    return value


def _interval_in_range(value: str) -> str:
    span = parse_interval(value)
    if span < MIN_INTERVAL:
        raise ValueError(f"{value} is shorter than the 12-hour minimum interval")
    if span > MAX_INTERVAL:
        raise ValueError(f"{value} is longer than the one-year (365d) maximum interval")
    return value


def _region_shorthand(value: Any) -> Any:
    """Let `copy_to: [cn-qingdao]` stand for `[{region: cn-qingdao}]`."""
    if isinstance(value, list):
        return [{"region": item} if isinstance(item, str) else item for item in value]
    return value


def _known_template_fields(value: str) -> str:
    unknown = set(re.findall(r"{([^{}]*)}", value)) - {"policy", "instance", "time", "region"}
    if unknown:
        raise ValueError(f"unknown template field(s) {', '.join(sorted(unknown))}; use policy, instance, time, region")
    return value


_INTERVAL_SHAPE = "must be a whole number with unit h, d or w, e.g. 12h, 1d, 2w"
_DEVICE = Annotated[str, Rules(pattern=DEVICE_PATTERN, pattern_message="device names look like vda, vdb, vdc")]


@record
class RetainSettings:
    """Which recovery points to keep. A point survives if any rule keeps it; the newest one always stays."""

    last: int | None = spec(None, ge=1, le=10000, description="Keep the N newest recovery points.")
    within: str | None = spec(
        None,
        pattern=INTERVAL_PATTERN,
        pattern_message=_INTERVAL_SHAPE,
        check=_span,
        description="Keep every recovery point younger than this span (h, d or w), e.g. 30d.",
    )
    daily: int | None = spec(None, ge=1, le=10000, description="Keep the newest point of each of the last N days.")
    weekly: int | None = spec(None, ge=1, le=10000, description="... of each of the last N ISO weeks.")
    monthly: int | None = spec(None, ge=1, le=10000, description="... of each of the last N months.")
    yearly: int | None = spec(None, ge=1, le=10000, description="... of each of the last N years.")

    @property
    def span(self) -> timedelta | None:
        return parse_interval(self.within) if self.within else None


@record
class CopyTarget:
    """A destination of the disaster-recovery copy."""

    region: str = spec(description="Destination region id.")
    retain: RetainSettings | None = spec(
        None, description="Retention in this destination (default: the policy's); a DR region may keep longer."
    )
    vault: str | None = spec(
        None, description="Huawei whole-machine images: the destination backup vault id (required there)."
    )


@record
class Policy:
    """An automatic image policy: which instances, when, and where the copies go."""

    name: str = spec(
        min_length=1,
        max_length=32,
        pattern=NAME_PATTERN,
        pattern_message="may contain only Chinese characters, letters, digits, '_' and '-'",
        description="1-32 characters: Chinese characters, letters, digits, '_' and '-'; unique per account and region.",
    )
    description: str = spec("", max_length=DESCRIPTION_LIMIT, description=f"At most {DESCRIPTION_LIMIT} characters.")
    account: str = spec(description="Name of an entry under `accounts`.")
    region: str = spec(description="Region of the instances; the policy images only there.")
    enabled: bool = spec(True, description="Disabled policies never run on schedule.")
    start: datetime = spec(
        check=_start_in_range,
        description="First execution, ISO 8601 with an explicit offset, e.g. 2026-12-01T02:00:00+08:00.",
    )
    every: str = spec(
        pattern=INTERVAL_PATTERN,
        pattern_message=_INTERVAL_SHAPE,
        check=_interval_in_range,
        description="Interval with unit h, d or w: at least 12h, at most one year (365d).",
    )
    disks: Literal["all"] | list[_DEVICE] = spec(
        "all",
        type_message="must be 'all' or a list of device names such as [vda, vdb]",
        description="'all' = every cloud disk; or device names to include, which must contain the system disk vda. "
        "Local disks are never imaged.",
    )
    instances: list[str] = spec(default_factory=list, description="Instance ids; each may be in one policy only.")
    copy_to: list[CopyTarget] = spec(
        default_factory=list,
        before=_region_shorthand,
        description="Destination regions for the cold-DR copy: a region id or {region, vault}.",
    )
    image_name: str = spec(
        "{policy}-{instance}-{time}",
        max_length=128,
        check=_known_template_fields,
        description="Image name template; fields {policy}, {instance}, {time} (UTC, YYYYmmddTHHMMZ), {region}.",
    )
    retry_failed: int = spec(1, ge=0, le=5, description="How often an image that ends up failed is re-created.")
    vault: str | None = spec(
        None,
        description="Huawei whole-machine images (disks: all): the CBR vault of the source region that holds "
        "the backup behind the image (required on the real cloud).",
    )
    retain: RetainSettings | None = spec(
        None, description="Which recovery points to keep (default: the file's `retain`; none: keep all)."
    )

    @property
    def interval(self) -> timedelta:
        return parse_interval(self.every)


@record
class EmulatorSettings:
    """The embedded local cloud used by accounts whose endpoint is 'emulator'."""

    fixture: str | None = spec(None, check=_file_path, description="Fixture YAML (default: the packaged demo cloud).")
    state: str = spec(
        ".imagebak/emulated-cloud.json", check=_file_path, description="Where the emulated cloud keeps its state."
    )
    time_scale: float = spec(600.0, gt=0, le=100000, description="Simulated seconds per real second.")


@record
class RetrySettings:
    """How transient cloud faults (throttling, 5xx, timeouts) are retried: exponential backoff with jitter."""

    attempts: int = spec(6, ge=1, le=20, description="Most attempts per cloud call.")
    initial_wait: float = spec(0.5, gt=0, le=60, description="Seconds before the first retry; doubles each time.")
    max_wait: float = spec(20.0, gt=0, le=600, description="Longest wait between two attempts, in seconds.")
    deadline: float = spec(180.0, gt=0, le=3600, description="Give up on one call after this many seconds.")


@record
class WebhookSettings:
    """A chat robot or JSON endpoint told about runs. Its address and signing secret come from the environment."""

    type: Literal["json", "dingtalk", "wecom", "feishu"] = spec(description="Message format and signature.")
    url_env: str = spec(description="Environment variable holding the webhook URL (it carries a token).")
    secret_env: str | None = spec(None, description="DingTalk/Feishu: variable holding the signing secret.")


NotifyWhen = Literal["failure", "stall", "recovery", "success"]


def _default_occasions() -> list[NotifyWhen]:
    return ["failure", "stall", "recovery"]


@record
class NotifySettings:
    """Notifications after a run; a failed delivery is logged and never fails the backup."""

    when: list[NotifyWhen] = spec(default_factory=_default_occasions, description="Which runs to tell about.")
    webhooks: list[WebhookSettings] = spec(default_factory=list, description="Where to send them.")
    healthchecks_url_env: str | None = spec(
        None, description="Variable holding a healthchecks-style ping URL (pinged /start, then itself or /fail)."
    )


@record
class MetricsSettings:
    """Prometheus metrics for node_exporter's textfile collector."""

    textfile: str | None = spec(None, check=_file_path, description="The .prom file to replace after every run.")


@record
class PolicyFile:
    """policies.yaml: accounts, policies, and where imagebak keeps its state and log."""

    version: Literal[1] = spec(description="Schema version; always 1.")
    state: str = spec(
        ".imagebak/state.json",
        min_length=1,
        check=_file_path,
        description="State file, relative to this file's folder.",
    )
    log: str = spec(
        ".imagebak/execution.log",
        min_length=1,
        check=_file_path,
        description="Execution log (JSON lines), relative to this file.",
    )
    emulator: EmulatorSettings = spec(
        default_factory=EmulatorSettings, description="Settings of the embedded emulator."
    )
    retry: RetrySettings = spec(default_factory=RetrySettings, description="Retrying transient cloud faults.")
    retain: RetainSettings | None = spec(None, description="Default retention of every policy (none: keep all).")
    notify: NotifySettings = spec(default_factory=NotifySettings, description="Notifications after runs.")
    metrics: MetricsSettings = spec(default_factory=MetricsSettings, description="Prometheus metrics.")
    accounts: dict[str, Account] = spec(description="Accounts by name.")
    policies: list[Policy] = spec(default_factory=list, description="Automatic image policies.")


def json_schema() -> dict[str, Any]:
    """The policy file's JSON Schema: what validation accepts, the `copy_to: [region]` shorthand included."""
    schema = record_schema(PolicyFile)
    shorthand = {"type": "string", "description": "A region id: short for {region: <id>}."}
    copy_to = schema["$defs"]["Policy"]["properties"]["copy_to"]
    copy_to["items"] = {"anyOf": [shorthand, copy_to["items"]]}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "imagebak policies.yaml"
    return schema
