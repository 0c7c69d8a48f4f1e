"""What a valid spec will build, as data: the topology `invoke validate` prints.

Everything here comes from the spec alone: nothing is started, nothing is written and
no root is needed, so CI can check a freshly templated layout before anyone runs `up`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from overlaylab.errors import SpecError
from overlaylab.spec.loader import LoadedSpec, load_spec_file
from overlaylab.spec.paths import resolve_in_spec_dir
from overlaylab.spec.warnings import SpecWarning


@dataclass(frozen=True)
class NodeSummary:
    name: str
    address: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class KVSummary:
    backend: str
    node: str
    address: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class EngineSummary:
    version: str
    cluster_store: str | None  # `auto` already turned into the URL the engines get
    cluster_advertise: str | None
    tls: bool


@dataclass(frozen=True)
class NetworkSummary:
    name: str
    driver: str
    subnet: str | None  # None: the engine's IPAM picks one
    options: tuple[tuple[str, str], ...]
    internal: bool = False  # no docker_gwbridge leg: no way out of the overlay
    attachable: bool | None = None  # swarm mode only: plain containers may join


@dataclass(frozen=True)
class StackSummary:
    name: str
    file: Path  # absolute: where the compose file was found
    placements: tuple[tuple[str, str], ...]  # (service, node), in spec order


@dataclass(frozen=True)
class SpecSummary:
    name: str
    description: str
    provider: str
    orchestration: str
    lab_subnet: str
    lab_mtu: int
    nodes: tuple[NodeSummary, ...]
    kv: KVSummary | None
    engine: EngineSummary
    networks: tuple[NetworkSummary, ...]
    stacks: tuple[StackSummary, ...]
    warnings: tuple[SpecWarning, ...]


@dataclass(frozen=True)
class SpecValidation:
    """One spec checked: its summary when valid, else the error listing every problem."""

    path: str
    summary: SpecSummary | None = None
    error: SpecError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def validate_spec(path: str | Path) -> SpecValidation:
    try:
        loaded = load_spec_file(path)
    except SpecError as exc:
        return SpecValidation(str(path), error=exc)
    return SpecValidation(str(path), summary=summarize(loaded))


def summarize(loaded: LoadedSpec) -> SpecSummary:
    spec = loaded.spec
    kv = None
    if spec.kv is not None:
        kv = KVSummary(
            backend=spec.kv.backend,
            node=spec.kv.node,
            address=str(spec.address_of(spec.kv.node)),
            port=spec.kv.client_port,
        )
    return SpecSummary(
        name=spec.name,
        description=spec.description,
        provider=spec.provider.type,
        orchestration=spec.orchestration.mode,
        lab_subnet=str(spec.lab.subnet),
        lab_mtu=spec.lab.mtu,
        nodes=tuple(
            NodeSummary(node.name, str(spec.address_of(node.name)), tuple(node.roles))
            for node in spec.nodes
        ),
        kv=kv,
        engine=EngineSummary(
            version=spec.engine.version,
            cluster_store=spec.cluster_store_url(),
            cluster_advertise=spec.engine.cluster_advertise,
            tls=spec.engine.tls,
        ),
        networks=tuple(
            NetworkSummary(
                name=network.name,
                driver=network.driver,
                subnet=str(network.subnet) if network.subnet is not None else None,
                options=tuple(network.options.items()),
                internal=network.internal,
                attachable=network.attachable if spec.orchestration.mode == "swarm-mode" else None,
            )
            for network in spec.networks
        ),
        stacks=tuple(
            StackSummary(
                name=stack.name,
                file=resolve_in_spec_dir(loaded.spec_dir, stack.file),
                placements=tuple(stack.services.items()),
            )
            for stack in spec.stacks
        ),
        warnings=tuple(loaded.warnings),
    )
