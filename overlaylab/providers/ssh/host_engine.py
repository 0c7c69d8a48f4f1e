"""The host's own Docker service as the lab's engine (`provider.engine: host`).

This is how docker-machine configured its engines: the lab's settings go to
/etc/docker/daemon.json, and where systemd runs, a drop-in starts dockerd without the
packaged unit's `-H fd://` (dockerd refuses `hosts` from a flag and from daemon.json at
once); elsewhere the host's init script (/etc/init.d/docker) runs it. Before the lab
changes anything, `save` keeps what it will change in the lab folder: daemon.json,
the drop-in, whether the engine ran, whether docker_gwbridge existed. `restore` takes
back what the lab put in the engine (its containers, networks and loaded images, found
by label and by the images step's record), puts the configuration back as it was, and
starts the engine again only if it ran before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from overlaylab.layout import IMAGES_RECORD
from overlaylab.nodeconf import DROP_IN, HOST_DAEMON_JSON, HOST_TLS_DIR
from overlaylab.providers.command import CommandResult

# Debian's init script appends dockerd's output here.
SYSV_LOG = PurePosixPath("/var/log/docker.log")
START_MARKER = "--- overlaylab: starting dockerd"


# Shell functions every script below starts with: which service manager runs docker.
_MANAGER = """
if [ -d /run/systemd/system ]; then manager=systemd; else manager=sysv; fi
alive() {
  if [ $manager = systemd ]; then systemctl is-active --quiet docker.service
  else service docker status >/dev/null 2>&1; fi
}
stop() {
  if [ $manager = systemd ]; then systemctl stop docker.service
  elif alive; then service docker stop >/dev/null; fi
}
start() {
  if [ $manager = systemd ]; then systemctl daemon-reload && systemctl restart docker.service
  else service docker start >/dev/null; fi
}
"""

# $1 backup folder, $2 daemon.json, $3 TLS folder, $4 drop-in. Once per lab: a second
# `up` must not save the lab's own configuration as the host's.
_SAVE = (
    _MANAGER
    + """
b=$1
[ -e "$b/saved" ] && exit 0
mkdir -p "$b"
[ -e "$2" ] && cp -p "$2" "$b/daemon.json"
[ -e "$4" ] && cp -p "$4" "$b/drop-in"
[ -e "$3" ] && touch "$b/had-tls-dir"
[ -e /sys/class/net/docker_gwbridge ] && touch "$b/had-gwbridge"
alive && touch "$b/was-running"
alive && [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ] &&
  touch "$b/had-swarm"
echo $manager > "$b/saved"
"""
)

_START = (
    _MANAGER
    + """
[ $manager = sysv ] && printf '%s at %s\\n' "$1" "$(date +%s)" >> "$2"
date +%s > "$3"
start
"""
)

# $1 backup, $2 cluster, $3 daemon.json, $4 TLS folder, $5 drop-in, $6 images record;
# then the stacks' compose project names.
_RESTORE = (
    _MANAGER
    + """
b=$1 cluster=$2 config=$3 tls=$4 dropin=$5 images=$6; shift 6
[ -e "$b/saved" ] || exit 0
failed=""
if alive; then
  # A swarm the lab made (swarm mode) is left first: its tasks go with it.
  if [ ! -e "$b/had-swarm" ] &&
     [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
    docker swarm leave --force >/dev/null || failed="$failed swarm"
  fi
  ids=$(docker ps -aq --filter "label=overlaylab.cluster=$cluster")
  # Local networks only: the lab's overlays live in its KV store, which goes with the
  # lab, and cannot be removed here while another host still has containers on them.
  nets=$(docker network ls -q --filter scope=local --filter "label=overlaylab.cluster=$cluster")
  for project in "$@"; do
    ids="$ids $(docker ps -aq --filter "label=com.docker.compose.project=$project")"
    nets="$nets $(docker network ls -q --filter scope=local \\
      --filter "label=com.docker.compose.project=$project")"
  done
  [ -z "$(echo $ids)" ] || docker rm -f -v $ids >/dev/null || failed="$failed containers"
  [ -z "$(echo $nets)" ] || docker network rm $nets >/dev/null || failed="$failed networks"
  if [ ! -e "$b/had-gwbridge" ] && docker network inspect docker_gwbridge >/dev/null 2>&1; then
    docker network rm docker_gwbridge >/dev/null || failed="$failed docker_gwbridge"
  fi
  if [ -s "$images" ]; then
    docker image rm $(cat "$images") >/dev/null || failed="$failed images($(cat "$images"))"
  fi
