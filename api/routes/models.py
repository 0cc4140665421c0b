"""Models: fitted BTYD parameters, churn-model quality, and refits on request."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, status

from api.deps import AdminKey, ApiKey, SettingsDep
from api.errors import errors
from api.examples import MODELS, ok
from api.scores_view import CompactedView
from pipeline.leader import MODELS_KEY

router = APIRouter(prefix="/v1/models", tags=["models"])


def current_models(view: CompactedView) -> dict[str, Any] | None:
    raw = view.get(MODELS_KEY.decode())
    return None if raw is None else orjson.loads(raw)


@router.get("", responses={**ok(MODELS), **errors(401, 403, 404)})
async def get_models(request: Request, _key: ApiKey) -> dict[str, Any]:
    """BG/NBD (`btyd`: r, alpha, a, b, time_unit, variant `bgnbd` or `mbgnbd`) and
    Gamma-Gamma (`gamma_gamma`: p, q, v) parameters in use; `refit`: the last refit's
    customers, its error if it failed (`kept_previous`: the last good parameters stay) and its
    `diagnostics`: log-likelihood per customer, the optimiser's convergence, and the holdout
    check (`holdout`: fitted on the history up to `BTYD_HOLDOUT_DAYS` ago, the purchases it
    predicted since against those made, and the mean absolute error per buyer; with
    `BTYD_MODEL=auto`, `holdout_variants` has both variants and the better one is used);
    `churn`: progressive-validation quality (log loss, ROC AUC, Brier score, calibration
    error, labels, positives; `calibrated`: the Platt scaling the documents' probabilities
    go through and its quality out of sample) and whether the model is `ready` (`not_ready`:
    why not; until then documents carry no churn probability); `rfm`: the
    population's scale (the values at which scores 2 to 5 begin, its version, buyers), which
    every document is scored against; `population`: what the model leader fitted on (the
    partitions whose summaries it merged, their users, the buyers sampled, the churn labels);
    versions. 404 before the model leader first publishes (nothing is wrong: there is no
    model yet)."""
    models = current_models(request.app.state.models_view)
    if models is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no models published yet: the worker refits")
    return models


@router.post("/refit", responses={**ok(MODELS), **errors(401, 403, 422, 504)})
async def refit(request: Request, settings: SettingsDep, _key: AdminKey) -> dict[str, Any]:
    """Refit the population models now; answers with the new parameters (admin key).

    A refit the data cannot support (too few buyers, no repeat purchase, a degenerate fit)
    answers 422: `detail.error` says why and `detail.models` is what stays in use (the last
    good parameters, or none)."""
    view: CompactedView = request.app.state.models_view
    request_id = uuid.uuid4().hex
    command = {"command": "refit", "request_id": request_id}
    await request.app.state.producer.send_and_wait(
        settings.topic_commands, orjson.dumps(command), key=b"refit"
    )
    deadline = asyncio.get_running_loop().time() + settings.refit_timeout_seconds
    while True:
        models = current_models(view)
        if models is not None and models.get("request_id") == request_id:
            error = (models.get("refit") or {}).get("error")
            if error:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    {"error": f"the purchase models were not refitted: {error}", "models": models},
                )
            return models
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise HTTPException(
                status.HTTP_504_GATEWAY_TIMEOUT, "the worker did not answer the refit in time"
            )
        changed = view.changed
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except TimeoutError:
            continue
