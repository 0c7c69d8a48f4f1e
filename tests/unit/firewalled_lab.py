"""The fake lab with a firewall: the iptables commands a fault runs on a node become the
fake's own faults (a dropped port, a cut node), so what verify sees follows from the
commands. Plain helpers for the fault tests (`from firewalled_lab import ...`)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from fakelab import FakeLab, FakeNode, fault_lab_spec

from overlaylab.providers.command import CommandResult


class FirewalledNode(FakeNode):
    """A fake node with a firewall: `iptables -I/-D/-C`, `iptables-save`, and the lab
    interface lookup; anything else is the fake node's (which refuses the unknown)."""

    def __init__(self, lab: FakeLab, name: str, fail_on: int | None = None) -> None:
        super().__init__(lab, name)
        self.rules: list[tuple[str, ...]] = []  # (table, chain, ...matchers, -j, target)
        self.fail_on = fail_on  # the n-th insert fails, as a missing chain would
        self.inserts = 0

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult:
        argv = list(argv)
        code, out = 0, ""
        match argv:
            case ["iptables", "-w", "-t", table, "-I", *rule]:
                self.inserts += 1
                if self.inserts == self.fail_on:
                    code = 1
                else:
                    self.rules.insert(0, (table, *rule))
            case ["iptables", "-w", "-t", table, "-D", *rule]:
                code = 0 if (table, *rule) in self.rules else 1
                if not code:
                    self.rules.remove((table, *rule))
            case ["iptables-save"]:
                out = "\n".join(f"-A {shlex.join(r[1:])}" for r in self.rules)
            case ["ip", "-o", "-4", "addr", "show"]:
                out = f"2: eth1    inet {self.address}/24 brd 0.0.0.0 scope global eth1\n"
            case _:
                return super().run(argv, check=check, timeout=timeout, input=input)
        self.lab.firewalls_changed()  # type: ignore[attr-defined]
        result = CommandResult(tuple(argv), code, out, "", self.name)
        return result.check() if check else result


class FirewalledLab(FakeLab):
    """The fake lab whose port drops and cut nodes follow its nodes' firewall rules."""

    def firewalls_changed(self) -> None:
        self.dropped, self.cut = [], set()
        for name in self.engine_nodes:
            for table, chain, *rest in self.provider.node(name).rules:  # type: ignore[attr-defined]
                self._model(name, table, chain, rest)

    def _model(self, node: str, table: str, chain: str, rule: list[str]) -> None:
        opts = dict(zip(rule[::2], rule[1::2], strict=False))
        proto, port = opts.get("-p"), int(opts.get("--dport", 0))
        if "-i" in opts or "-o" in opts:
            self.cut.add(node)
        elif chain == "OUTPUT" and "-d" in opts:
            self.drop(self.node_at(opts["-d"]) or "", proto or "", port, source=node)
        elif chain == "OUTPUT":  # leaving this node, towards every other
            for other in self.engine_nodes:
                if other != node:
                    self.drop(other, proto or "", port, source=node)
        elif chain == "DOCKER-USER":  # after DNAT: the container's port (web's 80 -> 5000)
            self.drop(node, proto or "", {5000: 80}.get(port, port))
        elif chain == "INPUT":
            self.drop(node, proto or "", port, source=self.node_at(opts.get("-s", "")))


def firewalled(spec_engines: Sequence[str], state: Path, fail_on: int | None = None) -> FakeLab:
    lab = FirewalledLab(fault_lab_spec(spec_engines), state)
    for name in lab.engine_nodes:
        lab.provider._nodes[name] = FirewalledNode(lab, name, fail_on)
    return lab


def rules_on(lab: FakeLab) -> dict[str, list[tuple[str, ...]]]:
    return {n: list(lab.provider.node(n).rules) for n in lab.engine_nodes}  # type: ignore[attr-defined]


def no_rules(lab: FakeLab) -> bool:
    return all(not rules for rules in rules_on(lab).values())
