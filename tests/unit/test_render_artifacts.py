"""`invoke render`: every artifact of a spec, as data and as files (nothing started).

Golden files live in tests/testdata/golden/<cluster>/. After a deliberate change to
what render writes, regenerate them and review the diff:

    OVERLAYLAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_render_artifacts.py
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml
from lab_specs import REPO, lab_data, make_ctx

from overlaylab import layout as layout_module
from overlaylab import nodeconf
from overlaylab.artifacts import (
    MANIFEST,
    Artifact,
    docker_machine,
    hosts,
    spec_artifacts,
    vagrant,
    write_artifacts,
)
from overlaylab.spec import load_spec_file
from overlaylab.spec.loader import LoadedSpec
from overlaylab.up.steps.engines import daemon_config

GOLDEN = REPO / "tests" / "testdata" / "golden"
UPDATE = os.environ.get("OVERLAYLAB_UPDATE_GOLDEN") == "1"
ARTICLE = "inventory/article-2015.yml"
LAB = "inventory/lab.yml"

# The Docker 1.9 multi-host networking guide (get-started-overlay.md @v1.9.0), as
# shared/DOCKER-FACTS.md quotes it; machines.sh must say the same.
GUIDE = [
    "docker-machine create -d virtualbox mh-keystore",
    'docker $(docker-machine config mh-keystore) run -d -p "8500:8500" -h "consul" '
    "progrium/consul -server -bootstrap",
    "docker-machine create -d virtualbox --swarm --swarm-master "
    '--swarm-discovery="consul://$(docker-machine ip mh-keystore):8500" '
    '--engine-opt="cluster-store=consul://$(docker-machine ip mh-keystore):8500" '
    '--engine-opt="cluster-advertise=eth1:2376" mhs-demo0',
    "docker-machine create -d virtualbox --swarm "
    '--swarm-discovery="consul://$(docker-machine ip mh-keystore):8500" '
    '--engine-opt="cluster-store=consul://$(docker-machine ip mh-keystore):8500" '
    '--engine-opt="cluster-advertise=eth1:2376" mhs-demo1',
    "eval $(docker-machine env --swarm mhs-demo0)",
    "docker network create --driver overlay --subnet=10.0.9.0/24 my-net",
]


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Specs named as a user names them (from the project root), and the default state
    root whatever OVERLAYLAB_STATE_ROOT says: golden files hold local paths."""
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(layout_module, "DEFAULT_STATE_ROOT", Path("/var/lib/overlaylab"))


def by_path(loaded: LoadedSpec) -> dict[str, Artifact]:
    return {str(a.path): a for a in spec_artifacts(loaded)}


def commands(script: str) -> list[str]:
    """The script's commands, continuation lines joined, comments dropped."""
    joined = script.replace(" \\\n", " ")
    return [" ".join(line.split()) for line in joined.splitlines() if line and line[0] != "#"]


def spec_file(tmp_path: Path, data: dict, name: str = "spec.yml") -> LoadedSpec:
    """`data` written next to inventory/ specs' relative stack paths, then loaded."""
    path = tmp_path / "inventory" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    for stack in data.get("stacks", []):
        stack["file"] = str(REPO / "stacks" / Path(stack["file"]).relative_to("../stacks"))
    path.write_text(yaml.safe_dump(data))
    return load_spec_file(path)


# --- golden files ---------------------------------------------------------------------

GOLDEN_FILES = {
    LAB: [
        "machines.json",
        "machines.sh",
        "nodes/node1/daemon.json",
        "nodes/kv/overlaylab-lab-etcd.service",
    ],
    ARTICLE: [
        "machines.json",
        "machines.sh",
        "nodes/node1/daemon.json",
        "nodes/node1/docker.service.d/overlaylab.conf",
    ],
}


