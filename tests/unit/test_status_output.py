"""`invoke status` off a terminal: every cell whole (a pipe, a file, a CI log)."""

from __future__ import annotations

import io
import json

import pytest

from overlaylab.status import print_status
from overlaylab.tasks.common import console

SNAPSHOT = {
    "cluster": "lab",
    "up": True,
    "nodes": [
        {"name": f"node{i}", "address": f"192.168.99.1{i}", "roles": ["engine", "swarm-agent"]}
        for i in (1, 2, 3)
    ],
    "engines": [
        {
            "node": f"node{i}",
            "engine": "up",
            "version": "20.10.24+dfsg1",
            "cluster_advertise": f"192.168.99.1{i}:2376",
            "networks": ["dn", "frontend-network"],
            "containers": [
                {
                    "name": f"overlaylab-probe-dn-node{i}-a",
                    "status": "running",
                    "networks": {"dn": f"10.0.9.{i + 1}"},
                }
            ],
        }
        for i in (1, 2, 3)
    ],
    "kv": {
        "backend": "etcd",
        "node": "kv",
        "url": "http://192.168.99.10:2379",
        "ready": True,
        "detail": "",
    },
    "swarm": None,
}
WHOLE = [
    "192.168.99.11",
    "20.10.24+dfsg1",
    "cluster-advertise",
    "192.168.99.13:2376",
    "dn,frontend-network",
    "overlaylab-probe-dn-node3-a",
    "swarm-agent",
]


def test_off_a_terminal_nothing_is_cropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    buffer = io.StringIO()  # not a terminal, like a pipe
    print_status(SNAPSHOT, console(buffer))
    text = buffer.getvalue()
    assert "…" not in text
    for cell in WHOLE:
        assert cell in text


def test_columns_still_decides_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: at 80 columns rich crops these cells."""
    monkeypatch.setenv("COLUMNS", "80")
    buffer = io.StringIO()
    print_status(SNAPSHOT, console(buffer))
    assert "…" in buffer.getvalue()


def test_status_json_off_a_terminal_parses_back_whole() -> None:
    buffer = io.StringIO()
    console(buffer).print_json(json.dumps(SNAPSHOT))  # what `status --format json` does
    assert json.loads(buffer.getvalue()) == SNAPSHOT
