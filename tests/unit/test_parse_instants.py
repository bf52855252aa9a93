"""ISO-8601 text to UTC instants (typing_rules.parse_instants), in any mix and order.

pandas 2.3 alone, asked to parse a column mixing values with and without a UTC offset,
reads an offset-less value at the offset of an earlier one; these tests hold the
parser to the documented reading (offset converted, no offset = UTC) whatever the order.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.typing_rules import parse_instants, parse_timestamps

OFFSETS = ["", "Z", "+02:00", "-01:30", "+0530"]


def expected(text: str | None) -> pd.Timestamp | None:
    """One value on its own, through the standard library."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return pd.Timestamp(value).tz_convert("UTC")


def test_offset_does_not_leak_into_the_next_value():
    values = pd.Series(["2024-01-01T10:00:00+02:00", "2024-02-01T09:00:00", "2024-02-30"])
    parsed = parse_instants(values)
    assert parsed.tolist()[:2] == [
        pd.Timestamp("2024-01-01T08:00:00Z"),
        pd.Timestamp("2024-02-01T09:00:00Z"),
    ]
    assert pd.isna(parsed.iloc[2])  # no such day
    assert parse_timestamps(values).iloc[1] == pd.Timestamp("2024-02-01T09:00:00")


instant = st.builds(
    lambda day, seconds, offset: (
        f"2024-03-{day:02d}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        + offset
    ),
    st.integers(1, 28),
    st.integers(0, 86_399),
    st.sampled_from(OFFSETS),
)
value = st.one_of(
    instant,
    st.dates(date(1900, 1, 1), date(2200, 12, 31)).map(lambda d: d.isoformat()),
    st.just("2024-02-30T10:00:00"),
    st.none(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(value, min_size=1, max_size=12))
def test_each_value_reads_as_it_would_alone(texts: list[str | None]):
    parsed = parse_instants(pd.Series(texts, dtype=object))
    for text, got in zip(texts, parsed, strict=True):
        want = expected(text)
        assert (pd.isna(got) and want is None) or got == want, (text, got, want)
