"""The API's access log: one line per request, by route template, never with personal data.

uvicorn's own access log writes the raw path and query (`GET /v1/users/u00001?cursor=...`):
a user id in the path, list cursors that encode user ids in the query, and the client's
address, all personal data. It is turned off (`access_log=False`) and this one writes
``GET /v1/users/{user_id} 404 1.8 ms``: the method, the matched route's template
(``unmatched`` when none matched), the status and the time to the response's first byte.
One line per problem: a 5xx at WARNING, a 4xx at INFO; answers below 400 at DEBUG (a line
per point read would cost the API a tenth of its time and say nothing an operator reads;
`lifecycle_api_requests_total` counts them). The probes (`/healthz`, `/readyz`, `/metrics`) at
DEBUG whatever they answer: polled every few seconds, a not-ready spell would be a line each
time; the API logs the change of readiness itself, once (`api.routes.health`).
"""

from __future__ import annotations

import logging

log = logging.getLogger("api.access")

PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def log_request(method: str, route: str, status: int, seconds: float) -> None:
    """One line for a request: ``route`` is the route template (``/v1/users/{user_id}``),
    never the path as requested; ``seconds`` to the first byte of the response."""
    if route in PROBES or status < 400:
        level = logging.DEBUG
    else:
        level = logging.WARNING if status >= 500 else logging.INFO
    if not log.isEnabledFor(level):
        return
    ms = seconds * 1000
    log.log(
        level,
        "%s %s %d %.1f ms",
        method,
        route,
        status,
        ms,
        extra={"method": method, "route": route, "status": status, "duration_ms": round(ms, 3)},
    )
