"""The error answers of the API, declared once for the OpenAPI document: every error is JSON
`{"detail": ...}`, a sentence, or for a request that breaks the schema FastAPI's list of what
is wrong where, or an object with more (a refused refit: the error and the models in use)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

WHY = {
    401: "no X-API-Key header, or an unknown key",
    403: "a key that may not make this call",
    404: "no such user",
    413: "the body or the batch is over its limit",
    422: "a parameter or body that is not valid, with what is wrong",
    429: "over the key's rate; Retry-After says when to send again",
    503: "not ready, or a part it needs did not answer",
    504: "the workers did not answer in time",
}


class ErrorBody(BaseModel):
    """`detail`: a sentence, FastAPI's list of validation errors, or an object."""

    detail: str | list[Any] | dict[str, Any]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    return {code: {"model": ErrorBody, "description": WHY[code]} for code in codes}
