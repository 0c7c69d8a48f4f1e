"""What an engine the lab lost leaves behind, which stops the next one from starting.

A dockerd that exits by itself removes its pid file. One killed (SIGKILL, OOM, a fault)
leaves it, and stays a zombie until its parent reaps it: the parent is init once the
command that started it has exited, and init can take its time. Meanwhile the next
dockerd refuses to start ("pid file found, ensure docker is not running"), because the
pid still shows in /proc. Its containerd dies with it (dockerd starts it with a
parent-death signal); the next dockerd checks containerd.pid with kill -0, which a
zombie passes, takes the dead containerd for a live one and waits on its socket until it
gives up ("timeout waiting for containerd").

A pid file is stale when its process is gone, a zombie, or another program (the pid was
reused). A dockerd still alive is the node's engine, which the lab lost track of (an
`up` killed between starting it and writing down its pid): it is adopted, its pid
written where the lab keeps it, and its containerd is its own. A containerd alive while
its dockerd is dead is dying: it is waited for, and forgotten once it is dead.
"""

from __future__ import annotations

from overlaylab.providers.base import ENGINE_SERVICE
from overlaylab.providers.base import Node as NodeHandle

DYING_WAIT = 10.0  # seconds a dying containerd gets to become a zombie

# Arguments: tenths of a second to wait, the lab's pid file for the engine, dockerd's own
# pid file, containerd's.
FORGET_STALE = r"""
wait_tenths=$1 ours=$2 dockerd_pid=$3 containerd_pid=$4
state() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1; }
# The pid in file $1 if it is a live (not zombie) $2, else nothing.
live() {
  pid=$(cat "$1" 2>/dev/null) || return 1
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && [ "$(state "$pid")" != Z ] || return 1
  echo "$pid"
}
if pid=$(live "$dockerd_pid" dockerd); then
  echo "$pid" > "$ours"
  echo adopted
  exit 0
fi
rm -f "$dockerd_pid"
i=0
while live "$containerd_pid" containerd >/dev/null && [ $i -lt "$wait_tenths" ]; do
  sleep 0.1; i=$((i+1))
done
live "$containerd_pid" containerd >/dev/null || rm -f "$containerd_pid"
exit 0
"""


def forget_dead_engine(handle: NodeHandle, wait: float = DYING_WAIT) -> bool:
    """Clear what a private engine the lab does not see running left behind (see the
    module's docstring). True when a live dockerd was found and adopted instead.

    Only for an engine that keeps its exec root to itself (several on one machine): a
    real host's dockerd and its pid files are the host's, never touched here. Call it only
    when the lab sees no engine running on the node."""
    if not handle.paths.private_engine:
        return False
    exec_root = handle.paths.exec_root
    argv = [
        str(max(0, round(wait * 10))),
        str(handle.paths.root / f"{ENGINE_SERVICE}.pid"),
        str(exec_root / "dockerd.pid"),
        str(exec_root / "containerd" / "containerd.pid"),
    ]
    done = handle.run(["sh", "-c", FORGET_STALE, "sh", *argv], check=False, timeout=wait + 30)
    return done.stdout.strip() == "adopted"
