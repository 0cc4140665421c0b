"""The demo's simulated world: users with habits moving through live rooms, chats and orders."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.chat import ChatEvent
from schemas.events import AnyEvent
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from schemas.touch import TouchEvent

ROOMS = ("room-beauty", "room-snacks", "room-fashion", "room-home", "room-kids")
GROUPS = ("group-vip", "group-newcomers", "group-deals")
POSITIVE = (
    "太好看了",
    "已下单，期待",
    "主播讲得真清楚",
    "love this color",
    "great deal, thanks!",
    "质量很好",
)
NEUTRAL = ("这个有几个颜色", "什么时候发货", "how big is it?", "链接在哪里", "is there a size M?")
NEGATIVE = (
    "太贵了，不值",
    "上次买的质量很差",
    "客服不回消息",
    "this is a scam",
    "shipping took forever",
    "退款好慢",
)


@dataclass(frozen=True)
class Persona:
    """How often a kind of user shows up, talks, and buys."""

    name: str
    share: float
    live_per_day: float
    chat_per_day: float
    buy_per_day: float
    basket: float  # mean order value, CNY
    stops_after_days: tuple[int, int] | None = None  # goes quiet after this many days
    long_watch: float = 0.0  # chance a live visit lasts over three hours


PERSONAS = (
    Persona("browser", 0.35, 0.20, 0.05, 0.0, 0.0),
    Persona("one_timer", 0.15, 0.12, 0.03, 0.0, 180.0),
    Persona("loyal", 0.15, 0.45, 0.30, 1 / 28, 260.0, long_watch=0.02),
    Persona("champion", 0.05, 0.85, 0.60, 1 / 9, 680.0, long_watch=0.15),
    Persona("fading", 0.30, 0.40, 0.15, 1 / 35, 150.0, stops_after_days=(5, 60)),
)


@dataclass
class SimUser:
    user_id: str
    persona: Persona
    joins_at: datetime
    stops_at: datetime | None
    orders: int = 0
    negative_bias: float = 0.1
    paid_orders: list[str] = field(default_factory=list)

    def alive(self, at: datetime) -> bool:
        return at >= self.joins_at and (self.stops_at is None or at < self.stops_at)


class World:
    """Generates one simulated day of events at a time, sorted by event time."""

    def __init__(self, users: int, start: datetime, days: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.counter = 0
        weights = [p.share for p in PERSONAS]
        self.users: list[SimUser] = []
        for i in range(users):
            persona = self.rng.choices(PERSONAS, weights)[0]
            # Users arrive over the first 60% of the period, u00000 first.
            joins = start + timedelta(days=days * 0.6 * i / max(1, users))
            stops = None
            if persona.stops_after_days:
                stops = joins + timedelta(days=self.rng.uniform(*persona.stops_after_days))
            user = SimUser(
                f"u{i:05d}", persona, joins, stops, negative_bias=self.rng.uniform(0.02, 0.3)
            )
            self.users.append(user)

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:09d}"

    def day(self, day_start: datetime) -> list[AnyEvent]:
        """Every event of the day starting at `day_start` (UTC midnight)."""
        events: list[AnyEvent] = []
        # The rooms broadcast every evening, 20:00 Beijing time (12:00 UTC), for two to four hours.
        live_at = day_start + timedelta(hours=12)
        storm_room = self.rng.choice(ROOMS) if self.rng.random() < 0.15 else None
        for user in self.users:
            if not user.alive(day_start):
                continue
            p = user.persona
            if self.rng.random() < p.live_per_day:
                events.extend(self._live_visit(user, live_at, day_start, storm_room))
            if self.rng.random() < p.chat_per_day:
                events.extend(self._chat(user, day_start))
            if p.buy_per_day and self.rng.random() < p.buy_per_day:
                events.extend(
                    self._order(user, day_start + timedelta(hours=self.rng.uniform(1, 23)), None)
                )
        events.extend(self._campaign(day_start))
        events.sort(key=lambda e: e.ts)
        return events

    def _live_visit(
        self, user: SimUser, live_at: datetime, day_start: datetime, storm_room: str | None
    ) -> list[AnyEvent]:
        rng = self.rng
        room = rng.choice(ROOMS)
        session = f"{room}-{day_start:%Y%m%d}"
        t = live_at + timedelta(minutes=rng.uniform(0, 90))
        minutes = (
            rng.uniform(200, 260)
            if rng.random() < user.persona.long_watch
            else rng.expovariate(1 / 25)
        )
        base: dict[str, Any] = {"user_id": user.user_id, "room_id": room, "session_id": session}
        out: list[AnyEvent] = [LiveEvent(event_id=self._id("lv"), type="room_enter", ts=t, **base)]
        watched = 0.0
        while watched < minutes:
            step = min(30.0, minutes - watched) or 1.0
            watched += step
            tick = t + timedelta(minutes=watched)
            out.append(
                LiveEvent(event_id=self._id("lv"), type="watch", ts=tick, seconds=step * 60, **base)
            )
            roll = rng.random()
            if roll < 0.3:
                out.append(LiveEvent(event_id=self._id("lv"), type="like", ts=tick, **base))
            elif roll < 0.55:
                out.append(self._comment(user, tick, base, storm=room == storm_room))
            elif roll < 0.62:
                out.append(
                    LiveEvent(
                        event_id=self._id("lv"),
                        type="product_click",
                        ts=tick,
                        product_id=f"sku-{rng.randint(1, 60)}",
                        **base,
                    )
                )
        if rng.random() < 0.05:
            out.append(LiveEvent(event_id=self._id("lv"), type="follow", ts=t, **base))
        if rng.random() < 0.03:
            out.append(LiveEvent(event_id=self._id("lv"), type="private_join", ts=t, **base))
        if user.persona.buy_per_day and rng.random() < 0.25:
            out.extend(self._order(user, t + timedelta(minutes=watched / 2), room))
        out.append(
            LiveEvent(
                event_id=self._id("lv"),
                type="room_leave",
                ts=t + timedelta(minutes=watched, seconds=1),
                **base,
            )
        )
        return out

    def _comment(self, user: SimUser, at: datetime, base: dict[str, Any], storm: bool) -> LiveEvent:
        negative = user.negative_bias + (0.5 if storm else 0.0)
        roll = self.rng.random()
        pool = NEGATIVE if roll < negative else POSITIVE if roll < negative + 0.5 else NEUTRAL
        return LiveEvent(
            event_id=self._id("lv"), type="comment", ts=at, text=self.rng.choice(pool), **base
        )

    def _chat(self, user: SimUser, day_start: datetime) -> list[AnyEvent]:
        at = day_start + timedelta(hours=self.rng.uniform(0, 24))
        group = self.rng.choice(GROUPS) if self.rng.random() < 0.8 else None
        pool = self.rng.choice((POSITIVE, NEUTRAL, NEUTRAL, NEGATIVE))
        return [
            ChatEvent(
                event_id=self._id("ch"),
                type="message",
                user_id=user.user_id,
                ts=at,
                group_id=group,
                text=self.rng.choice(pool),
            )
        ]

    def _order(self, user: SimUser, at: datetime, room: str | None) -> list[AnyEvent]:
        rng = self.rng
        order_id = self._id("o")
        amount = Decimal(str(round(max(9.9, rng.gammavariate(4.0, user.persona.basket / 4.0)), 2)))
        common: dict[str, Any] = {
            "user_id": user.user_id,
            "order_id": order_id,
            "amount": amount,
            "currency": "CNY",
            "channel": "live" if room else rng.choice(("mini_program", "community", "store")),
            "room_id": room,
            "items": rng.randint(1, 4),
        }
        out: list[AnyEvent] = [
            OrderEvent(event_id=self._id("oe"), type="order_created", ts=at, **common)
        ]
        if rng.random() < 0.9:
            out.append(
                OrderEvent(
                    event_id=self._id("oe"),
                    type="order_paid",
                    ts=at + timedelta(minutes=rng.uniform(0.5, 20)),
                    **common,
                )
            )
            user.orders += 1
            if rng.random() < 0.05:
                out.append(
                    OrderEvent(
                        event_id=self._id("oe"),
                        type="order_refunded",
                        ts=at + timedelta(days=rng.uniform(1, 7)),
                        **common,
                    )
                )
        return out

    def _campaign(self, day_start: datetime) -> list[AnyEvent]:
        """A weekly push to a slice of users: sent, and for some opened and clicked."""
        if (day_start - self.start).days % 7 != 3:
            return []
        out: list[AnyEvent] = []
        campaign = f"weekly-{day_start:%Y%m%d}"
        at = day_start + timedelta(hours=10)
        for user in self.rng.sample(self.users, k=max(1, len(self.users) // 10)):
            if not user.alive(day_start):
                continue
            base: dict[str, Any] = {
                "user_id": user.user_id,
                "campaign_id": campaign,
                "channel": "wecom",
            }
            out.append(TouchEvent(event_id=self._id("t"), type="touch_sent", ts=at, **base))
            if self.rng.random() < 0.6:
                out.append(
                    TouchEvent(
                        event_id=self._id("t"),
                        type="touch_opened",
                        ts=at + timedelta(minutes=5),
                        **base,
                    )
                )
                if self.rng.random() < 0.3:
                    out.append(
                        TouchEvent(
                            event_id=self._id("t"),
                            type="touch_clicked",
                            ts=at + timedelta(minutes=6),
                            **base,
                        )
                    )
        return out


def utc_midnight(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
