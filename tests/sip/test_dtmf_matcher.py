"""DtmfMatcher: pure logic, injected clock."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.dtmf_matcher import DtmfMatcher

TRIGGERS = {"#1234#": "open", "*9": "light"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def feed_all(m: DtmfMatcher, digits: str, clock: Clock | None = None, gap: float = 0.2) -> list[str]:
    events = []
    for d in digits:
        if clock is not None:
            clock.t += gap
        r = m.feed(d)
        if r.event_id:
            events.append(r.event_id)
    return events


def test_exact_sequence_matches():
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, clock=clock)
    assert feed_all(m, "#1234#", clock) == ["open"]
    assert m.wrong == 0


def test_sliding_window_after_junk():
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, clock=clock)
    assert feed_all(m, "99#1234#", clock) == ["open"]
    assert m.wrong == 1          # "99#" was a '#'-terminated run with no match


def test_suffix_match_without_hash():
    clock = Clock()
    m = DtmfMatcher({"1234": "a"}, clock=clock)
    assert feed_all(m, "991234", clock) == ["a"]
    assert m.wrong == 0


def test_hash_inside_trigger_is_not_a_terminator():
    clock = Clock()
    m = DtmfMatcher({"12#34": "a"}, clock=clock)
    assert feed_all(m, "12#34", clock) == ["a"]
    assert m.wrong == 0


def test_two_matches_in_a_row():
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, clock=clock)
    assert feed_all(m, "#1234#*9", clock) == ["open", "light"]


def test_inter_digit_timeout_breaks_a_sequence():
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, inter_digit_timeout=5.0, clock=clock)
    feed_all(m, "#12", clock)
    clock.t += 5.0
    assert feed_all(m, "34#", clock) == []
    assert m.wrong == 2          # "#12" timed out, then "34#" ended with no match


def test_tick_counts_timeout_without_another_digit():
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, inter_digit_timeout=5.0, clock=clock)
    feed_all(m, "12", clock)
    assert m.tick().wrong_added == 0
    clock.t += 5.1
    assert m.tick().wrong_added == 1
    assert m.tick().wrong_added == 0     # counted once


def test_digits_within_timeout_keep_the_run():
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, inter_digit_timeout=5.0, clock=clock)
    assert feed_all(m, "#1234#", clock, gap=4.9) == ["open"]


def test_lone_hashes_are_not_wrong():
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, clock=clock)
    feed_all(m, "###", clock)
    clock.t += 10
    m.tick()
    assert m.wrong == 0


def test_locks_after_five_wrong_sequences():
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, clock=clock)
    results = [m.feed(d) for d in "#0000#0001#0002#0003#"]
    assert m.wrong == 4 and not m.locked
    clock.t += 1
    results = [m.feed(d) for d in "0004#"]
    assert m.wrong == 5 and m.locked and results[-1].locked_now
    # the right code is now ignored
    after = [m.feed(d) for d in "#1234#"]
    assert all(r.ignored and r.event_id is None for r in after)


def test_overlong_stream_counts_as_wrong():
    clock = Clock()
    m = DtmfMatcher({"1234": "a"}, clock=clock)
    feed_all(m, "5" * 8, clock)
    assert m.wrong == 1
    assert feed_all(m, "1234", clock) == ["a"]   # window still slides


def test_no_triggers_means_nothing_happens():
    clock = Clock()
    m = DtmfMatcher({}, clock=clock)
    assert not m.active
    assert all(m.feed(d).ignored for d in "#1234#")
    clock.t += 10
    assert m.tick().wrong_added == 0 and m.wrong == 0


def test_non_dtmf_characters_are_ignored():
    m = DtmfMatcher(TRIGGERS, clock=Clock())
    assert m.feed("x").ignored


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(alphabet="0123456789*ABCD", max_size=5))
def test_any_junk_without_hash_then_code_matches(prefix):
    clock = Clock()
    m = DtmfMatcher({"#1234#": "open"}, clock=clock)
    assert feed_all(m, prefix + "#1234#", clock) == ["open"]


@settings(max_examples=200, deadline=None)
@given(digits=st.text(alphabet="0123456789*#ABCD", max_size=60))
def test_wrong_count_is_bounded_and_monotonic(digits):
    clock = Clock()
    m = DtmfMatcher(TRIGGERS, clock=clock)
    last = 0
    for d in digits:
        clock.t += 0.1
        m.feed(d)
        assert last <= m.wrong <= 5
        last = m.wrong
