"""The operator console at `/`: a page and its scripts, served by the service itself (Chart.js
4.6.1 from npm is in `api/console/vendor/`, with its MIT license); it reads the API with the
key a person types in, kept in their browser."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

CONSOLE = Path(__file__).parent / "console"


def add_console(app: FastAPI) -> None:
    app.mount("/console", StaticFiles(directory=CONSOLE), name="console")

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(CONSOLE / "index.html", media_type="text/html")
