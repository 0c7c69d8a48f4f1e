"""Which names of each stack container resolve from other hosts, and to what."""

from __future__ import annotations

from overlaylab.checks.base import Check, VerifyContext
from overlaylab.checks.connectivity import resolved
from overlaylab.checks.probe_batch import ProbeTest, recall
from overlaylab.checks.probes import Probe
from overlaylab.checks.result import CheckResult
from overlaylab.checks.stack_containers import StackContainer, stack_containers

HINT = (
    "names on a user-defined network come from the engines' embedded DNS (127.0.0.11). "
    "Use the service name or a network alias (`networks: {dn: {aliases: [db]}}`) rather "
    "than the generated container name (<project>_<service>_1), which changes with the "
    "project folder and scale; a stale answer means a removed container's record is still "
    "in the KV store (remove it with `docker rm`, or restart the stack)."
)


def candidate_names(c: StackContainer, network: str) -> list[str]:
    """The names an app on `network` might use for this container.

    A swarm task's service names answer with a VIP or with every task (endpoint mode):
    swarm.services checks those; here only the names of this very task."""
    if c.swarm_service:
        names = [c.name, f"tasks.{c.swarm_service}", *c.aliases.get(network, [])]
        names.append(f"{c.name}.{network}")
        return list(dict.fromkeys(names))
    names = [c.name, c.service, *c.aliases.get(network, [])]
    names += [f"{c.name}.{network}", f"{c.service}.{network}"]
    return list(dict.fromkeys(names))  # keep order, drop repeats


# The container the name belongs to, the overlay, the name, and the addresses it stands
# for there: every container that carries it (a service name or `tasks.<service>` stands
# for all its replicas, a shared alias for each container that has it).
Lookup = tuple[StackContainer, str, str, tuple[str, ...]]


def _observers(vctx: VerifyContext, c: StackContainer, network: str) -> list[Probe]:
    """Probes on other hosts; only when there are none, the probe beside it."""
    on_network = vctx.probes_on(network)
    return [p for p in on_network if p.node != c.node] or on_network


def _lookups(vctx: VerifyContext) -> list[Lookup]:
    overlays = {n.name for n in vctx.lab.spec.networks}
    owners: dict[tuple[str, str], list[StackContainer]] = {}
    for c in stack_containers(vctx):
        for net in c.networks:
            if net in overlays:
                for name in candidate_names(c, net):
                    owners.setdefault((net, name), []).append(c)
    return [
        (found[0], net, name, tuple(sorted({c.networks[net] for c in found})))
        for (net, name), found in owners.items()
    ]


def _off_their_networks(vctx: VerifyContext) -> list[CheckResult]:
    """Overlays a container's compose file gives it and it is not on: its names there
    cannot be tested, and say so (stacks.running has the finding)."""
    overlays = {n.name for n in vctx.lab.spec.networks}
    return [
        CheckResult.untested(
            "names.resolve",
            c.node,
            f"{c.name} ({c.stack}/{c.service}) is not on {net}",
            because="stacks.running",
            network=net,
        )
        for c in stack_containers(vctx)
        for net in sorted(set(c.wanted) - set(c.networks))
        if net in overlays
    ]


def _lookup_tests(vctx: VerifyContext, work: list[Lookup]) -> list[tuple[int, Probe, ProbeTest]]:
    """Every name looked up from every observer: (index in `work`, observer, test)."""
    return [
        (i, probe, ProbeTest(f"name{i}.{j}", probe, ["nslookup", name], lambda _c, _o: True, 6))
        for i, (c, network, name, _) in enumerate(work)
        for j, probe in enumerate(_observers(vctx, c, network))
    ]


def tests_ahead(vctx: VerifyContext) -> list[ProbeTest]:
    return [test for _, _, test in _lookup_tests(vctx, _lookups(vctx))]


def _resolve_from_others(
    vctx: VerifyContext, work: list[Lookup]
) -> list[tuple[dict[str, list[str]], str, str]]:
    """Every name looked up from every observer, in one batch: for each lookup (in the
    order of `work`), what each observing node resolved, and the command and output
    that show the problem."""
    tests = _lookup_tests(vctx, work)
    answers = recall(vctx, "names.resolve", [test for _, _, test in tests])
    found: list[tuple[dict[str, list[str]], str, str]] = [({}, "", "") for _ in work]
    for i, probe, test in tests:
        _c, _network, _name, expected = work[i]
        seen, command, _ = found[i]
        out = answers[test.id].output
        seen[probe.node] = resolved(out)
        if not command or sorted(seen[probe.node]) != list(expected):
            found[i] = (seen, vctx.command(probe.node, probe.name, test.argv), out)
    return found


def _judge(
    c: StackContainer,
    network: str,
    name: str,
    seen: dict[str, list[str]],
    expected: tuple[str, ...] = (),
) -> CheckResult:
    """`expected`: every address the name stands for (by default, c's own)."""
    wanted = sorted(expected or (c.networks[network],))
    if not seen:  # no probe could look: no evidence either way, and that is no pass
        return CheckResult.untested(
            "names.resolve",
            c.node,
            f"no probe on {network} could look up {name}",
            because="probes.running",
            network=network,
        )
    wrong = {n: a for n, a in seen.items() if sorted(a) != wanted}
    nothing = sorted(n for n, a in seen.items() if not a)
    stale = sorted(n for n, a in seen.items() if a and not set(wanted) & set(a))
    extra = sorted(n for n, a in seen.items() if set(wanted) & set(a) and set(a) - set(wanted))
    short = sorted(n for n, a in seen.items() if set(a) & set(wanted) and set(wanted) - set(a))
    differ = len({tuple(sorted(a)) for a in seen.values()}) > 1
    problems = []
    if nothing:
        problems.append(f"resolves to nothing from {', '.join(nothing)}")
    if stale:
        problems.append(
            "resolves to a stale address " + ", ".join(f"{seen[n]} from {n}" for n in stale)
        )
    if extra:
        problems.append(
            "also returns other addresses " + ", ".join(f"{seen[n]} from {n}" for n in extra)
        )
    if short:
        problems.append(
            f"misses some of {wanted} " + ", ".join(f"({seen[n]} from {n})" for n in short)
        )
    if differ and not problems:
        problems.append("resolves differently on different hosts")
    where = ", ".join(sorted(seen))
    return CheckResult(
        check="names.resolve",
        subject=f"{name} ({c.stack}/{c.service} on {c.node}, {network})",
        status="fail" if wrong else "pass",
        message="; ".join(problems) or f"-> {', '.join(wanted)} from {where}",
        hint=HINT if wrong else "",
        nodes=sorted({c.node, *seen}),
        target=c.node,
        network=network,
        details={
            "name": name,
            "container": c.name,
            "expected": c.networks[network],
            "answers": wanted,
            "seen": seen,
        },
    )


def resolve(vctx: VerifyContext) -> list[CheckResult]:
    work = _lookups(vctx)
    untested = _off_their_networks(vctx)
    if not work and not untested:
        return [
            CheckResult.skip(
                "names.resolve", "stacks", "no stack containers on the spec's overlays"
            )
        ]

    results = []
    for (c, net, name, expected), (seen, command, output) in zip(
        work, _resolve_from_others(vctx, work), strict=True
    ):
        result = _judge(c, net, name, seen, expected)
        if result.failed:
            result.command, result.output = command, output.strip()[-600:]
        results.append(result)
    return results + untested


CHECKS = [
    Check(
        "names.resolve",
        "names",
        "every name of every stack container resolves, from other hosts, to its address",
        resolve,
        needs_probes=True,
        ahead=tests_ahead,
    )
]
