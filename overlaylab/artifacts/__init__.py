"""Every file a spec renders to, as data; `invoke render` writes them into a folder.

What it takes to build the lab somewhere other than this machine's namespaces, or by
hand: the machines file the top-level Vagrantfile reads, the docker-machine commands
of the Docker 1.9 overlay guide, each engine's daemon.json (with a systemd drop-in on
real hosts), the KV node's service unit, and each stack's compose file with its
placement. Nothing here starts anything or needs root.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from overlaylab import nodeconf
from overlaylab import vagrant_machines as vagrant
from overlaylab.artifacts import docker_machine, hosts, stacks
from overlaylab.errors import OverlaylabError
from overlaylab.spec.loader import LoadedSpec
from overlaylab.templates import PROJECT_ROOT

# Where the top-level Vagrantfile looks for its machines; OVERLAYLAB_MACHINES names
# another file, for the Vagrantfile and for render alike.
VAGRANT_MACHINES = PROJECT_ROOT / ".overlaylab" / "machines.json"
MACHINES_ENV = "OVERLAYLAB_MACHINES"
RENDER_ROOT = PROJECT_ROOT / ".overlaylab" / "render"
# Lists what the last render wrote, so a new render removes what it no longer makes
# (a node taken out of the spec) and nothing else in the folder.
MANIFEST = ".overlaylab-render"


@dataclass(frozen=True)
class Artifact:
    path: PurePosixPath  # relative to the render folder
    text: str
    description: str
    executable: bool = False


def default_out_dir(cluster: str) -> Path:
    return RENDER_ROOT / cluster


def spec_artifacts(loaded: LoadedSpec) -> list[Artifact]:
    """Every artifact of a loaded spec, in the order a reader wants them."""
    spec = loaded.spec
    found = [
        Artifact(
            PurePosixPath("machines.json"),
            vagrant.machines_json(loaded),
            "the Vagrantfile's machines (default provider "
            f"{vagrant.vagrant_options(spec).vm_provider})",
        ),
        Artifact(
            PurePosixPath("machines.sh"),
            docker_machine.machines_sh(loaded),
            "the Docker 1.9 overlay guide's docker-machine commands "
            f"({docker_machine.driver_of(spec)})",
            executable=True,
        ),
    ]
    found += _node_artifacts(loaded)
    for stack in spec.stacks:
        folder = PurePosixPath("stacks") / stack.name
        found.append(
            Artifact(
                folder / stacks.compose_name(stack),
                stacks.compose_text(loaded, stack),
                f"compose file (from {stack.file})",
            )
        )
        placed = ", ".join(f"{svc} -> {node}" for svc, node in sorted(stack.services.items()))
        found.append(
            Artifact(
                folder / "placement.yml",
                stacks.placement_yml(loaded, stack),
                f"where each service runs ({placed}), with its DOCKER_HOST",
            )
        )
    return found


def _node_artifacts(loaded: LoadedSpec) -> list[Artifact]:
    spec = loaded.spec
    local = hosts.is_local(spec)
    found: list[Artifact] = []
    for node in spec.nodes:
        folder = PurePosixPath("nodes") / node.name
        if spec.kv is not None and spec.kv.node == node.name:
            found.append(
                Artifact(
                    folder / nodeconf.kv_unit_name(spec),
                    hosts.kv_unit(spec),
                    f"systemd unit: {spec.kv.backend} with the arguments `up` uses",
                )
            )
            if spec.kv.backend == "zookeeper":
                found.append(
                    Artifact(
                        folder / "zoo.cfg",
                        hosts.kv_zookeeper_config(spec),
                        "zookeeper's configuration, named by the unit",
                    )
                )
        if not node.runs_engine:
            continue
        where = "as `up` writes it" if local else f"for {hosts.HOST_DAEMON_JSON}"
        found.append(
            Artifact(
                folder / "daemon.json", hosts.daemon_json(spec, node), f"dockerd config, {where}"
            )
        )
        if not local:
            found.append(
                Artifact(
                    folder / "docker.service.d" / "overlaylab.conf",
                    hosts.dockerd_drop_in(spec, node),
                    "systemd drop-in: dockerd without -H, so daemon.json's hosts apply",
                )
            )
    return found


# --- writing --------------------------------------------------------------------------


def write_artifacts(artifacts: list[Artifact], out_dir: Path) -> None:
    """Write every artifact under `out_dir`; remove what the previous render there
    wrote and this one does not (never anything else)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest = out_dir / MANIFEST
        previous = _read_manifest(manifest)
        for artifact in artifacts:
            _write(out_dir / artifact.path, artifact.text, 0o755 if artifact.executable else 0o644)
        wanted = {str(a.path) for a in artifacts}
        for stale in sorted(previous - wanted):
            _remove_with_empty_parents(out_dir, PurePosixPath(stale))
        _write(manifest, json.dumps(sorted(wanted), indent=2) + "\n", 0o644)
    except OSError as exc:
        raise OverlaylabError(
            f"cannot write the rendered files into {out_dir}: {exc.strerror or exc} "
            f"({exc.filename or out_dir}); pass another folder with --out"
        ) from None


def vagrant_machines_path() -> Path:
    return Path(os.environ.get(MACHINES_ENV) or VAGRANT_MACHINES)


def write_vagrant_machines(artifacts: list[Artifact], path: Path | None = None) -> Path:
    """Put machines.json where the Vagrantfile reads it."""
    path = path or vagrant_machines_path()
    machines = next(a for a in artifacts if a.path == PurePosixPath("machines.json"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, machines.text, 0o644)
    except OSError as exc:
        raise OverlaylabError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _read_manifest(manifest: Path) -> set[str]:
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    # Only relative paths inside the folder: a hand-edited manifest removes nothing else.
    return {
        p
        for p in listed
        if isinstance(p, str)
        and not PurePosixPath(p).is_absolute()
        and ".." not in PurePosixPath(p).parts
    }


def _write(path: Path, text: str, mode: int) -> None:
    """Atomically: a reader (vagrant, a shell) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _remove_with_empty_parents(out_dir: Path, relative: PurePosixPath) -> None:
    with contextlib.suppress(FileNotFoundError):
        (out_dir / relative).unlink()
    for parent in (out_dir / relative).parents:
        if parent == out_dir or out_dir not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:
            break  # not empty (or gone): keep it
