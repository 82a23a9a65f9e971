"""Cloud adapters behind one interface. Vendor SDKs are imported only by ``make_provider``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from imagebak.errors import ExitCode, ImagebakError
from imagebak.providers.base import Provider, RetryPolicy
from imagebak.providers.credentials import Credentials
from imagebak.vendors import VENDORS


@dataclass(frozen=True)
class ProviderSettings:
    account: str
    credentials: Credentials
    endpoint: str | None = None  # "http://127.0.0.1:PORT" for the emulator; None = the vendor's cloud
    projects: Mapping[str, str] = field(default_factory=dict)  # Huawei: region -> project id
    agency: str | None = None  # Huawei IAM agency for cross-region copies
    project_names: Mapping[str, str] = field(default_factory=dict)  # Huawei: region -> project name (sub-projects)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: float = 30.0


def make_provider(vendor: str, settings: ProviderSettings) -> Provider:
    """Import the vendor's adapter (and so its SDK) only now, and build it."""
    if vendor not in VENDORS:
        raise ImagebakError(f"unknown provider {vendor!r}; expected one of {', '.join(VENDORS)}", ExitCode.CONFIG)
    try:
        module = importlib.import_module(f"imagebak.providers.{vendor}")
    except ImportError as exc:
        raise ImagebakError(
            f"the {vendor} SDK is not installed ({exc.name}): pip install 'imagebak[{vendor}]'",
            ExitCode.CONFIG,
        ) from None
    return module.build(settings)
