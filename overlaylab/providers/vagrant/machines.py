"""Vagrant machines through python-vagrant, on the lab's own docker engine.

Everything Vagrant keeps lives in the lab's state folder (VAGRANT_HOME,
VAGRANT_DOTFILE_PATH), never in ~/.vagrant.d or the repository, so `down` takes it
with the lab. The provider is always named: with no reachable docker daemon Vagrant
silently picks another provider, so `up` passes `--provider` and then checks the
provider each machine really got.

`vagrant ssh-config` is what fabric connects with: `ssh_targets()` turns it into
`SSHTarget`s (host, port, user, key file) and `SSHTarget.connection()` into a
`fabric.Connection`; from there a machine is an SSH host like any other.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import vagrant

from overlaylab.errors import OverlaylabError
from overlaylab.logtail import file_tail

VAGRANT_PROVIDER = "docker"
RUNNING = "running"
NOT_CREATED = "not_created"
# Seconds `vagrant status` gets to list every machine of the file (see VagrantMachines.status).
STATUS_SETTLE = 10.0
# Variables of the caller's shell that would point Vagrant's docker CLI elsewhere.
_FOREIGN_DOCKER_VARS = ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")

OnItem = Callable[[str, str], None]


class VagrantError(OverlaylabError):
    """Vagrant failed or did something else than asked; names the command and the fix."""


@dataclass(frozen=True)
class SSHTarget:
    """How to reach one machine over SSH (what `vagrant ssh-config` says)."""

    name: str
    host: str
    port: int
    user: str
    key_files: tuple[str, ...]
    options: Mapping[str, str] = field(default_factory=dict)

    def connect_kwargs(self) -> dict[str, Any]:
        """paramiko's `connect` arguments: this key only, no agent, no ~/.ssh keys."""
        return {"key_filename": list(self.key_files), "look_for_keys": False, "allow_agent": False}

    def connection(self, connect_timeout: int = 10) -> Any:
        """A fabric Connection to the machine, independent of the user's ~/.ssh/config."""
        from fabric import Config, Connection

        return Connection(
            host=self.host,
            port=self.port,
            user=self.user,
            connect_kwargs=self.connect_kwargs(),
            connect_timeout=connect_timeout,
            config=Config(overrides={"load_ssh_configs": False}),
        )


def parse_ssh_config(text: str) -> dict[str, SSHTarget]:
    """`vagrant ssh-config` output (one `Host` block per machine) -> target per machine."""
    blocks: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        value = value.strip().strip('"')
        if key.lower() == "host":
            current = blocks.setdefault(value, {})
            continue
        if current is not None:
            current.setdefault(key.lower(), []).append(value)
    targets = {}
    for name, options in blocks.items():
        if "hostname" not in options:
            raise VagrantError(f"`vagrant ssh-config` gave no HostName for {name}:\n{text}")
        targets[name] = SSHTarget(
            name=name,
            host=options["hostname"][0],
            port=int(options.get("port", ["22"])[0]),
            user=options.get("user", ["vagrant"])[0],
            key_files=tuple(options.get("identityfile", [])),
            options={k: v[0] for k, v in options.items()},
        )
    return targets


@dataclass(frozen=True)
class MachineStatus:
    name: str
    state: str | None
    provider: str | None


