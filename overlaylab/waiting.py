"""One way to wait for something: poll a condition until it holds or time runs out.

Engines, stores and networks converge on their own schedule, and a lab's processes
exit on the kernel's. Every wait in overlaylab is "ask again shortly, give up after a
bound", so it lives here once, with the same semantics everywhere: the condition is
always asked at least once, and the caller gets its last answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `condition` until it returns something truthy or `timeout` seconds pass.

    Returns the first truthy answer, or the last (falsy) one when time ran out, so a
    caller can tell success from timeout by the value and still report what it saw.
    """
    deadline = clock() + timeout
    while True:
        answer = condition()
        if answer or clock() >= deadline:
            return answer
        sleep(max(0.0, min(interval, deadline - clock())))


def asked_twice(ask: Callable[[], T]) -> T:
    """`ask()`, and once more if it raises OSError (a second OSError is raised).

    One slow answer is not yet silence: a store that answers its health requests can miss
    one read on a busy host (fsyncs under load, seen on SSH hosts in CI), and that one
    read would fail every engine's registration or every app's at once."""
    try:
        return ask()
    except OSError:
        return ask()
