"""`imagebak status`, `history` and `check`: what was made, when, and whether it is fresh. Read-only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import click

from imagebak.commands.connect import connected
from imagebak.commands.context import AppContext, parse_time, pass_app
from imagebak.config.schema import parse_interval
from imagebak.engine import inventory
from imagebak.engine.inventory import Freshness, PointAge
from imagebak.errors import ImagebakError
from imagebak.output import emit_json, format_option, show_time, table
from imagebak.ownership import TAG_INSTANCE
from imagebak.plan import build_plan


@click.command()
@click.option("--policy", "policies", multiple=True, metavar="NAME", help="Only this policy (repeatable).")
@click.option("--since", metavar="TIME", help="Only executions started at or after this ISO 8601 time.")
@format_option
@pass_app
def history(app: AppContext, policies: tuple[str, ...], since: str | None, fmt: str) -> None:
    """Past executions, one line each: start, end, outcome, images, copies, errors."""
    loaded = app.load()
    rows = inventory.history(
        inventory.observed(app.store(loaded)), policies, parse_time(since, "--since") if since else None
    )
    if fmt == "json":
        emit_json({"executions": rows})
        return
    if not rows:
        click.echo("no finished executions recorded")
        return
    lines = [
        (
            r["policy"],
            show_time(r["started_at"]),
            show_time(r["finished_at"]),
            _outcome(r),
            len(r["images"]),
            r["copies"],
            "; ".join(r["errors"])[:80],
        )
        for r in rows
    ]
    click.echo(table(("POLICY", "STARTED", "FINISHED", "OUTCOME", "IMAGES", "COPIES", "ERRORS"), lines))


def _outcome(row: dict[str, object]) -> str:
    if row["failed"]:
        return "partial failure" if row["done"] else "failed"
    return "skipped" if row["skipped"] and not row["done"] else "ok"


@click.command()
@click.option("--max-age", metavar="SPAN", help="Stale when older than this (h, d or w).  [default: interval + 6h]")
@click.option("--policy", "policies", multiple=True, metavar="NAME", help="Only this policy (repeatable).")
@format_option
@pass_app
def check(app: AppContext, max_age: str | None, policies: tuple[str, ...], fmt: str) -> None:
    """Is there a fresh recovery point of every instance, in its region and every copy region?

    A Nagios/Icinga plugin: one summary line with perfdata; exit 0 OK, 1 WARNING (older than the
    limit), 2 CRITICAL (missing, or older than twice the limit), 3 UNKNOWN (config or state unreadable).
    Reads the state file (no cloud call); `imagebak images` compares it with the cloud.
    """
    try:
        limit = parse_interval(max_age) if max_age else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-age") from None
    now = app.now()
    try:
        loaded = app.load()
        ages = inventory.freshness(inventory.observed(app.store(loaded)), loaded.model, limit, policies)
    except ImagebakError as exc:
        click.echo(f"IMAGEBAK UNKNOWN - {str(exc).splitlines()[0]}")
        raise click.exceptions.Exit(int(Freshness.UNKNOWN)) from None
    verdict = max((a.verdict(now) for a in ages), default=Freshness.OK)
    if fmt == "json":
        emit_json({"state": verdict.name, "points": [a.to_json(now) for a in ages]})
    else:
        click.echo(_nagios_line(verdict, ages, now))
        for age in ages:
            if age.verdict(now) is not Freshness.OK:
                click.echo(f"{age.verdict(now).name}: {_describe(age, now)}")
    raise click.exceptions.Exit(int(verdict))


def _nagios_line(verdict: Freshness, ages: list[PointAge], now: datetime) -> str:
    counts = {state: sum(1 for a in ages if a.verdict(now) is state) for state in Freshness}
    known = [age for a in ages if (age := a.age(now)) is not None]
    oldest = int(max(known).total_seconds()) if known else 0
    text = (
        f"{len(ages)} recovery point(s) checked: {counts[Freshness.OK]} fresh, {counts[Freshness.WARNING]} stale, "
        f"{counts[Freshness.CRITICAL]} missing or very old"
    )
    perfdata = (
        f"fresh={counts[Freshness.OK]};;;0 stale={counts[Freshness.WARNING]};;;0 "
        f"critical={counts[Freshness.CRITICAL]};;;0 oldest_age={oldest}s;;;0"
    )
    return f"IMAGEBAK {verdict.name} - {text} | {perfdata}"


def _describe(age: PointAge, now: datetime) -> str:
    where = f"{age.policy} {age.instance} in {age.region}"
    if age.newest is None:
        return f"{where}: no recovery point"
    hours = (now - age.newest).total_seconds() / 3600
    return f"{where}: newest point is {hours:.1f} h old (limit {age.limit.total_seconds() / 3600:.0f} h)"


@dataclass(frozen=True)
class PolicyStatus:
    policy: str
    where: str  # account/region
    enabled: bool
    last_run: str | None
    last_outcome: str | None
    in_flight: int
    next_run: datetime | None
    stale: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "next_run": self.next_run.isoformat() if self.next_run else None}

    def row(self, now: datetime) -> tuple[object, ...]:
        next_run = show_time(self.next_run)
        return (
            self.policy,
            self.where,
            show_time(self.last_run),
            self.last_outcome or "-",
            self.in_flight or "-",
            next_run,
            ", ".join(self.stale) or "-",
        )


@click.command()
@format_option
@pass_app
def status(app: AppContext, fmt: str) -> None:
    """The morning screen: per policy, the last run and its outcome, work in flight, the next run, stale points."""
    loaded = app.load()
    now = app.now()
    state = inventory.observed(app.store(loaded))
    last_runs = {row["policy_key"]: row for row in inventory.history(state)}  # oldest first: the newest wins
    stale = [a for a in inventory.freshness(state, loaded.model, None) if a.verdict(now) is not Freshness.OK]
    rows = []
    for entry in build_plan(loaded.model, state, now):
        policy = entry.policy
        last = last_runs.get(entry.key)
        rows.append(
            PolicyStatus(
                policy=policy.name,
                where=f"{policy.account}/{policy.region}",
                enabled=policy.enabled,
                last_run=last["started_at"] if last else None,
                last_outcome=_outcome(last) if last else None,
                in_flight=len(inventory.in_flight(state, entry.key)),
                next_run=entry.schedule.due_at if policy.enabled else None,
                stale=tuple(f"{a.instance} {a.region}" for a in stale if a.policy == policy.name),
            )
        )
    if fmt == "json":
        emit_json({"at": now.isoformat(), "policies": [r.to_json() for r in rows]})
        return
    headers = ("POLICY", "ACCOUNT/REGION", "LAST RUN", "OUTCOME", "IN FLIGHT", "NEXT RUN", "STALE POINTS")
    click.echo(table(headers, [r.row(now) for r in rows]))


@click.command()
@click.option("--policy", "policies", multiple=True, metavar="NAME", help="Only this policy (repeatable).")
@click.option("--instance", metavar="ID", help="Only this instance.")
@click.option("--region", metavar="REGION", help="Only this region (source or copy).")
@format_option
@pass_app
def images(app: AppContext, policies: tuple[str, ...], instance: str | None, region: str | None, fmt: str) -> None:
    """Every recovery point imagebak made: id, status, age, size, the latest; and where cloud and state disagree.

    Reads the cloud (one look-up by ownership marks per instance and region) and the state file.
    """
    loaded = app.load()
    now = app.now()
    state = inventory.observed(app.store(loaded))
    found: list[inventory.RecoveryImage] = []
    with connected(loaded) as connector:
        for policy in loaded.model.policies:
            if policies and policy.name not in policies:
                continue
            provider = connector.provider(policy.account)
            for where in [policy.region, *(t.region for t in policy.copy_to)]:
                if region not in (None, where):
                    continue
                for iid in policy.instances:
                    if instance not in (None, iid):
                        continue
                    marks = provider.find_images(where, {TAG_INSTANCE: iid})
                    seen = [(s.image_id or s.ref, s.state.value, s.size_gb) for s in marks]
                    found += inventory.recovery_images(state, policy, where, iid, seen)
    if fmt == "json":
        emit_json({"at": now.isoformat(), "images": [i.to_json() for i in found]})
        return
    rows = [
        (
            i.policy,
            i.instance,
            i.region,
            i.image_id,
            i.cloud_state or "-",
            _age(i.created_at, now),
            i.size_gb or "-",
            "yes" if i.latest else "",
            "" if i.agreement == "ok" else i.agreement,
        )
        for i in found
    ]
    headers = ("POLICY", "INSTANCE", "REGION", "IMAGE", "STATUS", "AGE", "GB", "LATEST", "DISAGREEMENT")
    click.echo(table(headers, rows) if rows else "no recovery points")


def _age(created_at: str | None, now: datetime) -> str:
    if created_at is None:
        return "-"
    hours = (now - datetime.fromisoformat(created_at)).total_seconds() / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"
