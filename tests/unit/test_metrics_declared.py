"""The metrics are declared in one place: every series the alert rules and the dashboards
query is one of them (an alert on a name nobody exports would never fire), every histogram
has explicit buckets, and docs/metrics.md is current."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, Histogram

from pipeline import metrics
from pipeline.metrics_catalogue import catalogue

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = ("_bucket", "_sum", "_count")


def exported() -> set[str]:
    """Every sample name the two registries can export."""
    names: set[str] = set()
    for registry in (metrics.WORKER, metrics.API):
        for family in registry.collect():
            names.add(family.name)
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def used_in(text: str) -> set[str]:
    return set(re.findall(r"\b(lifecycle_[a-z_]+)", text))


def test_every_series_the_alerts_and_dashboards_query_is_declared() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
    used = {name for group in rules for rule in group["rules"] for name in used_in(rule["expr"])}
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/pipeline-health.json").read_text())
    used |= {
        name for panel in dashboard["panels"] for t in panel["targets"]
        for name in used_in(t["expr"])
    }  # fmt: skip
    assert len(used) > 15
    assert used - exported() == set()


def test_the_two_registries_do_not_share_a_metric() -> None:
    worker = {f.name for f in metrics.WORKER.collect() if f.name.startswith("lifecycle_")}
    api = {f.name for f in metrics.API.collect() if f.name.startswith("lifecycle_")}
    assert worker
    assert api
    assert not worker & api
    assert all(name.startswith("lifecycle_api_") for name in api)


def test_every_histogram_has_its_buckets_declared() -> None:
    declared = {metrics.LATENCY_BUCKETS, metrics.CHECKPOINT_BUCKETS, metrics.REQUEST_BUCKETS}
    histograms = [m for m in vars(metrics).values() if isinstance(m, Histogram)]
    assert len(histograms) == 4
    for histogram in histograms:
        bounds = tuple(histogram._upper_bounds[:-1])
        assert bounds in declared, histogram
        assert bounds != Histogram.DEFAULT_BUCKETS[:-1]


def test_docs_metrics_is_current() -> None:
    assert (ROOT / "docs/metrics.md").read_text() == catalogue(), (
        "regenerate: python -m pipeline.metrics_catalogue > docs/metrics.md"
    )


def test_observing_many_at_once_equals_observing_each() -> None:
    bounds = metrics.LATENCY_BUCKETS
    amounts = [0.0, *bounds, *(b + 1e-9 for b in bounds), 1e9, 0.07, 0.07, 12.5]
    one, many = CollectorRegistry(), CollectorRegistry()
    each = Histogram("each_seconds", "d", buckets=bounds, registry=one)
    batch = Histogram("each_seconds", "d", buckets=bounds, registry=many)
    for amount in amounts:
        each.observe(amount)
    metrics.observe_many(batch, amounts)
    metrics.observe_many(batch, [])

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): s.value
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")
        }  # fmt: skip

    assert samples(many) == samples(one)
    assert samples(one)[("each_seconds_count", "")] == len(amounts)
