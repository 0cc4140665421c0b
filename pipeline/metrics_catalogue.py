"""docs/metrics.md, generated from the declarations in `pipeline.metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipeline import metrics


def catalogue() -> str:
    """docs/metrics.md: every metric of both registries with its type, labels and help
    (`python -m pipeline.metrics_catalogue > docs/metrics.md`; a test checks it is current)."""
    lines = [
        "# Metrics",
        "",
        "Generated from `pipeline/metrics.py`",
        "(`python -m pipeline.metrics_catalogue > docs/metrics.md`).",
        "The worker serves its own on `WORKER_METRICS_PORT` (9108) `/metrics`, the API on its",
        "`/metrics`; both also export the standard `process_*` (resident memory, CPU) and",
        "`python_gc_*` series. Histogram buckets are in `pipeline/metrics.py`.",
    ]
    for title, registry in (("Worker", metrics.WORKER), ("API", metrics.API)):
        lines += [
            "",
            f"## {title}",
            "",
            "| metric | type | labels | meaning |",
            "|---|---|---|---|",
        ]
        for family in sorted(registry.collect(), key=lambda f: f.name):
            if not family.name.startswith("lifecycle_"):
                continue
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = ", ".join(_labels(family.name, registry)) or "-"
            lines.append(f"| `{name}` | {family.type} | {labels} | {family.documentation} |")
    return "\n".join(lines) + "\n"


def _labels(name: str, registry: CollectorRegistry) -> tuple[str, ...]:
    for metric in (m for m in vars(metrics).values() if isinstance(m, Counter | Gauge | Histogram)):
        if metric._name == name and name in {f.name for f in registry.collect()}:
            return tuple(metric._labelnames)
    return ()


if __name__ == "__main__":
    print(catalogue(), end="")