@pytest.mark.parametrize(
    ("spec", "relative"), [(s, f) for s, files in GOLDEN_FILES.items() for f in files]
)
def test_golden(spec: str, relative: str) -> None:
    loaded = load_spec_file(spec)
    rendered = by_path(loaded)[relative].text
    golden = GOLDEN / loaded.spec.name / relative
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered)
    assert golden.exists(), f"no golden file {golden}: run with OVERLAYLAB_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text(), (
        f"{relative} of {spec} differs from {golden}; if the change is meant, "
        "regenerate with OVERLAYLAB_UPDATE_GOLDEN=1 and review the diff"
    )


def test_every_artifact_of_the_default_lab() -> None:
    assert sorted(by_path(load_spec_file(LAB))) == [
        "machines.json",
        "machines.sh",
        "nodes/kv/overlaylab-lab-etcd.service",
        "nodes/node1/daemon.json",
        "nodes/node2/daemon.json",
        "nodes/node3/daemon.json",
        "stacks/demo/docker-compose.yml",
        "stacks/demo/placement.yml",
    ]


# --- machines.sh: the guide's commands ------------------------------------------------


def guide_spec(tmp_path: Path) -> LoadedSpec:
    """The article's spec with the guide's names, two engines and its overlay subnet."""
    data = lab_data(REPO / ARTICLE)
    data["kv"]["node"] = "mh-keystore"
    data["nodes"] = [
        {"name": "mh-keystore", "roles": ["kv"]},
        {"name": "mhs-demo0", "roles": ["engine", "swarm-master"]},
        {"name": "mhs-demo1", "roles": ["engine", "swarm-agent"]},
    ]
    data["networks"] = [{"name": "my-net", "subnet": "10.0.9.0/24"}]
    data["stacks"] = []
    return spec_file(tmp_path, data)


def test_machines_sh_runs_the_guides_commands(tmp_path: Path) -> None:
    script = by_path(guide_spec(tmp_path))["machines.sh"].text
    # The guide's image was swarm:latest; the spec pins the last classic release.
    pinned = [
        line.replace(" mhs-demo", " --swarm-image swarm:1.2.9 mhs-demo")
        if line.startswith("docker-machine create -d virtualbox --swarm")
        else line
        for line in GUIDE
    ]
    assert commands(script) == ["set -euo pipefail", *pinned]


def test_article_script_keeps_the_guides_flags() -> None:
    script = commands(by_path(load_spec_file(ARTICLE))["machines.sh"].text)
    creates = [c for c in script if c.startswith("docker-machine create")]
    assert creates[0] == "docker-machine create -d virtualbox keystore"
    master = shlex.split(creates[1])
    assert master[:6] == [
        "docker-machine",
        "create",
        "-d",
        "virtualbox",
        "--swarm",
        "--swarm-master",
    ]
    assert "--swarm-discovery=consul://$(docker-machine ip keystore):8500" in master
    assert "--engine-opt=cluster-store=consul://$(docker-machine ip keystore):8500" in master
    assert "--engine-opt=cluster-advertise=eth1:2376" in master
    assert master[-3:] == ["--swarm-image", "swarm:1.2.9", "node1"]
    assert [shlex.split(c)[-1] for c in creates[2:]] == ["node2", "node3"]
    assert all("--swarm-master" not in c for c in creates[2:])
    assert script[-2:] == [
        "eval $(docker-machine env --swarm node1)",
        "docker network create --driver overlay dn",
    ]


def test_machines_sh_is_valid_bash_for_every_test_spec() -> None:
    specs = [
        LAB,
        ARTICLE,
        *sorted(str(p.relative_to(REPO)) for p in (REPO / "tests/testdata").glob("*/*.yml")),
    ]
    specs = [s for s in specs if "/invalid/" not in s]
    for spec in specs:
        script = by_path(load_spec_file(spec))["machines.sh"].text
        check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert check.returncode == 0, (spec, check.stderr)


