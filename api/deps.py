"""Shared dependencies: settings, the scores view, and API-key checks.

All are `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
dependency per request that costs more than the point read it guards."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from api.scores_view import ScoresView
from pipeline.settings import Settings

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_view(request: Request) -> ScoresView:
    view: ScoresView = request.app.state.view
    return view


SettingsDep = Annotated[Settings, Depends(get_settings)]
ViewDep = Annotated[ScoresView, Depends(get_view)]


def known(key: str, keys: Iterable[str]) -> bool:
    """Whether `key` is one of `keys`, compared in constant time with each of them (how long
    it takes says nothing about how much of a key was right)."""
    given = key.encode()
    found = False
    for candidate in keys:
        found |= hmac.compare_digest(given, candidate.encode())
    return found


async def _present(key: Annotated[str | None, Security(_key_header)]) -> str:
    if key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
    return key


async def require_key(settings: SettingsDep, key: Annotated[str, Depends(_present)]) -> str:
    """A key that may read (read or admin keys)."""
    if known(key, settings.user_keys()):
        return key
    if known(key, settings.producer_keys()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a producer key may only send events")
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key")


async def require_admin(settings: SettingsDep, key: Annotated[str, Depends(require_key)]) -> str:
    if not known(key, settings.admin_keys()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this call needs an admin API key")
    return key


async def require_producer(settings: SettingsDep, key: Annotated[str, Depends(_present)]) -> str:
    """A key that may send events (producer or admin keys)."""
    if known(key, settings.producer_keys()):
        return key
    if known(key, settings.user_keys()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this call needs a producer API key")
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key")


ApiKey = Annotated[str, Depends(require_key)]
AdminKey = Annotated[str, Depends(require_admin)]
ProducerKey = Annotated[str, Depends(require_producer)]
