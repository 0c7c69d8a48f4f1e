"""Load a cluster spec: YAML -> strict models -> defaults -> semantic checks.

Every problem is reported at once, each as `line N, yaml.path: what is wrong; what would
be valid`, so one edit-run cycle fixes them all. Lines come from the YAML node tree
(`yaml.compose` keeps marks), not from re-searching the text: yaml_document.py reads and
composes the YAML, schema_problems.py words pydantic's errors.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from overlaylab.errors import SpecError
from overlaylab.spec.models import ClusterSpec, LocalProviderSpec
from overlaylab.spec.paths import spec_dir_of
from overlaylab.spec.schema_problems import schema_problem
from overlaylab.spec.semantic import semantic_problems
from overlaylab.spec.warnings import SpecWarning, spec_warnings
from overlaylab.spec.yaml_document import (
    Problem,
    YamlDocument,
    compose_document,
    duplicate_keys,
    read_spec_text,
)

# Addresses handed out to nodes without one: .10, .11, ... (the 2015 guides' habit of
# keeping the low addresses for the host and infrastructure).
FIRST_NODE_HOST = 10


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec with what loading it from a file taught: where its relative paths
    point and its warnings, located by line."""

    spec: ClusterSpec
    path: Path
    spec_dir: Path
    warnings: list[SpecWarning]


def load_spec(path: str | Path) -> ClusterSpec:
    """Read, validate and complete the spec at `path`; raise SpecError with every problem.

    Relative stack and image paths resolve against the folder that holds the file.
    """
    return load_spec_file(path).spec


def load_spec_file(path: str | Path) -> LoadedSpec:
    """`load_spec`, keeping the spec's folder and its warnings (with their lines)."""
    path = Path(path)
    spec_dir = spec_dir_of(path)
    spec, document = _parse(read_spec_text(path), str(path), spec_dir)
    return LoadedSpec(spec, path, spec_dir, spec_warnings(spec, document.locate))


def parse_spec(text: str, *, source: str, spec_dir: Path) -> ClusterSpec:
    """Like `load_spec` for YAML text; `source` names it in messages, relative paths
    resolve against `spec_dir`."""
    return _parse(text, source, spec_dir)[0]


def _parse(text: str, source: str, spec_dir: Path) -> tuple[ClusterSpec, YamlDocument]:
    document = compose_document(text, source)
    problems = duplicate_keys(document.root, ())
    spec: ClusterSpec | None = None
    try:
        spec = ClusterSpec.model_validate(document.data, by_name=False)
    except ValidationError as exc:
        problems += [schema_problem(error, document) for error in exc.errors()]
    if problems or spec is None:
        # Semantic checks would only repeat or guess around schema problems.
        raise SpecError(source, _in_file_order(problems))
    apply_defaults(spec)
    problems = semantic_problems(spec, spec_dir, document.locate)
    if problems:
        raise SpecError(source, _in_file_order(problems))
    return spec, document


def apply_defaults(spec: ClusterSpec) -> None:
    """Fill in what depends on other values: the host's and the nodes' lab addresses."""
    subnet = spec.lab.subnet
    provider = spec.provider
    taken = {n.address for n in spec.nodes if n.address is not None}
    if isinstance(provider, LocalProviderSpec):
        if provider.host_address is None:
            provider.host_address = _first_host(subnet)
        if provider.host_link:
            taken.add(provider.host_address)
    candidate = subnet.network_address + FIRST_NODE_HOST
    for node in spec.nodes:
        if node.address is None:
            while candidate in taken:
                candidate += 1
            node.address = candidate
            taken.add(candidate)


def _first_host(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return subnet.network_address + (1 if subnet.prefixlen < 31 else 0)


def _in_file_order(problems: list[Problem]) -> list[str]:
    return [text for _, text in sorted(problems, key=lambda item: item[0])]
