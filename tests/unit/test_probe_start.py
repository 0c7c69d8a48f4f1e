"""How a probe container is started (through the engine of its node's handle)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from overlaylab.context import LabContext
from overlaylab.verify import probes


class RecordingContainers:
    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    def run(self, image: str, command: list[str], **options: Any) -> Any:
        self.options = options
        network = options["network"]
        attrs = {"NetworkSettings": {"Networks": {network: {"IPAddress": "10.0.9.2"}}}}
        return type("Started", (), {"attrs": attrs, "reload": lambda self: None})()


def test_a_probe_stops_at_once(ctx: LabContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its PID 1 ignores SIGTERM: with the default stop signal every engine stop (an
    `up` repair, `down` over SSH) waited 10 s for each probe before killing it."""
    containers = RecordingContainers()

    @contextmanager
    def engine(*_args: object, **_kwargs: object) -> Iterator[Any]:
        yield type("Client", (), {"containers": containers})()

    monkeypatch.setattr(probes, "ensure_probe_image", lambda *_args: None)
    handle = ctx.node("node1")
    monkeypatch.setattr(type(handle), "engine", lambda self, *a, **k: engine())
    probe = probes._start_probe(ctx, "node1", "dn", "a")
    assert probe.address == "10.0.9.2"
    assert containers.options["stop_signal"] == "SIGKILL"