def test_swarm_mode_script_inits_and_joins(tmp_path: Path) -> None:
    script = commands(
        by_path(load_spec_file("tests/testdata/specs/valid/swarm-mode.yml"))["machines.sh"].text
    )
    assert not any("cluster-store" in c or "--swarm" in c.split() for c in script)
    assert (
        'docker $(docker-machine config mgr) swarm init --advertise-addr "$(docker-machine ip mgr)"'
        in script
    )
    join = next(c for c in script if "swarm join" in c)
    assert shlex.split(join)[-3:] == [
        "--token",
        "$(docker $(docker-machine config mgr) swarm join-token -q worker)",
        "$(docker-machine ip mgr):2377",
    ]
    assert script[-1].startswith("docker network create --driver overlay")
    assert "--attachable" in script[-1]


def test_zookeeper_and_etcd_stores_run_as_containers_on_the_kv_machine() -> None:
    etcd = commands(by_path(load_spec_file(LAB))["machines.sh"].text)
    run = next(c for c in etcd if c.startswith("docker $(docker-machine config kv) run"))
    words = shlex.split(run)
    assert "--enable-v2=true" in words  # libkv speaks etcd's v2 API only
    assert (
        words[words.index("--advertise-client-urls") + 1] == "http://$(docker-machine ip kv):2379"
    )
    node1 = shlex.split(next(c for c in etcd if c.endswith(" node1")))
    assert "--engine-opt=cluster-store=etcd://$(docker-machine ip kv):2379" in node1
    zk = commands(by_path(load_spec_file("tests/testdata/labs/zk.yml"))["machines.sh"].text)
    assert (
        'docker $(docker-machine config kv) run -d -p "2181:2181" -h "zookeeper" zookeeper:3.8'
        in zk
    )


def test_ssh_hosts_become_generic_machines() -> None:
    script = commands(
        by_path(load_spec_file("tests/testdata/specs/valid/ssh.yml"))["machines.sh"].text
    )
    node1 = shlex.split(next(c for c in script if c.endswith(" node1")))
    assert node1[2:4] == ["-d", "generic"]
    assert node1[node1.index("--generic-ip-address") + 1] == "10.20.0.6"
    assert node1[node1.index("--generic-ssh-user") + 1] == "admin"


def fake_docker_machine(bin_dir: Path, log: Path) -> None:
    """docker-machine and docker that log each argv (one JSON list a line)."""
    bin_dir.mkdir()
    for tool in ("docker-machine", "docker"):
        script = bin_dir / tool
        script.write_text(
            "#!/usr/bin/env python3\n"
            "import json, sys\n"
            f"open({str(log)!r}, 'a').write(json.dumps([{tool!r}] + sys.argv[1:]) + '\\n')\n"
            "if sys.argv[1:2] == ['ip']: print('192.168.99.100')\n"
            "if sys.argv[1:2] == ['env']: print('export DOCKER_HOST=tcp://192.168.99.100:2376')\n"
        )
        script.chmod(0o755)


def test_spec_values_reach_commands_as_single_arguments(tmp_path: Path) -> None:
    """Hostile values (set past the loader's patterns) stay data when the script runs."""
    loaded = guide_spec(tmp_path)
    spec = loaded.spec
    pwned = tmp_path / "pwned"
    hostile = f"net; touch {pwned}; $(touch {pwned}) `touch {pwned}` \"'"
    spec.networks[0].name = hostile
    spec.networks[0].labels = {"k": f"v $(touch {pwned})"}
    spec.node("mhs-demo0").labels = {"zone": f'a"b $(touch {pwned})'}
    log = tmp_path / "argv.log"
    fake_docker_machine(tmp_path / "bin", log)
    script = tmp_path / "machines.sh"
    script.write_text(docker_machine.machines_sh(loaded))
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert not pwned.exists()
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    create = next(c for c in calls if c[-1] == hostile)
    assert create[:4] == ["docker", "network", "create", "--driver"]
    assert create[create.index("--label") + 1] == f"k=v $(touch {pwned})"
    demo0 = next(c for c in calls if c[:2] == ["docker-machine", "create"] and c[-1] == "mhs-demo0")
    assert demo0[demo0.index("--engine-label") + 1] == f'zone=a"b $(touch {pwned})'
    # The substitutions meant to run did: the KV address reached every engine.
    assert "--engine-opt=cluster-store=consul://192.168.99.100:8500" in demo0


