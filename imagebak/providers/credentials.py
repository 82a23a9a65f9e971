"""Where an account's credentials come from: the vendor's own credential chain, or what the account names.

Secrets never come from policies.yaml. An account names environment variables (``access_key_id_env``,
``secret_env``), or a ``profile`` of the vendor's credential files, or neither; then the vendor's default
chain decides, in the vendor's order (docs/credentials.md has the tables):

- aliyun: ``alibabacloud_credentials``' providers: environment (with ``ALIBABA_CLOUD_SECURITY_TOKEN``),
  OIDC, ``~/.aliyun/config.json``, ``~/.alibabacloud/credentials.ini``, the ECS RAM role, a credentials URI;
- huawei: ``huaweicloudsdkcore``'s providers: OIDC, environment (with a security token),
  ``~/.huaweicloud/credentials``, the ECS agency from instance metadata, pod identity;
- jdcloud: its SDK has no chain, so ``JDCLOUD_ACCESS_KEY``/``JDCLOUD_SECRET_KEY``, then ``~/.jdc/config``.

The vendors' providers do the work (file formats, STS exchanges, refreshing temporary keys); this module
orders them, says which one answered, and says what each one lacked when none did. Instance metadata is
asked only on an instance of that cloud (its DMI data says so) unless ``IMAGEBAK_INSTANCE_METADATA`` is
``on`` or ``off``. No message shows a secret, nor a configured name shaped like one.
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagebak.errors import ExitCode, ImagebakError, one_line
from imagebak.vendors import key_shape, redact_keys

METADATA_ENV = "IMAGEBAK_INSTANCE_METADATA"  # auto (default), on, off
DMI = Path("/sys/class/dmi/id")
# How a VM of each cloud knows itself, as cloud-init does (DataSourceAliYun; DataSourceOpenStack's asset tags).
_DMI_MARKS = {
    "aliyun": ("product_name", "Alibaba Cloud ECS", "an Alibaba Cloud ECS instance"),
    "huawei": ("chassis_asset_tag", "HUAWEICLOUD", "a Huawei Cloud ECS"),
}
# Each vendor's standard variables, also the default of an account that names only one of its two.
ENV_NAMES = {
    "aliyun": ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    "huawei": ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"),
    "jdcloud": ("JDCLOUD_ACCESS_KEY", "JDCLOUD_SECRET_KEY"),
}


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret: str = field(repr=False)
    token: str | None = field(default=None, repr=False)  # STS / security token of temporary keys
    source: str = "given"  # where they were found, for messages and `imagebak doctor`: never a secret
    # The vendor SDK object behind them, which renews temporary keys: an alibabacloud_credentials provider
    # (Aliyun) or huaweicloudsdkcore credentials (Huawei). None: the keys above are all there is.
    live: Any = field(default=None, repr=False, compare=False)
    pending: bool = False  # found but not fetched: the source asks a service, and no cloud call was allowed

    def __repr__(self) -> str:  # never print the secret, even in a debugger dump
        return f"Credentials(access_key_id={self.shown_id!r}, secret=***, source={self.source!r})"

    @property
    def shown_id(self) -> str:
        """The key id as `imagebak doctor` shows it: its last four characters."""
        return f"***{self.access_key_id[-4:]}" if len(self.access_key_id) > 8 else "***"


class NotHere(Exception):
    """A source of a chain has no credentials for this account; the message says what it lacked."""


@dataclass(frozen=True)
class Source:
    """One place of a chain. ``probe`` raises NotHere when it has nothing, else says whether ``fetch``
    asks a service (STS, instance metadata), which only happens when cloud calls are allowed."""

    name: str
    fetch: Callable[[], Credentials]
    probe: Callable[[], bool] = lambda: False


def resolve_credentials(
    vendor: str,
    account: str,
    *,
    profile: str | None = None,
    id_env: str | None = None,
    secret_env: str | None = None,
    connect: bool = True,
) -> Credentials:
    """The account's credentials from the first source of its chain that has them, or one error that
    says, source by source, what was read and what was missing. With ``connect=False`` a source that
    would ask a service is only named (``pending``)."""
    if id_env or secret_env:
        default_id, default_secret = ENV_NAMES[vendor]
        sources = [_variables(id_env or default_id, secret_env or default_secret, named=True)]
        where = hint = ""
    else:
        try:
            sources = _CHAINS[vendor](profile)
        except ImportError as exc:
            raise ImagebakError(
                f"the {vendor} SDK is not installed ({exc.name}): pip install 'imagebak[{vendor}]'", ExitCode.CONFIG
            ) from None
        where = f" in profile '{_shown(profile)}'" if profile else ""
        hint = "" if profile else f"; set {' and '.join(ENV_NAMES[vendor])}, or see docs/credentials.md"
    reasons = []
    for source in sources:
        try:
            if source.probe() and not connect:
                return Credentials("", "", source=source.name, pending=True)
            return source.fetch()
        except NotHere as exc:
            reasons.append(f"{source.name}: {exc}")
        except Exception as exc:  # a vendor provider's own failure: the vendors' chains go on, so does this one
            reasons.append(f"{source.name}: {type(exc).__name__}: {redact_keys(str(exc))}")
    raise ImagebakError(
        one_line(f"account {account}: no {vendor} credentials{where}: {'; '.join(reasons)}{hint}"), ExitCode.CONFIG
    )


def instance_metadata_refusal(vendor: str, dmi: Path | None = None) -> str | None:
    """Why the vendor's instance metadata service must not be asked for credentials, or None if it may be."""
    setting = os.environ.get(METADATA_ENV, "auto").strip().lower()
    if setting in ("off", "0", "false", "no"):
        return f"not asked ({METADATA_ENV}={setting})"
    if setting in ("on", "1", "true", "yes"):
        return None
    name, value, what = _DMI_MARKS[vendor]
    try:
        found = ((dmi or DMI) / name).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        found = ""
    return None if found == value else f"not asked: this is not {what} (DMI); {METADATA_ENV}=on asks anyway"


