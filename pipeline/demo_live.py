"""The demo's present: a room on air at every hour, viewers coming, watching, commenting and
buying at a steady rate, a storm of negative comments now and then, and a few people planted in
the history so that every trigger rule fires within minutes of the start.

The history's own days go on too (`pipeline.demo_model`); this adds what a person watching the
console expects to see move: about two events a second in the present, new visitors who turn
into first-time buyers (the `new` stage), regulars buying again, big baskets reaching class A,
a marathon viewer crossing three hours, people whose 30 and 90 idle days end in the first
minutes (silent, churned), and a negative storm that fires `room_negative_sentiment`.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.demo_model import NEGATIVE, NEUTRAL, POSITIVE, ROOMS, World
from schemas.chat import ChatEvent
from schemas.events import AnyEvent
from schemas.live import LiveEvent
from schemas.order import OrderEvent

RATE_PER_SECOND = 2.0
NEW_VISITORS_PER_HOUR = 30  # people never seen before (the history's are all older)
ORDER_SHARE = 0.006  # of the events: about 40 paid orders an hour, a busy broadcast's
BIG_BASKET_SHARE = 0.1
REORDER_AFTER = timedelta(minutes=30)  # one person's next order, at the soonest
# Orders that move someone across a rule, on a schedule from a minute after the start: a new
# visitor's first order (first_order, the `new` stage), a one-time buyer's second
# (repeat_buyer), a big basket (became_high_value once the RFM scale is published).
SHOWCASE = {"first": timedelta(minutes=3), "repeat": timedelta(minutes=5),
            "big": timedelta(minutes=7)}  # fmt: skip
# Lapsed users answering the reactivation push: one every 20 s in the first 15 minutes (the
# churn model learns from returns as well as from churns, and is ready once it has 30 of
# each), then one every 5 minutes.
COMEBACK_EARLY, COMEBACK_LATER = timedelta(seconds=20), timedelta(minutes=5)
COMEBACK_RUSH = timedelta(minutes=15)
STORM_EVERY = timedelta(minutes=11)  # longer than the room rule's 10-minute cooldown
FIRST_STORM_AFTER = timedelta(minutes=2)
STORM_COMMENTS = 40  # over a minute, against about 60 comments in the rule's 5 minutes
PLANTED = 6  # users turning silent, and others churned, one every 90 s from the start


class Studio:
    """Events of the present, second by second, from `start` (the wall clock)."""

    def __init__(self, world: World, start: datetime, seed: int) -> None:
        self.world = world
        self.rng = random.Random(seed + 1)
        self.start = start
        self.next_storm = start + FIRST_STORM_AFTER
        self.viewers: dict[str, Any] = {}  # user -> session on air
        self.visitors = 0
        # Regulars come to the broadcasts: users still around, who watch often.
        self.regulars = [u.user_id for u in world.users
                         if u.alive(start) and u.persona.live_per_day >= 0.4]  # fmt: skip
        self.buyers = [u.user_id for u in world.users if u.persona.buy_per_day and u.alive(start)]
        self.last_order: dict[str, datetime] = {}
        self.showcase = {kind: start + timedelta(minutes=1) for kind in SHOWCASE}
        self.next_comeback = start + COMEBACK_EARLY
        self.lapsed = [u.user_id for u in world.users if not u.alive(start)]
        self.rng.shuffle(self.lapsed)
        self.marathon: dict[str, Any] | None = None

    def _id(self, prefix: str) -> str:
        return self.world._id(prefix)

    @staticmethod
    def on_air(at: datetime) -> tuple[str, str]:
        """The room broadcasting at `at` and its session (a new broadcast every hour)."""
        room = ROOMS[at.hour % len(ROOMS)]
        return room, f"{room}-{at:%Y%m%d%H}"

    def planted(self, now: datetime) -> list[AnyEvent]:
        """History that makes the idle rules and long_watch fire soon after `now`: users
        last seen 30 and 90 days ago (minus a little), and a viewer 2 h 59 min into the
        broadcast on air."""
        out: list[AnyEvent] = []
        for n in range(PLANTED):
            soon = timedelta(seconds=60 + 90 * n)
            for kind, days in (("silent", 30), ("churned", 90)):
                at = now - timedelta(days=days) + soon
                out.append(ChatEvent(event_id=self._id("pl"), type="message",
                                     user_id=f"p-{kind}-{n}", ts=at, group_id="group-vip",
                                     text=self.rng.choice(NEUTRAL)))  # fmt: skip
        room, session = self.on_air(now)
        base: dict[str, Any] = {"user_id": "p-marathon", "room_id": room, "session_id": session}
        began = now - timedelta(hours=3)
        out.append(LiveEvent(event_id=self._id("pl"), type="room_enter", ts=began, **base))
        for n in range(6):  # 6 x 1790 s = 2 h 59 min watched
            at = began + timedelta(seconds=1790 * (n + 1) - 600)
            out.append(LiveEvent(event_id=self._id("pl"), type="watch", ts=at, seconds=1790,
                                 **base))  # fmt: skip
        self.viewers["p-marathon"] = session
        self.marathon = base  # its next report crosses three hours
        return out

    def second(self, at: datetime) -> list[AnyEvent]:
        """The events of the second starting at `at`."""
        rng = self.rng
        room, session = self.on_air(at)
        out: list[AnyEvent] = []
        if self.marathon is not None:
            out.append(LiveEvent(event_id=self._id("lv"), type="watch", ts=at, seconds=60,
                                 **self.marathon))  # fmt: skip
            self.marathon = None
        count = sum(1 for _ in range(4) if rng.random() < RATE_PER_SECOND / 4)
        for _ in range(count):
            out.extend(self._event(at + timedelta(milliseconds=rng.randint(0, 999)), room,
                                   session))  # fmt: skip
        for kind, due in self.showcase.items():
            if at >= due:
                self.showcase[kind] = at + SHOWCASE[kind]
                out.extend(self._showcase(kind, at, room, session))
        if at >= self.next_comeback and self.lapsed:
            rush = at - self.start < COMEBACK_RUSH
            self.next_comeback = at + (COMEBACK_EARLY if rush else COMEBACK_LATER)
            user = self.lapsed.pop()
            self.viewers[user] = session
            base: dict[str, Any] = {"user_id": user, "room_id": room, "session_id": session}
            out.append(LiveEvent(event_id=self._id("lv"), type="room_enter", ts=at, **base))
        if at >= self.next_storm:
            self.next_storm = at + STORM_EVERY
            out.extend(self._storm(at, room, session))
        return out

    def _viewer(
        self, at: datetime, room: str, session: str
    ) -> tuple[str, dict[str, Any], list[AnyEvent]]:
        """A viewer of the broadcast, and the room_enter of one who just came in."""
        rng = self.rng
        current = [u for u, s in self.viewers.items() if s == session]
        entered: list[AnyEvent] = []
        arrive = 1 / (RATE_PER_SECOND * 6)  # about ten arrivals a minute
        if not current or rng.random() < arrive:
            if rng.random() < NEW_VISITORS_PER_HOUR / (3600 * RATE_PER_SECOND * arrive):
                self.visitors += 1
                user = f"v{self.visitors:05d}"  # someone new: potential, then maybe new
            else:
                user = rng.choice(self.regulars or [u.user_id for u in self.world.users])
            self.viewers[user] = session
            current.append(user)
            base: dict[str, Any] = {"user_id": user, "room_id": room, "session_id": session}
            entered.append(LiveEvent(event_id=self._id("lv"), type="room_enter", ts=at, **base))
            return user, base, entered
        user = rng.choice(current)
        return user, {"user_id": user, "room_id": room, "session_id": session}, entered

    def _event(self, at: datetime, room: str, session: str) -> list[AnyEvent]:
        rng = self.rng
        user, base, out = self._viewer(at, room, session)
        if out:
            return out
        roll = rng.random()
        if (
            roll < ORDER_SHARE
            and at - self.last_order.get(user, at - REORDER_AFTER) >= REORDER_AFTER
        ):
            self.last_order[user] = at
            big = rng.random() < BIG_BASKET_SHARE  # a big basket: class A within reach
            amount = Decimal(str(round(rng.uniform(1500, 4000) if big else
                                       rng.uniform(40, 400), 2)))  # fmt: skip
            return [OrderEvent(event_id=self._id("o"), type="order_paid", user_id=user, ts=at,
                               order_id=self._id("ord"), amount=amount, currency="CNY",
                               channel="live", room_id=room)]  # fmt: skip
        if roll < 0.35:
            return [LiveEvent(event_id=self._id("lv"), type="watch", ts=at, seconds=60, **base)]
        if roll < 0.55:
            return [LiveEvent(event_id=self._id("lv"), type="like", ts=at, **base)]
        if roll < 0.65:
            pool = POSITIVE if rng.random() < 0.6 else NEUTRAL if rng.random() < 0.85 else NEGATIVE
            return [LiveEvent(event_id=self._id("lv"), type="comment", ts=at,
                              text=rng.choice(pool), **base)]  # fmt: skip
        if roll < 0.75:
            return [LiveEvent(event_id=self._id("lv"), type="product_click", ts=at,
                              product_id=f"sku-{rng.randint(1, 60)}", **base)]  # fmt: skip
        if roll < 0.78:
            return [LiveEvent(event_id=self._id("lv"), type="follow", ts=at, **base)]
        if roll < 0.80:
            return [LiveEvent(event_id=self._id("lv"), type="private_join", ts=at, **base)]
        if roll < 0.95:
            return [LiveEvent(event_id=self._id("lv"), type="watch", ts=at, seconds=60, **base)]
        self.viewers.pop(user, None)
        return [LiveEvent(event_id=self._id("lv"), type="room_leave", ts=at, **base)]

    def _showcase(self, kind: str, at: datetime, room: str, session: str) -> list[AnyEvent]:
        rng = self.rng
        out: list[AnyEvent] = []
        if kind == "first":
            self.visitors += 1
            user = f"v{self.visitors:05d}"
            self.viewers[user] = session
            base: dict[str, Any] = {"user_id": user, "room_id": room, "session_id": session}
            out.append(LiveEvent(event_id=self._id("lv"), type="room_enter", ts=at, **base))
            amount = rng.uniform(60, 300)
        else:
            wanted = 1 if kind == "repeat" else 2
            # A one-time buyer may be back from silence; a big basket is a regular's.
            pool = [u for u in self.world.users if u.orders == 1] if wanted == 1 else [
                u for u in self.world.users if u.orders >= 2 and u.alive(at)]  # fmt: skip
            if not pool:
                return []
            sim = rng.choice(pool)
            sim.orders += 1
            user = sim.user_id
            amount = rng.uniform(120, 400) if kind == "repeat" else rng.uniform(3000, 6000)
        self.last_order[user] = at
        out.append(OrderEvent(event_id=self._id("o"), type="order_paid", user_id=user, ts=at,
                              order_id=self._id("ord"), amount=Decimal(str(round(amount, 2))),
                              currency="CNY", channel="live", room_id=room))  # fmt: skip
        return out

    def _storm(self, at: datetime, room: str, session: str) -> list[AnyEvent]:
        """Many negative comments in a minute: the host should switch to Q&A."""
        out: list[AnyEvent] = []
        for n in range(STORM_COMMENTS):
            current = [u for u, s in self.viewers.items() if s == session] or ["p-marathon"]
            base: dict[str, Any] = {
                "user_id": self.rng.choice(current),
                "room_id": room,
                "session_id": session,
            }
            when = at + timedelta(seconds=60 * n / STORM_COMMENTS)
            out.append(LiveEvent(event_id=self._id("lv"), type="comment", ts=when,
                                 text=self.rng.choice(NEGATIVE), **base))  # fmt: skip
        return out
