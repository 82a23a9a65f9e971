"""Accounts of the emulated clouds: who they are, their regions and (Huawei) projects.

Owns ``add_account`` and the account lookups front-ends authenticate with, and the latency
overrides a fixture sets per provider (durations are drawn per account's provider).
"""

from __future__ import annotations

from imagebak.emulator.model.base import ModelBase
from imagebak.emulator.model.entities import Account, clone
from imagebak.emulator.rules import LATENCY_OPS, Latency, rules_for


class AccountsMixin(ModelBase):
    def add_account(self, account: Account) -> None:
        rules_for(account.provider)
        with self.lock:
            if account.name in self._accounts:
                raise ValueError(f"duplicate account {account.name!r}")
            if any(
                a.provider == account.provider and a.access_key_id == account.access_key_id
                for a in self._accounts.values()
            ):
                raise ValueError(f"duplicate access key id for account {account.name!r}")
            self._accounts[account.name] = clone(account)

    def set_latency(self, provider: str | None, op: str, latency: Latency) -> None:
        """Override a duration distribution for one provider, or for all when provider is None."""
        if op not in LATENCY_OPS:
            raise ValueError(f"unknown latency operation {op!r} (expected one of {', '.join(LATENCY_OPS)})")
        if provider is not None:
            rules_for(provider)
        with self.lock:
            self._latency[(provider, op)] = latency

    def set_whole_image_backup(self, account: str, service: str) -> None:
        """Huawei: whether whole images are backed by CBR (a vault_id is required) or CSBS (it is not)."""
        if service not in ("cbr", "csbs"):
            raise ValueError(f"whole_image_backup must be cbr or csbs, not {service!r}")
        with self.lock:
            self._account(account).whole_image_backup = service

    def account_by_key(self, provider: str, access_key_id: str) -> Account | None:
        with self.lock:
            for acc in self._accounts.values():
                if acc.provider == provider and acc.access_key_id == access_key_id:
                    return clone(acc)
            return None

    def account(self, name: str) -> Account:
        with self.lock:
            return clone(self._account(name))

    def accounts(self) -> list[Account]:
        with self.lock:
            return [clone(a) for a in self._accounts.values()]

    def regions(self, account: str) -> list[str]:
        with self.lock:
            return list(self._account(account).regions)

    def region_for_project(self, account: str, project_id: str) -> str | None:
        with self.lock:
            for region, pid in self._account(account).projects.items():
                if pid == project_id:
                    return region
            return None
