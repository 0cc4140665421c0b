"""/docs and /redoc load nothing from outside the service."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.main import create_api
from pipeline.settings import Settings


@pytest.fixture
def client() -> TestClient:
    settings = Settings(clickhouse_url="memory://", api_keys=["k"])  # type: ignore[list-item]
    return TestClient(create_api(settings))  # no lifespan: nothing connects


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_every_asset_from_the_service(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html.text)
    urls += re.findall(r"url: ?'([^']+)'", html.text)
    assets = [u for u in urls if u.endswith((".js", ".css", ".png"))]
    assert assets, html.text
    assert not [u for u in urls if "//" in u], "a page loads something from elsewhere"
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


def test_the_openapi_document_the_pages_read_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"]
    assert "/docs" not in spec["paths"]
