"""ClickHouse's HTTP interface, read-only, for the embedded store: chDB lets one process open
its data directory, so the worker that writes it also answers queries on loopback, and the
API, Grafana and a person's `curl` read it as they would a ClickHouse server's port 8123.

What is served (as ClickHouse does): `GET /ping` and `GET /` answer `Ok.`; a query comes as
the `query` parameter, the request body, or both (the parameter first); `default_format`
names the output format when the query has no `FORMAT` clause (default `TabSeparated`); any
format chDB writes (JSONEachRow, JSON, CSV, Native, ...). Only reads (`prepare`): one SELECT
(ClickHouse runs it with `readonly=1`, so no table function reaches a file, a URL or another
server, and `INTO OUTFILE` is refused) or a catalogue statement (`SHOW TABLES`, `SHOW CREATE
TABLE t`, `DESCRIBE t`, `EXISTS t`). Requests must name 127.0.0.1 or localhost as their host
(a page that rebinds a name of its own to loopback is refused). There is no user or password,
as with a ClickHouse server's default user; it listens on loopback only. Errors answer with
ClickHouse's text (`Code: N. DB::Exception: ...`) and `X-ClickHouse-Exception-Code`: 403 for a
statement that is not a read, 400 for anything else the store refuses. Queries run on the
sink's thread, one at a time between its inserts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from mode import Service

from sinks.exceptions import SinkError

log = logging.getLogger(__name__)

_COMMENTS = re.compile(r"(--[^\n]*\n?|/\*.*?\*/)", re.S)
_CODE = re.compile(r"Code: (\d+)\.")
_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*$", re.I)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?"
# Statements about the schema, in the forms that read nothing but the catalogue.
_CATALOGUE = re.compile(
    rf"^(SHOW\s+(TABLES|DATABASES)|SHOW\s+CREATE\s+TABLE\s+{_NAME}|"
    rf"(DESCRIBE|DESC|EXISTS)(\s+TABLE)?\s+{_NAME})$",
    re.I,
)
CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "CSVWithNames": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
}

# Runs a query in a format on the store's thread; returns the formatted bytes.
Runner = Callable[[str, str], Awaitable[bytes]]


class Refused(ValueError):
    """A statement this interface does not run."""


def prepare(sql: str, default_format: str) -> tuple[str, str]:
    """The statement to run and its output format, or Refused.

    A SELECT (or WITH ... SELECT) runs as a subquery of `SELECT * FROM (...) SETTINGS
    readonly=1`: ClickHouse itself then refuses table functions that reach files, URLs or
    other servers (`file`, `url`, ...), and `INTO OUTFILE` is a syntax error inside it. The
    catalogue statements run in their plain forms (a table name, nothing else). A trailing
    `FORMAT` clause names the output format."""
    text = _COMMENTS.sub(" ", sql).strip().rstrip(";").strip()
    fmt = default_format
    found = _FORMAT.search(text)
    if found:
        fmt, text = found.group(1), text[: found.start()].strip()
    if not text:
        raise Refused("an empty query")
    if ";" in _strings_removed(text):
        raise Refused("one statement per request")
    first = text.split(None, 1)[0].upper()
    if first in ("SELECT", "WITH"):
        return f"SELECT * FROM ({text}) SETTINGS readonly = 1", fmt
    if _CATALOGUE.match(text):
        return text, fmt
    raise Refused(
        f"this interface is read-only: {first} is not a read (SELECT, WITH ... SELECT, SHOW "
        "TABLES, SHOW CREATE TABLE t, DESCRIBE t, EXISTS t)"
    )


def _strings_removed(text: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)


def _error(status: int, code: int, message: str) -> web.Response:
    body = message if message.startswith("Code:") else f"Code: {code}. DB::Exception: {message}"
    return web.Response(
        status=status, text=body.rstrip() + "\n", headers={"X-ClickHouse-Exception-Code": str(code)}
    )


class ClickHouseHttp(Service):
    """Serves the interface on `host:port` until the worker stops."""

    def __init__(self, host: str, port: int, run: Runner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host, self.port, self.run = host, port, run
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/ping", self._ping)
        app.router.add_route("*", "/", self._query)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            log.error("ClickHouse HTTP interface not served on %s:%d: %s (the pipeline goes "
                      "on; set CLICKHOUSE_HTTP_PORT)", self.host, self.port, exc)  # fmt: skip
            return
        log.info("ClickHouse HTTP interface (read-only) on http://%s:%d", self.host, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="Ok.\n")

    async def _query(self, request: web.Request) -> web.Response:
        if request.host.rsplit(":", 1)[0] not in ("127.0.0.1", "localhost", "[::1]"):
            # A name that resolves to loopback from a web page (DNS rebinding) is not us.
            return _error(403, 516, f"requests to {request.host!r} are not served")
        body = (await request.read()).decode("utf-8", errors="replace")
        sql = " ".join(part for part in (request.query.get("query", ""), body) if part.strip())
        if not sql.strip():
            return web.Response(text="Ok.\n")
        default = str(
            request.query.get("default_format")
            or request.headers.get("X-ClickHouse-Format")
            or "TabSeparated"
        )
        try:
            statement, fmt = prepare(sql, default)
        except Refused as exc:
            return _error(403, 164, f"{exc} (READONLY)")
        try:
            data = await self.run(statement, fmt)
        except SinkError as exc:
            message = str(exc)
            found = _CODE.search(message)
            return _error(400, int(found.group(1)) if found else 1000, message)
        headers = {"X-ClickHouse-Format": fmt}
        kind = CONTENT_TYPES.get(fmt, "application/octet-stream")
        return web.Response(body=data, headers={**headers, "Content-Type": kind})
