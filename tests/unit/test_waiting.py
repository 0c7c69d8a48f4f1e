"""wait_until on a fake clock: when it asks, how long it sleeps, what it returns."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest

from overlaylab.waiting import asked_twice, wait_until


@dataclass
class FakeClock:
    """Time that only moves when wait_until sleeps or a condition takes time."""

    now: float = 100.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def wait(self, condition: Callable[[], object], timeout: float, interval: float) -> object:
        return wait_until(condition, timeout, interval, clock=lambda: self.now, sleep=self.sleep)


class Scripted:
    """A condition giving `values` in turn, each answer taking `cost` seconds."""

    def __init__(self, clock: FakeClock, values: Iterable[object], cost: float = 0.0) -> None:
        self.clock, self.values, self.cost = clock, iter(values), cost
        self.asked_at: list[float] = []

    def __call__(self) -> object:
        self.asked_at.append(self.clock.now)
        self.clock.now += self.cost
        return next(self.values)


def test_a_condition_that_already_holds_returns_at_once() -> None:
    clock = FakeClock()
    assert clock.wait(Scripted(clock, ["ready"]), timeout=5, interval=1) == "ready"
    assert clock.sleeps == []


def test_polls_at_the_interval_until_the_condition_holds() -> None:
    clock = FakeClock()
    condition = Scripted(clock, [None, "", 0, {"id": "abc"}])
    assert clock.wait(condition, timeout=5, interval=0.25) == {"id": "abc"}
    assert clock.sleeps == [0.25, 0.25, 0.25]
    assert condition.asked_at == [100.0, 100.25, 100.5, 100.75]


def test_timeout_returns_the_last_falsy_answer() -> None:
    clock = FakeClock()
    condition = Scripted(clock, [None, 0, "", [], "never reached"])
    assert clock.wait(condition, timeout=1.0, interval=0.4) == []
    # Asked at 0, 0.4, 0.8 and once more at the deadline: the last sleep is cut short.
    assert condition.asked_at == pytest.approx([100.0, 100.4, 100.8, 101.0])
    assert clock.sleeps == pytest.approx([0.4, 0.4, 0.2])


def test_the_answer_at_the_deadline_still_counts() -> None:
    clock = FakeClock()
    condition = Scripted(clock, [False, False, True])
    assert clock.wait(condition, timeout=1.0, interval=0.5) is True
    assert clock.now == pytest.approx(101.0)


def test_a_zero_timeout_asks_exactly_once() -> None:
    clock = FakeClock()
    condition = Scripted(clock, [False, True])
    assert clock.wait(condition, timeout=0, interval=1) is False
    assert condition.asked_at == [100.0]
    assert clock.sleeps == []


def test_a_slow_condition_is_not_asked_after_the_deadline() -> None:
    clock = FakeClock()
    # Each answer takes 0.7 s: after the second one the 1 s deadline has passed.
    condition = Scripted(clock, [False, False, True], cost=0.7)
    assert clock.wait(condition, timeout=1.0, interval=0.1) is False
    assert len(condition.asked_at) == 2
    assert clock.sleeps == pytest.approx([0.1])


def test_errors_from_the_condition_propagate() -> None:
    clock = FakeClock()

    def broken() -> bool:
        raise ValueError("engine gone")

    with pytest.raises(ValueError, match="engine gone"):
        clock.wait(broken, timeout=5, interval=1)
    assert clock.sleeps == []


def test_the_real_clock_waits_about_the_timeout() -> None:
    started = time.monotonic()
    assert wait_until(lambda: False, timeout=0.2, interval=0.05) is False
    assert 0.15 <= time.monotonic() - started < 2


def test_asked_twice_asks_once_more_after_an_oserror_and_no_more() -> None:
    answers: list[object] = [TimeoutError("slow"), "answer"]

    def ask() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert asked_twice(ask) == "answer"
    answers[:] = [ConnectionRefusedError("no"), TimeoutError("still slow"), "never asked"]
    with pytest.raises(TimeoutError):
        asked_twice(ask)
    assert answers == ["never asked"]
