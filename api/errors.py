"""The error answers of the API, declared once for the OpenAPI document: every error is JSON
`{"detail": ...}`, a sentence, or for a request that breaks the schema FastAPI's list of what
is wrong where, or an object with more (a refused refit: the error and the models in use)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

WHY = {
    401: "no X-API-Key header, or an unknown key",
    403: "a key that may not make this call",
    404: "not found: no such user or erasure, or no models published yet",
    413: "the body or the batch is over its limit",
    422: "a parameter or body that is not valid, with what is wrong",
    429: "over the key's rate; Retry-After says when to send again",
    503: "not ready, or a part it needs did not answer",
    504: "the workers did not answer in time",
}


EXAMPLES: dict[int, Any] = {
    401: "unknown API key",
    403: "this call needs an admin API key",
    404: "unknown user 'u99999'",
    413: "1200 events, at most 1000 per batch",
    422: [{"type": "greater_than", "loc": ["query", "limit"], "msg":
           "Input should be greater than 0", "input": "0"}],
    429: "over 2000 events per second for this key",
    503: "the scores view is still loading",
    504: "the worker did not answer the refit in time",
}  # fmt: skip


class ErrorBody(BaseModel):
    """`detail`: a sentence, FastAPI's list of validation errors, or an object."""

    detail: str | list[Any] | dict[str, Any]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    out: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody, "description": WHY[code],
               "content": {"application/json": {"example": {"detail": EXAMPLES[code]}}}}
        for code in codes
    }  # fmt: skip
    if 429 in out:
        out[429]["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before sending again",
                "schema": {"type": "integer"},
            }
        }
    return out
