"""`invoke validate`: the topology summary as data, its rendering, and the task itself
run as an unprivileged user (no root, nothing started, nothing written)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from invoke import Context
from rich.console import Console

from overlaylab.spec import load_spec_file
from overlaylab.spec.summary import (
    EngineSummary,
    KVSummary,
    NetworkSummary,
    NodeSummary,
    StackSummary,
    summarize,
    validate_spec,
)
from overlaylab.tasks import cluster
from overlaylab.tasks.spec import print_summary, print_validation
from overlaylab.up import pipeline
from overlaylab.up.pipeline import UpReport

REPO = Path(__file__).resolve().parents[2]
LAB_YML = REPO / "inventory" / "lab.yml"
NOBODY = 65534
STATE_ROOT = Path("/var/lib/overlaylab")

HEAD = "apiVersion: overlaylab/v1\nkind: Cluster\n"
SMALL_1450 = """
    name: {name}
    provider: {{type: local, state_dir: {state_dir}}}
    lab: {{mtu: 1450}}
    kv: null
    engine: {{cluster-store: null, cluster-advertise: null}}
    orchestration: {{mode: swarm-mode}}
    nodes:
      - {{name: m1, roles: [manager]}}
      - {{name: w1, address: 192.168.99.20, roles: [worker]}}
    networks:
      - name: front
      - name: back
        subnet: 10.0.10.0/24
        options: {{com.docker.network.driver.mtu: "1450"}}
    """
BROKEN = "name: Broken\nnodes:\n  - name: a\n    adress: 192.168.99.11\n"


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(HEAD + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def rendered(print_fn, *args) -> str:  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    print_fn(*args, Console(file=buffer, width=300, highlight=False, soft_wrap=True))
    return buffer.getvalue()


# --- the summary as data --------------------------------------------------------------


def test_summary_of_the_default_lab() -> None:
    summary = summarize(load_spec_file(LAB_YML))
    assert (summary.name, summary.provider, summary.orchestration) == ("lab", "local", "none")
    assert (summary.lab_subnet, summary.lab_mtu) == ("192.168.99.0/24", 1500)
    assert summary.nodes == (
        NodeSummary("kv", "192.168.99.10", ("kv",)),
        NodeSummary("node1", "192.168.99.11", ("engine",)),
        NodeSummary("node2", "192.168.99.12", ("engine",)),
        NodeSummary("node3", "192.168.99.13", ("engine",)),
    )
    assert summary.kv == KVSummary("etcd", "kv", "192.168.99.10", 2379)
    assert summary.kv.endpoint == "192.168.99.10:2379"
    # `cluster-store: auto` is shown as the URL the engines will get.
    assert summary.engine == EngineSummary("20.10", "etcd://192.168.99.10:2379", "eth1:2376", True)
    assert summary.networks == (NetworkSummary("dn", "overlay", "10.0.9.0/24", ()),)
    # The stack file as found: relative to the spec's folder, absolute here.
    assert summary.stacks == (
        StackSummary(
            "demo",
            REPO / "stacks" / "demo" / "docker-compose.yml",
            (("web", "node1"), ("mongo", "node2")),
        ),
    )
    assert summary.warnings == ()


def test_summary_without_kv_with_defaulted_addresses_and_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yml", SMALL_1450.format(name="s", state_dir=tmp_path / "st"))
    summary = summarize(load_spec_file(path))
    assert summary.kv is None
    assert summary.engine.cluster_store is None and summary.engine.cluster_advertise is None
    assert summary.orchestration == "swarm-mode"
    assert [(n.name, n.address, n.roles) for n in summary.nodes] == [
        ("m1", "192.168.99.10", ("manager",)),
        ("w1", "192.168.99.20", ("worker",)),
    ]
    assert summary.networks[0] == NetworkSummary("front", "overlay", None, (), False, True)
    assert summary.networks[1].options == (("com.docker.network.driver.mtu", "1450"),)
    assert summary.stacks == ()
    # The default-sized overlay warns; the one sized for the lab does not.
    assert [(w.path, w.line) for w in summary.warnings] == [("networks[0]", 13)]


def test_validate_spec_keeps_every_problem(tmp_path: Path) -> None:
    result = validate_spec(write(tmp_path, "b.yml", BROKEN))
    assert not result.ok and result.summary is None
    assert result.error is not None
    assert [p.split(":")[0] for p in result.error.problems] == [
        "line 3, name",
        "line 6, nodes[0].adress",
    ]
    missing = validate_spec(tmp_path / "nope.yml")
    assert not missing.ok and "file not found" in str(missing.error)


# --- rendering ------------------------------------------------------------------------


def test_rendered_summary_names_every_part_of_the_topology() -> None:
    text = rendered(print_summary, "inventory/lab.yml", summarize(load_spec_file(LAB_YML)))
    lines = text.splitlines()
    assert lines[0] == "inventory/lab.yml: valid"
    assert "  nodes     kv     192.168.99.10    kv" in lines
    assert "            node3  192.168.99.13    engine" in lines
    assert "  kv        etcd on kv (192.168.99.10:2379)" in lines
    assert (
        "  engine    20.10; cluster-store etcd://192.168.99.10:2379; "
        "cluster-advertise eth1:2376; tls on"
    ) in lines
    assert "  networks  dn (overlay) 10.0.9.0/24" in lines
    compose = REPO / "stacks" / "demo" / "docker-compose.yml"
    assert f"  stacks    demo ({compose}): web -> node1, mongo -> node2" in lines
    assert lines[-1] == "  warnings  none"


def test_rendered_summary_says_internal_and_attachable(tmp_path: Path) -> None:
    body = SMALL_1450.replace(
        "      - name: front\n", "      - {{name: front, internal: true, attachable: false}}\n"
    )
    path = write(tmp_path, "s.yml", body.format(name="s", state_dir=tmp_path / "st"))
    text = rendered(print_summary, str(path), summarize(load_spec_file(path)))
    assert (
        "front (overlay) subnet from the engine's pool; internal (no docker_gwbridge leg, "
        "no egress); not attachable (services only)"
    ) in text
    assert "back (overlay) 10.0.10.0/24; attachable; options" in text


def test_rendered_summary_shows_warnings_and_absent_parts(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yml", SMALL_1450.format(name="s", state_dir=tmp_path / "st"))
    text = rendered(print_summary, str(path), summarize(load_spec_file(path)))
    assert "  kv        none\n" in text
    assert "cluster-store none; cluster-advertise none" in text
    assert "  networks  front (overlay) subnet from the engine's pool; attachable\n" in text
    assert (
        'back (overlay) 10.0.10.0/24; attachable; options com.docker.network.driver.mtu: "1450"'
    ) in text
    assert "  stacks    none\n" in text
    assert "  warnings  line 13, networks[0]: overlay front will drop full-size packets" in text
    assert 'fix: set `options: {com.docker.network.driver.mtu: "1450"}` on network front' in text


def test_rendered_error_is_the_loader_paragraph(tmp_path: Path) -> None:
    path = write(tmp_path, "b.yml", BROKEN)
    buffer = io.StringIO()
    print_validation(validate_spec(path), Console(file=io.StringIO()), _console(buffer))
    text = buffer.getvalue()
    assert text.startswith(f"error: {path}: 2 problems in the cluster spec\n")
    assert "  - line 6, nodes[0].adress: unknown key; did you mean 'address'?" in text


def _console(buffer: io.StringIO) -> Console:
    return Console(file=buffer, width=300, highlight=False, soft_wrap=True)


# --- `up` shows the warnings before its steps -----------------------------------------


def test_up_prints_warnings_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "s.yml", SMALL_1450.format(name="s", state_dir=tmp_path / "st"))
    buffer = io.StringIO()
    monkeypatch.setattr(cluster, "err", _console(buffer))
    seen_at_start: list[str] = []

    def fake_up(ctx, retain=False):  # type: ignore[no-untyped-def]
        seen_at_start.append(buffer.getvalue())
        return UpReport(changed=["nodes"], seconds=0.1)

    # The task imports the pipeline when it runs: its `up` is replaced where it lives.
    monkeypatch.setattr(pipeline, "up", fake_up)
    cluster.up(Context(), inventory=str(path), quiet=True)
    [before_steps] = seen_at_start
    assert before_steps.startswith(
        f"warning: {path}: line 13, networks[0]: overlay front will drop full-size packets"
    )
    assert '\n  fix: set `options: {com.docker.network.driver.mtu: "1450"}` on network front' in (
        before_steps
    )
    assert "lab 's' is up" in buffer.getvalue()  # a warning does not stop `up`


# --- the task, as an unprivileged user ------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the unprivileged user can read and write (tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="overlaylab-validate-", dir="/tmp"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def unprivileged(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv  # already unprivileged
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop root for this test")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def run_validate(home: Path, *specs: str) -> subprocess.CompletedProcess[str]:
    args = [arg for spec in specs for arg in ("-i", spec)]
    argv = unprivileged([sys.executable, "-m", "invoke", "validate", *args])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.tools
def test_validate_runs_unprivileged_and_exits_by_validity(shared_dir: Path) -> None:
    name = "valnobody"  # a cluster name no other lab on this machine uses
    state_dir = shared_dir / "state"
    good = write(shared_dir, "good.yml", SMALL_1450.format(name=name, state_dir=state_dir))
    bad = write(shared_dir, "bad.yml", BROKEN)
    for path in (good, bad):
        path.chmod(0o644)
    whoami = subprocess.run(
        unprivileged([sys.executable, "-c", "import os; print(os.geteuid())"]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(whoami.stdout) != 0
    reach = subprocess.run(
        unprivileged([sys.executable, "-c", "import invoke, overlaylab"]),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if reach.returncode != 0:  # e.g. a checkout inside a 0700 folder (mktemp -d)
        pytest.skip(f"an unprivileged user cannot read this checkout: {reach.stderr.strip()}")
    before = sorted(p.name for p in shared_dir.iterdir())

    valid = run_validate(shared_dir, str(good), "inventory/lab.yml")
    assert valid.returncode == 0, valid.stderr
    assert f"{good}: valid" in valid.stdout and "inventory/lab.yml: valid" in valid.stdout
    assert "line 13, networks[0]: overlay front will drop" in valid.stdout
    assert "2 specs checked: 2 valid, 0 invalid" in valid.stderr

    mixed = run_validate(shared_dir, str(bad), str(good))
    assert mixed.returncode == 2
    assert "Traceback" not in mixed.stdout + mixed.stderr
    assert f"error: {bad}: 2 problems in the cluster spec" in mixed.stderr
    assert "line 6, nodes[0].adress: unknown key; did you mean 'address'?" in mixed.stderr
    assert f"{good}: valid" in mixed.stdout  # the valid one is still summarised
    assert f"2 specs checked: 1 valid, 1 invalid ({bad})" in mixed.stderr

    default = run_validate(shared_dir)  # no -i: inventory/lab.yml
    assert default.returncode == 0 and "inventory/lab.yml: valid" in default.stdout

    # Nothing written: not the spec's state folder (which this user could create), not
    # the default one, not the home folder.
    assert sorted(p.name for p in shared_dir.iterdir()) == before
    assert not state_dir.exists()
    assert not (STATE_ROOT / name).exists()
