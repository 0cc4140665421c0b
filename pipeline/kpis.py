"""The KPIs of the product (SPEC section 6), computed in ClickHouse from the `events` table.

Every query runs on chDB (ClickHouse 26) and on an 18.16 server (no window functions: per-user
sequences are arrays). A period is `[start, end)` in UTC; rows written twice (at-least-once
delivery) are read once (`FINAL`); an order paid is counted once per `(user_id, order_id)`.
Definitions, the same in the API, the console and the dashboards:

- `open_rate`: `touch_opened` / `touch_sent` events in the period.
- `interaction_frequency`: interactions (every event but `touch_sent` and `touch_opened`, as
  the stages count them) per interacting user per 30 days of the period.
- `conversion`: users with a paid order in the period / users who interacted in it (a paid
  order is an interaction, so payers are among them).
- `retention_d1`, `_d7`, `_d30`: of the users whose first interaction ever is in the period
  (or the cohort month), the share that interacted again on the n-th UTC day after that first
  day; only users whose n-th day is not after the data's last day count (`eligible`).
- `repurchase`: of the users whose first paid order is in the period and whose 90 days since it
  have passed by the data's last event, the share with a second paid order within 90 days.
- `gmv` (paid, base currency), `refunds`, `orders`, `aov` (GMV / orders), `arpu` (GMV /
  interacting users), `arppu` (GMV / payers), `top15_share` (share of GMV from the top 15% of
  payers by their GMV, rounded up), `ltv` (paid minus refunded to date, per user first seen
  in the period or the cohort month).
- `repurchase_cycle_days`: the median of the days between a user's consecutive paid orders,
  over the gaps that end in the period.
- Live rooms, per room and per broadcast (`session_id`): `viewers` (users with a live event),
  `avg_watch_seconds` (watched seconds per viewer), `interaction_rate` (viewers who liked,
  commented, shared or gave a gift), `negative_comment_share` (comments classified negative /
  comments), `follow_conversion` and `private_join_conversion` (viewers who followed, who
  joined a community), `gmv` (orders paid with the room's `room_id`; for a broadcast, paid
  between its first and last live event).

With `cohort` (a month, `YYYY-MM`), every figure is restricted to the users whose first
interaction is in that month.

Each figure is worked out in the SQL (a ratio is NULL when its denominator is 0), so the API
and the Grafana dashboards (`pipeline.dashboards`, the same SQL with Grafana's time macros)
say the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.stages import DAY_MS

Query = Callable[[str], list[dict[str, Any]]]

NOT_INTERACTIONS = "('touch_sent', 'touch_opened')"
INTERACTION = f"type NOT IN {NOT_INTERACTIONS}"
ROOM_INTERACTIONS = "('like', 'comment', 'share', 'gift')"
REPURCHASE_DAYS = 90


def ratio(numerator: str, denominator: str) -> str:
    """SQL of numerator / denominator, NULL when the denominator is 0."""
    return f"if(({denominator}) = 0, NULL, ({numerator}) / ({denominator}))"


@dataclass(frozen=True)
class Period:
    """`[start, end)` as SQL DateTime expressions, and an optional cohort month (`YYYY-MM`)."""

    start: str
    end: str
    cohort: str | None = None

    @classmethod
    def of(cls, start: datetime, end: datetime, cohort: str | None = None) -> Period:
        """A period between two UTC times."""
        return cls(_sql_time(start), _sql_time(end), cohort)

    @classmethod
    def grafana(cls) -> Period:
        """The dashboard's time range (the ClickHouse data source's macros)."""
        return cls("$__fromTime", "$__toTime")

    def within(self, column: str = "ts") -> str:
        return f"{column} >= {self.start} AND {column} < {self.end}"

    def within_ms(self, column: str) -> str:
        return (
            f"{column} >= toUnixTimestamp({self.start}) * 1000 "
            f"AND {column} < toUnixTimestamp({self.end}) * 1000"
        )

    @property
    def days(self) -> str:
        return f"((toUnixTimestamp({self.end}) - toUnixTimestamp({self.start})) / 86400)"

    def first_seen(self, column: str) -> str:
        """A condition on a user's first interaction (a DateTime): in the cohort month, or
        else in the period."""
        if self.cohort is None:
            return self.within(column)
        return f"toStartOfMonth({column}) = toDate('{self.cohort}-01')"

    def users(self) -> str:
        """A condition on `user_id`: the cohort's users, or every user."""
        if self.cohort is None:
            return "1"
        return (
            "user_id IN (SELECT user_id FROM events FINAL "
            f"WHERE {INTERACTION} GROUP BY user_id "
            f"HAVING toStartOfMonth(min(ts)) = toDate('{self.cohort}-01'))"
        )


