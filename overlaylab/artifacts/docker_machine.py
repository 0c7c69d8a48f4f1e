"""machines.sh: the spec as the docker-machine commands of the Docker 1.9 overlay guide.

The guide (docs/userguide/networking/get-started-overlay.md @v1.9.0, and the article
that followed it) built the lab by hand: a KV machine, the KV store as a container on
it, one machine per engine whose dockerd got `--engine-opt cluster-store=...` and
`cluster-advertise=eth1:2376` (plus `--swarm*` for classic swarm), then the overlay,
created through the swarm master. Addresses come from `docker-machine ip` at run time,
as in the guide: VirtualBox hands them out by DHCP, so the spec's own are not used.

Every value from the spec is shell-quoted. The guide's double-quoted words that hold a
`$(docker-machine ip ...)` keep that form: their literal parts are escaped for double
quotes, and the machine name inside the substitution is quoted on its own.

One module (~360 lines) because it is one script, rendered top to bottom: the quoting
rules and the commands that use them are read together.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

from overlaylab.spec.loader import LoadedSpec
from overlaylab.spec.models import (
    KV_SCHEMES,
    ClusterSpec,
    DockerMachineSpec,
    Node,
    OverlayNetwork,
    SSHProviderSpec,
)
from overlaylab.templates import render

SCRIPT_TEMPLATE = "machines.sh.j2"
GUIDE_DRIVER = "virtualbox"
# docker-machine's virtualbox driver: host-only network 192.168.99.1/24 unless told.
VIRTUALBOX_HOSTONLY = ipaddress.IPv4Network("192.168.99.0/24")
SWARM_MODE_PORT = 2377

# The KV store as a container on the KV machine: (image, container port, arguments).
# consul is the guide's own line; etcd 3.4 is the last line with libkv's v2 API on
# request (`--enable-v2=true`, DOCKER-FACTS); zookeeper is the official image.
KV_CONTAINERS: dict[str, tuple[str, int | None, tuple[str, ...]]] = {
    "consul": ("progrium/consul", 8500, ("-server", "-bootstrap")),
    "etcd": ("gcr.io/etcd-development/etcd:v3.4.13", None, ("/usr/local/bin/etcd",)),
    "zookeeper": ("zookeeper:3.8", 2181, ()),
}


def q(value: object) -> str:
    """One shell word holding `value` exactly."""
    return shlex.quote(str(value))


@dataclass(frozen=True)
class Sub:
    """A command substitution, placed unquoted inside a double-quoted word."""

    command: str


def dq(*parts: str | Sub) -> str:
    """A double-quoted word: literal parts escaped (\\, ", $, `), substitutions kept."""
    out = []
    for part in parts:
        if isinstance(part, Sub):
            out.append(f"$({part.command})")
        else:
            out.append("".join("\\" + c if c in '\\"$`' else c for c in part))
    return '"' + "".join(out) + '"'


def machine_ip(name: str) -> Sub:
    return Sub(f"docker-machine ip {q(name)}")


def machine_config(name: str) -> str:
    # Unquoted on purpose, as in the guide: `config` prints several flags.
    return f"$(docker-machine config {q(name)})"


@dataclass
class Command:
    """One shell command, laid out over lines (joined with backslash continuations)."""

    lines: list[list[str]]

    def text(self) -> str:
        return " \\\n  ".join(" ".join(words) for words in self.lines if words)


@dataclass
class Section:
    title: list[str]
    commands: list[Command] = field(default_factory=list)

    def add(self, *lines: list[str]) -> None:
        self.commands.append(Command(list(lines)))


# --- machines -------------------------------------------------------------------------


def driver_of(spec: ClusterSpec) -> str:
    provider = spec.provider
    if isinstance(provider, DockerMachineSpec):
        return provider.driver
    if isinstance(provider, SSHProviderSpec):
        return "generic"  # existing hosts: docker-machine takes them over SSH
    return GUIDE_DRIVER


def driver_words(spec: ClusterSpec, node: Node) -> list[str]:
    """`-d DRIVER` and the driver's own options for `node`."""
    driver = driver_of(spec)
    options: dict[str, str] = {}
    provider = spec.provider
    if isinstance(provider, DockerMachineSpec):
        options.update(provider.driver_options)
    elif isinstance(provider, SSHProviderSpec):
        host = provider.hosts[node.name]
        options.update({"ip-address": host.host, "ssh-user": host.user})
        if host.port != 22:
            options["ssh-port"] = str(host.port)
        if provider.key_file:
            options["ssh-key"] = provider.key_file
    if driver == "generic":
        options.setdefault("ip-address", str(node.address))
    if driver == GUIDE_DRIVER and spec.lab.subnet != VIRTUALBOX_HOSTONLY:
        # The host-only network is the lab switch: put it on the spec's subnet.
        first = spec.lab.subnet.network_address + 1
        options.setdefault("hostonly-cidr", f"{first}/{spec.lab.subnet.prefixlen}")
    words = ["-d", q(driver)]
    for key, value in sorted(options.items()):
        words += [q(f"--{driver}-{key}"), q(value)]
    return words


def kv_url(spec: ClusterSpec) -> list[str | Sub]:
    """The KV store's discovery URL, its host from `docker-machine ip` (as parts)."""
    assert spec.kv is not None
    scheme = KV_SCHEMES[spec.kv.backend]
    return [f"{scheme}://", machine_ip(spec.kv.node), f":{spec.kv.client_port}{spec.kv.path}"]


def cluster_store_word(spec: ClusterSpec) -> str | None:
    store = spec.engine.cluster_store
    if store is None:
        return None
    if store == "auto":
        if spec.kv is None:
            return None
        return "--engine-opt=" + dq("cluster-store=", *kv_url(spec))
    return "--engine-opt=" + q(f"cluster-store={store}")


def engine_words(spec: ClusterSpec, node: Node) -> list[list[str]]:
    """The `--engine-*` lines for one engine node (cluster-store first, as the guide)."""
    lines: list[list[str]] = []
    store = cluster_store_word(spec)
    if store is not None:
        lines.append([store])
        for key, value in sorted(spec.engine.cluster_store_opts.items()):
            lines.append(["--engine-opt=" + q(f"cluster-store-opt={key}={value}")])
        if spec.engine.cluster_advertise is not None:
            lines.append(
                ["--engine-opt=" + dq(f"cluster-advertise={spec.engine.cluster_advertise}")]
            )
    for key, value in sorted(node.labels.items()):
        lines.append(["--engine-label", q(f"{key}={value}")])
    return lines


def swarm_words(spec: ClusterSpec, node: Node) -> tuple[list[str], list[list[str]]]:
    """(flags for the first line, option lines) of classic swarm for `node`."""
    if spec.orchestration.mode != "classic-swarm" or spec.kv is None:
        return [], []
    master = "swarm-master" in node.roles
    if not master and "swarm-agent" not in node.roles:
        return [], []
    flags = ["--swarm", "--swarm-master"] if master else ["--swarm"]
    lines = [["--swarm-discovery=" + dq(*kv_url(spec))]]
    if master and spec.orchestration.strategy != "spread":
        lines.append(["--swarm-strategy", q(spec.orchestration.strategy)])
    return flags, lines


def create_engine(spec: ClusterSpec, node: Node) -> Command:
    flags, swarm_lines = swarm_words(spec, node)
    lines = [["docker-machine", "create", *driver_words(spec, node), *flags]]
    lines += swarm_lines
    lines += engine_words(spec, node)
    last = ["--swarm-image", q(spec.orchestration.swarm_image)] if flags else []
    if len(lines) == 1 and not last:
        lines[0].append(q(node.name))  # nothing to spread over lines
    else:
        lines.append([*last, q(node.name)])
    return Command(lines)


# --- the KV store ---------------------------------------------------------------------


def kv_section(spec: ClusterSpec) -> Section | None:
    if spec.kv is None:
        return None
    kv = spec.kv
    node = spec.node(kv.node)
    section = Section(
        [
            f"The KV store: machine {kv.node} runs {kv.backend} as a container "
            "(the guide's mh-keystore running consul)."
        ]
    )
    if node.runs_engine:
        section.title.append(
            f"{kv.node} also has engine roles, but its engine joins no overlay here: "
            "docker-machine needs the KV machine before any engine can point at it."
        )
    section.add(["docker-machine", "create", *driver_words(spec, node), q(kv.node)])
    image, inner_port, args = KV_CONTAINERS[kv.backend]
    port = kv.client_port
    publish = dq(f"{port}:{inner_port or port}")
    run = ["docker", machine_config(kv.node), "run", "-d", "-p", publish, "-h", dq(kv.backend)]
    if kv.backend != "etcd":
        section.add([*run, q(image), *args])
        return section
    section.add(
        [*run, q(image)],
        [*args, "--enable-v2=true"],
        ["--listen-client-urls", dq(f"http://0.0.0.0:{port}")],
        ["--advertise-client-urls", dq("http://", machine_ip(kv.node), f":{port}")],
    )
    return section


# --- engines, swarm and networks ------------------------------------------------------


def engines_section(spec: ClusterSpec) -> Section:
    mode = spec.orchestration.mode
    what = {
        "none": "every engine on the KV store (cluster-store, cluster-advertise)",
        "classic-swarm": "every engine on the KV store, and the classic swarm "
        f"({spec.orchestration.swarm_image}) discovering through it",
        "swarm-mode": "plain ones, since swarm mode keeps its own store",
    }[mode]
    if mode != "swarm-mode" and not spec.engine.uses_cluster_store:
        what = "plain ones (engine.cluster-store is null)"
    section = Section([f"Engines: {what}."])
    for node in _engines_in_order(spec):
        section.commands.append(create_engine(spec, node))
    return section


def _engines_in_order(spec: ClusterSpec) -> list[Node]:
    """The swarm master (or first manager) first, as the guide creates mhs-demo0 first."""
    kv_node = spec.kv.node if spec.kv is not None else None
    engines = [n for n in spec.engine_nodes if n.name != kv_node]
    lead = _lead(spec)
    return sorted(engines, key=lambda n: n.name != lead)


def _lead(spec: ClusterSpec) -> str | None:
    role = {"classic-swarm": "swarm-master", "swarm-mode": "manager"}.get(spec.orchestration.mode)
    return next((n.name for n in spec.nodes if role in n.roles), None) if role else None


def swarm_mode_section(spec: ClusterSpec) -> Section | None:
    lead = _lead(spec)
    if spec.orchestration.mode != "swarm-mode" or lead is None:
        return None
    section = Section([f"Swarm mode: {lead} starts the swarm, every other engine joins it."])
    section.add(
        ["docker", machine_config(lead), "swarm", "init", "--advertise-addr", dq(machine_ip(lead))]
    )
    for node in _engines_in_order(spec):
        if node.name == lead:
            continue
        role = "manager" if "manager" in node.roles else "worker"
        token = Sub(f"docker {machine_config(lead)} swarm join-token -q {role}")
        section.add(
            ["docker", machine_config(node.name), "swarm", "join"],
            ["--token", dq(token), dq(machine_ip(lead), f":{SWARM_MODE_PORT}")],
        )
    return section


def network_words(spec: ClusterSpec, net: OverlayNetwork) -> list[str]:
    words = ["docker", "network", "create", "--driver", q(net.driver)]
    if net.subnet is not None:
        words.append(q(f"--subnet={net.subnet}"))
    if net.gateway is not None:
        words.append(q(f"--gateway={net.gateway}"))
    if net.internal:
        words.append("--internal")
    if net.attachable and spec.orchestration.mode == "swarm-mode":
        words.append("--attachable")
    for key, value in sorted(net.options.items()):
        words += ["--opt", q(f"{key}={value}")]
    for key, value in sorted(net.labels.items()):
        words += ["--label", q(f"{key}={value}")]
    return [*words, q(net.name)]


def networks_section(spec: ClusterSpec) -> Section | None:
    engines = _engines_in_order(spec)
    if not spec.networks or not engines:
        return None
    classic = spec.orchestration.mode == "classic-swarm" and _lead(spec) is not None
    target = _lead(spec) or engines[0].name
    how = "the swarm master" if classic else target
    section = Section([f"Overlay networks, created through {how}; every engine sees them."])
    section.add(["eval", f"$(docker-machine env{' --swarm' if classic else ''} {q(target)})"])
    for net in spec.networks:
        section.add(network_words(spec, net))
    return section


# --- the script -----------------------------------------------------------------------


def notes(spec: ClusterSpec) -> list[str]:
    """What the spec asks for that docker-machine does its own way."""
    found = [
        f"engine.version {spec.engine.version}: docker-machine installs the engine its "
        "driver brings (boot2docker's ISO, or the host's own with `generic`).",
    ]
    if not spec.engine.tls or spec.engine.api_port != 2376:
        found.append(
            "docker-machine always serves the engine API with TLS on 2376; "
            "engine.tls and engine.api_port are not used."
        )
    if spec.engine.daemon:
        found.append(
            "engine.daemon keys are daemon.json keys, not dockerd flags: they are not "
            "passed (see nodes/*/daemon.json in this folder)."
        )
    return found


def sections(spec: ClusterSpec) -> list[Section]:
    found = [
        kv_section(spec),
        engines_section(spec),
        swarm_mode_section(spec),
        networks_section(spec),
    ]
    return [s for s in found if s is not None]


def machines_sh(loaded: LoadedSpec) -> str:
    spec = loaded.spec
    return render(
        SCRIPT_TEMPLATE,
        cluster=spec.name,
        source=loaded.path.as_posix(),
        driver=driver_of(spec),
        notes=notes(spec),
        sections=[
            {"title": s.title, "commands": [c.text() for c in s.commands]} for s in sections(spec)
        ],
    )
