"""The cluster spec: models, loading with located error messages, JSON schema."""

from __future__ import annotations

from overlaylab.errors import SpecError
from overlaylab.spec.loader import apply_defaults, load_spec, parse_spec
from overlaylab.spec.models import PROBE_IMAGE, ClusterSpec
from overlaylab.spec.paths import resolve_in_spec_dir, spec_dir_of
from overlaylab.spec.semantic import format_path, semantic_problems

__all__ = [
    "PROBE_IMAGE",
    "ClusterSpec",
    "SpecError",
    "apply_defaults",
    "format_path",
    "load_spec",
    "parse_spec",
    "resolve_in_spec_dir",
    "semantic_problems",
    "spec_dir_of",
]
