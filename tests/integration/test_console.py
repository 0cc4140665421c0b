"""The operator console at `/` in a real browser (Debian's Chromium, headless, driven by
Playwright): what a person sees equals what the API answers, and the trigger feed moves live.

Screenshots go to the test's directory, or to `CONSOLE_SCREENSHOTS` when it is set (the ones in
docs/ were taken so)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pipeline.demo import topics_of
from schemas.client import EventProducer
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from tests.integration.conftest import Running, chdb_pipeline
from tests.integration.parts import wait_until

pytestmark = pytest.mark.integration

BUYERS = ["c-buyer-1", "c-buyer-2", "c-buyer-3"]
WATCHERS = ["c-watch-1", "c-watch-2"]


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's chromium is missing: `make test` installs it"
    return path


@pytest.fixture(scope="module")
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("console")
    with chdb_pipeline(broker, tmp, f"cs{uuid.uuid4().hex[:8]}") as pipeline:
        now = datetime.now(tz=UTC)
        with EventProducer(pipeline.settings.kafka_bootstrap,
                           topics=topics_of(pipeline.settings)) as producer:  # fmt: skip
            for n, user in enumerate(BUYERS + WATCHERS):
                producer.send(LiveEvent(event_id=f"{user}-l", type="like", user_id=user,
                                        ts=now - timedelta(minutes=5, seconds=-n), room_id="room-c",
                                        session_id="s1"))  # fmt: skip
            for n, user in enumerate(BUYERS):
                producer.send(OrderEvent(event_id=f"{user}-o", type="order_paid", user_id=user,
                                         ts=now - timedelta(minutes=2, seconds=-n), order_id="o1",
                                         amount=f"{100 * (n + 1)}.00", currency="CNY",
                                         channel="live", room_id="room-c"))  # fmt: skip
        users = BUYERS + WATCHERS
        wait_until(lambda: all(pipeline.get(f"/v1/users/{u}").status_code == 200 for u in users),
                   30, "every user to be served")  # fmt: skip
        wait_until(lambda: pipeline.get("/v1/kpis").json()["kpis"]["gmv"]["value"] == 600.0,
                   30, "the orders in ClickHouse")  # fmt: skip
        yield pipeline


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(running: Running, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("request", lambda request: _local_only(request.url, running))
    opened.goto(running.base_url + "/")
    opened.fill("#key", "test-key")
    opened.click("#connect")
    expect(opened.get_by_test_id("status")).to_contain_text("connected")
    yield opened
    context.close()
    assert errors == [], errors


def _local_only(url: str, running: Running) -> None:
    assert url.startswith(running.base_url) or url.startswith("data:"), f"asked the web: {url}"


def shot(page: Page, name: str, tmp_path: Path) -> None:
    directory = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(directory / f"console-{name}.png"), full_page=True)


def text_of(page: Page, testid: str) -> str:
    return page.get_by_test_id(testid).inner_text()


def test_the_numbers_on_the_page_are_the_api_s(page: Page, running: Running,
                                               tmp_path: Path) -> None:  # fmt: skip
    counts = running.get("/v1/segments").json()
    expect(page.get_by_test_id("total-users")).to_have_text(str(counts["total_users"]))
    for stage, count in counts["by_stage"].items():
        expect(page.get_by_test_id(f"stage-{stage}").locator("td").nth(1)).to_have_text(str(count))
    kpis = running.get("/v1/kpis").json()["kpis"]
    gmv = page.get_by_test_id("kpi-gmv").locator("td").nth(1)
    expect(gmv).to_have_text(f"{kpis['gmv']['value']:.2f}")
    conversion = page.get_by_test_id("kpi-conversion").locator("td").nth(1)
    expect(conversion).to_have_attribute("data-value", str(kpis["conversion"]["value"]))
    assert conversion.inner_text() == f"{kpis['conversion']['value'] * 100:.1f}%"
    verdict = page.get_by_test_id("kpi-conversion").locator("td").nth(3)
    expect(verdict).to_have_text("met" if kpis["conversion"]["met"] else "below target")
    room = running.get("/v1/kpis?from=" + _ago(3)).json()["rooms"][0]
    room_row = page.get_by_test_id(f"room-{room['room_id']}")
    expect(room_row.locator("td").nth(1)).to_have_text(str(room["viewers"]))
    expect(room_row.locator("td").nth(4)).to_have_text(f"{room['gmv']:.2f}")
    shot(page, "overview", tmp_path)


def _ago(hours: int) -> str:
    return (datetime.now(tz=UTC) - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def test_a_user_is_looked_up_with_their_stage_history(page: Page, running: Running,
                                                      tmp_path: Path) -> None:  # fmt: skip
    user = BUYERS[2]
    document: dict[str, Any] = running.get(f"/v1/users/{user}").json()
    history = running.get(f"/v1/users/{user}/history").json()["history"]
    page.fill("#user-id", user)
    page.click("#find")
    expect(page.get_by_test_id("user-order_count")).to_have_text(str(document["order_count"]))
    expect(page.get_by_test_id("user-monetary")).to_have_text(f"{document['monetary']:.2f}")
    expect(page.get_by_test_id("history-row")).to_have_count(len(history))
    assert [h["to_stage"] for h in history] == ["potential", "new"]
    shot(page, "lookup", tmp_path)
    page.fill("#user-id", "nobody-here")
    page.click("#find")
    expect(page.get_by_test_id("user")).to_have_text("unknown user")


def test_the_trigger_feed_moves_live_and_the_labels_speak_chinese(
    page: Page, running: Running, tmp_path: Path
) -> None:
    feed = page.get_by_test_id("trigger")
    expect(feed.first).to_be_visible()  # the triggers so far, streamed
    before = feed.count()
    with EventProducer(running.settings.kafka_bootstrap,
                       topics=topics_of(running.settings)) as producer:  # fmt: skip
        producer.send(OrderEvent(event_id="c-live-o", type="order_paid", user_id="c-live",
                                 ts=datetime.now(tz=UTC), order_id="o1", amount="50.00",
                                 currency="CNY", channel="live"))  # fmt: skip
    expect(page.locator("[data-testid=trigger]", has_text="c-live")).to_have_count(
        1, timeout=30_000
    )
    assert feed.count() == before + 1
    page.click("#lang")
    expect(page.locator("h2").first).to_have_text("当前阶段分布")
    expect(page.get_by_test_id("kpi-gmv").locator("td").first).to_have_text("成交额")
    expect(page.get_by_test_id("status")).to_contain_text("已连接")
    expect(page.get_by_test_id("room-room-c")).to_be_visible()
    shot(page, "zh", tmp_path)


def test_a_wrong_key_says_so_and_leaves_no_stale_numbers(page: Page, running: Running) -> None:
    expect(page.get_by_test_id("stage-new")).to_be_visible()
    feed = page.get_by_test_id("trigger")
    triggers = len(running.get("/v1/triggers?limit=1000").json()["items"])
    expect(feed).to_have_count(triggers)
    page.click("#connect")  # connecting again streams the feed again: no duplicates
    expect(page.get_by_test_id("status")).to_contain_text("connected")
    expect(feed).to_have_count(triggers)
    texts = feed.all_inner_texts()
    assert len(set(texts)) == len(texts)
    page.fill("#key", "not-a-key")
    page.click("#connect")
    expect(page.get_by_test_id("status")).to_have_text("unknown API key")
    expect(page.get_by_test_id("stage-new")).to_have_count(0)
    expect(page.get_by_test_id("kpi-gmv")).to_have_count(0)
