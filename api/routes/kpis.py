"""KPIs against their targets, from ClickHouse (`pipeline.kpis` has the definitions)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from api.deps import ApiKey, SettingsDep
from api.errors import errors
from api.examples import FLOWS, HISTORY, KPIS, ok
from pipeline.kpis import Period, compute
from pipeline.kpis import Query as SqlQuery
from pipeline.kpis_rooms import rooms
from pipeline.stage_history import flows_sql, history_sql
from schemas.limits import ID_MAX_LENGTH, ID_PATTERN, STORE_EARLIEST, STORE_LATEST
from sinks.exceptions import SinkError

router = APIRouter(tags=["kpis"])

FromQuery = Annotated[
    datetime | None,
    Query(alias="from", description="Start of the period (RFC 3339 with offset). "
          "Default: 30 days before `to`."),
]  # fmt: skip
ToQuery = Annotated[
    datetime | None,
    Query(description="End of the period, excluded (RFC 3339 with offset). Default: now."),
]


def _period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The period asked for, in UTC; 422 without an offset or when it is empty."""
    end = end or datetime.now(tz=UTC)
    start = start or end - timedelta(days=30)
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"{name} needs a UTC offset")  # fmt: skip
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from must be before to")
    for name, value in (("from", start), ("to", end)):
        if not STORE_EARLIEST <= value <= STORE_LATEST:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"{name} must be between {STORE_EARLIEST:%Y-%m-%d} and {STORE_LATEST:%Y-%m-%d} "
                "(what ClickHouse's DateTime holds)",
            )
    return start.astimezone(UTC), end.astimezone(UTC)


async def _read(request: Request, work: Callable[[SqlQuery], Any]) -> Any:
    """Run `work` on the ClickHouse reader in a thread; 503 when ClickHouse does not answer."""
    reader = request.app.state.clickhouse
    if reader is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no ClickHouse to read")
    try:
        return await asyncio.get_running_loop().run_in_executor(None, work, reader.query)
    except SinkError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


@router.get("/v1/kpis", responses={**ok(KPIS), **errors(401, 403, 422, 503)})
async def get_kpis(
    request: Request,
    settings: SettingsDep,
    _key: ApiKey,
    from_: FromQuery = None,
    to: ToQuery = None,
    cohort: Annotated[
        str | None,
        Query(
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="Only users first seen in this month (`YYYY-MM`).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Every KPI of the period (SPEC section 6) with its `target` and whether it is `met`
    (null without a target or without data): open rate, interaction frequency, conversion,
    D1/D7/D30 retention of the cohort first seen in the period, repurchase within 90 days and
    the repurchase cycle, GMV, refunds, orders, AOV, ARPU, ARPPU, the top 15% share, LTV; and
    each live room's figures with each broadcast's. Ratios carry their `numerator` and
    `denominator`. 503 when ClickHouse does not answer."""
    start, end = _period(from_, to)
    period = Period.of(start, end, cohort)

    def work(query: SqlQuery) -> dict[str, Any]:
        return {"kpis": compute(query, period, settings.kpi_targets), "rooms": rooms(query, period)}

    figures = await _read(request, work)
    return {"from": start, "to": end, "cohort": cohort, **figures}


@router.get("/v1/flows", responses={**ok(FLOWS), **errors(401, 403, 422, 503)})
async def get_flows(
    request: Request, _key: ApiKey, from_: FromQuery = None, to: ToQuery = None
) -> dict[str, Any]:
    """Stage changes in the period by `from_stage` and `to_stage` (the corrected history:
    retracted changes are left out), most users first."""
    start, end = _period(from_, to)
    period = Period.of(start, end)
    rows = await _read(request, lambda query: query(flows_sql(period)))
    flows = [{"from_stage": r["from_stage"] or None, "to_stage": r["to_stage"],
              "users": int(r["users"])} for r in rows]  # fmt: skip
    return {"from": start, "to": end, "flows": flows}


@router.get("/v1/users/{user_id}/history", responses={**ok(HISTORY), **errors(401, 403, 422, 503)})
async def get_history(
    request: Request,
    _key: ApiKey,
    user_id: Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)],
) -> dict[str, Any]:
    """The user's stage history as it stands (a late event's corrections applied), oldest
    first, from ClickHouse: `from_stage` (null for the first), `to_stage`, `at`,
    `reactivation`. An unknown user has an empty history."""
    rows = await _read(request, lambda query: query(history_sql(user_id)))
    history = [
        {"from_stage": r["from_stage"] or None, "to_stage": r["to_stage"],
         "at": datetime.fromtimestamp(int(r["at_ms"]) / 1000, tz=UTC),
         "reactivation": bool(int(r["reactivation"]))}
        for r in rows
    ]  # fmt: skip
    return {"user_id": user_id, "history": history}
