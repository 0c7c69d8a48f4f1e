"""What the steps of one `up` hand each other: born with the run, gone when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from overlaylab.up.compose_warm import WarmCompose


@dataclass
class UpRun:
    # Legacy-overlay engines this run started: the gossip step checks them for islands.
    engines_started: set[str] = field(default_factory=set)
    # docker-compose interpreters a fresh `up` starts early, for the stacks step.
    compose: WarmCompose = field(default_factory=WarmCompose)
