"""Small fixture builders for the client tests: one account, its instances, fixed durations."""

from __future__ import annotations

from typing import Any


def instance(instance_id: str, region: str, *disks: tuple[str, str, int]) -> dict[str, Any]:
    """An instance whose disks are (disk id, device, size in GB); ``vda`` is the system disk."""
    return {
        "instance_id": instance_id,
        "region": region,
        "name": f"{instance_id}-vm",
        "disks": [
            {"disk_id": disk_id, "device": device, "size_gb": size, "is_system": device == "vda"}
            for disk_id, device, size in disks
        ],
    }


def world(
    provider: str,
    account: tuple[str, str, str],
    regions: list[str] | dict[str, str],
    instances: list[dict[str, Any]],
    seconds: dict[str, int],
) -> dict[str, Any]:
    """A fixture with one ``(name, access key, secret)`` account; ``seconds`` fixes each operation's duration."""
    name, key, secret = account
    return {
        "accounts": [
            {
                "name": name,
                "provider": provider,
                "access_key_id": key,
                "secret": secret,
                "regions": regions,
                "instances": instances,
            }
        ],
        "latencies": {provider: {op: {"base_seconds": s} for op, s in seconds.items()}},
    }