# --- machines.json --------------------------------------------------------------------


def test_machines_json_is_the_data_laid_out() -> None:
    loaded = load_spec_file(ARTICLE)
    data = json.loads(vagrant.machines_json(loaded))
    assert data == json.loads(json.dumps(vagrant.machines_data(loaded)))
    assert [(m["name"], m["ip"], m["roles"]) for m in data["machines"]] == [
        ("keystore", "192.168.99.10", ["kv"]),
        ("node1", "192.168.99.11", ["engine", "swarm-master"]),
        ("node2", "192.168.99.12", ["engine", "swarm-agent"]),
        ("node3", "192.168.99.13", ["engine", "swarm-agent"]),
    ]
    assert {m["hostname"] for m in data["machines"]} == {m["name"] for m in data["machines"]}
    assert data["lab"] | {"network_name": None} == {
        "subnet": "192.168.99.0/24",
        "netmask": "255.255.255.0",
        "prefix": 24,
        "mtu": 1500,
        "network_name": None,
    }


def test_docker_create_args_are_the_verified_ones_one_argument_each() -> None:
    # LAB-NOTES: what made a node container run its own dockerd here.
    assert vagrant.DOCKER_CREATE_ARGS == [
        "--cap-add=ALL",
        "--cap-drop=SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--device-cgroup-rule",
        "a *:* rwm",
        "-v",
        "/var/lib/docker",
    ]
    docker = json.loads(vagrant.machines_json(load_spec_file(LAB)))["providers"]["docker"]
    assert docker == {
        "image": "overlaylab/vagrant-node:1",
        "create_args": vagrant.DOCKER_CREATE_ARGS,
        "has_ssh": True,
        "remains_running": True,
    }


def test_vagrant_spec_settings_reach_every_machine(tmp_path: Path) -> None:
    data = lab_data()
    data["provider"] = {
        "type": "vagrant",
        "vm_provider": "docker",
        "docker_image": "img:2",
        "box": "b/x",
        "cpus": 2,
        "memory": 512,
    }
    machines = json.loads(vagrant.machines_json(spec_file(tmp_path, data)))
    assert machines["default_provider"] == "docker"
    assert {(m["image"], m["box"], m["cpus"], m["memory"]) for m in machines["machines"]} == {
        ("img:2", "b/x", 2, 512)
    }
    assert machines["machines"][1]["vm_name"] == "ol-lab.node1"


# --- per node -------------------------------------------------------------------------


def test_local_daemon_json_is_what_up_writes(tmp_path: Path) -> None:
    loaded = load_spec_file(LAB)
    ctx = make_ctx(loaded.spec, Path("/var/lib/overlaylab/lab"))
    node = loaded.spec.node("node2")
    rendered = json.loads(by_path(loaded)["nodes/node2/daemon.json"].text)
    assert rendered == daemon_config(ctx, node)


def test_a_host_engines_daemon_json_is_what_up_writes_there(tmp_path: Path) -> None:
    """`provider.engine: host`: up writes the node's /etc/docker/daemon.json through its
    handle; render shows the same text for a real host (nodeconf, both ways)."""
    vagrant_yml = REPO / "inventory" / "vagrant.yml"
    raw = yaml.safe_load(vagrant_yml.read_text())
    raw["provider"]["engine"] = "host"
    for stack in raw["stacks"]:
        stack["file"] = str((vagrant_yml.parent / stack["file"]).resolve())
    path = tmp_path / "vagrant.yml"
    path.write_text(yaml.safe_dump(raw))
    loaded = load_spec_file(path)
    ctx = make_ctx(loaded.spec, tmp_path / "state", path)
    node = loaded.spec.node("node1")
    rendered = json.loads(by_path(loaded)["nodes/node1/daemon.json"].text)
    assert ctx.node("node1").paths.daemon_config == PurePosixPath(hosts.HOST_DAEMON_JSON)
    assert rendered == daemon_config(ctx, node)