def _sql_time(at: datetime) -> str:
    return f"toDateTime('{at.strftime('%Y-%m-%d %H:%M:%S')}', 'UTC')"


def engagement_sql(p: Period) -> str:
    """One row: open rate, interaction frequency, conversion, with their parts."""
    return f"""
        SELECT opened, sent, {ratio("opened", "sent")} AS open_rate,
               interactions, interacting,
               {ratio("interactions", f"interacting * {p.days} / 30")} AS interaction_frequency,
               payers, {ratio("payers", "interacting")} AS conversion
        FROM (
            SELECT uniqExactIf(event_id, type = 'touch_opened') AS opened,
                   uniqExactIf(event_id, type = 'touch_sent') AS sent,
                   uniqExactIf(event_id, {INTERACTION}) AS interactions,
                   uniqExactIf(user_id, {INTERACTION}) AS interacting,
                   uniqExactIf(user_id, type = 'order_paid') AS payers
            FROM events FINAL WHERE {p.within()} AND {p.users()})"""


def retention_sql(p: Period) -> str:
    """One row per n of 1, 7, 30: eligible users, retained users, retention."""
    return f"""
        SELECT n, count() AS eligible, countIf(has(days, first_day + n)) AS retained,
               {ratio("retained", "eligible")} AS retention
        FROM (
            SELECT toDate(first) AS first_day, days, arrayJoin([1, 7, 30]) AS n
            FROM (
                SELECT user_id, min(ts) AS first, groupUniqArray(toDate(ts)) AS days
                FROM events FINAL WHERE {INTERACTION} AND {p.users()}
                GROUP BY user_id
            )
            WHERE {p.first_seen("first")}
        )
        WHERE first_day + n <= (SELECT toDate(max(ts)) FROM events)
        GROUP BY n ORDER BY n"""


def _paid_orders(p: Period) -> str:
    """One row per paid order: user, order, when it was paid (ms) and its amount."""
    return f"""(
        SELECT user_id, order_id, min(ts_ms) AS paid_ms, toFloat64(any(amount_base)) AS amount
        FROM events FINAL WHERE type = 'order_paid' AND {p.users()}
        GROUP BY user_id, order_id)"""


def _paid_times(p: Period) -> str:
    return (
        f"(SELECT user_id, arraySort(groupArray(paid_ms)) AS times FROM {_paid_orders(p)} "
        "GROUP BY user_id)"
    )


def repurchase_sql(p: Period) -> str:
    """One row: first buyers of the period whose 90 days have passed, those who bought again
    within them, and the share."""
    window = REPURCHASE_DAYS * DAY_MS
    return f"""
        SELECT eligible, repeated, {ratio("repeated", "eligible")} AS repurchase FROM (
            SELECT count() AS eligible,
                   countIf(length(times) > 1 AND times[2] - times[1] <= {window}) AS repeated
            FROM {_paid_times(p)}
            WHERE {p.within_ms("times[1]")}
              AND times[1] + {window} <= (SELECT max(ts_ms) FROM events))"""


def cycle_sql(p: Period) -> str:
    """One row: the gaps between consecutive paid orders that end in the period, and their
    median in days (NULL without any)."""
    return f"""
        SELECT count() AS gaps, if(gaps = 0, NULL, median(gap)) AS repurchase_cycle_days FROM (
            SELECT arrayJoin(arrayFilter((g, t) -> {p.within_ms("t")},
                   arrayPopFront(arrayDifference(times)), arrayPopFront(times))) / {DAY_MS} AS gap
            FROM {_paid_times(p)})"""


