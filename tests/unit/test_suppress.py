"""Small-cell suppression in the report, primary and complementary."""

from __future__ import annotations

import pandas as pd

from pipeline.report.suppress import round_after_small_step, suppress_counts


def test_primary_suppression_hides_1_to_10_and_their_rates():
    frame = pd.DataFrame(
        {"episodes": [100, 8, 0], "responders": [60, 5, 0], "response_rate": [0.6, 0.625, None]}
    )
    out = suppress_counts(frame)
    assert list(out.episodes) == [100, "<11", 0]
    assert list(out.responders) == [60, "<11", 0]
    assert out.response_rate[1] == "suppressed" and out.response_rate[0] == 0.6


def test_complement_of_a_total_is_hidden_too():
    # 95 with baseline of 100 episodes would reveal 5 without one; 40 responders of 95
    # would not reveal anything small.
    frame = pd.DataFrame({"episodes": [100], "with_baseline": [95], "responders": [40]})
    out = suppress_counts(frame)
    assert out.with_baseline[0] == "<11" and out.episodes[0] == 100 and out.responders[0] == 40
    km = suppress_counts(pd.DataFrame({"n": [50], "events": [47]}))
    assert km.events[0] == "<11"


def test_attrition_rounds_remaining_after_a_small_exclusion():
    frame = pd.DataFrame(
        {"step": [1, 2, 3], "remaining": [1682, 1677, 1300], "excluded": [0, 5, 377]}
    )
    out = round_after_small_step(frame)
    assert list(out.remaining) == [1682, "~1680", "~1300"]
    assert list(out.excluded) == [0, "<11", 377]
