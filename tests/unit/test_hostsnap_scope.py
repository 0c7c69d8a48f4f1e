"""Which processes the integration tests' host snapshot counts as a lab's.

The classification is tested on data (no root, no lab), then on real child processes
of this test against a scratch state folder.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from overlaylab.waiting import wait_until


def _hostsnap() -> ModuleType:
    """tests/integration/hostsnap.py: a helper module, not a test module."""
    if "hostsnap" in sys.modules:
        return sys.modules["hostsnap"]
    path = Path(__file__).resolve().parents[1] / "integration" / "hostsnap.py"
    spec = importlib.util.spec_from_file_location("hostsnap", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hostsnap"] = module  # dataclasses look their module up while built
    spec.loader.exec_module(module)
    return module


hostsnap = _hostsnap()
ProcessFacts = hostsnap.ProcessFacts
LabScope = hostsnap.LabScope
lab_process_reason = hostsnap.lab_process_reason

HOST_NS = "net:[4026531840]"
NODE1_NS = "net:[4026532301]"
CONTAINER_NS = "net:[4026532777]"  # a container's own namespace: in no /run/netns file
ORPHAN_NS = "net:[4026532999]"  # a lab namespace whose /run/netns file `down` removed
SCOPE = LabScope(host_netns=HOST_NS, lab_netns={NODE1_NS: "ol-lab.node1"})
USER_CGROUP = ("/user.slice/user-0.slice/session-3.scope",)


def facts(
    cmdline: str,
    *,
    comm: str | None = None,
    netns: str | None = HOST_NS,
    cgroups: tuple[str, ...] = USER_CGROUP,
    open_paths: tuple[str, ...] = ("/dev/null", "/root"),
) -> ProcessFacts:
    argv = tuple(cmdline.split())
    return ProcessFacts(
        pid=4242,
        comm=comm if comm is not None else Path(argv[0]).name[:15],
        cmdline=argv,
        netns=netns,
        cgroups=cgroups,
        open_paths=open_paths,
    )


@pytest.mark.parametrize(
    "process",
    [
        facts("sleep 240"),
        facts("bash"),
        facts("vim /etc/docker/daemon.json"),
        # The machine's own docker: its servers run in the host's network namespace.
        facts("/usr/bin/dockerd -H fd://"),
        facts("containerd-shim-runc-v2 -namespace moby -id 1f2e -address /run/containerd/x"),
        facts("/usr/bin/docker-proxy -proto tcp -host-port 8080"),
        facts("sshd: root@pts/0", comm="sshd"),
        # Another program in a container of the machine's docker: not a lab program.
        facts("java -jar jenkins.war", netns=CONTAINER_NS),
        facts("sleep 60", netns=None),  # a namespace we may not read proves nothing
        facts("dockerd --config-file /tmp/other/daemon.json", netns=None),
        # Another folder whose name merely starts like the state folder.
        facts("tail -f /var/lib/overlaylab2/lab/x.log"),
        facts("python3 worker.py", open_paths=("/var/lib/overlaylabx/lock",)),
    ],
    ids=lambda p: " ".join(p.cmdline)[:40],
)
def test_unrelated_processes_are_none_of_the_labs_business(process: ProcessFacts) -> None:
    assert lab_process_reason(process, SCOPE) is None


@pytest.mark.parametrize(
    ("process", "reason"),
    [
        (facts("dockerd --config-file /srv/d.json", netns=NODE1_NS), "in netns ol-lab.node1"),
        (facts("sleep 60", netns=NODE1_NS), "in netns ol-lab.node1"),  # anything in a node
        (
            facts(
                "nginx: master process",
                comm="nginx",
                netns=CONTAINER_NS,
                cgroups=("/overlaylab-lab.node1/5f1e2d",),
            ),
            "in cgroup /overlaylab-lab.node1/5f1e2d",
        ),
        (
            facts("mongod", netns=CONTAINER_NS, cgroups=("/sys/fs/x", "/overlaylab-lab2.node3")),
            "in cgroup /overlaylab-lab2.node3",
        ),
        (
            facts("dockerd --config-file /srv/d.json", netns=ORPHAN_NS),
            "lab program dockerd outside the host's network namespace",
        ),
        (
            facts("containerd-shim-runc-v2 -namespace moby -id 1f2e", netns=ORPHAN_NS),
            "lab program containerd-shim-runc-v2 outside the host's network namespace",
        ),
        (
            facts("etcd --name kv", netns=ORPHAN_NS),
            "lab program etcd outside the host's network namespace",
        ),
        (
            facts("java -cp /usr/share/zookeeper/zookeeper.jar QuorumPeerMain", netns=ORPHAN_NS),
            "lab program java outside the host's network namespace",
        ),
        (
            facts("/usr/sbin/sshd -D -f /srv/sshd_config", netns=ORPHAN_NS),
            "lab program sshd outside the host's network namespace",
        ),
        (
            facts("/usr/bin/python3 /usr/bin/docker-compose -p demo up", comm="docker-compose"),
            "lab program docker-compose",
        ),
        (facts("ruby /usr/bin/vagrant up", comm="vagrant"), "lab program vagrant"),
        (
            facts("dockerd --config-file /var/lib/overlaylab/lab/nodes/node1/daemon.json"),
            "command line names /var/lib/overlaylab",
        ),
        (
            facts("etcd --data-dir=/var/lib/overlaylab/lab/nodes/kv/etcd"),
            "command line names /var/lib/overlaylab",
        ),
        (facts("rm -rf /var/lib/overlaylab"), "command line names /var/lib/overlaylab"),
        (
            facts("sh -c", open_paths=("/dev/null", "/var/lib/overlaylab/lab/nodes/node1/x.log")),
            "uses /var/lib/overlaylab/lab/nodes/node1/x.log",
        ),
        (
            facts("bash", open_paths=("/dev/pts/0", "/var/lib/overlaylab/lab")),  # its cwd
            "uses /var/lib/overlaylab/lab",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v.cmdline)[:40],
)
def test_what_a_lab_can_leave_is_counted(process: ProcessFacts, reason: str) -> None:
    assert lab_process_reason(process, SCOPE) == reason


def test_the_state_folder_is_the_scope_s_own() -> None:
    scope = LabScope(host_netns=HOST_NS, lab_netns={}, state_root="/srv/labs")
    assert lab_process_reason(facts("etcd --data-dir /srv/labs/x/etcd"), scope)
    assert lab_process_reason(facts("etcd --data-dir /var/lib/overlaylab/x"), scope) is None


# --- the same rules over this machine's real /proc, with a scratch state folder ----------
@pytest.fixture
def children(tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """An unrelated sleep, and processes naming or using the scratch state folder."""
    lab_dir = tmp_path / "state" / "lab"
    lab_dir.mkdir(parents=True)
    log = lab_dir / "service.log"
    wait = "import time; time.sleep(60)"
    procs = {
        "unrelated": subprocess.Popen(["sleep", "60"]),
        "names": subprocess.Popen([sys.executable, "-c", wait, str(lab_dir / "etcd")]),
        "cwd": subprocess.Popen([sys.executable, "-c", wait], cwd=lab_dir),
        # The log's path arrives through the environment: only the open file names it.
        "open": subprocess.Popen(
            [sys.executable, "-c", f"import os; f = open(os.environ['LOG'], 'a'); {wait}"],
            cwd=tmp_path,
            env={"LOG": str(log)},
        ),
    }
    try:
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_real_processes_are_scoped(
    children: dict[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    scope = LabScope.current()
    scope = LabScope(scope.host_netns, scope.lab_netns, state_root=str(tmp_path / "state"))
    log = tmp_path / "state" / "lab" / "service.log"

    def once_the_file_is_open() -> dict[int, str] | None:
        # The child opens its file a moment after it starts.
        seen = hostsnap._processes(scope)
        return seen if children["open"].pid in seen else None

    found = wait_until(once_the_file_is_open, 10)
    assert found is not None
    assert children["unrelated"].pid not in found
    assert "command line names" in found[children["names"].pid]
    assert f"uses {tmp_path / 'state' / 'lab'}]" in found[children["cwd"].pid]
    assert f"uses {log}]" in found[children["open"].pid]


def test_facts_of_a_real_process(children: dict[str, subprocess.Popen[bytes]]) -> None:
    pid = children["unrelated"].pid
    seen = hostsnap._process_facts(Path(f"/proc/{pid}"))
    assert seen is not None
    assert (seen.pid, seen.comm, seen.cmdline) == (pid, "sleep", ("sleep", "60"))
    assert seen.netns == LabScope.current().host_netns
    assert seen.cgroups and all(path.startswith("/") for path in seen.cgroups)
