"""Every rule, in the order they run, and the run."""

from __future__ import annotations

from pathlib import Path

from overlaylab.spec.models import ClusterSpec
from overlaylab.spec.semantic.engines import (
    check_cluster_advertise,
    check_cluster_store,
    check_daemon_keys,
    check_kv,
    check_orchestration,
)
from overlaylab.spec.semantic.networks import check_networks, check_overlay_needs_control_plane
from overlaylab.spec.semantic.nodes import (
    check_addresses,
    check_engine_nodes,
    check_host_address,
    check_node_names,
)
from overlaylab.spec.semantic.report import Check, Locate, Report
from overlaylab.spec.semantic.stacks import (
    check_image_tarballs,
    check_images,
    check_ssh_hosts,
    check_stacks,
)


def semantic_problems(spec: ClusterSpec, spec_dir: Path, locate: Locate) -> list[tuple[int, str]]:
    """Run every check; return `(line, message)` pairs in file order.

    `spec_dir` is the folder relative stack and image paths resolve against (the spec
    file's own). The spec must already have its defaults applied (node addresses), as
    `load_spec` does.
    """
    report = Report(locate)
    for check in CHECKS:
        check(spec, spec_dir, report)
    return sorted(report.problems, key=lambda item: item[0])


CHECKS: tuple[Check, ...] = (
    check_node_names,
    check_engine_nodes,
    check_addresses,
    check_host_address,
    check_networks,
    check_overlay_needs_control_plane,
    check_kv,
    check_cluster_store,
    check_cluster_advertise,
    check_orchestration,
    check_daemon_keys,
    check_images,
    check_image_tarballs,
    check_ssh_hosts,
    check_stacks,
)
