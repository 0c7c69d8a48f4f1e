"""Many probe tests in one `docker exec`: every test a source probe runs in a round.

An exec costs tens of milliseconds of engine work; the ping or connect it carries
takes well under one. So each source probe gets one exec per round, running all its
tests at once (each bounded by `timeout`) and printing every test's exit code and
output after a marker line. Only the tests that failed are run again, in the next
round, until they pass or the run's deadline comes: a fault costs one shared retry
window, not one per result.

The runner is a fixed script; the tests reach it as arguments (`id`, `timeout`,
the command shell-quoted), so nothing of a test is ever pasted into shell code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import Probe, ProbeTest

MARKER = "@@overlaylab-test"
# Each argument: "<id> <timeout> <command>". Every test runs in the background, writing
# its output and then a marker with its id and exit code to its own file; after `wait`,
# one `cat` prints them all. (A marker before the output needed the exit code first: a
# `cat` and a command substitution per test, which cost as much as the tests.)
RUNNER = f"""d=$(mktemp -d)
for t in "$@"; do
  id=${{t%% *}}; rest=${{t#* }}; to=${{rest%% *}}; cmd=${{rest#* }}
  {{ eval "timeout $to $cmd"; printf '\\n{MARKER} %s %s\\n' "$id" "$?"; }} >"$d/$id" 2>&1 &
done
wait
cat "$d"/*
rm -rf "$d"
"""
LOST = "the probe batch printed no result for this test"
RETRY_PAUSE = 0.3  # between rounds: the overlay may still be converging
# Retry rounds in a row that may pass nothing before the retries stop. An overlay that
# converges passes some failures each round; a fault passes none, round after round,
# and would otherwise hold verify for the whole retry window.
STALL_ROUNDS = 2


@dataclass
class Outcome:
    code: int
    output: str
    tries: int
    seconds: float  # from the start of the run to this test's last round
    ok: bool = False


def runner_argv(tests: Sequence[ProbeTest]) -> list[str]:
    """The exec's argument list: the runner script, then one argument per test."""
    return ["sh", "-c", RUNNER, "probe-batch", *(t.argument() for t in tests)]


def parse(output: str) -> dict[str, tuple[int, str]]:
    """The runner's output, back into (exit code, output) per test id: each test's
    output comes before its marker line."""
    found: dict[str, tuple[int, str]] = {}
    pattern = re.compile(rf"^{MARKER} (\S+) (-?\d*)$\n?", re.MULTILINE)
    start = 0
    for mark in pattern.finditer(output):
        # The runner's printf put a newline between the output and the marker.
        body = output[start : mark.start()].removesuffix("\n")
        code = int(mark[2]) if mark[2] else 124  # no exit code: killed before `$?`
        found[mark[1]] = (code, body)
        start = mark.end()
    return found


def _round(
    vctx: VerifyContext, source: Probe, tests: list[ProbeTest]
) -> dict[str, tuple[int, str]]:
    """One exec in `source`: every test's (code, output); a test the runner lost fails."""
    longest = max(t.timeout for t in tests)
    # Each test is bounded by its own timeout; run_tests keeps the window over the rounds.
    code, out, _ = vctx.exec(source, None, runner_argv(tests), timeout=longest + 5, bounded=False)
    found = parse(out)
    lost = f"{LOST} (exec exit {code}): {out[-300:]}"
    return {t.id: found.get(t.id, (code or 1, lost)) for t in tests}


def _one_round(
    vctx: VerifyContext, tests: list[ProbeTest], outcomes: dict[str, Outcome], started: float
) -> list[ProbeTest]:
    """Every test once, one exec per source probe; records outcomes, returns failures."""
    by_source: dict[Probe, list[ProbeTest]] = {}
    for test in tests:
        by_source.setdefault(test.source, []).append(test)
    rounds = vctx.pool.map(lambda item: _round(vctx, *item), list(by_source.items()))
    answers = {k: v for found in rounds for k, v in found.items()}
    now = time.monotonic()
    failed: list[ProbeTest] = []
    for test in tests:
        code, out = answers[test.id]
        seen = outcomes.setdefault(test.id, Outcome(code, out, 0, 0.0))
        seen.code, seen.output, seen.seconds = code, out, round(now - started, 3)
        seen.tries += 1
        seen.ok = test.passed(code, out)
        if not seen.ok:
            failed.append(test)
    return failed


def run_tests(
    vctx: VerifyContext, tests: Iterable[ProbeTest], timeout: float | None = None
) -> dict[str, Outcome]:
    """Every test once, one exec per source probe, then the failures again, together,
    until they pass, `timeout` (default: the verify timeout) seconds from the start
    pass, or STALL_ROUNDS retry rounds in a row pass none of them. A failure is retried
    at least once even when the first round alone outlasts the window (a large lab):
    one slow moment must not stand as a finding. `timeout=0` runs one round, for tests
    that are not retried."""
    started = time.monotonic()
    window = vctx.timeout if timeout is None else timeout
    deadline = started + window
    outcomes: dict[str, Outcome] = {}
    failed = _one_round(vctx, list(tests), outcomes, started)
    retries = stalled = 0
    while (
        failed
        and stalled < STALL_ROUNDS
        and (time.monotonic() < deadline or (window > 0 and retries == 0))
    ):
        time.sleep(RETRY_PAUSE)
        still = _one_round(vctx, failed, outcomes, started)
        stalled = stalled + 1 if len(still) == len(failed) else 0
        failed = still
        retries += 1
    return outcomes


# --- tests that ride along ------------------------------------------------------------
# A check with `ahead` (names.resolve, isolation.overlays) runs one look per test. Its
# tests go into the pair checks' first round: an exec per source probe costs about as
# much as the tests it carries, so a round of their own would cost one more.

Ahead = dict[str, dict[str, tuple[list[str], Outcome]]]  # check -> test id -> (argv, seen)


def riders(vctx: VerifyContext) -> tuple[list[ProbeTest], dict[str, tuple[str, ProbeTest]]]:
    """The selected checks' tests known ahead, renamed apart (ids are unique per check
    only): the tests, and what each new id stands for."""
    tests: list[ProbeTest] = []
    standing: dict[str, tuple[str, ProbeTest]] = {}
    for n, (check_id, listed) in enumerate(sorted(vctx.ahead.items())):
        try:
            known = listed(vctx)
        except Exception:  # the check finds out again when it runs, and reports it
            continue
        for test in known:
            # One look, as the check would take: never retried with the pair tests.
            rider = replace(test, id=f"ahead{n}.{test.id}", passed=lambda _code, _out: True)
            tests.append(rider)
            standing[rider.id] = (check_id, test)
    return tests, standing


def keep_ahead(
    vctx: VerifyContext, standing: dict[str, tuple[str, ProbeTest]], seen: dict[str, Outcome]
) -> None:
    """Store the riders' outcomes under their own checks, for `recall`."""
    kept: Ahead = vctx.cache.setdefault("ahead", {})
    for rider_id, (check_id, test) in standing.items():
        kept.setdefault(check_id, {})[test.id] = (test.argv, seen[rider_id])


def recall(vctx: VerifyContext, check_id: str, tests: list[ProbeTest]) -> dict[str, Outcome]:
    """One look at each test: the outcomes from the pair checks' round when every one of
    these very tests rode there, else a round of their own."""
    kept = vctx.cache.get("ahead", {}).get(check_id, {})
    if not all(t.id in kept and kept[t.id][0] == t.argv for t in tests):
        return run_tests(vctx, tests, timeout=0)
    seen = {t.id: kept[t.id][1] for t in tests}
    # A rider whose exec printed nothing for it was never looked at: one look of its own.
    lost = [t for t in tests if seen[t.id].output.startswith(LOST)]
    return seen | (run_tests(vctx, lost, timeout=0) if lost else {})
