"""Token bucket arithmetic on a fake clock (the sandbox tests prove it on the wire)."""

import pytest

from connectors.ratelimit import BucketRegistry, Rate, RateLimits, TokenBucket, fingerprint


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_steady_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(per_second=2.0, burst=3), clock=clock)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(per_second=1.0, burst=2), clock=clock)
    bucket.reserve()
    clock.now = 100.0
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 1.0]


def test_pause_makes_every_caller_wait_for_the_retry_time_then_queue() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(per_second=1.0, burst=5), clock=clock)
    bucket.pause_for(7.0)
    assert bucket.reserve() == 7.0
    assert bucket.reserve() == 8.0


def test_registry_shares_buckets_per_credential_and_category_without_storing_tokens() -> None:
    registry = BucketRegistry()
    rate = RateLimits().wb_statistics
    a = registry.bucket("token-A", "wb_statistics", rate)
    assert registry.bucket("token-A", "wb_statistics", rate) is a
    assert registry.bucket("token-B", "wb_statistics", rate) is not a
    assert registry.bucket("token-A", "wb_content", rate) is not a
    assert all("token" not in key for key, _ in registry._buckets)
    assert fingerprint("token-A") != "token-A" and len(fingerprint("token-A")) == 16


def test_documented_defaults() -> None:
    limits = RateLimits()
    assert limits.wb_statistics == Rate(1 / 60, 1)
    assert limits.wb_analytics == Rate(3 / 60, 1)
    assert limits.wb_feedbacks == Rate(3.0, 6)
    assert limits.wb_content == Rate(100 / 60, 5)
    assert limits.wb_marketplace == Rate(300 / 60, 20)
    assert limits.allegro_api.per_second == 150.0


def test_charge_spends_extra_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(per_second=5.0, burst=20), clock=clock)
    bucket.reserve()
    bucket.charge(9)  # a WB marketplace 4xx costs 10
    assert [bucket.reserve() for _ in range(10)][-1] == 0.0
    assert bucket.reserve() == 0.2


def test_excess_finds_the_worst_window_of_a_log() -> None:
    rate = Rate(per_second=2.0, burst=3)
    assert rate.excess([0.0, 0.0, 0.0, 0.5, 1.0, 1.5]) == 0.0  # burst, then the steady rate: just held
    assert rate.excess([0.0, 0.0, 0.0, 0.5, 0.9]) == pytest.approx(0.2)  # the 5th came 0.1 s early
    assert rate.excess([10.0, 10.0, 10.0, 10.0]) == 1.0  # one over the burst
    assert rate.excess([0.0, 100.0, 100.0, 100.0]) == 0.0  # a full burst after a long pause is fine


def test_each_category_gets_room_for_lateness_it_can_afford() -> None:
    limits = RateLimits()
    # One a minute: 5% of the interval; Allegro's 150/s: the 0.5 s floor, half its burst's length.
    assert limits.for_category("wb_order_feed").tolerance == pytest.approx(3.0)
    assert limits.for_category("allegro_api").tolerance == pytest.approx(0.5)
    assert limits.for_category("allegro_api").ceiling == pytest.approx(75.0)
    # Scaled 120x (tests): the floor is real seconds, capped at half the burst's length.
    assert limits.scaled(120).for_category("wb_statistics").tolerance == pytest.approx(0.25)
    # Slots of a one-token bucket in a queue: an interval plus the tolerance apart.
    bucket = TokenBucket(limits.for_category("wb_order_feed"), clock=lambda: 0.0)
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 63.0, 126.0])
