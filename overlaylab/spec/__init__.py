"""The cluster spec: models, loading with located error messages, JSON schema."""

from __future__ import annotations

from overlaylab.errors import SpecError
from overlaylab.spec.loader import (
    LoadedSpec,
    apply_defaults,
    load_spec,
    load_spec_file,
    parse_spec,
)
from overlaylab.spec.models import PROBE_IMAGE, ClusterSpec
from overlaylab.spec.paths import resolve_in_spec_dir, spec_dir_of
from overlaylab.spec.semantic import format_path, semantic_problems
from overlaylab.spec.warnings import SpecWarning, spec_warnings

__all__ = [
    "PROBE_IMAGE",
    "ClusterSpec",
    "LoadedSpec",
    "SpecError",
    "SpecWarning",
    "apply_defaults",
    "format_path",
    "load_spec",
    "load_spec_file",
    "parse_spec",
    "resolve_in_spec_dir",
    "semantic_problems",
    "spec_dir_of",
    "spec_warnings",
]
