"""The check's network clock: round trips from a message sent to its answer's last byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.check.connection import CheckClock


def test_a_round_trip_runs_from_the_message_to_the_latest_arrival() -> None:
    clock = CheckClock()
    clock.add(0.002)  # a name lookup
    clock.add(0.001)  # a connect
    assert clock.now() == pytest.approx(0.003)
    started = clock.sent(10.0)  # the ClientHello
    assert started == pytest.approx(0.003)
    clock.arrived(10.020)
    clock.arrived(10.030)  # the last record of the server's flight
    assert clock.now() == pytest.approx(0.033)
    # The checker computes for 5 ms and is throttled for 80 ms: none of it is the site's.
    assert clock.sent(10.115) == pytest.approx(0.033)  # the request
    assert clock.now() == pytest.approx(0.033)  # nothing has arrived yet
    clock.arrived(10.265)
    assert clock.ms_since(0.0) == pytest.approx(183.0)


def test_an_arrival_before_any_message_or_before_its_message_counts_nothing() -> None:
    clock = CheckClock()
    clock.arrived(5.0)  # nothing was sent: a greeting, say
    assert clock.now() == 0.0
    clock.sent(6.0)
    clock.arrived(5.5)  # clocks that disagree by a hair: never negative
    assert clock.now() == 0.0


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=10.0),  # local work before the message
            st.lists(st.floats(min_value=0.0, max_value=10.0), max_size=4),  # answer gaps
        ),
        max_size=6,
    )
)
def test_network_time_is_the_sum_of_the_round_trips_whatever_the_local_work(
    turns: list[tuple[float, list[float]]],
) -> None:
    clock = CheckClock()
    now = 0.0
    expected = 0.0
    for local_work, gaps in turns:
        now += local_work
        clock.sent(now)
        sent = now
        for gap in gaps:
            now += gap
            clock.arrived(now)
        if gaps:
            expected += now - sent
        assert clock.now() == pytest.approx(expected)
