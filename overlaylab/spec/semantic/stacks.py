"""Rules on what the lab runs: images, image tarballs, SSH hosts' files, stacks and their
compose files (readable, the compose version the orchestration takes, images built or loaded)."""

from __future__ import annotations

import re
from pathlib import Path

from overlaylab.spec.compose import UNREADABLE as COMPOSE_UNREADABLE
from overlaylab.spec.compose import ComposeFile, NotARegularFile, read_compose_file
from overlaylab.spec.models import BUILT_IMAGES, PROBE_IMAGE, ClusterSpec, SSHProviderSpec
from overlaylab.spec.paths import resolve_in_spec_dir
from overlaylab.spec.semantic.common import find_node, unknown_node
from overlaylab.spec.semantic.report import Loc, Report, suggest


def check_images(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    for index, image in enumerate(spec.images):
        for node_index, name in enumerate(image.nodes or []):
            node = find_node(spec, name)
            loc: Loc = ("images", index, "nodes", node_index)
            if node is None:
                report.add(loc, unknown_node(spec, name))
            elif not node.runs_engine:
                report.add(loc, f"node {name!r} runs no engine to load the image into")


def check_image_tarballs(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    # Found now rather than halfway through `up`, with engines already running.
    for index, image in enumerate(spec.images):
        if image.tarball is None:
            continue
        path = resolve_in_spec_dir(spec_dir, image.tarball)
        if not path.exists():
            report.add(
                ("images", index, "tarball"),
                f"tarball {path} not found; {_relative_to(spec_dir)}; "
                f"write it with `docker save -o {path} {image.name}`",
            )
        elif not path.is_file():
            report.add(
                ("images", index, "tarball"),
                f"{path} is not a file; name the `docker save` tarball of {image.name}",
            )


def _relative_to(spec_dir: Path) -> str:
    return f"paths are relative to the spec's folder {spec_dir}"


def check_ssh_hosts(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    if not isinstance(spec.provider, SSHProviderSpec):
        return
    hosts = spec.provider.hosts
    for node in spec.nodes:
        if node.name not in hosts:
            report.add(
                ("provider", "hosts"),
                f"no entry for node {node.name!r}; add {node.name}: {{host: ...}}",
            )
    for name in hosts:
        if find_node(spec, name) is None:
            report.add(("provider", "hosts", name), unknown_node(spec, name))


def check_stacks(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    for index, stack in enumerate(spec.stacks):
        _check_placements(spec, index, report)
        compose = _read_compose(spec, index, spec_dir, report)
        if compose is None:
            continue
        services, lines = compose
        for service in stack.services:
            if service not in services:
                report.add(
                    ("stacks", index, "services", service),
                    f"{stack.file} defines no service {service!r}"
                    f"{suggest(service, services)} (services: {', '.join(services) or 'none'})",
                )
        for service, definition in services.items():
            _check_service_image(spec, index, service, definition, lines[service], report)
        for service in stack.advertise:
            if service not in stack.services:
                report.add(
                    ("stacks", index, "advertise", service),
                    f"{service!r} is not placed by this stack's services:"
                    f"{suggest(service, list(stack.services))} "
                    f"(placed: {', '.join(stack.services)})",
                )


def _check_placements(spec: ClusterSpec, index: int, report: Report) -> None:
    for service, name in spec.stacks[index].services.items():
        node = find_node(spec, name)
        loc: Loc = ("stacks", index, "services", service)
        if node is None:
            report.add(loc, unknown_node(spec, name))
        elif not node.runs_engine:
            engines = ", ".join(n.name for n in spec.engine_nodes)
            report.add(loc, f"node {name!r} runs no engine; place {service} on one of: {engines}")


def _read_compose(
    spec: ClusterSpec, index: int, spec_dir: Path, report: Report
) -> tuple[dict[str, object], dict[str, int]] | None:
    """Services of the stack's compose file and the line each starts on, or None."""
    stack = spec.stacks[index]
    loc: Loc = ("stacks", index, "file")
    path = resolve_in_spec_dir(spec_dir, stack.file)
    try:
        compose = read_compose_file(path)
    except FileNotFoundError:
        report.add(loc, f"compose file {path} not found; {_relative_to(spec_dir)}")
        return None
    except NotARegularFile as exc:
        report.add(loc, f"{exc}: a stack's file must be a compose YAML file")
        return None
    except COMPOSE_UNREADABLE as exc:
        report.add(loc, f"cannot read compose file {stack.file}: {_one_line(exc)}")
        return None
    services = compose.services
    if services is None:
        report.add(loc, f"{stack.file} has no services mapping")
        return None
    _check_compose_version(spec, index, compose, report)
    return services, compose.service_lines


def _check_compose_version(
    spec: ClusterSpec, index: int, compose: ComposeFile, report: Report
) -> None:
    """The compose file version the stack's way of deploying speaks: `docker stack
    deploy` (swarm mode) reads only 3.x; compose through a classic swarm master (API
    1.30) allows 2.0 to 2.3."""
    loc: Loc = ("stacks", index, "file")
    if spec.orchestration.mode == "swarm-mode":
        version = compose.version(default="3")
        if not version.startswith("3"):
            report.add(
                loc,
                f"{compose.path} is compose file version {version}; `docker stack deploy` "
                '(swarm mode) needs version 3.x. Write it as version: "3.8" (deploy:, not '
                "container_name: or depends_on: conditions)",
            )
    elif spec.orchestration.mode == "classic-swarm" and spec.stacks[index].via == "swarm-master":
        version = compose.version(default="1")
        if not re.fullmatch(r"2(\.[0-3])?", version):
            report.add(
                loc,
                f"{compose.path} is compose file version {version} (via: swarm-master); "
                "swarm 1.2.9 speaks API 1.30, which compose allows for versions 2.0 to 2.3: "
                'write it as version: "2.3", or use via: node',
            )


def _check_service_image(
    spec: ClusterSpec, index: int, service: str, definition: object, line: int, report: Report
) -> None:
    stack = spec.stacks[index]
    image = definition.get("image") if isinstance(definition, dict) else None
    where = f"service {service!r} in {stack.file} (line {line})"
    listed = {_normalise_image(i.name) for i in spec.images}
    if image is None:
        report.add(
            ("stacks", index, "file"),
            f"{where} has no image; the lab builds nothing and pulls nothing, "
            f"so use {PROBE_IMAGE} or an image listed under images:",
        )
    elif _normalise_image(str(image)) not in listed | set(BUILT_IMAGES):
        report.add(
            ("stacks", index, "file"),
            f"{where} uses image {image!r}, which is neither one the lab builds "
            f"({', '.join(BUILT_IMAGES)}) nor listed under images:; add '- name: {image}' "
            "under images: (nothing is pulled)",
        )


def _normalise_image(reference: str) -> str:
    """`mongo` and `docker.io/library/mongo:latest` name the same image."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if reference.startswith(prefix):
            reference = reference[len(prefix) :]
            break
    last = reference.rsplit("/", 1)[-1]
    if "@" not in reference and ":" not in last:
        reference += ":latest"
    return reference


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