def value_sql(p: Period) -> str:
    """One row: GMV, orders, payers, AOV, ARPPU, the top 15% share, refunds, ARPU."""
    refunds = (f"(SELECT toFloat64(sum(amount_base)) FROM events FINAL "
               f"WHERE type = 'order_refunded' AND {p.within()} AND {p.users()})")  # fmt: skip
    active = (f"(SELECT uniqExact(user_id) FROM events FINAL "
              f"WHERE {INTERACTION} AND {p.within()} AND {p.users()})")  # fmt: skip
    return f"""
        SELECT gmv, orders, payers, {ratio("gmv", "orders")} AS aov,
               {ratio("gmv", "payers")} AS arppu, {ratio("top_gmv", "gmv")} AS top15_share,
               {refunds} AS refunds, {active} AS interacting,
               {ratio("gmv", "interacting")} AS arpu
        FROM (
            SELECT sum(spent) AS gmv, sum(bought) AS orders, count() AS payers,
                   arraySum(arraySlice(arrayReverseSort(groupArray(spent)), 1,
                            toUInt64(ceil(0.15 * count())))) AS top_gmv
            FROM (SELECT user_id, sum(amount) AS spent, count() AS bought
                  FROM {_paid_orders(p)} WHERE {p.within_ms("paid_ms")} GROUP BY user_id))"""


def ltv_sql(p: Period) -> str:
    """One row: users first seen in the period (or the cohort month), their paid minus
    refunded to date, and its mean."""
    return f"""
        SELECT members, net, {ratio("net", "members")} AS ltv FROM (
            SELECT count() AS members, sum(value) AS net FROM (
                SELECT user_id,
                       toFloat64(sumIf(amount_base, type = 'order_paid')
                                 - sumIf(amount_base, type = 'order_refunded')) AS value,
                       minIf(ts, {INTERACTION}) AS first
                FROM events FINAL WHERE {p.users()} GROUP BY user_id
                HAVING countIf({INTERACTION}) > 0)
            WHERE {p.first_seen("first")})"""


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _kpi(row: Mapping[str, Any], name: str, parts: tuple[str, str] | None = None) -> dict[str, Any]:
    kpi: dict[str, Any] = {"value": _float(row.get(name))}
    if parts is not None:
        kpi["numerator"], kpi["denominator"] = (float(row.get(part) or 0) for part in parts)
    return kpi


def compute(query: Query, p: Period, targets: Mapping[str, float]) -> dict[str, Any]:
    """Every KPI of the period, each with its target (`value > target`) and whether it is met
    (None without a target or without data)."""

    def one(sql: str) -> dict[str, Any]:
        rows = query(sql)
        return rows[0] if rows else {}

    e, r, c = one(engagement_sql(p)), one(repurchase_sql(p)), one(cycle_sql(p))
    v, ltv = one(value_sql(p)), one(ltv_sql(p))
    kpis: dict[str, dict[str, Any]] = {
        "open_rate": _kpi(e, "open_rate", ("opened", "sent")),
        "interaction_frequency": _kpi(e, "interaction_frequency",
                                      ("interactions", "interacting")),
        "conversion": _kpi(e, "conversion", ("payers", "interacting")),
    }  # fmt: skip
    by_n = {int(row["n"]): row for row in query(retention_sql(p))}
    for n in (1, 7, 30):
        kpis[f"retention_d{n}"] = _kpi(by_n.get(n, {}), "retention", ("retained", "eligible"))
    kpis["repurchase"] = _kpi(r, "repurchase", ("repeated", "eligible"))
    kpis["repurchase_cycle_days"] = {**_kpi(c, "repurchase_cycle_days"),
                                     "gaps": float(c.get("gaps") or 0)}  # fmt: skip
    for name in ("gmv", "refunds", "orders", "aov", "arppu", "top15_share", "arpu"):
        kpis[name] = _kpi(v, name)
    for name in ("gmv", "refunds", "orders"):
        kpis[name]["value"] = kpis[name]["value"] or 0.0
    kpis["ltv"] = _kpi(ltv, "ltv", ("net", "members"))
    for kpi_name, kpi in kpis.items():
        target = targets.get(kpi_name)
        kpi["target"] = target
        kpi["met"] = None if target is None or kpi["value"] is None else kpi["value"] > target
    return kpis
