"""What the fault catalogue's integration modules share: the default lab, `invoke fault`
and `invoke heal` as a user runs them, and the checks that a fault was diagnosed as its
kind expects and that nothing of it is left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, failures, invoke, verify_json

from overlaylab.context import LabContext, open_lab
from overlaylab.faults import CATALOGUE, active_faults
from overlaylab.faults.netfilter import tagged_rules

SPEC = "inventory/lab.yml"


def default_lab() -> Iterator[LabContext]:
    """Up, yield, down; the host as it was before (for a module-scoped fixture)."""
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", SPEC)
        yield open_lab(ROOT / SPEC)
    finally:
        invoke("down", "-i", SPEC, check=False)
    left = wait_until_clean(before)
    assert left == [], left


def inject(kind: str, *targets: str, options: tuple[str, ...] = ()) -> str:
    flags = [word for option in options for word in ("-o", option)]
    said = invoke("fault", kind, *targets, *flags, "-i", SPEC)
    assert f"invoke heal {kind} -i {SPEC}" in said.stdout, said.stdout + said.stderr
    return said.stderr


def nothing_left(lab: LabContext) -> None:
    assert active_faults(lab) == []
    engines = [n.name for n in lab.spec.engine_nodes]
    assert {n: tagged_rules(lab, n) for n in engines} == {n: [] for n in engines}


def diagnosed(lab: LabContext, kind: str, report: dict[str, Any]) -> None:
    """The diagnosis names the kind's cause on its nodes, and nothing else."""
    fault = CATALOGUE[kind]
    [active] = [a for a in active_faults(lab) if a.kind == kind]
    expected = (fault.cause_on(lab), fault.expected_nodes(lab, active))
    named = [(d["rule"], sorted(d["nodes"])) for d in report["diagnosis"]]
    assert named == [expected], report["diagnosis"]


def round_trip(lab: LabContext, kind: str, extra: tuple[str, ...], timeout: float) -> None:
    """From a green lab (every probe in place), inject `kind` on its default target,
    verify, heal; then nothing left and green."""
    assert verify_json(SPEC)["ok"]
    started = time.monotonic()
    inject(kind)
    try:
        report = verify_json(SPEC, *extra, timeout=timeout)
        diagnosed_in = time.monotonic() - started
        diagnosed(lab, kind, report)
    finally:
        healed = invoke("heal", kind, "-i", SPEC, check=False)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert f"healed {kind}" in healed.stderr
    nothing_left(lab)
    after = verify_json(SPEC)
    print(
        f"\n{kind}: diagnosed {diagnosed_in:.1f}s after injection, green again "
        f"{time.monotonic() - started:.1f}s after it"
    )
    assert after["ok"], failures(after)
