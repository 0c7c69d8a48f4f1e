"""The default lab's spec, variants of it and contexts on them, for the unit tests.

Plain helpers, imported as `from lab_specs import ...` (pytest puts tests/unit on
sys.path); the fixtures built on them live in conftest.py. No test module imports
another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from overlaylab.context import LabContext, context_for
from overlaylab.progress import Progress
from overlaylab.spec import parse_spec
from overlaylab.spec.models import ClusterSpec
from overlaylab.up.run import UpRun

REPO = Path(__file__).resolve().parents[2]
LAB_YML = REPO / "inventory" / "lab.yml"
SWARM_YML = REPO / "tests" / "testdata" / "specs" / "valid" / "swarm-mode.yml"
ZK_YML = REPO / "tests" / "testdata" / "labs" / "zk.yml"


def lab_data(path: Path = LAB_YML) -> dict[str, Any]:
    """A spec file as plain YAML data, to edit and hand to `lab_variant`."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def lab_variant(base: Path = LAB_YML, **sections: Any) -> ClusterSpec:
    """`base` with top-level sections changed, parsed as if it sat next to `base`.

    A mapping given for a mapping section is merged into it (`engine={"tls": False}`
    changes one key and keeps the others); anything else replaces the section
    (`nodes=[...]`, `kv=None`).
    """
    data = lab_data(base)
    for key, value in sections.items():
        current = data.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            current.update(value)
        else:
            data[key] = value
    return parse_spec(yaml.safe_dump(data), source="lab-variant.yml", spec_dir=base.parent)


def make_ctx(
    spec: ClusterSpec,
    state: Path,
    spec_path: Path = LAB_YML,
    progress: Progress | None = None,
) -> LabContext:
    """The context `up` would build for `spec`, with its state folder at `state`."""
    return context_for(spec, spec_path, state_dir=state, progress=progress or Progress(quiet=True))


# One UpRun per lab context, as one `up` hands it from step to step: a test that calls
# ensure_engines and then ensure_gossip on the same context sees what the first started.
_RUNS: list[tuple[object, UpRun]] = []


def run_for(ctx: object) -> UpRun:
    for known, run in _RUNS:
        if known is ctx:
            return run
    _RUNS.append((ctx, UpRun()))
    return _RUNS[-1][1]
