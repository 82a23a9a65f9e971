"""Prometheus metrics for node_exporter's textfile collector, written atomically after every run.

prometheus-client formats them and ``write_to_textfile`` replaces the file in one rename, so the
collector never reads half a file. The last success per policy and region comes from the recovery
points in the state file, so a policy that did not run this time keeps its figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from imagebak.hooks import Summary


def write_metrics(path: Path, summary: Summary, last_success: Mapping[tuple[str, str], float]) -> None:
    """Replace ``path`` with this run's figures and each (policy, region)'s newest recovery point."""
    registry = CollectorRegistry()
    success = Gauge(
        "imagebak_last_success_timestamp_seconds",
        "When the newest available recovery point of the policy in the region was made.",
        ["policy", "region"],
        registry=registry,
    )
    for (policy, region), moment in sorted(last_success.items()):
        success.labels(policy=policy, region=region).set(moment)
    figures = {
        "imagebak_last_run_timestamp_seconds": ("When the last run ended.", summary.finished),
        "imagebak_last_run_duration_seconds": ("How long the last run took.", summary.duration),
        "imagebak_last_run_exit_code": ("The last run's exit code (README: Exit codes).", summary.exit_code),
        "imagebak_last_run_images_created": ("Images the last run saw become available.", summary.images_created),
        "imagebak_last_run_images_failed": ("Instances whose image failed in the last run.", summary.images_failed),
        "imagebak_last_run_copies_made": ("Cross-region copies that became available.", summary.copies_made),
        "imagebak_last_run_pruned": ("Recovery points deleted by retention.", summary.pruned),
        "imagebak_stalled_executions": ("Executions without progress for a whole interval.", len(summary.stalled)),
    }
    for name, (text, value) in figures.items():
        Gauge(name, text, registry=registry).set(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
