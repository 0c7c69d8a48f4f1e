"""The decision of every step of `up`: the thing is there and right, half there, or missing.

Present and right: the step only looks (returns False, changes nothing). Half there:
it does exactly what is missing. Missing: it makes it. The provider, engines and
`ip` are fakes (tests/unit/fakelab.py, the Up* classes) that record what they were asked to do.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from fakelab import (
    FakeNetlink,
    UpApi,
    UpEngine,
    UpProvider,
    captured_progress,
    classic_lab_spec,
    engines_sharing_a_kv,
    fake_context,
    image_tarball,
    network_info,
)
from lab_specs import LAB_YML, SWARM_YML, lab_variant, make_ctx, run_for

from overlaylab.context import LabContext
from overlaylab.errors import CommandError, NodeError, OverlaylabError
from overlaylab.providers import kv_program
from overlaylab.providers.command import CommandResult
from overlaylab.providers.host_runner import HostRunner
from overlaylab.providers.local import memory_state, plumbing, teardown
from overlaylab.spec import load_spec
from overlaylab.spec.models import PROBE_IMAGE, ClusterSpec
from overlaylab.up import certs as tls
from overlaylab.up.steps import engines, gossip, images, kv, networks, stacks
from overlaylab.up.steps.engines import ensure_engines
from overlaylab.up.steps.gossip import ensure_gossip
from overlaylab.up.steps.images import ensure_images
from overlaylab.up.steps.kv import ensure_kv
from overlaylab.up.steps.networks import ensure_networks
from overlaylab.up.steps.nodes import ensure_nodes
from overlaylab.up.steps.stacks import ensure_stacks
from overlaylab.up.steps.tls import ensure_tls

ENGINES = ["node1", "node2", "node3"]


# --- nodes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("existed", [True, False])
def test_nodes_step_provisions_either_way_and_changes_only_a_new_lab(
    existed: bool, tmp_path: Path
) -> None:
    provider = UpProvider(lab_exists=existed)
    ctx = fake_context(tmp_path, provider)
    assert ensure_nodes(ctx, run_for(ctx)) is (not existed)
    # An existing lab is completed quietly (after an interruption); a new one says each part.
    on_item = None if existed else ctx.progress.item
    assert provider.actions("provision") == [("provision", on_item)]


class LocalLab:
    """The local provider over fake plumbing: what exists before `provision`, what it did."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ctx = make_ctx(load_spec(LAB_YML), tmp_path / "state")
        self.layout = self.ctx.layout
        self.ip = FakeNetlink()
        # Every way the provider wires the lab goes through `plumbing`; anything left
        # unfaked there fails loudly instead of building a real lab from a unit test.
        # Pure: composed of the (faked) calls below, with no netlink of their own.
        pure = {"retrying", "cable_host", "in_namespace"}
        for name in vars(plumbing):
            if callable(getattr(plumbing, name)) and not name[0].isupper() and name not in pure:
                monkeypatch.setattr(plumbing, name, refuse(name), raising=False)
        monkeypatch.setattr(plumbing, "create_namespace", self.ip.create_namespace)
        monkeypatch.setattr(plumbing, "links", self.ip.open_links)
        monkeypatch.setattr(teardown, "record_host_footprint", lambda layout: None)
        monkeypatch.setattr(
            teardown, "lab_namespaces", lambda layout: sorted(self._own(self.ip.namespaces))
        )
        # The state folder's tmpfs is asked for, never mounted from a unit test.
        self.state_mounts: list[Path] = []
        monkeypatch.setattr(
            memory_state,
            "mount_state_in_memory",
            lambda layout: self.state_mounts.append(layout.state_dir) is None,
        )

    def _own(self, namespaces: set[str]) -> set[str]:
        return {ns for ns in namespaces if self.layout.owns_ns(ns)}

    def provision(self) -> list[tuple[str | None, ...]]:
        """Provision once; what it added or deleted, in order."""
        self.ip.commands.clear()
        self.ctx.provider.provision()
        return self.ip.mutations()

    def node_pair(self, node: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return (self.layout.switch_ns, f"p-{node}"), (self.layout.node_ns(node), "eth1")


def refuse(name: str) -> Callable[..., object]:
    def refused(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"plumbing.{name} is not faked: a unit test must not touch netlink")

    return refused


def test_provision_of_a_new_lab_makes_switch_nodes_and_host_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalLab(tmp_path, monkeypatch)
    sw = local.layout.switch_ns
    made = local.provision()
    nodes = ["kv", *ENGINES]
    assert made == [
        ("netns add", sw),
        ("link add", sw, "br0"),
        *[
            step
            for n in nodes
            for step in (("netns add", f"ol-lab.{n}"), ("link add", sw, f"p-{n}"))
        ],
        ("link add", None, "ol-lab"),
    ]
    assert local.ip.namespaces == {sw, *(f"ol-lab.{n}" for n in nodes)}
    for node in nodes:
        switch_end, node_end = local.node_pair(node)
        assert local.ip.peers[switch_end] == node_end
    assert local.ip.peers[(None, "ol-lab")] == (sw, "host")
    assert local.state_mounts == [local.layout.state_dir]  # the state folder in memory


def test_provision_of_a_complete_lab_adds_and_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalLab(tmp_path, monkeypatch)
    local.provision()
    links = set(local.ip.links)
    assert local.provision() == []
    assert local.ip.links == links
    # It still (re)applies addresses and link settings, which are idempotent.
    replace = ("addr replace", "ol-lab.node2", "eth1", "192.168.99.12/24")
    assert replace in local.ip.commands


def test_provision_keeps_a_namespace_that_exists_and_cables_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Interrupted right after `ip netns add ol-lab.node2`: the namespace is there, empty.
    local = LocalLab(tmp_path, monkeypatch)
    local.provision()
    for end in local.node_pair("node2"):
        local.ip.delete_link(end)
    assert local.provision() == [("link add", local.layout.switch_ns, "p-node2")]
    switch_end, node_end = local.node_pair("node2")
    assert local.ip.peers[switch_end] == node_end


def test_provision_replaces_a_half_made_veth_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalLab(tmp_path, monkeypatch)
    local.provision()
    switch_end, node_end = local.node_pair("node2")
    local.ip.delete_link(switch_end)
    local.ip.links.add(switch_end)  # the switch end is left, its node end is gone
    sw = local.layout.switch_ns
    assert local.provision() == [("link del", sw, "p-node2"), ("link add", sw, "p-node2")]
    assert local.ip.peers[switch_end] == node_end


def test_provision_replaces_a_half_made_host_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalLab(tmp_path, monkeypatch)
    local.provision()
    sw = local.layout.switch_ns
    local.ip.delete_link((None, "ol-lab"))
    local.ip.links.add((sw, "host"))
    assert local.provision() == [("link del", sw, "host"), ("link add", None, "ol-lab")]
    assert local.ip.peers[(None, "ol-lab")] == (sw, "host")


# --- tls -------------------------------------------------------------------------------------
def tls_files(ctx: LabContext) -> dict[str, bytes]:
    root = ctx.layout.state_dir
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.pem"))}


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def cert_dirs(ctx: LabContext) -> list[Path]:
    return [ctx.layout.node_dir(n) / "tls" for n in ENGINES] + [ctx.layout.client_cert_dir]


def test_tls_off_makes_nothing(tmp_path: Path) -> None:
    ctx = fake_context(tmp_path, UpProvider(), spec=lab_variant(engine={"tls": False}))
    assert ensure_tls(ctx, run_for(ctx)) is False
    assert not ctx.layout.state_dir.exists()


def test_tls_missing_makes_ca_and_every_certificate(tmp_path: Path) -> None:
    progress, said = captured_progress()
    ctx = fake_context(tmp_path, UpProvider(), progress=progress)
    assert ensure_tls(ctx, run_for(ctx)) is True
    expected = {"tls/ca.pem", "tls/ca-key.pem"}
    for folder in [f"nodes/{n}/tls" for n in ENGINES] + ["tls/client"]:
        expected |= {f"{folder}/ca.pem", f"{folder}/cert.pem", f"{folder}/key.pem"}
    assert set(tls_files(ctx)) == expected
    ca = certificate(ctx.layout.tls_dir / "ca.pem")
    for folder in cert_dirs(ctx):
        certificate(folder / "cert.pem").verify_directly_issued_by(ca)
    assert (
        f"tls: certificates for a new CA, node1, node2, node3, the client in {ctx.layout.tls_dir}"
        in said.getvalue()
    )


def test_tls_present_keeps_every_file(tmp_path: Path) -> None:
    ctx = fake_context(tmp_path, UpProvider())
    ensure_tls(ctx, run_for(ctx))
    before = tls_files(ctx)
    assert ensure_tls(ctx, run_for(ctx)) is False
    assert tls_files(ctx) == before


def test_tls_reissues_only_a_missing_certificate_from_the_same_ca(tmp_path: Path) -> None:
    ctx = fake_context(tmp_path, UpProvider())
    ensure_tls(ctx, run_for(ctx))
    before = tls_files(ctx)
    (ctx.layout.node_dir("node2") / "tls" / "key.pem").unlink()
    ensure_tls(ctx, run_for(ctx))
    after = tls_files(ctx)
    renewed = {name for name in before if after[name] != before[name]}
    assert renewed == {"nodes/node2/tls/cert.pem", "nodes/node2/tls/key.pem"}
    ca = certificate(ctx.layout.tls_dir / "ca.pem")
    certificate(ctx.layout.node_dir("node2") / "tls" / "cert.pem").verify_directly_issued_by(ca)


def test_tls_reports_a_reissued_certificate_as_a_change(tmp_path: Path) -> None:
    ctx = fake_context(tmp_path, UpProvider())
    ensure_tls(ctx, run_for(ctx))
    (ctx.layout.node_dir("node2") / "tls" / "cert.pem").unlink()
    assert ensure_tls(ctx, run_for(ctx)) is True


def test_tls_with_a_new_ca_leaves_no_certificate_of_the_old_one(tmp_path: Path) -> None:
    ctx = fake_context(tmp_path, UpProvider())
    ensure_tls(ctx, run_for(ctx))
    (ctx.layout.tls_dir / "ca-key.pem").unlink()
    ensure_tls(ctx, run_for(ctx))
    ca = certificate(ctx.layout.tls_dir / "ca.pem")
    for folder in cert_dirs(ctx):
        certificate(folder / "cert.pem").verify_directly_issued_by(ca)


def test_tls_reissues_an_expired_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = fake_context(tmp_path, UpProvider())
    with monkeypatch.context() as patch:
        patch.setattr(tls, "VALIDITY", dt.timedelta(minutes=-1))  # already expired
        ensure_tls(ctx, run_for(ctx))
    ensure_tls(ctx, run_for(ctx))
    now = dt.datetime.now(dt.UTC)
    for folder in cert_dirs(ctx):
        assert certificate(folder / "cert.pem").not_valid_after_utc > now


# --- kv --------------------------------------------------------------------------------------
KV_ADDRESS = ("192.168.99.10", 2379)


@pytest.fixture
def kv_lab(tmp_path: Path) -> tuple[LabContext, UpProvider]:
    """The default lab's etcd: it answers /v2/keys/ when the provider says `kv` answers."""
    provider = UpProvider()
    progress, _ = captured_progress()
    ctx = fake_context(tmp_path, provider, progress=progress)
    provider.pages[(*KV_ADDRESS, "/v2/keys/")] = (200, '{"action":"get","node":{"dir":true}}')
    return ctx, provider


def said(ctx: LabContext) -> str:
    return ctx.progress.console.file.getvalue()  # type: ignore[attr-defined]


def test_kv_absent_from_the_spec_starts_nothing(tmp_path: Path) -> None:
    provider = UpProvider()
    ctx = fake_context(tmp_path, provider, spec=load_spec(SWARM_YML))
    assert ensure_kv(ctx, run_for(ctx)) is False
    assert provider.calls == []


def test_kv_serving_is_left_alone(kv_lab: tuple[LabContext, UpProvider]) -> None:
    ctx, provider = kv_lab
    provider.running[("kv", "etcd")] = "etcd"
    provider.answering.add("kv")
    assert ensure_kv(ctx, run_for(ctx)) is False
    assert provider.actions("start_service", "stop_service") == []
    assert "kv: etcd already serving on 192.168.99.10:2379" in said(ctx)


def test_kv_missing_is_started(kv_lab: tuple[LabContext, UpProvider]) -> None:
    ctx, provider = kv_lab
    assert ensure_kv(ctx, run_for(ctx)) is True
    _, argv = kv.kv_command(ctx)
    assert provider.actions("start_service", "stop_service") == [
        ("start_service", "kv", "etcd", tuple(argv))
    ]
    # Readiness was asked of etcd's v2 API, from the KV node itself.
    assert provider.probes[-1] == ("kv", *KV_ADDRESS, "/v2/keys/")
    assert "kv: etcd serving on 192.168.99.10:2379" in said(ctx)


def test_a_kv_node_without_etcd_gets_this_machines_copy(
    kv_lab: tuple[LabContext, UpProvider], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, provider = kv_lab
    provider.programs_missing["kv"] = {"etcd"}
    here = tmp_path / "here-etcd"
    here.write_bytes(b"\x7fELF etcd of this machine")
    monkeypatch.setattr(kv_program, "local_program", lambda program: str(here))
    assert ensure_kv(ctx, run_for(ctx)) is True
    brought = ctx.layout.node_dir("kv") / "bin" / "etcd"
    assert brought.read_bytes() == here.read_bytes()
    assert brought.stat().st_mode & 0o777 == 0o755
    [(_, _, _, argv)] = provider.actions("start_service")
    assert argv[0] == str(brought)
    assert "kv: etcd is not installed there: brought this machine's" in said(ctx)
    # A second start finds the copy in place and does not send it again.
    provider.running.clear()
    before = said(ctx)
    assert ensure_kv(ctx, run_for(ctx)) is True
    assert "brought" not in said(ctx)[len(before) :]


def test_a_brought_program_that_does_not_run_there_is_a_clear_error(
    kv_lab: tuple[LabContext, UpProvider], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This machine's etcd needs this machine's C library: an older host cannot run it."""
    ctx, provider = kv_lab
    provider.programs_missing["kv"] = {"etcd"}
    provider.programs_broken.add("kv")
    here = tmp_path / "here-etcd"
    here.write_bytes(b"\x7fELF etcd of this machine")
    monkeypatch.setattr(kv_program, "local_program", lambda program: str(here))
    with pytest.raises(OverlaylabError, match=r"does not run there .*install etcd on kv"):
        ensure_kv(ctx, run_for(ctx))
    assert provider.actions("start_service") == []


def test_a_kv_node_without_its_program_and_none_here_is_a_clear_error(
    kv_lab: tuple[LabContext, UpProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, provider = kv_lab
    provider.programs_missing["kv"] = {"etcd"}
    monkeypatch.setattr(kv_program, "local_program", lambda program: None)
    with pytest.raises(OverlaylabError, match="etcd is not installed on kv, and this machine"):
        ensure_kv(ctx, run_for(ctx))
    assert provider.actions("start_service") == []


def test_kv_pid_of_another_program_counts_as_missing(
    kv_lab: tuple[LabContext, UpProvider],
) -> None:
    # The pid file outlived etcd and the pid now belongs to something else.
    ctx, provider = kv_lab
    provider.running[("kv", "etcd")] = "bash"
    assert ensure_kv(ctx, run_for(ctx)) is True
    assert [call[:3] for call in provider.actions("start_service", "stop_service")] == [
        ("start_service", "kv", "etcd")
    ]


def test_kv_alive_but_not_serving_is_started_again(
    kv_lab: tuple[LabContext, UpProvider],
) -> None:
    ctx, provider = kv_lab
    provider.running[("kv", "etcd")] = "etcd"  # alive, but /v2/keys/ is refused
    assert ensure_kv(ctx, run_for(ctx)) is True
    assert [call[:3] for call in provider.actions("start_service")] == [
        ("start_service", "kv", "etcd")
    ]
    assert provider.actions("start_service", "stop_service")[-1][0] == "start_service"


def test_kv_alive_but_not_serving_is_stopped_before_it_is_started_again(
    kv_lab: tuple[LabContext, UpProvider],
) -> None:
    ctx, provider = kv_lab
    provider.running[("kv", "etcd")] = "etcd"
    ensure_kv(ctx, run_for(ctx))
    assert [call[:3] for call in provider.actions("stop_service", "start_service")] == [
        ("stop_service", "kv", "etcd"),
        ("start_service", "kv", "etcd"),
    ]


# --- engines ---------------------------------------------------------------------------------
class EngineLab:
    """Engines behind a fake provider: /_ping answers when the provider says the node
    answers (a started dockerd does at once); its log holds its serf gossip view."""

    def __init__(self, tmp_path: Path, spec: ClusterSpec | None = None) -> None:
        self.provider = UpProvider()
        progress, self.said = captured_progress()
        self.ctx = fake_context(tmp_path, self.provider, spec=spec, progress=progress)
        for node in self.ctx.spec.engine_nodes:
            self.provider.engines[node.name] = UpEngine(node.name)

    def converge(self) -> None:
        """Bring every engine up, then forget what that took."""
        assert ensure_engines(self.ctx, run_for(self.ctx)) is True
        self.provider.calls.clear()
        self.provider.probes.clear()
        self.said.truncate(0)
        self.said.seek(0)

    def config(self, node: str) -> Path:
        return self.ctx.layout.daemon_config(node)

    def outcomes(self, node: str) -> list[str]:
        """What `up` said of node's dockerd, in order."""
        lines = [line for line in self.said.getvalue().splitlines() if f" {node}: dockerd " in line]
        return [line.split(": dockerd ", 1)[1] for line in lines]

    def outcome(self, node: str) -> str:
        [said] = self.outcomes(node)
        return said


def dockerd(layout_config: Path) -> tuple[str, ...]:
    return ("dockerd", "--config-file", str(layout_config))


def test_engines_missing_start_staggered_with_their_daemon_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "STAGGER", 0.05)
    monkeypatch.setattr(engines, "START_TOGETHER", 2)
    slots_made: list[engines.StartSlots] = []
    real_slots = engines.StartSlots

    def recorded(gap: float) -> engines.StartSlots:
        slots_made.append(real_slots(gap))
        return slots_made[-1]

    monkeypatch.setattr(engines, "StartSlots", recorded)
    engine_lab = EngineLab(tmp_path)
    ctx = engine_lab.ctx
    assert ensure_engines(ctx, run_for(ctx)) is True
    started = engine_lab.provider.actions("start_service", "stop_service")
    assert sorted(started) == [
        ("start_service", node, "dockerd", dockerd(engine_lab.config(node))) for node in ENGINES
    ]
    for node in ENGINES:
        written = json.loads(engine_lab.config(node).read_text())
        assert written == engines.daemon_config(ctx, ctx.spec.node(node))
        assert engine_lab.outcome(node) == "started"
    # Legacy overlay: no two engines are given start times closer together than the
    # stagger, so each one's KV registration finds the earlier ones already gossiping;
    # and none starts before its time. (The start times themselves are read from the
    # slots: a thread that wakes late on a loaded machine only widens a gap.)
    [slots] = slots_made
    given = sorted(slots.given)
    assert len(given) == 3
    assert all(later - earlier >= 0.05 - 1e-9 for earlier, later in itertools.pairwise(given))
    assert sorted(at for _, at in engine_lab.provider.started_at)[0] >= given[0]
    assert not ctx.layout.daemon_config("kv").exists()


def test_three_legacy_engines_start_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each engine joins one other: three cannot split into two clusters.
    monkeypatch.setattr(engines, "STAGGER", 2.0)
    engine_lab = EngineLab(tmp_path)
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    times = sorted(at for _, at in engine_lab.provider.started_at)
    assert len(times) == 3 and times[-1] - times[0] < 2.0


def test_engines_outside_the_largest_gossip_cluster_are_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gossip, "ISLAND_TIMEOUT", 0.2)
    monkeypatch.setattr(engines, "STAGGER", 0.0)
    monkeypatch.setattr(gossip, "STAGGER", 0.0)
    engine_lab = EngineLab(tmp_path)
    engine_lab.provider.island_once = {"node3"}
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    assert ensure_gossip(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    again = engine_lab.provider.actions("start_service", "stop_service")[3:]
    assert again == [
        ("stop_service", "node3", "dockerd"),
        ("start_service", "node3", "dockerd", dockerd(engine_lab.config("node3"))),
    ]
    assert engine_lab.outcomes("node3") == ["started", "started (rejoined the gossip cluster)"]
    assert engine_lab.outcome("node1") == engine_lab.outcome("node2") == "started"
    said = engine_lab.said.getvalue()
    assert "node3 outside the largest gossip cluster: restarting" in said
    assert "gossip: all 3 engines in one cluster" in said


def test_when_the_first_engine_is_the_island_it_is_the_one_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gossip, "ISLAND_TIMEOUT", 0.2)
    monkeypatch.setattr(engines, "STAGGER", 0.0)
    monkeypatch.setattr(gossip, "STAGGER", 0.0)
    engine_lab = EngineLab(tmp_path)
    engine_lab.provider.island_once = {"node1"}
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    assert ensure_gossip(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    again = engine_lab.provider.actions("start_service", "stop_service")[3:]
    assert [call[:2] for call in again] == [("stop_service", "node1"), ("start_service", "node1")]
    assert engine_lab.outcomes("node1")[-1] == "started (rejoined the gossip cluster)"


def test_an_island_that_a_restart_does_not_merge_is_named_and_left_to_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gossip, "ISLAND_TIMEOUT", 0.2)
    monkeypatch.setattr(engines, "STAGGER", 0.0)
    monkeypatch.setattr(gossip, "STAGGER", 0.0)
    engine_lab = EngineLab(tmp_path)
    engine_lab.provider.island_forever = {"node3"}
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    assert ensure_gossip(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    restarts = engine_lab.provider.actions("stop_service")
    assert restarts == [("stop_service", "node3", "dockerd")] * gossip.REPAIR_ROUNDS
    assert "node3 still outside the largest gossip cluster" in engine_lab.said.getvalue()


def test_gossip_is_checked_only_for_engines_this_up_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An island among engines that were running already is verify's to report (a
    spec can make gossip impossible): a no-op `up` restarts nothing."""
    monkeypatch.setattr(gossip, "ISLAND_TIMEOUT", 0.2)
    engine_lab = EngineLab(tmp_path)
    engine_lab.provider.island_forever = {"node3"}
    engine_lab.provider.engines = engines_sharing_a_kv(ENGINES)  # running no container
    engine_lab.converge()  # engines only: node3 started on an island, and stays there
    later = fake_context(tmp_path, engine_lab.provider, progress=captured_progress()[0])
    assert ensure_engines(later, run_for(later)) is False
    assert ensure_gossip(later, run_for(later)) is False
    assert engine_lab.provider.actions("start_service", "stop_service") == []


def test_engines_running_with_their_config_are_left_alone(tmp_path: Path) -> None:
    engine_lab = EngineLab(tmp_path)
    engine_lab.converge()
    before = {node: engine_lab.config(node).stat().st_mtime_ns for node in ENGINES}
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is False
    assert engine_lab.provider.actions("start_service", "stop_service") == []
    assert {node: engine_lab.config(node).stat().st_mtime_ns for node in ENGINES} == before
    assert [engine_lab.outcome(node) for node in ENGINES] == ["already running"] * 3


def test_an_engine_whose_daemon_json_changed_is_restarted(tmp_path: Path) -> None:
    engine_lab = EngineLab(tmp_path)
    engine_lab.converge()
    wanted = engine_lab.config("node2").read_text()
    engine_lab.config("node2").write_text('{"debug": true}\n')
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    assert engine_lab.provider.actions("start_service", "stop_service") == [
        ("stop_service", "node2", "dockerd"),
        ("start_service", "node2", "dockerd", dockerd(engine_lab.config("node2"))),
    ]
    assert engine_lab.config("node2").read_text() == wanted
    assert engine_lab.outcome("node2") == "restarted (daemon.json changed)"
    assert engine_lab.outcome("node1") == engine_lab.outcome("node3") == "already running"


def test_an_engine_whose_certificates_were_renewed_is_restarted(tmp_path: Path) -> None:
    engine_lab = EngineLab(tmp_path)
    ensure_tls(engine_lab.ctx, run_for(engine_lab.ctx))
    engine_lab.converge()
    (engine_lab.ctx.layout.node_dir("node3") / "tls" / "cert.pem").unlink()
    assert (
        ensure_tls(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    )  # node3's certificate is issued again
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    assert [a[:3] for a in engine_lab.provider.actions("start_service", "stop_service")] == [
        ("stop_service", "node3", "dockerd"),
        ("start_service", "node3", "dockerd"),
    ]
    assert "node3: dockerd restarted (certificates renewed)" in engine_lab.said.getvalue()
    assert (
        ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is False
    )  # and then it is up to date


def test_an_engine_alive_but_not_answering_is_restarted(tmp_path: Path) -> None:
    engine_lab = EngineLab(tmp_path)
    engine_lab.converge()
    engine_lab.provider.answering.discard("node3")  # hung: the process lives, /_ping fails
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    assert engine_lab.provider.actions("start_service", "stop_service") == [
        ("stop_service", "node3", "dockerd"),
        ("start_service", "node3", "dockerd", dockerd(engine_lab.config("node3"))),
    ]
    assert engine_lab.outcome("node3") == "restarted"


def test_an_engine_that_died_is_started_without_a_stop(tmp_path: Path) -> None:
    engine_lab = EngineLab(tmp_path)
    engine_lab.converge()
    del engine_lab.provider.running[("node1", "dockerd")]
    engine_lab.provider.answering.discard("node1")
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    assert engine_lab.provider.actions("start_service", "stop_service") == [
        ("start_service", "node1", "dockerd", dockerd(engine_lab.config("node1")))
    ]
    assert engine_lab.outcome("node1") == "started"


def test_an_engine_killed_and_not_yet_reaped_starts_again(tmp_path: Path) -> None:
    """Its pid file names a zombie (init has not reaped it yet): a new dockerd would
    refuse to start ("pid file found"), so `up` forgets that file first."""
    engine_lab = EngineLab(tmp_path)
    engine_lab.converge()
    del engine_lab.provider.running[("node1", "dockerd")]
    engine_lab.provider.answering.discard("node1")
    handle = engine_lab.ctx.node("node1")
    zombie = subprocess.Popen(["sleep", "60"])
    try:
        zombie.kill()  # killed; nobody reaps it before `up` runs
        pid_file = Path(handle.paths.exec_root / "dockerd.pid")
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{zombie.pid}\n")
        assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
        assert engine_lab.outcome("node1") == "started" and not pid_file.exists()
        node1 = [c[:2] for c in engine_lab.provider.calls if c[1] == "node1"]
        assert node1.index(("forget dead engine", "node1")) < node1.index(
            ("start_service", "node1")
        )
    finally:
        zombie.wait()


def test_forwarding_is_on_in_each_node_before_its_engine_starts(tmp_path: Path) -> None:
    engine_lab = EngineLab(tmp_path)
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    for node in ENGINES:
        mine = [c[:2] for c in engine_lab.provider.calls if c[1] == node]
        assert mine.index(("forwarding on", node)) < mine.index(("start_service", node))
        assert engine_lab.provider.engines[node].info()["IPv4Forwarding"] is True


def test_an_engine_that_believes_forwarding_is_off_is_restarted(tmp_path: Path) -> None:
    engine_lab = EngineLab(tmp_path)
    engine_lab.converge()
    engine_lab.provider.engines["node2"].forwarding_at_start = False  # read 0 at its start
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    assert engine_lab.provider.actions("start_service", "stop_service") == [
        ("stop_service", "node2", "dockerd"),
        ("start_service", "node2", "dockerd", dockerd(engine_lab.config("node2"))),
    ]
    assert engine_lab.outcome("node2") == "restarted (it believed IPv4 forwarding was off)"
    assert engine_lab.provider.engines["node2"].info()["IPv4Forwarding"] is True
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is False


def test_engines_without_a_kv_start_side_by_side_without_a_stagger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Swarm mode: no KV store, so no serf gossip to join; nothing waits between starts.
    monkeypatch.setattr(engines, "STAGGER", 60.0)
    engine_lab = EngineLab(tmp_path, spec=load_spec(SWARM_YML))
    assert ensure_engines(engine_lab.ctx, run_for(engine_lab.ctx)) is True
    spawned = sorted(call[1] for call in engine_lab.provider.actions("start_service"))
    assert spawned == ["mgr", "w1"]


# --- images ----------------------------------------------------------------------------------
class ImageLab:
    """The default lab plus two side-loaded images: web:1 everywhere, mongo:3.0 on node2."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        tarballs = tmp_path / "tarballs"
        tarballs.mkdir()
        for name in ("web:1", "mongo:3.0"):
            (tarballs / f"{name.replace(':', '_')}.tar").write_bytes(image_tarball(name))

        mongo = {
            "name": "mongo:3.0",
            "tarball": str(tarballs / "mongo_3.0.tar"),
            "nodes": ["node2"],
        }
        spec = lab_variant(
            images=[{"name": "web:1", "tarball": str(tarballs / "web_1.tar")}, mongo]
        )
        self.provider = UpProvider()
        self.provider.engines = engines_sharing_a_kv(ENGINES)
        progress, self.said = captured_progress()
        self.ctx = fake_context(tmp_path, self.provider, spec=spec, progress=progress)
        monkeypatch.setattr(images, "_probe_rootfs", lambda: b"probe rootfs")

    def holds(self, node: str, *names: str) -> None:
        """node's engine has these images; the probe image with this very rootfs."""
        engine = self.provider.engines[node]
        engine.image_names.update(names)
        if PROBE_IMAGE in names:
            engine.image_labels[PROBE_IMAGE] = {images.ROOTFS_LABEL: images._rootfs_digest()}

    def loaded(self) -> dict[str, list[str]]:
        """Per node, the images that were side-loaded or imported (sorted)."""
        return {
            node: sorted(
                [data.removeprefix(b"image:").decode() for data in engine.loaded] + engine.imported
            )
            for node, engine in self.provider.engines.items()
        }


def test_images_missing_are_loaded_where_the_spec_wants_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_lab = ImageLab(tmp_path, monkeypatch)
    assert ensure_images(image_lab.ctx, run_for(image_lab.ctx)) is True
    assert image_lab.loaded() == {
        "node1": [PROBE_IMAGE, "web:1"],
        "node2": ["mongo:3.0", PROBE_IMAGE, "web:1"],
        "node3": [PROBE_IMAGE, "web:1"],
    }
    assert "node2: loaded mongo:3.0" in image_lab.said.getvalue()


def test_images_present_everywhere_load_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_lab = ImageLab(tmp_path, monkeypatch)
    for node in ENGINES:
        image_lab.holds(node, PROBE_IMAGE, "web:1")
    image_lab.holds("node2", "mongo:3.0")
    assert ensure_images(image_lab.ctx, run_for(image_lab.ctx)) is False
    assert image_lab.loaded() == {node: [] for node in ENGINES}
    assert "images: 7 present already" in image_lab.said.getvalue()


def test_images_are_loaded_only_where_they_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_lab = ImageLab(tmp_path, monkeypatch)
    for node in ENGINES:
        image_lab.holds(node, PROBE_IMAGE)
    image_lab.holds("node1", "web:1")
    image_lab.holds("node2", "mongo:3.0")
    assert ensure_images(image_lab.ctx, run_for(image_lab.ctx)) is True
    assert image_lab.loaded() == {"node1": [], "node2": ["web:1"], "node3": ["web:1"]}


def classic_image_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[ClusterSpec, UpProvider, LabContext]:
    """A classic swarm lab (master, a, b) whose images step builds the probe and the
    swarm image from stand-in rootfs bytes."""
    spec = classic_lab_spec()
    provider = UpProvider()
    provider.engines = engines_sharing_a_kv(["master", "a", "b"])
    ctx = fake_context(tmp_path, provider, spec=spec)
    monkeypatch.setattr(images, "_probe_rootfs", lambda: b"probe rootfs")
    monkeypatch.setattr(images, "swarm_binary", lambda: Path("/usr/local/bin/swarm"))
    monkeypatch.setattr(images, "swarm_rootfs", lambda binary: b"swarm rootfs")
    return spec, provider, ctx


def test_a_classic_swarm_gets_each_image_made_once_and_the_same_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Imported on each engine, an image got an id per engine, and the master showed any
    of them: made once, then `docker save`d into the others, it has one id."""
    spec, provider, ctx = classic_image_lab(tmp_path, monkeypatch)
    assert ensure_images(ctx, run_for(ctx)) is True
    engines = provider.engines.values()
    swarm_image = spec.orchestration.swarm_image
    for name in (PROBE_IMAGE, swarm_image):
        assert sum(e.imported.count(name) for e in engines) == 1
        made = [b for e in engines for b in e.loaded if b.startswith(image_tarball(name))]
        assert len(made) == 2
        assert all(name in e.image_names for e in engines)
    # What the probe was made with goes along: no engine imports it again.
    assert len({str(e.image_labels[PROBE_IMAGE]) for e in engines}) == 1
    assert ensure_images(ctx, run_for(ctx)) is False


def test_an_engine_added_to_a_classic_swarm_gets_the_id_the_others_have(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The others hold their images already (the lab was up before the node was added):
    the new engine gets theirs by `docker save`, not one made anew with another id."""
    spec, provider, ctx = classic_image_lab(tmp_path, monkeypatch)
    assert ensure_images(ctx, run_for(ctx)) is True
    engines = provider.engines
    swarm_image = spec.orchestration.swarm_image
    new = engines["b"]
    for name in (PROBE_IMAGE, swarm_image):
        new.image_names.discard(name)
        new.image_labels.pop(name, None)
    new.loaded.clear()
    imported_before = sum(len(e.imported) for e in engines.values())
    assert ensure_images(ctx, run_for(ctx)) is True
    assert sum(len(e.imported) for e in engines.values()) == imported_before  # none made anew
    assert sorted(b.partition(b"\n")[0] for b in new.loaded) == sorted(
        image_tarball(name) for name in (PROBE_IMAGE, swarm_image)
    )
    assert new.image_labels[PROBE_IMAGE] == engines["a"].image_labels[PROBE_IMAGE]


def test_a_probe_image_of_another_rootfs_is_imported_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tag stays overlaylab/probe:1 when the rootfs changes (new probe tools, a host
    upgrade): its label tells the engine's copy is not this one."""
    image_lab = ImageLab(tmp_path, monkeypatch)
    for node in ENGINES:
        image_lab.holds(node, PROBE_IMAGE, "web:1")
    image_lab.holds("node2", "mongo:3.0")
    image_lab.provider.engines["node3"].image_labels[PROBE_IMAGE] = {
        images.ROOTFS_LABEL: "an-older-rootfs"
    }
    assert ensure_images(image_lab.ctx, run_for(image_lab.ctx)) is True
    assert image_lab.loaded() == {"node1": [], "node2": [], "node3": [PROBE_IMAGE]}
    labels = image_lab.provider.engines["node3"].image_labels[PROBE_IMAGE]
    assert labels[images.ROOTFS_LABEL] == images._rootfs_digest()
    assert labels["overlaylab.role"] == "probe"


def test_a_corrupt_tarball_fails_naming_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_lab = ImageLab(tmp_path, monkeypatch)
    for node in ENGINES:
        image_lab.holds(node, PROBE_IMAGE, "web:1")
    Path(image_lab.ctx.spec.images[1].tarball or "").write_bytes(b"\x00truncated")
    with pytest.raises(NodeError) as raised:
        ensure_images(image_lab.ctx, run_for(image_lab.ctx))
    assert raised.value.node == "node2"
    assert "invalid tar header" in str(raised.value)


def test_an_image_that_does_not_appear_after_loading_fails_naming_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_lab = ImageLab(tmp_path, monkeypatch)
    for node in ENGINES:
        image_lab.holds(node, PROBE_IMAGE, "web:1")
    image_lab.provider.engines["node2"].load_loses_images = True
    with pytest.raises(NodeError) as raised:
        ensure_images(image_lab.ctx, run_for(image_lab.ctx))
    assert raised.value.node == "node2"
    assert str(raised.value.cause) == "image mongo:3.0 did not appear on node2 after loading it"


# --- networks --------------------------------------------------------------------------------
SPEC_SUBNET = "10.0.9.0/24"
NET_ID = "f" * 64


def network_lab(tmp_path: Path) -> tuple[LabContext, UpProvider]:
    provider = UpProvider()
    provider.engines = engines_sharing_a_kv(ENGINES)
    progress, _ = captured_progress()
    return fake_context(tmp_path, provider, progress=progress), provider


def created(provider: UpProvider) -> dict[str, list[str]]:
    return {node: [name for name, _ in e.created] for node, e in provider.engines.items()}


def test_network_missing_is_created_once_and_seen_on_every_engine(tmp_path: Path) -> None:
    ctx, provider = network_lab(tmp_path)
    assert ensure_networks(ctx, run_for(ctx)) is True
    assert created(provider) == {"node1": ["dn"], "node2": [], "node3": []}
    _, options = provider.engines["node1"].created[0]
    assert options["driver"] == "overlay"
    assert options["ipam"]["Config"][0]["Subnet"] == SPEC_SUBNET
    assert options["labels"] == {"overlaylab.cluster": "lab"}
    net_id = provider.engines["node1"].networks["dn"]["Id"]
    assert f"dn: present on 3 engines ({net_id[:12]})" in said(ctx)


def test_network_present_everywhere_is_left_alone(tmp_path: Path) -> None:
    ctx, provider = network_lab(tmp_path)
    for engine in provider.engines.values():
        engine.networks["dn"] = network_info("dn", "overlay", SPEC_SUBNET, NET_ID)
    assert ensure_networks(ctx, run_for(ctx)) is False
    assert created(provider) == {node: [] for node in ENGINES}


@pytest.mark.parametrize(
    ("driver", "subnet", "problem"),
    [
        ("overlay", "10.0.8.0/24", "subnet is 10.0.8.0/24, the spec says 10.0.9.0/24"),
        ("bridge", SPEC_SUBNET, "driver is bridge, the spec says overlay"),
    ],
)
def test_network_present_but_different_from_the_spec_fails_naming_the_difference(
    driver: str, subnet: str, problem: str, tmp_path: Path
) -> None:
    ctx, provider = network_lab(tmp_path)
    for engine in provider.engines.values():
        engine.networks["dn"] = network_info("dn", driver, subnet, NET_ID)
    with pytest.raises(OverlaylabError) as raised:
        ensure_networks(ctx, run_for(ctx))
    assert str(raised.value) == (
        f"network dn already exists but {problem}. Remove it "
        "(`invoke down` then `invoke up`) or make the spec match."
    )
    assert created(provider) == {node: [] for node in ENGINES}


def test_network_present_but_missing_on_one_engine_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(networks, "PROPAGATION_TIMEOUT", 0.2)
    ctx, provider = network_lab(tmp_path)
    for node in ("node1", "node2"):
        provider.engines[node].networks["dn"] = network_info("dn", "overlay", SPEC_SUBNET, NET_ID)
    with pytest.raises(OverlaylabError, match=r"did not appear on node3 within"):
        ensure_networks(ctx, run_for(ctx))
    assert created(provider) == {node: [] for node in ENGINES}


def test_a_network_of_the_same_name_elsewhere_is_named_as_a_clash_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a timeout ("did not appear"): node2 lists another network called dn."""
    monkeypatch.setattr(networks, "PROPAGATION_TIMEOUT", 0.2)
    ctx, provider = network_lab(tmp_path)
    for node in ("node1", "node3"):
        provider.engines[node].networks["dn"] = network_info("dn", "overlay", SPEC_SUBNET, NET_ID)
    provider.engines["node2"].networks["dn"] = network_info("dn", "bridge", None, "a" * 64)
    with pytest.raises(OverlaylabError) as raised:
        ensure_networks(ctx, run_for(ctx))
    message = str(raised.value)
    assert message.startswith("network dn on node2 is another network than on node1:")
    assert "aaaaaaaaaaaa (driver bridge, subnet ?" in message
    assert "`docker network rm aaaaaaaaaaaa`" in message


def test_network_inspected_before_its_allocation_is_waited_for_not_called_a_mismatch(
    tmp_path: Path,
) -> None:
    """A swarm-mode overlay shows an empty driver until the manager has allocated it."""
    ctx, provider = network_lab(tmp_path)
    for engine in provider.engines.values():
        engine.networks["dn"] = network_info("dn", "overlay", SPEC_SUBNET, NET_ID)
    first = provider.engines["node1"].networks["dn"]
    allocated = dict(first)
    first["Driver"] = ""
    inspections = 0
    real_inspect = UpApi.inspect_network

    def allocated_on_the_third_look(self: UpApi, net_id: str) -> dict:
        nonlocal inspections
        inspections += 1
        if inspections == 3:
            first.update(allocated)
        return real_inspect(self, net_id)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(UpApi, "inspect_network", allocated_on_the_third_look)
        assert ensure_networks(ctx, run_for(ctx)) is False
    assert inspections >= 3


# --- stacks ----------------------------------------------------------------------------------
class StackLab:
    """The demo stack (web on node1, mongo on node2); compose runs are faked.

    A faked `docker-compose up SERVICE` makes the service run on the engine its
    DOCKER_HOST names, so a run aimed at the wrong node leaves the service missing.
    """

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.provider = UpProvider()
        self.provider.engines = engines_sharing_a_kv(ENGINES)
        progress, self.said = captured_progress()
        self.ctx = fake_context(tmp_path, self.provider, progress=progress)
        self.stack = self.ctx.spec.stacks[0]
        self.runs: list[tuple[str, str]] = []  # (service, node its DOCKER_HOST names)
        self.failing: set[str] = set()
        hosts = {self.provider.node(n).docker_env()["DOCKER_HOST"]: n for n in ENGINES}

        def run(runner: HostRunner, argv: list[str], **options: Any) -> CommandResult:
            service, node = argv[-1], hosts[options["env"]["DOCKER_HOST"]]
            assert list(argv) == stacks.compose_argv(
                self.ctx, self.stack, "up", "-d", "--no-deps", service
            )
            self.runs.append((service, node))
            if service in self.failing:
                raise CommandError(argv, 1, "", f"ERROR: for {service}  no such image")
            self.provider.engines[node].services[("demo", service)] = "running"
            return CommandResult(tuple(argv), 0, "", "", "host")

        monkeypatch.setattr(HostRunner, "run", run)

    def converge(self) -> None:
        assert ensure_stacks(self.ctx, run_for(self.ctx)) is True
        self.runs.clear()

    def recorded(self) -> str | None:
        return self.ctx.state.get("stacks", {}).get("demo")


def test_stack_missing_is_composed_on_each_service_node_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_lab = StackLab(tmp_path, monkeypatch)
    assert ensure_stacks(stack_lab.ctx, run_for(stack_lab.ctx)) is True
    assert sorted(stack_lab.runs) == [("mongo", "node2"), ("web", "node1")]
    assert stack_lab.recorded() == stacks._fingerprint(stack_lab.ctx, stack_lab.stack)


def test_stack_recorded_and_running_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_lab = StackLab(tmp_path, monkeypatch)
    stack_lab.converge()
    assert ensure_stacks(stack_lab.ctx, run_for(stack_lab.ctx)) is False
    assert stack_lab.runs == []
    assert "demo: up to date" in stack_lab.said.getvalue()


def test_stack_recorded_with_a_service_not_running_is_composed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_lab = StackLab(tmp_path, monkeypatch)
    stack_lab.converge()
    stack_lab.provider.engines["node2"].services[("demo", "mongo")] = "exited"
    assert ensure_stacks(stack_lab.ctx, run_for(stack_lab.ctx)) is True
    # The whole stack is composed again; compose leaves the running `web` as it is.
    assert sorted(stack_lab.runs) == [("mongo", "node2"), ("web", "node1")]
    assert stack_lab.provider.engines["node2"].services[("demo", "mongo")] == "running"


def test_stack_recorded_with_a_paused_service_starts_it_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_lab = StackLab(tmp_path, monkeypatch)
    stack_lab.converge()
    stack_lab.provider.engines["node1"].services[("demo", "web")] = "paused"
    assert ensure_stacks(stack_lab.ctx, run_for(stack_lab.ctx)) is True
    # compose `up` would leave a paused container paused: it is removed first.
    assert ("web", "node1") in stack_lab.runs
    assert stack_lab.provider.engines["node1"].services[("demo", "web")] == "running"
    assert "demo/web is paused: starting it afresh" in stack_lab.said.getvalue()


def test_stack_running_but_recorded_from_another_compose_file_is_composed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_lab = StackLab(tmp_path, monkeypatch)
    stack_lab.converge()
    stack_lab.ctx.state.set("stacks", {"demo": "fingerprint of an older compose file"})
    assert ensure_stacks(stack_lab.ctx, run_for(stack_lab.ctx)) is True
    assert sorted(stack_lab.runs) == [("mongo", "node2"), ("web", "node1")]
    assert stack_lab.recorded() == stacks._fingerprint(stack_lab.ctx, stack_lab.stack)


def test_a_compose_failure_names_the_node_and_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_lab = StackLab(tmp_path, monkeypatch)
    stack_lab.failing.add("mongo")
    with pytest.raises(NodeError) as raised:
        ensure_stacks(stack_lab.ctx, run_for(stack_lab.ctx))
    assert raised.value.node == "node2"
    assert isinstance(raised.value.cause, CommandError)
    assert stack_lab.recorded() is None  # the next `up` tries again
