"""What a lab IS: its spec, paths, layout, provider and progress, passed around as one object.

Run state (what one `up` or one `verify` learns as it goes) lives in that run's own object
(`overlaylab.up.run.UpRun`, `overlaylab.verify.context.VerifyContext`), never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from overlaylab.layout import DEFAULT_SPEC, LabLayout
from overlaylab.progress import Progress
from overlaylab.providers import get_provider
from overlaylab.providers.base import Node, Provider
from overlaylab.spec.loader import load_spec_file
from overlaylab.spec.models import ClusterSpec
from overlaylab.spec.paths import resolve_in_spec_dir, spec_dir_of
from overlaylab.spec.warnings import SpecWarning, spec_warnings
from overlaylab.state import LabState


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

    def resolve_spec_path(self, relative: str) -> Path:
        """A stack file or image tarball named in the spec, as an absolute path."""
        return resolve_in_spec_dir(self.spec_dir, relative)

    def node(self, name: str) -> Node:
        """The handle every step and check reaches a host through."""
        return self.provider.node(name)

    @property
    def state(self) -> LabState:
        return LabState.load(self.layout.state_file)


def open_lab(spec_path: str | Path = DEFAULT_SPEC, progress: Progress | None = None) -> LabContext:
    loaded = load_spec_file(spec_path)
    return context_for(loaded.spec, loaded.path, progress=progress, warnings=loaded.warnings)


def context_for(
    spec: ClusterSpec,
    spec_path: Path,
    *,
    state_dir: str | Path | None = None,
    progress: Progress | None = None,
    warnings: list[SpecWarning] | None = None,
) -> LabContext:
    """The context for a spec loaded from `spec_path`; `state_dir` overrides the spec's.

    `warnings` as `load_spec_file` found them (with lines); default: computed here.
    """
    if state_dir is None:
        layout = LabLayout.for_spec(spec)
    else:
        layout = LabLayout.for_cluster(spec.name, state_dir)
    return LabContext(
        spec=spec,
        spec_path=spec_path,
        spec_dir=spec_dir_of(spec_path),
        layout=layout,
        provider=get_provider(spec, layout, spec_dir_of(spec_path)),
        progress=progress or Progress(),
        warnings=spec_warnings(spec) if warnings is None else warnings,
    )
