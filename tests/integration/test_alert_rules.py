"""The alert rules with Debian's promtool: they load, every alert fires on its bad series and
stays quiet on a good one (`deploy/prometheus/alerts_test.yml`), and each has a runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "Debian's prometheus (promtool) is missing: `make test` installs it"
    return subprocess.run([binary, *args], cwd=PROMETHEUS, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_load() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_on_its_bad_series_and_only_there() -> None:
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    names = {case["alertname"] for test in cases for case in test["alert_rule_test"]}
    assert names == {rule["alert"] for rule in alerts()}


def test_every_alert_has_a_severity_a_summary_and_its_runbook_section() -> None:
    sections = {m.lower() for m in re.findall(r"^## (\w+)$", RUNBOOKS.read_text(), re.M)}
    for rule in alerts():
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict)
        assert labels["severity"] in ("critical", "warning")
        assert isinstance(notes, dict)
        assert notes["summary"]
        anchor = str(notes["runbook_url"]).split("#")[1]
        assert anchor == str(rule["alert"]).lower()
        assert anchor in sections, f"docs/runbooks.md has no section {rule['alert']}"
