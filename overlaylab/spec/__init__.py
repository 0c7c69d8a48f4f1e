"""The cluster spec: models, loading with located error messages, JSON schema."""

from __future__ import annotations

from overlaylab.errors import SpecError
from overlaylab.spec.loader import (
    apply_defaults,
    load_spec,
    parse_spec,
    resolve_path,
    source_path,
    spec_root,
)
from overlaylab.spec.models import PROBE_IMAGE, ClusterSpec
from overlaylab.spec.semantic import format_path, semantic_problems

__all__ = [
    "PROBE_IMAGE",
    "ClusterSpec",
    "SpecError",
    "apply_defaults",
    "format_path",
    "load_spec",
    "parse_spec",
    "resolve_path",
    "semantic_problems",
    "source_path",
    "spec_root",
]