RENDER_ALONE = """
import sys
from pathlib import Path
from overlaylab.artifacts import spec_artifacts
from overlaylab.spec import load_spec_file
for spec in sys.argv[1:]:
    spec_artifacts(load_spec_file(spec))
print(" ".join(sorted(m for m in sys.modules if m.startswith("overlaylab"))))
"""


def test_render_builds_no_provider_and_opens_no_lab() -> None:
    """Every spec renders from the spec alone: no provider, no lab context, no step."""
    specs = sorted(str(p.relative_to(REPO)) for p in (REPO / "inventory").glob("*.yml"))
    specs += sorted(str(p.relative_to(REPO)) for p in (REPO / "tests/testdata/labs").glob("*.yml"))
    done = subprocess.run(
        [sys.executable, "-c", RENDER_ALONE, *specs],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    loaded = done.stdout.split()
    assert "overlaylab.artifacts.hosts" in loaded and "overlaylab.nodeconf" in loaded
    for place in (
        "overlaylab.providers",
        "overlaylab.context",
        "overlaylab.up",
        "overlaylab.verify",
    ):
        assert not [m for m in loaded if m == place or m.startswith(place + ".")], place


def test_real_hosts_keep_dockerds_own_paths_and_listen_on_the_lab_address() -> None:
    loaded = load_spec_file(ARTICLE)
    config = json.loads(by_path(loaded)["nodes/node2/daemon.json"].text)
    for key in ("data-root", "exec-root", "pidfile", "deprecated-key-path", "cgroup-parent"):
        assert key not in config
    assert config["hosts"] == ["unix:///var/run/docker.sock", "tcp://192.168.99.12:2376"]
    assert config["cluster-store"] == "consul://192.168.99.10:8500"
    assert config["tlscacert"] == "/etc/docker/overlaylab/ca.pem"


def test_drop_in_resets_execstart_and_starts_dockerd_without_flags() -> None:
    text = by_path(load_spec_file(ARTICLE))["nodes/node3/docker.service.d/overlaylab.conf"].text
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body == ["[Service]", "ExecStart=", f"ExecStart={hosts.DEBIAN_DOCKERD}"]


def test_local_nodes_get_no_drop_in() -> None:
    assert not [p for p in by_path(load_spec_file(LAB)) if "docker.service.d" in p]


@pytest.mark.parametrize("spec", [LAB, "tests/testdata/labs/zk.yml", ARTICLE])
def test_kv_unit_runs_the_command_up_runs(spec: str) -> None:
    loaded = load_spec_file(spec)
    kv = loaded.spec.kv
    assert kv is not None
    unit = by_path(loaded)[f"nodes/{kv.node}/{nodeconf.kv_unit_name(loaded.spec)}"].text
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    _, argv = nodeconf.kv_argv(loaded.spec, hosts.kv_node_dir(loaded.spec))
    assert shlex.split(exec_start.removeprefix("ExecStart="))[1:] == argv[1:]
    assert shlex.split(exec_start.removeprefix("ExecStart="))[0].startswith("/")


def test_systemd_quoting() -> None:
    assert nodeconf.systemd_quote("--name") == "--name"
    assert nodeconf.systemd_quote("a b") == '"a b"'
    assert nodeconf.systemd_quote('say "hi" 100%') == '"say \\"hi\\" 100%%"'
    assert nodeconf.systemd_quote("$HOME") == "$$HOME"


# --- stacks ---------------------------------------------------------------------------


def test_placement_names_node_and_engine_per_service() -> None:
    loaded = load_spec_file(LAB)
    artifacts = by_path(loaded)
    placement = yaml.safe_load(artifacts["stacks/demo/placement.yml"].text)
    ctx = make_ctx(loaded.spec, Path("/var/lib/overlaylab/lab"))
    assert placement["compose_file"] == "docker-compose.yml"
    web = placement["services"]["web"]
    assert web["node"] == "node1"
    assert web["environment"] == ctx.node("node1").docker_env()
    assert web["command"] == "docker-compose -p demo -f docker-compose.yml up -d --no-deps web"
    assert placement["services"]["mongo"]["node"] == "node2"
    compose = (REPO / "stacks/demo/docker-compose.yml").read_text()
    assert artifacts["stacks/demo/docker-compose.yml"].text == compose


def test_docker_machine_placement_uses_docker_machine_env() -> None:
    placement = yaml.safe_load(by_path(load_spec_file(ARTICLE))["stacks/demo/placement.yml"].text)
    assert placement["services"]["web"]["env_command"] == 'eval "$(docker-machine env node1)"'
    assert "environment" not in placement["services"]["web"]


# --- writing --------------------------------------------------------------------------


def test_write_replaces_only_what_the_last_render_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "nodes").mkdir(parents=True)
    (out / "nodes" / "notes.txt").write_text("mine\n")
    first = [
        Artifact(PurePosixPath("machines.sh"), "echo\n", "script", executable=True),
        Artifact(PurePosixPath("nodes/gone/daemon.json"), "{}\n", "config"),
    ]
    write_artifacts(first, out)
    assert os.access(out / "machines.sh", os.X_OK)
    assert not os.access(out / "nodes/gone/daemon.json", os.X_OK)
    write_artifacts(first[:1], out)
    assert not (out / "nodes" / "gone").exists()
    assert (out / "nodes" / "notes.txt").read_text() == "mine\n"  # not the render's: kept
    assert json.loads((out / MANIFEST).read_text()) == ["machines.sh"]


