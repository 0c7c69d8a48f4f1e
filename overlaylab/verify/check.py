"""A check's definition: its id, group, what it proves, and the function that runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import ProbeTest
from overlaylab.verify.result import CheckResult


@dataclass(frozen=True)
class Check:
    id: str
    group: str
    description: str
    run: Callable[[VerifyContext], list[CheckResult]]
    # Checks that look through probe containers: running one also reports which nodes
    # have no probes, or a node never tested would pass unseen.
    needs_probes: bool = False
    # Checks that read the probes, or what starting them changes (which probes run, the
    # overlay peer entries they add), without testing through them: they wait until
    # the probes have started, as the checks that need them do.
    reads_probes: bool = False
    # The probe tests the check will run, known before it runs: they ride in the pair
    # checks' round, where each source probe already gets an exec (see probe_batch.recall).
    ahead: Callable[[VerifyContext], list[ProbeTest]] | None = None
    # Checks whose work this one reads (the engines' /info, the pair checks' round that
    # carried its `ahead` tests): checks run side by side, and this one starts once
    # those of them that run in this verify are done.
    after: tuple[Check, ...] = ()
