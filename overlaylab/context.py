"""Everything a step or check needs about one lab, passed around as one object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from overlaylab.layout import LabLayout
from overlaylab.progress import Progress
from overlaylab.providers.local import LocalProvider
from overlaylab.spec.models import ClusterSpec
from overlaylab.state import LabState


@dataclass
class LabContext:
    spec: ClusterSpec
    spec_path: Path
    root: Path  # relative stack and image paths resolve against this folder
    layout: LabLayout
    provider: LocalProvider
    progress: Progress = field(default_factory=Progress)

    @property
    def state(self) -> LabState:
        return LabState.load(self.layout.state_file)
