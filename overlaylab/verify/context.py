"""What every check receives: one verify run's context (probes, window, shared facts)."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from overlaylab.context import LabContext
from overlaylab.verify.probes import Probe, ProbeTest, exec_in
from overlaylab.verify.result import CheckResult

# Seconds a command in a probe gets at least, even once its check's window has closed:
# one look (a lookup, a connect) on a healthy overlay takes milliseconds.
LAST_LOOK = 2.0

T = TypeVar("T")
_LOCKS_GUARD = threading.Lock()  # creating a key's lock: once, whichever check asks first


@dataclass
class VerifyContext:
    lab: LabContext
    probes: list[Probe]
    probe_problems: dict[str, str] = field(default_factory=dict)  # node -> why no probes
    timeout: float = 10.0  # per probe action, retries included
    # When the running check's retries stop: run_verify gives each check one window of
    # `timeout`, shared by all it retries, so a fault seen from many probes costs one
    # window, not one per probe and name (None: each retry loop gets a window of its own).
    deadline: float | None = None
    # Facts several checks read (the stack containers), looked up once per run.
    cache: dict[str, Any] = field(default_factory=dict)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=16))
    # The check ids this run was asked for: checks that share work (one batch of probe
    # tests for every pair check) do it once for all of them.
    selected: frozenset[str] = frozenset()
    # Per selected check with `ahead`: the function that lists its probe tests.
    ahead: dict[str, Callable[[VerifyContext], list[ProbeTest]]] = field(default_factory=dict)
    # Checks run side by side, each with its own copy of this context (its own deadline)
    # sharing the cache, the pool and these locks.
    locks: dict[str, threading.Lock] = field(default_factory=dict)

    def lock(self, key: str) -> threading.Lock:
        """The lock of one shared fact or piece of work (the pair checks' batch)."""
        with _LOCKS_GUARD:
            return self.locks.setdefault(key, threading.Lock())

    def once(self, key: str, compute: Callable[[], T]) -> T:
        """A fact several checks read, looked up once per run: a check that asks while
        another looks it up waits for that answer instead of asking again."""
        with self.lock(key):
            if key not in self.cache:
                self.cache[key] = compute()
            found: T = self.cache[key]
            return found

    def probes_on(self, network: str, slot: str | None = "a") -> list[Probe]:
        return [p for p in self.probes if p.network == network and (slot is None or p.slot == slot)]

    def probe(self, network: str, node: str, slot: str = "a") -> Probe | None:
        for p in self.probes:
            if (p.network, p.node, p.slot) == (network, node, slot):
                return p
        return None

    def exec(
        self,
        probe_or_node: Probe | str,
        container: str | None,
        argv: list[str],
        timeout: float | None = None,
        bounded: bool = True,
    ) -> tuple[int, str, str]:
        """Run argv in a container: (exit code, output, the command as a user would type it).

        `bounded`: the command gets no more than what is left of the check's window, and
        at least LAST_LOOK seconds. A name no DNS knows waits on an upstream resolver the
        lab cannot reach until its timeout; looked up from every probe in turn, that cost
        a whole timeout per look, far past the window --timeout gives the check."""
        node = probe_or_node.node if isinstance(probe_or_node, Probe) else probe_or_node
        name = container or (probe_or_node.name if isinstance(probe_or_node, Probe) else "")
        limit = self.window(timeout or self.timeout) if bounded else timeout or self.timeout
        code, out = exec_in(self.lab, node, name, argv, limit)
        return code, out, self.command(node, name, argv)

    def window(self, limit: float) -> float:
        """`limit` seconds, cut to what is left of the check's window (at least
        LAST_LOOK): one thing that hangs must not take the whole run with it."""
        if self.deadline is None:
            return limit
        return min(limit, max(LAST_LOOK, self.deadline - time.monotonic()))

    def command(self, node: str, container: str, argv: list[str]) -> str:
        """`docker exec` of argv in a container, as a user would paste it."""
        env = self.lab.node(node).docker_env()
        prefix = " ".join(f"{k}={v}" for k, v in env.items() if k != "DOCKER_MACHINE_NAME")
        return f"{prefix} docker exec {container} {shlex.join(argv)}"

    def map(self, fn: Callable[[Any], list[CheckResult]], items: list[Any]) -> list[CheckResult]:
        results: list[CheckResult] = []
        for chunk in self.pool.map(fn, items):
            results.extend(chunk)
        return results
