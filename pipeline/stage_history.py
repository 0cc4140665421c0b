"""Stage history in ClickHouse for the API and the console: the flows between stages in a
period and one user's history, as they stand after corrections (`valid` rows, latest
version by `FINAL`)."""

from __future__ import annotations

from pipeline.kpis import Period


def flows_sql(p: Period) -> str:
    """Stage changes in the period by (from, to), retracted ones left out."""
    return f"""
        SELECT from_stage, to_stage, count() AS users FROM stage_transitions FINAL
        WHERE valid = 1 AND {p.within("at")} AND {p.users()}
        GROUP BY from_stage, to_stage ORDER BY users DESC, from_stage, to_stage"""


def history_sql(user_id: str) -> str:
    """A user's stage history as it stands (corrections applied), oldest first."""
    quoted = user_id.replace("\\", "\\\\").replace("'", "\\'")
    return f"""
        SELECT from_stage, to_stage, at_ms, reactivation FROM stage_transitions FINAL
        WHERE user_id = '{quoted}' AND valid = 1 ORDER BY at_ms, to_stage"""
