"""The bench's figures from the API's latency histogram."""

from __future__ import annotations

import math

from bench.live import buckets_of, histogram_quantile

EXPOSITION = """\
# HELP lifecycle_api_request_seconds API request latency by route
# TYPE lifecycle_api_request_seconds histogram
lifecycle_api_request_seconds_bucket{le="0.001",method="GET",route="/v1/users/{user_id}",status="200"} 60.0
lifecycle_api_request_seconds_bucket{le="0.0025",method="GET",route="/v1/users/{user_id}",status="200"} 90.0
lifecycle_api_request_seconds_bucket{le="0.005",method="GET",route="/v1/users/{user_id}",status="200"} 100.0
lifecycle_api_request_seconds_bucket{le="+Inf",method="GET",route="/v1/users/{user_id}",status="200"} 100.0
lifecycle_api_request_seconds_bucket{le="0.001",method="GET",route="/v1/users/{user_id}",status="404"} 7.0
lifecycle_api_request_seconds_bucket{le="+Inf",method="GET",route="/v1/users/{user_id}",status="404"} 9.0
lifecycle_api_request_seconds_count{method="GET",route="/v1/users/{user_id}",status="200"} 100.0
"""  # noqa: E501


def test_the_series_is_chosen_by_its_labels() -> None:
    found = buckets_of(EXPOSITION, "lifecycle_api_request_seconds", status="200")
    assert found == {0.001: 60.0, 0.0025: 90.0, 0.005: 100.0, math.inf: 100.0}
    other = buckets_of(EXPOSITION, "lifecycle_api_request_seconds", status="404")
    assert other == {0.001: 7.0, math.inf: 9.0}


def test_quantiles_interpolate_within_their_bucket_as_prometheus_does() -> None:
    after = buckets_of(EXPOSITION, "lifecycle_api_request_seconds", status="200")
    # rank 50 of 100 in the first bucket, from zero: 50/60 of 1 ms
    assert math.isclose(histogram_quantile({}, after, 0.5), 0.001 * 50 / 60)
    # rank 99: 9 of the 10 in (2.5 ms, 5 ms]
    assert math.isclose(histogram_quantile({}, after, 0.99), 0.0025 + 0.0025 * 0.9)


def test_only_the_observations_between_the_two_reads_count() -> None:
    after = buckets_of(EXPOSITION, "lifecycle_api_request_seconds", status="200")
    before = {0.001: 60.0, 0.0025: 60.0, 0.005: 60.0, math.inf: 60.0}
    # the 40 new ones: 30 in (1, 2.5] ms, 10 in (2.5, 5] ms; rank 20 is 2/3 into the second
    assert math.isclose(histogram_quantile(before, after, 0.5), 0.001 + 0.0015 * 20 / 30)


def test_a_quantile_beyond_the_last_bound_is_that_bound_and_none_is_nan() -> None:
    slow = {0.001: 1.0, 0.005: 2.0, math.inf: 10.0}
    assert histogram_quantile({}, slow, 0.99) == 0.005
    assert math.isnan(histogram_quantile(slow, slow, 0.5))
