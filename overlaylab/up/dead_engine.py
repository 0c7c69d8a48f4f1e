"""What a killed engine leaves behind that stops the next one from starting.

A dockerd that exits by itself removes its pid file. One killed (SIGKILL, OOM, a fault)
leaves it, and stays a zombie until its parent reaps it: the parent is init once the
command that started it has exited, and init can take its time. Meanwhile the next
dockerd refuses to start ("pid file found, ensure docker is not running"), because the
pid still shows in /proc. Its containerd dies with it (dockerd starts it with a
parent-death signal); the next dockerd checks containerd.pid with kill -0, which a
zombie passes, takes the dead containerd for a live one and waits on its socket until it
gives up ("timeout waiting for containerd").

A pid file is stale when its process is gone, a zombie, or another program (the pid was
reused). One whose process is still that program, dying, is waited for (a dying
containerd is not a zombie yet) and forgotten once it is dead.
"""

from __future__ import annotations

from overlaylab.providers.base import Node as NodeHandle

DYING_WAIT = 10.0  # seconds a dying engine or containerd gets to become a zombie

# Arguments: the seconds to wait, then pairs of pid file and the program it must name.
FORGET_STALE = r"""
wait_tenths=$1; shift
state() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1; }
while [ $# -ge 2 ]; do
  f=$1; program=$2; shift 2
  pid=$(cat "$f" 2>/dev/null) || continue
  case "$pid" in ''|*[!0-9]*) rm -f "$f"; continue ;; esac
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$program" ]; then
    i=0
    while [ -d "/proc/$pid" ] && [ "$(state "$pid")" != Z ] && [ $i -lt "$wait_tenths" ]; do
      sleep 0.1; i=$((i+1))
    done
    [ -d "/proc/$pid" ] && [ "$(state "$pid")" != Z ] && continue
  fi
  rm -f "$f"
done
exit 0
"""


def forget_dead_engine(handle: NodeHandle, wait: float = DYING_WAIT) -> None:
    """Remove the pid files a dead private engine left (see the module's docstring).

    Only for an engine that keeps its exec root to itself (several on one machine): a
    real host's dockerd and its pid files are the host's, never touched here. Call it only
    when the engine is not running."""
    if not handle.paths.private_engine:
        return
    exec_root = handle.paths.exec_root
    pairs = [
        str(exec_root / "dockerd.pid"),
        "dockerd",
        str(exec_root / "containerd" / "containerd.pid"),
        "containerd",
    ]
    tenths = str(max(0, round(wait * 10)))
    handle.run(["sh", "-c", FORGET_STALE, "sh", tenths, *pairs], check=False, timeout=wait + 30)