class VagrantMachines:
    """One Vagrant environment: a Vagrantfile's folder, driven against the lab's engine."""

    def __init__(
        self,
        root: Path,
        state_dir: Path,
        docker_host: str,
        machines_file: Path | None = None,
        provider: str = VAGRANT_PROVIDER,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.state_dir = state_dir
        self.docker_host = docker_host
        self.machines_file = machines_file
        self.provider = provider
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.log_file = state_dir / "vagrant.log"

    # --- the environment Vagrant runs in ----------------------------------------------------
    @property
    def home(self) -> Path:
        return self.state_dir / "home"

    @property
    def dotfile_path(self) -> Path:
        return self.state_dir / "dotfile"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in self.base_env.items() if k not in _FOREIGN_DOCKER_VARS}
        env.update(
            {
                "DOCKER_HOST": self.docker_host,
                "VAGRANT_HOME": str(self.home),
                "VAGRANT_DOTFILE_PATH": str(self.dotfile_path),
                "VAGRANT_DEFAULT_PROVIDER": self.provider,
                # No calls home (HashiCorp's version check) and no box update checks:
                # the lab talks to nothing outside itself.
                "VAGRANT_CHECKPOINT_DISABLE": "1",
                "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
                "VAGRANT_NO_COLOR": "1",
            }
        )
        if self.machines_file is not None:
            env["OVERLAYLAB_MACHINES"] = str(self.machines_file)
        return env

    def client(self, quiet: bool = True) -> vagrant.Vagrant:
        self.home.mkdir(parents=True, exist_ok=True)
        log = vagrant.make_file_cm(str(self.log_file))
        return vagrant.Vagrant(root=str(self.root), env=self.env(), out_cm=log, err_cm=log)

    # --- life cycle -------------------------------------------------------------------------
    def up(self, names: Iterable[str] = (), on_item: OnItem | None = None) -> float:
        """`vagrant up --provider=<provider>` (machines in parallel); checks every machine
        got that provider and runs. Returns the seconds it took."""
        say = on_item or (lambda where, msg: None)
        wanted = list(names)
        started = time.monotonic()
        try:
            lines = self.client().up(
                vm_name=machine_selector(wanted), provider=self.provider, stream_output=True
            )
            with self.log_file.open("a") as log:
                for line in lines:
                    log.write(line)
                    _report_line(line, say)
        except subprocess.CalledProcessError as exc:
            raise VagrantError(self._failure("up", machine_selector(wanted), exc)) from exc
        statuses = self.status()
        missing = set(wanted) - {s.name for s in statuses}
        if missing:
            raw = self.client()._run_vagrant_command(["status", "--machine-readable"])
            raise VagrantError(
                f"after `vagrant up`, `vagrant status` does not list {', '.join(sorted(missing))}; "
                f"Vagrant's output is in {self.log_file}. `vagrant status` said:\n{raw[-2000:]}"
            )
        for status in statuses:
            if wanted and status.name not in wanted:
                continue
            if status.provider != self.provider:
                raise VagrantError(
                    f"Vagrant brought {status.name} up with provider {status.provider!r}, "
                    f"not {self.provider!r}: it falls back to another provider when the "
                    f"docker engine ({self.docker_host}) does not answer. Start the lab's "
                    "Vagrant engine first, then `vagrant destroy -f` and up again."
                )
            if status.state != RUNNING:
                raise VagrantError(
                    f"after `vagrant up`, {status.name} is {status.state!r}, not running; "
                    f"Vagrant's output is in {self.log_file}"
                )
        return time.monotonic() - started

    def status(self, settle: float = STATUS_SETTLE) -> list[MachineStatus]:
        """Every machine's state. Now and then, right after `vagrant up`, `vagrant status`
        lists one machine twice and another of the machines file not at all (seen in CI:
        `a` twice, `b` missing; `b` twice, `a` missing with three integration lanes busy
        at once, and `vagrant status a` did not list `a` either). A missing machine is
        asked for by name, and Vagrant asked again for up to `settle` seconds; what it still
        leaves out, the lab's engine is asked for."""
        vm_names = self._machines()
        expected = set(vm_names)
        deadline = time.monotonic() + settle
        while True:
            try:
                found = list(self.client().status())
                for name in sorted(expected - {s.name for s in found}):
                    found += [s for s in self.client().status(vm_name=name) if s.name == name]
            except subprocess.CalledProcessError as exc:
                raise VagrantError(self._failure("status", None, exc)) from exc
            unique = {s.name: s for s in found}  # a machine listed twice counts once
            if expected <= set(unique) or time.monotonic() >= deadline:
                break
            time.sleep(1.0)
        listed = [MachineStatus(s.name, s.state, s.provider) for s in unique.values()]
        missing = {name: vm_names[name] for name in expected - set(unique)}
        return listed + self._engine_states(missing)

    def _engine_states(self, missing: dict[str, str]) -> list[MachineStatus]:
        """Machines `vagrant status` still leaves out, as the lab's engine sees them: with
        the docker provider a machine is the container named as the machines file says
        (its vm_name). Vagrant's listing is the one that errs there, not the engine."""
        if self.provider != VAGRANT_PROVIDER or not missing:
            return []
        states = []
        try:
            with docker.DockerClient(base_url=self.docker_host, timeout=10) as engine:
                for name, vm_name in sorted(missing.items()):
                    pattern = f"^/?{re.escape(vm_name)}$"
                    for container in engine.containers.list(all=True, filters={"name": pattern}):
                        state = RUNNING if container.status == "running" else container.status
                        states.append(MachineStatus(name, state, VAGRANT_PROVIDER))
        except (docker.errors.DockerException, OSError):
            return []
        return states

    def _machines(self) -> dict[str, str]:
        """The machines file's machines: name -> vm_name (the container's name with the
        docker provider). Empty without a readable file."""
        if self.machines_file is None:
            return {}
        try:
            machines = json.loads(self.machines_file.read_text()).get("machines", [])
        except (OSError, ValueError):
            return {}
        return {str(m.get("name")): str(m.get("vm_name")) for m in machines}

    def ssh_targets(self, names: Iterable[str] = ()) -> dict[str, SSHTarget]:
        """Every running machine's SSH target, from one `vagrant ssh-config` call."""
        wanted = list(names)
        try:
            text = self.client().ssh_config(vm_name=machine_selector(wanted))
        except subprocess.CalledProcessError as exc:
            raise VagrantError(self._failure("ssh-config", None, exc)) from exc
        targets = parse_ssh_config(text)
        return {n: t for n, t in targets.items() if not wanted or n in wanted}

    def destroy(self, names: Iterable[str] = ()) -> float:
        """`vagrant destroy -f` of the machines (all by default); returns the seconds."""
        started = time.monotonic()
        selector = machine_selector(list(names))
        try:
            self.client().destroy(vm_name=selector)
        except subprocess.CalledProcessError as exc:
            raise VagrantError(self._failure("destroy", selector, exc)) from exc
        return time.monotonic() - started

    def _failure(self, command: str, name: str | None, exc: subprocess.CalledProcessError) -> str:
        target = f" {name}" if name else ""
        return (
            f"`vagrant {command}{target}` failed (exit {exc.returncode}) in {self.root} "
            f"with DOCKER_HOST={self.docker_host}. Its output ends:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        return file_tail(self.log_file, lines, missing="(no output)")


def machine_selector(names: list[str]) -> str | None:
    """One `vagrant` argument naming the machines: a name, or Vagrant's /regex/ for
    several (one command, so the docker provider brings them up in parallel)."""
    if not names:
        return None
    if len(names) == 1:
        return names[0]
    return "/^(" + "|".join(re.escape(n) for n in names) + ")$/"


def _report_line(line: str, say: OnItem) -> None:
    # Vagrant prints "==> a: Creating the container..." per machine: pass those on.
    text = line.strip()
    if text.startswith("==> ") and ": " in text:
        machine, _, message = text[4:].partition(": ")
        say(machine, message)
