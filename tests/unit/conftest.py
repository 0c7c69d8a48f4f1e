"""Fixtures shared by the unit tests. Plain helpers (paths, spec variants, contexts)
are in lab_specs.py, which test modules import directly."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_specs import LAB_YML, make_ctx

from overlaylab.context import LabContext
from overlaylab.spec import load_spec


@pytest.fixture
def ctx(tmp_path: Path) -> LabContext:
    """The default lab's context, its state folder under tmp_path (nothing is started)."""
    return make_ctx(load_spec(LAB_YML), tmp_path / "state")