def _shown(name: str | None) -> str:
    """A configured name as a message may show it: not at all if it is shaped like a key."""
    text = one_line(str(name))
    return "(a name shaped like a key, not shown)" if key_shape(text) else text


def _variables(id_name: str, secret_name: str, token_name: str | None = None, *, named: bool = False) -> Source:
    """A pair of environment variables (and the token's, for temporary keys)."""
    label = f"environment {_shown(id_name)}/{_shown(secret_name)}"

    def fetch() -> Credentials:
        key_id, secret = os.environ.get(id_name, ""), os.environ.get(secret_name, "")
        missing = [_shown(n) for n, value in ((id_name, key_id), (secret_name, secret)) if not value]
        if missing:
            raise NotHere(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set")
        token = os.environ.get(token_name or "") or None
        return Credentials(key_id, secret, token, source=label)

    return Source("the variables named in access_key_id_env/secret_env" if named else label, fetch)


def _ini(path: Path, section: str) -> configparser.SectionProxy:
    """One section of an INI credential file, or NotHere saying which file and section were read."""
    if not path.is_file():
        raise NotHere("no such file")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise NotHere(f"cannot read it ({type(exc).__name__})") from None
    if not parser.has_section(section):
        raise NotHere(f"no section [{_shown(section)}]")
    return parser[section]


def _missing(section: configparser.SectionProxy, keys: Sequence[str]) -> str | None:
    absent = [key for key in keys if not section.get(key, "").strip()]
    return f"[{section.name}] has no {' or '.join(absent)}" if absent else None


def _ini_keys(path: Path, section: str, id_key: str, secret_key: str, token_key: str | None = None) -> Source:
    """Static keys from one section of an INI file (JD Cloud, and Huawei's named profiles)."""
    label = f"{path} [{_shown(section)}]"

    def fetch() -> Credentials:
        found = _ini(path, section)
        problem = _missing(found, (id_key, secret_key))
        if problem:
            raise NotHere(problem)
        token = (found.get(token_key, "").strip() or None) if token_key else None
        return Credentials(found[id_key].strip(), found[secret_key].strip(), token, source=label)

    return Source(label, fetch)


def _jdcloud_chain(profile: str | None) -> list[Source]:
    config = Path.home() / ".jdc" / "config"
    named = _ini_keys(config, profile or "default", "access_key", "secret_key")
    return [named] if profile else [_variables(*ENV_NAMES["jdcloud"]), named]


# ---- Aliyun: alibabacloud_credentials -----------------------------------------------------------------


def _aliyun_chain(profile: str | None) -> list[Source]:
    """DefaultCredentialsProvider's order, built per call from the environment of now (the library reads
    its variables once, at import). ``profile`` keeps only the two profile files, as ALIBABA_CLOUD_PROFILE
    does, plus nothing else: an account naming a profile wants that profile."""
    from alibabacloud_credentials import provider as ali

    env, home = os.environ, Path.home()
    name = profile or env.get("ALIBABA_CLOUD_PROFILE") or None
    cli = _aliyun_cli(home / ".aliyun" / "config.json", name)
    ini = _aliyun_ini(_aliyun_ini_path(home), name or "default")
    if profile:
        return [cli, ini]
    oidc_vars = ("ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE")
    ecs_role = env.get("ALIBABA_CLOUD_ECS_METADATA") or None
    sources = [
        _variables(*ENV_NAMES["aliyun"], "ALIBABA_CLOUD_SECURITY_TOKEN"),
        _variables("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"),  # aliyunsdkcore's own pair
        _aliyun(
            "OIDC (ALIBABA_CLOUD_ROLE_ARN, _OIDC_PROVIDER_ARN, _OIDC_TOKEN_FILE)",
            lambda: ali.OIDCRoleArnCredentialsProvider(
                role_arn=env[oidc_vars[0]],
                oidc_provider_arn=env[oidc_vars[1]],
                oidc_token_file_path=env[oidc_vars[2]],
                role_session_name=env.get("ALIBABA_CLOUD_ROLE_SESSION_NAME") or None,
            ),
            lambda: _needs(oidc_vars),
        ),
    ]
    if env.get("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "").lower() != "true":
        sources.append(cli)
    sources.append(ini)
    if env.get("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "").lower() != "true":
        sources.append(
            _aliyun(
                "ECS RAM role (instance metadata)",
                lambda: ali.EcsRamRoleCredentialsProvider(role_name=ecs_role, async_update_enabled=False),
                lambda: _metadata_allowed("aliyun"),
            )
        )
    sources.append(
        _aliyun(
            "credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI)",
            lambda: ali.URLCredentialsProvider(uri=env["ALIBABA_CLOUD_CREDENTIALS_URI"]),
            lambda: _needs(("ALIBABA_CLOUD_CREDENTIALS_URI",)),
        )
    )
    return sources


def _aliyun(name: str, make: Callable[[], Any], probe: Callable[[], bool] = lambda: False) -> Source:
    """A source that is an alibabacloud_credentials provider; the provider stays, to renew its keys."""

    def fetch() -> Credentials:
        provider = make()
        found = provider.get_credentials()
        key_id, secret = found.get_access_key_id(), found.get_access_key_secret()
        return Credentials(key_id, secret, found.get_security_token() or None, source=name, live=provider)

    return Source(name, fetch, probe)


def _needs(names: Sequence[str]) -> bool:
    """NotHere unless every variable is set; a source configured by variables asks a service."""
    unset = [n for n in names if not os.environ.get(n)]
    if unset:
        raise NotHere(f"{', '.join(unset)} not set")
    return True


def _metadata_allowed(vendor: str) -> bool:
    refusal = instance_metadata_refusal(vendor)
    if refusal:
        raise NotHere(refusal)
    return True


def _aliyun_cli(path: Path, name: str | None) -> Source:
    """The aliyun CLI's profiles (modes AK, StsToken, RamRoleArn, EcsRamRole, OIDC, ...)."""
    from alibabacloud_credentials import provider as ali

    def probe() -> bool:
        if not path.is_file():
            raise NotHere("no such file")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
            wanted = name or config.get("current")
            entry = next((p for p in config.get("profiles") or [] if p.get("name") == wanted), None)
        except (OSError, ValueError, AttributeError) as exc:
            raise NotHere(f"cannot read it ({type(exc).__name__})") from None
        if entry is None:
            raise NotHere(f"no profile '{_shown(wanted)}'" if wanted else "no current profile")
        return entry.get("mode") not in ("AK", "StsToken")

    label = f"{path} profile '{_shown(name)}'" if name else f"{path} (its current profile)"
    return _aliyun(label, lambda: ali.CLIProfileCredentialsProvider(profile_name=name, profile_file=str(path)), probe)


def _aliyun_ini_path(home: Path) -> Path:
    """ALIBABA_CLOUD_CREDENTIALS_FILE, else the library's credentials.ini, else ``credentials`` (imagebak <= 0.x)."""
    explicit = os.environ.get("ALIBABA_CLOUD_CREDENTIALS_FILE")
    if explicit:
        return Path(explicit)
    ini = home / ".alibabacloud" / "credentials.ini"
    legacy = ini.with_suffix("")
    return legacy if legacy.is_file() and not ini.is_file() else ini


def _aliyun_ini(path: Path, section: str) -> Source:
    """A section of the INI credential file; one without ``type`` holds an AccessKey pair."""
    from alibabacloud_credentials import provider as ali

    class Provider(ali.ProfileCredentialsProvider):
        def _get_credentials_provider(self, entry: dict[str, str]) -> Any:
            return super()._get_credentials_provider({"type": "access_key", **entry})

    def probe() -> bool:
        found = _ini(path, section)
        kind = found.get("type", "access_key")
        problem = _missing(found, ("access_key_id", "access_key_secret")) if kind == "access_key" else None
        if problem:
            raise NotHere(problem)
        return kind != "access_key"

    label = f"{path} [{_shown(section)}]"
    return _aliyun(label, lambda: Provider(profile_file=str(path), profile_name=section), probe)


# ---- Huawei: huaweicloudsdkcore.auth.provider ---------------------------------------------------------


def _huawei_chain(profile: str | None) -> list[Source]:
    """CredentialProviderChain.get_basic()'s providers and order, each named, metadata only where allowed.
    A named profile is any section of the credentials file (the SDK's reads only ``[basic]``)."""
    from huaweicloudsdkcore.auth import provider as hw

    env = os.environ
    path = Path(env.get("HUAWEICLOUD_SDK_CREDENTIALS_FILE") or Path.home() / ".huaweicloud" / "credentials")
    if profile:
        return [_ini_keys(path, profile, "ak", "sk", "security_token")]
    return [
        _huawei("OIDC (HUAWEICLOUD_OIDC_PROVIDER_URN, _AGENCY_URN, ...)", hw.OidcStsCredentialProvider),
        _huawei("environment HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK", hw.EnvCredentialProvider),
        _huawei(f"{path} [basic]", hw.ProfileCredentialProvider),
        _huawei("ECS agency (instance metadata)", hw.MetadataCredentialProvider, lambda: _metadata_allowed("huawei")),
        _huawei(
            "pod identity (HC_CONTAINER_CREDENTIALS_FULL_URI)",
            hw.PodIdentityCredentialProvider,
            lambda: _needs(("HC_CONTAINER_CREDENTIALS_FULL_URI", "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE")),
        ),
    ]


def _huawei(name: str, kind: Any, probe: Callable[[], bool] = lambda: False) -> Source:
    """A source that is a huaweicloudsdkcore provider; its credentials object renews temporary keys."""

    def fetch() -> Credentials:
        found = kind.get_basic().get_credentials()
        return Credentials(found.ak or "", found.sk or "", found.security_token, source=name, live=found)

    return Source(name, fetch, probe)


_CHAINS: dict[str, Callable[[str | None], list[Source]]] = {
    "aliyun": _aliyun_chain,
    "huawei": _huawei_chain,
    "jdcloud": _jdcloud_chain,
}
