"""Turn the policy file's accounts into providers: credentials, endpoints, the embedded emulator.

This is the only place outside the emulator's own command that imports ``imagebak.emulator``,
and only when an account says ``endpoint: emulator``; the engine just sees an endpoint URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from imagebak.config import LoadedConfig
from imagebak.config.schema import EMULATOR_ENDPOINT
from imagebak.errors import ExitCode, ImagebakError
from imagebak.providers import ProviderSettings, make_provider
from imagebak.providers.base import Provider
from imagebak.providers.credentials import Credentials, resolve_credentials
from imagebak.providers.retry import RetryPolicy


class Connector:
    """Builds one provider per account on demand; owns the embedded emulator if one is started."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self._emulator: Any = None
        retry = loaded.model.retry
        self.retry = RetryPolicy(
            max_attempts=retry.attempts,
            initial_wait=retry.initial_wait,
            max_wait=retry.max_wait,
            deadline_seconds=retry.deadline,
        )

    def uses_only_emulator(self) -> bool:
        return all(a.endpoint == EMULATOR_ENDPOINT for a in self.loaded.model.accounts.values())

    def provider(self, name: str) -> Provider:
        account = self.loaded.model.accounts.get(name)
        if account is None:
            raise ImagebakError(
                f"account {name!r} has unfinished work in the state file but is no longer in "
                f"{self.loaded.path}; add it back so that work can finish",
                ExitCode.CONFIG,
            )
        endpoint, projects = account.endpoint, dict(account.projects)
        if endpoint == EMULATOR_ENDPOINT:
            emulated = self._emulated_account(name, account.provider)
            credentials = Credentials(emulated.access_key_id, emulated.secret, source="the emulator's fixture")
            endpoint, projects = self._emulator.endpoint, {**emulated.projects, **projects}
        else:
            credentials = self.credentials(name)
        return make_provider(
            account.provider,
            ProviderSettings(
                account=name,
                credentials=credentials,
                endpoint=endpoint,
                projects=projects,
                agency=account.agency,
                project_names=dict(account.project_names),
                retry=self.retry,
            ),
        )

    def credentials(self, name: str, *, connect: bool = True) -> Credentials:
        """The account's credentials from its chain (``connect=False``: a source that asks a service is
        only named). Accounts on the emulator have the fixture's keys."""
        account = self.loaded.model.accounts[name]
        if account.endpoint == EMULATOR_ENDPOINT:
            return Credentials("", "", source="the emulator's fixture", pending=True)
        return resolve_credentials(
            account.provider,
            name,
            profile=account.profile,
            id_env=account.access_key_id_env,
            secret_env=account.secret_env,
            connect=connect,
        )

    def _emulated_account(self, name: str, provider: str) -> Any:
        """The fixture account of the same name, else the fixture's first account of that provider."""
        if self._emulator is None:
            from imagebak.emulator.server import start_emulator

            settings = self.loaded.model.emulator
            fixture = self.loaded.resolve(settings.fixture) if settings.fixture else None
            try:
                self._emulator = start_emulator(
                    fixture, state_path=self.loaded.resolve(settings.state), time_scale=settings.time_scale
                )
            except (OSError, ValueError) as exc:
                raise ImagebakError(f"cannot start the embedded emulator: {exc}", ExitCode.CLOUD) from None
        candidates = [a for a in self._emulator.model.accounts() if a.provider == provider]
        match = next((a for a in candidates if a.name == name), candidates[0] if candidates else None)
        if match is None:
            raise ImagebakError(f"account {name}: the emulator fixture has no {provider} account", ExitCode.CONFIG)
        return match

    def close(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None


@contextlib.contextmanager
def connected(loaded: LoadedConfig) -> Iterator[Connector]:
    connector = Connector(loaded)
    try:
        yield connector
    finally:
        connector.close()