@pytest.mark.tools
def test_render_task_writes_the_folder_and_the_vagrant_machines(tmp_path: Path) -> None:
    out = tmp_path / "render"
    machines = tmp_path / "machines.json"
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "render", "-i", ARTICLE, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "OVERLAYLAB_MACHINES": str(machines)},
    )
    assert result.returncode == 0, result.stderr
    assert "rendered lab 'article2015'" in result.stderr
    assert result.stdout.splitlines()[0] == f"{out}/"
    assert "machines.sh  the Docker 1.9 overlay guide's docker-machine commands" in result.stdout
    assert "│   │   └── overlaylab-article2015-consul.service" in result.stdout
    assert (out / "machines.sh").read_text() == by_path(load_spec_file(ARTICLE))["machines.sh"].text
    assert machines.read_text() == (out / "machines.json").read_text()


@pytest.mark.tools
def test_render_task_reports_a_bad_spec_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("apiVersion: overlaylab/v1\nkind: Cluster\nname: Bad\nnodes: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "render", "-i", str(bad), "--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}" in result.stderr and "name" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("driver", "vm_provider"),
    [("virtualbox", "virtualbox"), ("kvm", "libvirt"), ("docker", "docker")],
)
def test_vagrant_default_provider_follows_the_docker_machine_driver(
    tmp_path: Path, driver: str, vm_provider: str
) -> None:
    data = lab_data(REPO / ARTICLE)
    data["provider"]["driver"] = driver
    machines = json.loads(by_path(spec_file(tmp_path, data))["machines.json"].text)
    assert machines["default_provider"] == vm_provider


def test_a_driver_vagrant_has_no_provider_for_keeps_the_vagrant_default(tmp_path: Path) -> None:
    data = lab_data(REPO / ARTICLE)
    data["provider"]["driver"] = "amazonec2"
    machines = json.loads(by_path(spec_file(tmp_path, data))["machines.json"].text)
    assert machines["default_provider"] == vagrant.VagrantProviderSpec(type="vagrant").vm_provider
