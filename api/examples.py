"""Examples of the API's answers for the OpenAPI document (shapes as the service answers)."""

from __future__ import annotations

from typing import Any

USER = {
    "user_id": "u00042", "stage": "new", "stage_since": "2026-11-29T20:05:00Z",
    "order_count": 1, "free_order_count": 0, "refund_count": 0, "monetary": 199.0,
    "mean_order_value": 199.0, "currency": "CNY", "interactions": 3, "reactivations": 0,
    "first_paid_at": "2026-11-29T20:05:00Z", "last_paid_at": "2026-11-29T20:05:00Z",
    "last_interaction_at": "2026-11-29T20:05:00Z", "last_event_at": "2026-11-29T20:05:00Z",
    "rfm": {"recency_days": 0.0, "frequency": 1, "monetary": 199.0, "r": 5, "f": 1, "m": 4,
            "segment": "New customer", "rfm_class": "B"},
    "churn_probability": None,
    "purchase": {"as_of": "2026-11-29T20:05:00Z", "horizon_days": 90.0, "p_alive": 1.0,
                 "expected_purchases": 0.41, "expected_order_value": 176.2, "clv": 72.24,
                 "atv": 288.9},
    "engagement": 6.4997,
    "sentiment": {"label": "positive", "score": 0.8321, "at": "2026-11-29T20:03:00Z"},
    "model_versions": {"churn": "churn-logreg-640", "btyd": "btyd-7", "rfm": "rfm-12"},
    "version": 3, "updated_at": "2026-11-29T20:05:00.120000Z",
}  # fmt: skip

USERS_PAGE = {
    "items": [
        {"user_id": "u00042", "stage": "new", "segment": "New customer", "rfm_class": "B"},
        {"user_id": "u00043", "stage": "silent", "segment": None, "rfm_class": None},
    ],
    "cursor": "dTAwMDQz",
}

SEGMENT_COUNTS = {
    "total_users": 2000, "buyers": 909,
    "by_stage": {"potential": 612, "new": 45, "active": 531, "silent": 402, "churned": 410},
    "by_segment": {"At risk": 120, "Champions": 98, "Hibernating": 301, "Loyal": 77,
                   "Need attention": 60, "New customer": 85, "Potential loyalist": 88,
                   "Promising": 80},
    "by_class": {"A": 160, "B": 402, "C": 347},
    "rfm_version": "rfm-12",
}  # fmt: skip

EVENTS = {
    "accepted": 1, "rejected": 1,
    "results": [
        {"index": 0, "status": "accepted", "event_id": "lv-1", "topic": "live-events"},
        {"index": 1, "status": "rejected", "reason": "unknown_currency", "field": "currency",
         "detail": "XXX is not one of: CNY, EUR, HKD, JPY, USD"},
    ],
}  # fmt: skip

TRIGGERS = {
    "items": [
        {"id": "4f1c2a9e0b7d3c15", "rule": "became_silent", "action": "wecom_reminder",
         "subject_type": "user", "subject_id": "u00042", "reason": {"stage": "silent"},
         "at": "2026-10-29T20:05:00Z", "at_ms": 1793304300000,
         "fired_at": "2026-11-30T02:00:01Z"},
    ],
    "cursor": "MDoxMjM",
}  # fmt: skip

