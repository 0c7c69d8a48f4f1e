"""Which names of each stack container resolve from other hosts, and to what."""

from __future__ import annotations

from overlaylab.overlay.peers import Member, members
from overlaylab.verify.batch import recall
from overlaylab.verify.check import Check
from overlaylab.verify.checks import connectivity
from overlaylab.verify.checks.probe_pairs import resolved
from overlaylab.verify.checks.stack_containers import StackContainer, stack_containers
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import Probe, ProbeTest
from overlaylab.verify.result import CheckResult

HINT = (
    "names on a user-defined network come from the engines' embedded DNS (127.0.0.11). "
    "Use the service name or a network alias (`networks: {dn: {aliases: [db]}}`) rather "
    "than the generated container name (<project>_<service>_1), which changes with the "
    "project folder and scale; a stale answer means a removed container's record is still "
    "in the KV store (remove it with `docker rm`, or restart the stack)."
)
# Swarm mode keeps no KV store: each node learns the others' names over gossip.
HINT_SWARM = (
    "names on a swarm overlay come from the engines' embedded DNS (127.0.0.11), which "
    "learns other nodes' tasks over the swarm's gossip (networkdb, tcp+udp 7946): no "
    "answer from other nodes means they do not hear this node's gossip (underlay.gossip); "
    "a stale answer is a removed task's record still held by a node (restart the stack)."
)


HINT_SHARED = (
    "two running containers answer to one name on this network: the embedded DNS returns "
    "both, and clients pick either. Keep the name (a network alias, a service name) on one "
    "container: remove the other, or connect it again without that --alias."
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
    hint: str = HINT,
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
        hint=hint if wrong else "",
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


def _holders(vctx: VerifyContext, network: str) -> dict[str, Member]:
    """address -> the running container that holds it on `network`, on any engine."""

    def look_up() -> dict[str, Member]:
        found: dict[str, Member] = {}
        for node in vctx.lab.spec.engine_nodes:
            handle = vctx.lab.node(node.name)
            if handle.engine_ping(timeout=2):
                found |= {m.address: m for m in members(handle, node.name, network)[1]}
        return found

    return vctx.once(f"holders/{network}", look_up)


def _also_held(vctx: VerifyContext, result: CheckResult) -> None:
    """A name that also resolves to addresses other running containers hold is carried
    by them too: the failure is theirs (on their node), and no record is stale."""
    name = result.details["name"]
    wanted = set(result.details.get("answers") or [result.details["expected"]])
    others = {a for answers in result.details["seen"].values() for a in answers} - wanted
    holders = _holders(vctx, result.network)
    if not others or not others <= set(holders):
        return
    held = {a: holders[a] for a in sorted(others)}
    where = sorted({m.node for m in held.values()})
    result.message += "; " + "; ".join(
        f"{a} is {m.name} on {m.node}, which answers to {name} too" for a, m in held.items()
    )
    result.hint = HINT_SHARED
    result.target = where[0] if len(where) == 1 else ""
    result.nodes = sorted({*result.nodes, *where})
    result.details["also_held_by"] = {
        a: {"container": m.name, "node": m.node} for a, m in held.items()
    }


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
        swarm = vctx.lab.spec.orchestration.mode == "swarm-mode"
        result = _judge(c, net, name, seen, expected, HINT_SWARM if swarm else HINT)
        if result.failed:
            result.command, result.output = command, output.strip()[-600:]
            if result.status == "fail":
                _also_held(vctx, result)
        results.append(result)
    return results + untested


RESOLVE = Check(
    "names.resolve",
    "names",
    "every name of every stack container resolves, from other hosts, to its address",
    resolve,
    needs_probes=True,
    ahead=tests_ahead,
    after=tuple(connectivity.CHECKS),  # its tests ride in their round
)

CHECKS = [RESOLVE]
