"""`invoke fault` and `invoke heal`: the catalogue's miseries, on demand."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from invoke import task
from invoke.parser import Argument

from overlaylab.errors import OverlaylabError
from overlaylab.lablock import lab_lock
from overlaylab.tasks.common import (
    DEFAULT_INVENTORY,
    KeepsHelpFlag,
    err,
    friendly_errors,
    open_lab,
    out,
    progress,
)

if TYPE_CHECKING:  # the catalogue (and the docker SDK under it) loads when a task runs
    from overlaylab.faults import ActiveFault

__all__ = ["fault", "heal"]


def _parser_is_filling_positionals() -> bool:
    """Is invoke's parser asking whether a positional argument still wants a word?"""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if "invoke" in code.co_filename and "parser" in code.co_filename:
            if code.co_name == "complete_context":
                return False  # "was every positional given?": an optional one was
            if code.co_name == "handle":
                # A word starting with "-" is never a positional one: --help must reach
                # invoke's own flags.
                return not str(frame.f_locals.get("token", "")).startswith("-")
            if code.co_name == "see_positional_arg":
                return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class Words(Argument):
    """A positional argument that may be left out; a list-kind one takes every word
    that is left (`invoke fault islands node2 node3`). invoke's own positionals are all
    required, which `invoke fault --list` and `invoke heal --all` cannot be."""

    @property  # type: ignore[override]
    def value(self) -> Any:
        filling = _parser_is_filling_positionals()
        if self.kind is list:
            return None if filling else list(self._value or [])
        if self._value is None:
            return None if filling else ""
        return self._value

    @value.setter
    def value(self, arg: str) -> None:
        self.set_value(arg, cast=True)

    def set_value(self, value: Any, cast: bool = True) -> None:
        self.raw_value = value
        self._value = [*(self._value or []), value] if self.kind is list else value


class OptionalPositionals(KeepsHelpFlag):
    """A task whose positional arguments may be left out (see `Words`)."""

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        made = []
        for arg in super().get_arguments(ignore_unknown_help):
            if arg.positional:
                arg = Words(
                    names=arg.names,
                    kind=arg.kind,
                    default=arg.default,
                    help=arg.help,
                    positional=True,
                    attr_name=arg.attr_name,
                )
            made.append(arg)
        return made


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise OverlaylabError(f"--option takes NAME=VALUE (e.g. mtu=1400), got {pair!r}")
        options[name] = value
    return options


def _availability(kind: Any) -> str:
    return f"no: {kind.unavailable}" if kind.unavailable else "yes"


def print_catalogue() -> None:
    from rich.table import Table

    from overlaylab.faults import CATALOGUE

    table = Table(title="fault catalogue", show_lines=True)
    for column in ("kind", "misery", "parameters", "expected cause", "modes", "available"):
        table.add_column(column)
    for kind in CATALOGUE.values():
        cause = kind.expected_cause + "".join(
            f"\n({mode}: {rule})" for mode, rule in kind.causes_by_mode.items()
        )
        table.add_row(
            kind.name,
            kind.misery,
            kind.parameters,
            cause or "-",
            ", ".join(kind.modes),
            _availability(kind),
        )
    out.print(table)


def _say_injected(active: ActiveFault, inventory: str, expected: list[str], cause: str) -> None:
    from overlaylab.faults import CATALOGUE

    kind = CATALOGUE[active.kind]
    where = ", ".join(active.targets) or "the lab"
    err.print(f"[bold red]fault {active.kind}[/] injected on {where}: {kind.misery}")
    for line in describe_undo(active):
        err.print(f"  · {line}")
    err.print(f"  verify should name: {cause} on {', '.join(expected) or '-'}")
    out.print(f"undo it with: invoke heal {active.kind} -i {inventory}")


def describe_undo(active: ActiveFault) -> list[str]:
    """What inject did, in words, from its undo record."""
    undo = active.undo
    lines = [
        f"{r['node']}: iptables -t {r['table']} -I {' '.join(r['rule'])}"
        for r in undo.get("rules", [])
    ]
    lines += [
        f"{e['node']}: ebtables -A {' '.join(e['rule'])} in {e['netns']}"
        for e in undo.get("ebtables", [])
    ]
    lines += [
        f"{e['node']}: {e['interface']} mtu {active.options.get('mtu')} (was {e['mtu']})"
        for e in undo.get("links", [])
    ]
    if "stopped" in undo:
        lines.append(f"{undo['stopped']['node']}: {undo['stopped']['service']} stopped")
    if "stopped_pid" in undo:
        lines.append(f"{undo['stopped_pid']['node']}: kill -STOP {undo['stopped_pid']['pid']}")
    lines += [f"{e['node']}: {e['address']}/32 on lo" for e in undo.get("addresses", [])]
    lines += [f"discovery store: key docker/nodes/{k} = garbage" for k in undo.get("keys", [])]
    verb = {"engine-killed": "killed (kill -9)", "engine-stopped": "stopped (SIGTERM)"}.get(
        active.kind, "restarted"
    )
    lines += [f"{n}: dockerd {verb}" for n in undo.get("engines", [])]
    return lines + describe_container_undo(undo)


