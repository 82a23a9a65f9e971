"""After (and before) a run: tell the configured hooks, from the policy file's `notify:` and `metrics:`.

Addresses and signing secrets come from environment variables; a variable that is not set is
logged (by its name) and that hook skipped. Whether the previous run succeeded, which a
"recovery" notification needs, is kept in a small file beside the state file.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from imagebak.config import LoadedConfig
from imagebak.engine import RunReport, inventory
from imagebak.execution.states import ArtifactState, WorkStatus
from imagebak.fsutil import atomic_write
from imagebak.hooks import PolicyResult, Summary
from imagebak.hooks.metrics import write_metrics
from imagebak.hooks.notify import Webhook, When, notify, occasions, ping
from imagebak.state import StateStore

log = logging.getLogger(__name__)


def run_started(loaded: LoadedConfig) -> None:
    """The healthchecks-style ``/start`` ping, so a run that never ends is noticed too."""
    _UNSET_REPORTED.clear()  # a new run (several run in one process under tests or a wrapper)
    url = _env(loaded.model.notify.healthchecks_url_env)
    if url:
        ping(url, "start")


def run_finished(loaded: LoadedConfig, store: StateStore, report: RunReport, started: float) -> None:
    """Notifications, the ping and the metrics file for one finished run. Never raises for a hook."""
    summary = summarise(report, started, time.time())
    settings = loaded.model.notify
    memory = store.path.with_name(store.path.name + ".last-run.json")
    wanted = {When(w) for w in settings.when} & occasions(summary, _previous_ok(memory))
    if wanted:
        webhooks = [hook for hook in (_webhook(s.type, s.url_env, s.secret_env) for s in settings.webhooks) if hook]
        notify(webhooks, summary)
    url = _env(settings.healthchecks_url_env)
    if url:
        ping(url, "success" if summary.ok else "fail", summary)
    if loaded.model.metrics.textfile:
        try:
            write_metrics(loaded.resolve(loaded.model.metrics.textfile), summary, _last_success(loaded, store))
        except OSError as exc:
            log.warning("cannot write the metrics file: %s", exc.strerror or exc)
    try:
        atomic_write(memory, json.dumps({"exit_code": summary.exit_code, "finished": summary.finished}).encode())
    except OSError as exc:
        log.warning("cannot remember this run's outcome in %s: %s", memory, exc.strerror or exc)


def summarise(report: RunReport, started: float, finished: float) -> Summary:
    """The run, as plain data for the hooks."""
    code = report.exit_code()
    policies = []
    created = failed = copies = 0
    for execution in report.executions:
        works = list(execution.instances.values())
        statuses = Counter(w.status for w in works)
        made = Counter(c.region for w in works for c in w.copies.values() if c.state is ArtifactState.AVAILABLE)
        created += sum(1 for w in works if w.image is not None and w.image.state is ArtifactState.AVAILABLE)
        failed += statuses[WorkStatus.FAILED]
        copies += sum(made.values())
        policy = execution.policy
        policies.append(
            PolicyResult(
                policy=policy.name,
                account=policy.account,
                region=policy.region,
                done=statuses[WorkStatus.DONE],
                failed=statuses[WorkStatus.FAILED],
                skipped=statuses[WorkStatus.SKIPPED],
                in_flight=sum(1 for w in works if not w.terminal),
                copies=dict(made),
                errors=tuple(
                    f"{w.instance_id}: {w.reason}" for w in works if w.status is not WorkStatus.DONE and w.reason
                ),
            )
        )
    return Summary(
        result=code.name.lower(),
        exit_code=int(code),
        started=started,
        finished=finished,
        policies=tuple(policies),
        stalled=tuple(report.stalled),
        notes=tuple(f"{n.policy}: {n.kind.value}: {n.message}" for n in report.notes),
        images_created=created,
        images_failed=failed,
        copies_made=copies,
        pruned=sum(1 for v in report.pruned if v.deleted),
    )


def _last_success(loaded: LoadedConfig, store: StateStore) -> dict[tuple[str, str], float]:
    state = inventory.observed(store)
    newest: dict[tuple[str, str], float] = {}
    for policy in loaded.model.policies:
        for point in inventory.points(state, policy):
            key = (policy.name, point["region"])
            newest[key] = max(newest.get(key, 0.0), datetime.fromisoformat(point["created_at"]).timestamp())
    return newest


def _previous_ok(memory: Path) -> bool | None:
    try:
        return bool(json.loads(memory.read_text(encoding="utf-8")).get("exit_code") == 0)
    except (OSError, ValueError, AttributeError):
        return None  # no earlier run known: no "recovery" to tell


def _webhook(kind: str, url_env: str, secret_env: str | None) -> Webhook | None:
    url = _env(url_env)
    return Webhook(kind, url, _env(secret_env)) if url else None


def _env(name: str | None) -> str | None:
    """The variable's value; a missing one is said once per run (the start and end pings both ask)."""
    if not name:
        return None
    value = os.environ.get(name)
    if not value and name not in _UNSET_REPORTED:
        _UNSET_REPORTED.add(name)
        log.warning("environment variable %s is not set: that notification is skipped", name)
    return value or None


_UNSET_REPORTED: set[str] = set()
