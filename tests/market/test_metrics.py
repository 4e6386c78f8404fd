"""Market metrics: names the lead's feed relies on, bounded symbol labels."""

from __future__ import annotations

from prometheus_client import REGISTRY

from aaiti.market import metrics


def test_feed_and_socket_metrics_are_registered() -> None:
    metrics.FEED_LAG.observe(0.2)
    metrics.SOCKET_MESSAGES_SENT.labels("price_update").inc()
    metrics.SOCKET_MESSAGES_DROPPED.labels("price_update", "slow_client").inc()
    assert (REGISTRY.get_sample_value("aaiti_feed_lag_seconds_count") or 0) >= 1
    assert (REGISTRY.get_sample_value("aaiti_socket_messages_sent_total", {"event": "price_update"}) or 0) >= 1
    dropped = REGISTRY.get_sample_value(
        "aaiti_socket_messages_dropped_total", {"event": "price_update", "reason": "slow_client"}
    )
    assert (dropped or 0) >= 1


def test_breaker_state_values() -> None:
    metrics.set_breaker_state("metrics-test", "open")
    assert REGISTRY.get_sample_value("aaiti_upstream_breaker_state", {"upstream": "metrics-test"}) == 2
    metrics.set_breaker_state("metrics-test", "half_open")
    assert REGISTRY.get_sample_value("aaiti_upstream_breaker_state", {"upstream": "metrics-test"}) == 1


def test_symbol_labels_are_capped() -> None:
    names = [f"T{i}" for i in range(metrics.MAX_SYMBOL_LABELS + 50)]
    try:
        for name in names:
            metrics.observe_data_age(name, 1.0)
        labelled = {
            s.labels["symbol"]
            for family in REGISTRY.collect()
            if family.name == "aaiti_market_data_age_seconds"
            for s in family.samples
        }
        assert len(labelled) <= metrics.MAX_SYMBOL_LABELS
        metrics.observe_data_age("T0", -5.0)  # a clock step backwards never shows a negative age
        assert REGISTRY.get_sample_value("aaiti_market_data_age_seconds", {"symbol": "T0"}) == 0.0
    finally:
        for name in names:
            metrics.forget_symbol(name)
    assert REGISTRY.get_sample_value("aaiti_market_data_age_seconds", {"symbol": "T0"}) is None
