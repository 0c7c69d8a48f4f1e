"""verify runs its checks side by side: each in its own thread with its own window, after
the checks it reads (`after`) and, past the ones ahead of the probes, once the probes are
in place; the results come back in report order, and a fact several checks read is looked
up once.

No timing is asserted: side by side is shown by checks that can only finish together
(a barrier), order by events set before a dependent check starts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import cast

import pytest

from overlaylab.context import LabContext
from overlaylab.verify import run
from overlaylab.verify.check import Check
from overlaylab.verify.checks import connectivity, underlay
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import Probe
from overlaylab.verify.result import CheckResult

WAIT = 10.0  # seconds a thread waits for another before the test calls it a failure


def result(check_id: str, message: str = "") -> CheckResult:
    return CheckResult(check=check_id, subject="lab", status="pass", message=message)


def check(
    check_id: str, body: Callable[[VerifyContext], str], after: tuple[Check, ...] = ()
) -> Check:
    def runs(v: VerifyContext) -> list[CheckResult]:
        return [result(check_id, body(v))]

    return Check(check_id, check_id.split(".")[0], check_id, runs, after=after)


def vctx() -> VerifyContext:
    return VerifyContext(lab=cast(LabContext, None), probes=[], timeout=5.0)


def probes_ready(probes: list[Probe] | None = None) -> Future[tuple[list[Probe], dict[str, str]]]:
    done: Future[tuple[list[Probe], dict[str, str]]] = Future()
    done.set_result((probes or [], {}))
    return done


@pytest.fixture
def ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test checks count as ahead of the probes unless their id says `probe`."""
    monkeypatch.setattr(run, "WITHOUT_PROBES", frozenset({"a.one", "b.two", "c.three"}))


def test_checks_run_side_by_side_and_report_in_order(ahead: None) -> None:
    together = threading.Barrier(3, timeout=WAIT)
    checks = [
        check(cid, lambda _v: f"met {together.wait()}") for cid in ("a.one", "b.two", "c.three")
    ]
    # One after another, the first would wait at the barrier alone and break it.
    results = run._side_by_side(vctx(), checks, probes_ready())
    assert [r.check for r in results] == ["a.one", "b.two", "c.three"]
    assert not together.broken


def slow_then(finished: threading.Event) -> Callable[[VerifyContext], str]:
    """A check body that sets `finished` after a pause: it gives a check started too
    early every chance to run first."""

    def slow(_: VerifyContext) -> str:
        threading.Event().wait(0.2)
        finished.set()
        return "done"

    return slow


def test_a_check_starts_after_the_checks_it_reads(ahead: None) -> None:
    finished = threading.Event()
    first = check("a.one", slow_then(finished))
    second = check("b.two", lambda v: f"saw first done: {finished.is_set()}", after=(first,))
    results = run._side_by_side(vctx(), [first, second], probes_ready())
    assert results[1].message == "saw first done: True"


def test_a_check_may_wait_for_one_the_report_lists_later(ahead: None) -> None:
    """underlay.members reads the gossip views after the pair checks ran, though the
    report lists it first: the later check runs first, the report keeps its order."""
    finished = threading.Event()
    later = check("b.two", slow_then(finished))
    listed_first = check("a.one", lambda v: f"saw b done: {finished.is_set()}", after=(later,))
    results = run._side_by_side(vctx(), [listed_first, later], probes_ready())
    assert [r.check for r in results] == ["a.one", "b.two"]
    assert results[0].message == "saw b done: True"


def test_the_gossip_views_are_read_after_the_paths_are_tested() -> None:
    assert set(underlay.MEMBERS.after) == set(connectivity.CHECKS)
    order = [c.id for c in run._after_first(run.ALL_CHECKS)]
    assert all(order.index(c.id) < order.index("underlay.members") for c in connectivity.CHECKS)


def test_an_after_not_selected_is_not_waited_for(ahead: None) -> None:
    absent = check("c.three", lambda v: "never runs")
    alone = check("b.two", lambda v: "ran", after=(absent,))
    assert [r.message for r in run._side_by_side(vctx(), [alone], probes_ready())] == ["ran"]


def test_checks_past_the_probes_see_them_and_the_others_do_not_wait(ahead: None) -> None:
    placed: Future[tuple[list[Probe], dict[str, str]]] = Future()
    probe = Probe(network="dn", node="n1", slot="a", name="p", address="10.0.0.2")

    def place(_v: VerifyContext) -> str:
        placed.set_result(([probe], {}))
        return "early"

    early = check("a.one", place)
    # Starts at once too, but may look only once the probes are in place.
    late = check("x.probe", lambda v: f"probes: {[p.name for p in v.probes]}")
    results = run._side_by_side(vctx(), [late, early], placed)
    assert [r.message for r in results] == ["probes: ['p']", "early"]


def test_each_check_gets_its_own_deadline(ahead: None, monkeypatch: pytest.MonkeyPatch) -> None:
    base = vctx()
    seen: dict[str, VerifyContext] = {}
    both = threading.Barrier(2, timeout=WAIT)

    def keep(name: str) -> Callable[[VerifyContext], str]:
        def body(v: VerifyContext) -> str:
            seen[name] = v
            both.wait()
            return ""

        return body

    run._side_by_side(base, [check("a.one", keep("a")), check("b.two", keep("b"))], probes_ready())
    assert seen["a"] is not seen["b"] and base.deadline is None
    assert seen["a"].cache is seen["b"].cache is base.cache
    assert seen["a"].locks is base.locks and seen["a"].pool is base.pool


def test_a_shared_fact_is_looked_up_once_while_others_wait_for_it() -> None:
    shared = vctx()
    calls: list[int] = []
    inside = threading.Event()
    release = threading.Event()

    def look_up() -> str:
        calls.append(1)
        inside.set()
        release.wait(WAIT)
        return "fact"

    answers: list[str] = []
    first = threading.Thread(target=lambda: answers.append(shared.once("k", look_up)))
    first.start()
    assert inside.wait(WAIT)
    second = threading.Thread(target=lambda: answers.append(shared.once("k", look_up)))
    second.start()
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    assert answers == ["fact", "fact"] and calls == [1]