MODELS = {
    "btyd": {"r": 0.243, "alpha": 4.41, "a": 0.793, "b": 2.43, "time_unit": "days",
             "variant": "bgnbd"},
    "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44},
    "churn": {"log_loss": 0.31, "roc_auc": 0.93, "brier": 0.09, "calibration_error": 0.05,
              "labels": 640, "positives": 410, "ready": True, "not_ready": [],
              "min_labels": 30, "min_auc": 0.7, "model": "river LogisticRegression",
              "calibrated": {"method": "platt", "a": 1.1, "b": -0.2, "out_of_sample_folds": 2,
                             "brier": 0.085, "calibration_error": 0.03}},
    "versions": {"churn": "churn-logreg-640", "btyd": "btyd-7", "rfm": "rfm-12"},
    "buyers": 909, "rfm_population": 909,
    "rfm": {"version": 12, "buyers": 909, "recency_day": [20390, 20410, 20425, 20433],
            "frequency": [1, 2, 3, 5], "monetary_cents": [9900, 19958, 39600, 79184]},
    "event_clock": "2026-11-30T11:59:58Z",
    "population": {"users": 2000, "buyers_sampled": 909, "labels": 640, "partitions": 4},
    "refit": {"customers": 909, "error": None, "kept_previous": False,
              "diagnostics": {"bgnbd_log_likelihood": -2.81, "bgnbd_customers": 909.0,
                              "bgnbd_convergence": {"converged": True, "iterations": 31,
                                                    "restarted": False},
                              "holdout": {"variant": "bgnbd", "holdout_days": 28.0,
                                          "customers": 908, "predicted": 2049.3,
                                          "actual": 2036, "mean_absolute_error": 0.61}}},
    "request_id": None, "published_at": "2026-11-30T12:00:00.120000+00:00",
}  # fmt: skip

KPIS: dict[str, Any] = {
    "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "cohort": None,
    "kpis": {
        "open_rate": {"value": 0.64, "numerator": 320, "denominator": 500, "target": 0.6,
                      "met": True},
        "retention_d1": {"value": 0.21, "numerator": 42, "denominator": 200, "target": 0.25,
                         "met": False},
        "gmv": {"value": 182340.5, "target": None, "met": None},
    },
    "rooms": [{"room_id": "room-1", "viewers": 412, "avg_watch_seconds": 1260.0,
               "interaction_rate": 0.38, "negative_comment_share": 0.04, "comments": 950,
               "follow_conversion": 0.07, "private_join_conversion": 0.03, "gmv": 20480.0,
               "broadcasts": []}],
}  # fmt: skip

FLOWS: dict[str, Any] = {
    "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z",
    "flows": [{"from_stage": "active", "to_stage": "silent", "users": 120},
              {"from_stage": None, "to_stage": "potential", "users": 80}],
}  # fmt: skip
HISTORY: dict[str, Any] = {
    "user_id": "u00042",
    "history": [
        {"from_stage": None, "to_stage": "potential", "at": "2026-10-02T12:00:00Z",
         "reactivation": False},
        {"from_stage": "potential", "to_stage": "new", "at": "2026-10-05T20:03:00Z",
         "reactivation": False},
    ],
}  # fmt: skip

ERASURE_REQUESTED: dict[str, Any] = {
    "erasure_id": "9b2f6c1d4e8a4f0b8c3d2e1f0a9b8c7d", "status": "requested",
    "user_id": "u00042", "requested_at": "2026-11-30T12:00:00Z", "completed_at": None,
    "state_found": None, "rows_deleted": {},
}  # fmt: skip
ERASURE_COMPLETE = {
    **ERASURE_REQUESTED, "status": "complete", "user_id": None,
    "completed_at": "2026-11-30T12:00:01.400000Z", "state_found": True,
    "rows_deleted": {"events": 41, "stage_transitions": 5, "user_scores": 12, "triggers": 2,
                     "trigger_outcomes": 1},
}  # fmt: skip

READY = {"ready": True, "users": 2000, "triggers": True, "workers": 1, "stalled_workers": 0,
         "workers_not_ready": 0, "reasons": []}  # fmt: skip
NOT_READY = {**READY, "ready": False, "users": 1200,
             "reasons": ["the scores view is still loading"]}  # fmt: skip
HEALTHY = {"status": "ok"}
STREAM = (
    'id: MDoxMjQ\nevent: trigger\ndata: {"id": "4f1c2a9e0b7d3c15", '
    '"rule": "became_silent", ...}\n\n'
)


def ok(
    example: Any, description: str = "the answer", model: Any = None
) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI `responses` entry for 200 with an example (and the answer's shape)."""
    entry: dict[str, Any] = {"description": description,
                             "content": {"application/json": {"example": example}}}  # fmt: skip
    if model is not None:
        entry["model"] = model
    return {200: entry}