fi
if [ -n "$failed" ]; then
  # The engine keeps the lab's configuration, and the backup stays, for the next `down`.
  echo "cannot remove the lab's$failed from the engine"; exit 0
fi
stop || { echo "cannot stop docker"; exit 0; }
if [ -e "$b/daemon.json" ]; then cp -p "$b/daemon.json" "$config"; else rm -f "$config"; fi
if [ -e "$b/drop-in" ]; then cp -p "$b/drop-in" "$dropin"; else rm -f "$dropin"; fi
rmdir "$(dirname "$dropin")" 2>/dev/null
[ -e "$b/had-tls-dir" ] || rm -rf "$tls"
if [ $manager = systemd ]; then systemctl daemon-reload; fi
if [ -e "$b/was-running" ]; then start || echo "cannot start docker again"; fi
rm -rf "$b"
"""
)


class Runs(Protocol):
    """What the host engine needs of its node: a command as root."""

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult: ...

    def put_file(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None: ...

    def read_file(self, path: PurePosixPath) -> bytes | None: ...


@dataclass(frozen=True)
class HostDocker:
    """Start, stop and read a host's docker service; save and restore its setup.

    It holds what is the same for every call; the node to act on is each method's
    first argument (the node holds this object: it cannot be built with one)."""

    cluster: str
    lab_root: PurePosixPath  # the node's lab folder (backups, the images record)
    drop_in: str  # the rendered systemd drop-in (nodeconf.dockerd_drop_in)
    projects: tuple[str, ...] = ()  # compose project names of the lab's stacks
    daemon_json: PurePosixPath = HOST_DAEMON_JSON
    tls_dir: PurePosixPath = HOST_TLS_DIR
    drop_in_path: PurePosixPath = DROP_IN
    sysv_log: PurePosixPath = SYSV_LOG

    @property
    def backup(self) -> PurePosixPath:
        return self.lab_root / "host-docker"

    @staticmethod
    def _sh(node: Runs, script: str, *args: str, timeout: float = 120) -> CommandResult:
        return node.run(["sh", "-c", script, "sh", *args], check=False, timeout=timeout)

    def _manager(self, node: Runs) -> str:
        saved = node.read_file(self.backup / "saved")
        return saved.decode().strip() if saved else "sysv"

    def save(self, node: Runs) -> None:
        self._sh(
            node,
            _SAVE,
            str(self.backup),
            str(self.daemon_json),
            str(self.tls_dir),
            str(self.drop_in_path),
        ).check()

    def start(self, node: Runs) -> None:
        if self._manager(node) == "systemd":
            node.put_file(self.drop_in_path, self.drop_in.encode())
        started = self.backup / "started"
        self._sh(node, _START, START_MARKER, str(self.sysv_log), str(started)).check()

    def stop(self, node: Runs) -> None:
        self._sh(node, _MANAGER + "stop").check()

    def alive(self, node: Runs) -> bool:
        return self._sh(node, _MANAGER + "alive").returncode == 0

    def log(self, node: Runs) -> str | None:
        if self._manager(node) == "systemd":
            started = node.read_file(self.backup / "started")
            since = ["--since", f"@{started.decode().strip()}"] if started else []
            result = node.run(
                ["journalctl", "-u", "docker.service", "--no-pager", "-o", "cat", *since],
                check=False,
            )
            return result.stdout if result.returncode == 0 else None
        data = node.read_file(self.sysv_log)
        if data is None:
            return None
        return data.decode(errors="replace").rsplit(START_MARKER, 1)[-1]

    def log_location(self, node: Runs) -> str:
        if self._manager(node) == "systemd":
            return "journalctl -u docker.service"
        return str(self.sysv_log)

    def restore(self, node: Runs) -> list[str]:
        """Put the host's engine back as `save` found it; what could not be done."""
        result = self._sh(
            node,
            _RESTORE,
            str(self.backup),
            self.cluster,
            str(self.daemon_json),
            str(self.tls_dir),
            str(self.drop_in_path),
            str(self.lab_root / IMAGES_RECORD),
            *self.projects,
            timeout=180,
        )
        problems = [line for line in result.stdout.splitlines() if line.strip()]
        if result.returncode != 0:
            problems.append(f"restore script exit {result.returncode}: {result.stderr.strip()}")
        return problems
