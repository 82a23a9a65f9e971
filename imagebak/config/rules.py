"""Rules that span entries of the policy file, from the products imagebak replaces.

Each check yields ``(path, message)`` pairs; the loader pins them to file positions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence

from imagebak.config.diagnostics import Path
from imagebak.config.regions import HUAWEI_WHOLE_IMAGE_COPY_REGIONS, KNOWN_REGIONS
from imagebak.config.schema import EMULATOR_ENDPOINT, Account, Policy

Finding = tuple[Path, str]
IndexedPolicies = Sequence[tuple[int, Policy]]


def check_all(accounts: Mapping[str, Account], policies: IndexedPolicies) -> Iterator[Finding]:
    yield from _check_accounts(accounts)
    yield from _check_account_refs(accounts, policies)
    yield from _check_unique_names(policies)
    yield from _check_one_policy_per_instance(policies)
    yield from _check_policy_quota(accounts, policies)
    for index, policy in policies:
        account = accounts.get(policy.account)
        if account is not None and account.provider is not None:
            yield from _check_policy_against_account(index, policy, account)
        yield from _check_disks(index, policy)


def _check_accounts(accounts: Mapping[str, Account]) -> Iterator[Finding]:
    for name, account in accounts.items():
        path: Path = ("accounts", name)
        if account.endpoint not in (None, EMULATOR_ENDPOINT) and not account.endpoint.startswith(
            ("http://", "https://")
        ):
            yield (*path, "endpoint"), "must be 'emulator' or an http(s):// URL"
        if (account.access_key_id_env is None) != (account.secret_env is None):
            yield path, "set both access_key_id_env and secret_env, or neither"
        if account.provider != "huawei":
            for key in ("projects", "agency"):
                if getattr(account, key):
                    yield (*path, key), f"only Huawei accounts take {key}"


def _check_account_refs(accounts: Mapping[str, Account], policies: IndexedPolicies) -> Iterator[Finding]:
    for index, policy in policies:
        if policy.account is not None and policy.account not in accounts:
            known = ", ".join(sorted(accounts)) or "none defined"
            yield ("policies", index, "account"), f"unknown account {policy.account!r} (accounts: {known})"


def _check_unique_names(policies: IndexedPolicies) -> Iterator[Finding]:
    seen: dict[tuple[str, str, str], int] = {}
    for index, policy in policies:
        key = (policy.account, policy.region, policy.name)
        if None in key:
            continue
        if key in seen:
            yield (
                ("policies", index, "name"),
                (
                    f"policy name {policy.name!r} is already used in {policy.account}/{policy.region} "
                    f"by policies[{seen[key]}]; names are unique per account and region"
                ),
            )
        else:
            seen[key] = index


def _check_one_policy_per_instance(policies: IndexedPolicies) -> Iterator[Finding]:
    owner: dict[str, str] = {}
    for index, policy in policies:
        for position, instance in enumerate(policy.instances or ()):
            if instance in owner:
                yield (
                    ("policies", index, "instances", position),
                    (
                        f"instance {instance} is already in policy {owner[instance]!r}; "
                        "an instance belongs to at most one image policy"
                    ),
                )
            else:
                owner[instance] = policy.name


def _check_policy_quota(accounts: Mapping[str, Account], policies: IndexedPolicies) -> Iterator[Finding]:
    counts: Counter[tuple[str, str]] = Counter()
    for index, policy in policies:
        account = accounts.get(policy.account)
        if account is None or account.policy_quota is None or policy.region is None:
            continue
        counts[(policy.account, policy.region)] += 1
        if counts[(policy.account, policy.region)] == account.policy_quota + 1:
            yield (
                ("policies", index),
                (
                    f"more than {account.policy_quota} policies in {policy.account}/{policy.region}: the quota is "
                    f"{account.policy_quota} per region; raise accounts.{policy.account}.policy_quota if your "
                    "provider raised it"
                ),
            )


def _check_policy_against_account(index: int, policy: Policy, account: Account) -> Iterator[Finding]:
    path: Path = ("policies", index)
    known = KNOWN_REGIONS[account.provider] | set(account.extra_regions or ())
    if policy.region is not None and policy.region not in known:
        yield (*path, "region"), _unknown_region(policy.region, account)
    destinations: defaultdict[str, list[int]] = defaultdict(list)
    for position, target in enumerate(policy.copy_to or ()):
        if target is None or target.region is None:  # reported by the schema
            continue
        target_path = (*path, "copy_to", position)
        destinations[target.region].append(position)
        if target.region == policy.region:
            yield (*target_path, "region"), "a copy destination must differ from the source region"
        elif target.region not in known:
            yield (*target_path, "region"), _unknown_region(target.region, account)
        if account.provider == "huawei":
            yield from _check_huawei_copy(target_path, policy, target.region, target.vault)
        elif target.vault is not None:
            yield (*target_path, "vault"), "only Huawei whole-machine image copies take a vault"
    for region, positions in destinations.items():
        for position in positions[1:]:
            yield (*path, "copy_to", position), f"region {region} is listed more than once"
    if account.provider != "huawei" and policy.vault is not None:
        yield (*path, "vault"), "only Huawei whole-machine images take a source vault"
    elif (
        account.provider == "huawei"
        and account.endpoint != EMULATOR_ENDPOINT
        and policy.disks == "all"
        and policy.vault is None
    ):
        message = (
            "Huawei whole-machine images (disks: all) need the CBR vault of the source region: add vault: <id> "
            "(or list the disks to make a system image and data images instead)"
        )
        yield path, message
    if account.provider == "huawei" and account.endpoint != EMULATOR_ENDPOINT and policy.copy_to and not account.agency:
        message = f"Huawei cross-region copies need an IAM agency: add agency: <name> (policy {policy.name!r} copies)"
        yield ("accounts", policy.account), message
    if account.provider == "huawei" and account.endpoint != EMULATOR_ENDPOINT and account.projects:
        for region in [policy.region, *destinations]:
            if region is not None and region not in account.projects:
                message = f"no project id for region {region} (used by policy {policy.name!r})"
                yield ("accounts", policy.account, "projects"), message


def _check_huawei_copy(target_path: Path, policy: Policy, region: str, vault: str | None) -> Iterator[Finding]:
    """Huawei images every disk as one whole-machine image, which copies only between five regions."""
    if policy.disks != "all" or policy.region is None:
        return
    allowed = ", ".join(sorted(HUAWEI_WHOLE_IMAGE_COPY_REGIONS))
    if policy.region not in HUAWEI_WHOLE_IMAGE_COPY_REGIONS:
        yield (
            (*target_path, "region"),
            (
                f"Huawei whole-machine images (disks: all) copy only between {allowed}; the source "
                f"{policy.region} is not one of them (list the disks to copy system and data images instead)"
            ),
        )
    elif region not in HUAWEI_WHOLE_IMAGE_COPY_REGIONS:
        yield (*target_path, "region"), f"Huawei whole-machine images copy only between {allowed}"
    if vault is None:
        yield (
            target_path,
            "Huawei whole-machine image copies need a destination vault: {region: ..., vault: ...}",
        )


def _check_disks(index: int, policy: Policy) -> Iterator[Finding]:
    if policy.disks is None or policy.disks == "all":
        return
    path: Path = ("policies", index, "disks")
    if "vda" not in policy.disks:
        yield path, "the system disk vda must be included in a disk list"
    seen: set[str] = set()
    for position, device in enumerate(policy.disks):
        if device in seen:
            yield (*path, position), f"device {device} is listed more than once"
        seen.add(device)


def _unknown_region(region: str, account: Account) -> str:
    return (
        f"{region} is not a known {account.provider} region; fix the id, or add it to the account's "
        "extra_regions if it is new"
    )
