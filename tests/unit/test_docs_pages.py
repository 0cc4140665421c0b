"""/docs and /redoc load nothing from outside the service."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api import examples
from api.answers import IngestAnswer, SegmentCounts, UsersPage
from api.main import create_api
from api.routes.erasures import ErasureStatus
from pipeline.settings import Settings
from schemas.scores import ScoreDocument
from schemas.triggers import TriggerPage


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


def test_every_operation_has_an_example_and_its_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            success = min(code for code in operation["responses"] if code.startswith("2"))
            ok = operation["responses"][success]
            assert any("example" in body for body in ok["content"].values()), where
            if path.startswith("/v1/"):
                assert {"401", "403"} <= set(operation["responses"]), where
                for code, answer in operation["responses"].items():
                    if not code.startswith("2"):
                        body = answer["content"]["application/json"]
                        assert body["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, where
                        assert "detail" in body["example"], where


def test_the_examples_are_what_the_models_accept() -> None:
    ScoreDocument.model_validate(examples.USER)
    UsersPage.model_validate(examples.USERS_PAGE)
    SegmentCounts.model_validate(examples.SEGMENT_COUNTS)
    IngestAnswer.model_validate(examples.EVENTS)
    ErasureStatus.model_validate(examples.ERASURE_REQUESTED)
    ErasureStatus.model_validate(examples.ERASURE_COMPLETE)
    TriggerPage.model_validate(examples.TRIGGERS)