def describe_container_undo(undo: dict[str, Any]) -> list[str]:
    """What the container and classic swarm faults did, from their undo record."""
    lines = [
        f"{e['node']}: docker network disconnect {e['network']} {e['container']}"
        for e in undo.get("disconnected", [])
    ]
    lines += [f"{e['node']}: docker pause {e['container']}" for e in undo.get("paused", [])]
    if "record" in undo:
        record = undo["record"]
        lines.append(
            f"KV store: a record of {undo.get('container', '?')} on {record['network']} at "
            f"{record['address']} ({record['key']}), as a hard kill leaves it"
        )
    if "container" in undo and isinstance(undo["container"], dict):
        made = undo["container"]
        lines.append(f"{made['node']}: {made['name']} runs, registered as {made['service']}")
    lines += [
        f"{e['node']}: bridge fdb add {e['mac']} dev vxlan0 (self) in {e['netns']}"
        for e in undo.get("fdb", [])
    ]
    lines += [
        f"{e['node']}: iptables -I OUTPUT -d 127.0.0.11 -j DROP in {e['name']} (nsenter -t "
        f"{e['pid']} -n)"
        for e in undo.get("containers", [])
    ]
    return lines


def _busy(message: str) -> None:
    err.print(f"[yellow]{message}[/]")


@task(
    klass=OptionalPositionals,
    positional=["kind", "targets"],
    iterable=["targets", "option"],
    help={
        "kind": "the fault kind (`--list` shows them)",
        "targets": "engine nodes (or overlays) to inject it on; default: the kind's own",
        "list": "show every fault kind: its misery, parameters, expected cause, availability",
        "option": "NAME=VALUE for the kind (repeatable), e.g. mtu=1300",
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
    },
)
@friendly_errors
def fault(  # type: ignore[no-untyped-def]
    c, kind=None, targets=None, list=False, option=None, inventory=DEFAULT_INVENTORY
):
    """Inject a fault into the running lab; print what was done and how to undo it."""
    from overlaylab.faults import CATALOGUE, inject_fault

    if list:
        print_catalogue()
        return
    if not kind:
        raise OverlaylabError(
            "name a fault kind: `invoke fault KIND [TARGET ...] -i SPEC`; "
            "`invoke fault --list` shows them"
        )
    ctx = open_lab(inventory, progress(quiet=True))
    command = f"invoke fault {kind} -i {inventory}"
    with lab_lock(ctx.spec.name, command, _busy):
        active = inject_fault(ctx, kind, targets or [], _options(option or []))
    fault_kind = CATALOGUE[active.kind]
    _say_injected(
        active, inventory, fault_kind.expected_nodes(ctx, active), fault_kind.cause_on(ctx)
    )


@task(
    klass=OptionalPositionals,
    positional=["kind"],
    help={
        "kind": "the fault kind to heal",
        "all": "heal every active fault",
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
    },
)
@friendly_errors
def heal(c, kind=None, all=False, inventory=DEFAULT_INVENTORY):  # type: ignore[no-untyped-def]
    """Undo injected faults (one kind, or --all), each checked undone."""
    from overlaylab.faults import heal_faults

    if bool(kind) == bool(all):
        raise OverlaylabError(
            "name the fault to heal, or --all: `invoke heal KIND -i SPEC` or "
            "`invoke heal --all -i SPEC`"
        )
    ctx = open_lab(inventory, progress(quiet=True))
    with lab_lock(ctx.spec.name, f"invoke heal {kind or '--all'} -i {inventory}", _busy):
        healed = heal_faults(ctx, kind or None)
    if not healed:
        err.print(
            f"lab '{ctx.spec.name}': no active fault" + (f" {kind}" if kind else "") + " to heal"
        )
        return
    for active in healed:
        where = ", ".join(active.targets) or "the lab"
        err.print(f"[bold green]healed {active.kind}[/] on {where} (checked undone)")
