"""Everything a step or check needs about one lab, passed around as one object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from overlaylab.layout import LabLayout
from overlaylab.progress import Progress
from overlaylab.providers.base import Node, Provider
from overlaylab.spec.models import ClusterSpec
from overlaylab.spec.paths import resolve_in_spec_dir
from overlaylab.spec.warnings import SpecWarning
from overlaylab.state import LabState
from overlaylab.steps.compose_warm import WarmCompose


@dataclass
class LabContext:
    spec: ClusterSpec
    spec_path: Path
    spec_dir: Path  # the spec file's folder: relative stack and image paths resolve here
    layout: LabLayout
    provider: Provider
    progress: Progress = field(default_factory=Progress)
    # Valid-but-surprising things about the spec, shown before `up` (never stop it).
    warnings: list[SpecWarning] = field(default_factory=list)
    # Legacy-overlay engines this run of `up` started: the gossip step checks them.
    engines_started: set[str] = field(default_factory=set)
    # docker-compose interpreters a fresh `up` starts early, for the stacks step.
    compose: WarmCompose = field(default_factory=WarmCompose)

    def resolve_spec_path(self, relative: str) -> Path:
        """A stack file or image tarball named in the spec, as an absolute path."""
        return resolve_in_spec_dir(self.spec_dir, relative)

    def node(self, name: str) -> Node:
        """The handle every step and check reaches a host through."""
        return self.provider.node(name)

    @property
    def state(self) -> LabState:
        return LabState.load(self.layout.state_file)
