"""Live-room KPIs per room and per broadcast (`session_id`), computed in ClickHouse; the
definitions are in `pipeline.kpis`."""

from __future__ import annotations

from typing import Any

from pipeline.kpis import ROOM_INTERACTIONS, Period, Query, ratio

LIVE_TYPES = (
    "('room_enter', 'room_leave', 'watch', 'like', 'comment', 'share', 'gift', 'follow', "
    "'reservation', 'product_click', 'coupon_claim', 'private_join')"
)
FIGURES = (
    "viewers", "avg_watch_seconds", "interaction_rate", "comments", "negative_comment_share",
    "follow_conversion", "private_join_conversion", "gmv",
)  # fmt: skip


def _live(p: Period, keys: str) -> str:
    return f"""
        SELECT {keys}, uniqExact(user_id) AS viewers,
               sumIf(seconds, type = 'watch') AS watched,
               uniqExactIf(user_id, type IN {ROOM_INTERACTIONS}) AS interacting,
               countIf(type = 'comment') AS comments,
               countIf(type = 'comment' AND sentiment = 'negative') AS negative,
               uniqExactIf(user_id, type = 'follow') AS followers,
               uniqExactIf(user_id, type = 'private_join') AS joined,
               min(ts_ms) AS started_ms, max(ts_ms) AS ended_ms
        FROM events FINAL
        WHERE type IN {LIVE_TYPES} AND room_id != '' AND {p.within()} AND {p.users()}
        GROUP BY {keys}"""


def _orders(p: Period) -> str:
    return f"""
        SELECT room_id, user_id, order_id, min(ts_ms) AS paid_ms,
               toFloat64(any(amount_base)) AS amount
        FROM events FINAL
        WHERE type = 'order_paid' AND room_id != '' AND {p.within()} AND {p.users()}
        GROUP BY room_id, user_id, order_id"""


def _figures(keys: str) -> str:
    return f"""{keys}, viewers, {ratio("watched", "viewers")} AS avg_watch_seconds,
               {ratio("interacting", "viewers")} AS interaction_rate, comments,
               {ratio("negative", "comments")} AS negative_comment_share,
               {ratio("followers", "viewers")} AS follow_conversion,
               {ratio("joined", "viewers")} AS private_join_conversion"""


def rooms_sql(p: Period) -> str:
    """One row per room with a live event in the period: its figures and GMV (orders paid
    with the room's id in the period)."""
    return f"""
        SELECT {_figures("room_id")}, gmv FROM ({_live(p, "room_id")}) AS live
        ANY LEFT JOIN (SELECT room_id, sum(amount) AS gmv FROM ({_orders(p)}) GROUP BY room_id)
            AS paid USING room_id
        ORDER BY room_id"""


def broadcasts_sql(p: Period) -> str:
    """One row per broadcast: its figures, its span and GMV (orders paid with the room's id
    between its first and last live event)."""
    live = _live(p, "room_id, session_id")
    return f"""
        SELECT {_figures("room_id, session_id")}, started_ms, ended_ms, gmv
        FROM ({live}) AS live
        ANY LEFT JOIN (
            SELECT room_id, session_id, sum(amount) AS gmv FROM (
                SELECT room_id, session_id, started_ms, ended_ms, paid_ms, amount
                FROM ({_orders(p)}) AS o ALL INNER JOIN ({live}) AS s USING room_id)
            WHERE paid_ms >= started_ms AND paid_ms <= ended_ms
            GROUP BY room_id, session_id) AS paid USING room_id, session_id
        ORDER BY room_id, started_ms"""


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FIGURES:
        value = row.get(name)
        if name in ("viewers", "comments"):
            out[name] = int(value or 0)
        else:
            out[name] = None if value is None else float(value)
    out["gmv"] = out["gmv"] or 0.0
    return out


def rooms(query: Query, p: Period) -> list[dict[str, Any]]:
    """Each room with a live event in the period: its figures, and each broadcast's."""
    broadcasts: dict[str, list[dict[str, Any]]] = {}
    for row in query(broadcasts_sql(p)):
        broadcasts.setdefault(row["room_id"], []).append(
            {
                "session_id": row["session_id"],
                "started_ms": int(row["started_ms"]),
                "ended_ms": int(row["ended_ms"]),
                **_row(row),
            }
        )
    return [
        {"room_id": row["room_id"], **_row(row), "broadcasts": broadcasts.get(row["room_id"], [])}
        for row in query(rooms_sql(p))
    ]
