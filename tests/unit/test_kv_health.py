"""kv.reachable's health request, per store, in each store's own protocol: what a
healthy store answers passes; a stuck one (no answer), or one that answers wrongly,
fails with what it said. The etcd path also runs through the fake lab
(test_diagnosis); consul and ZooKeeper are answered here by a stand-in node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fakelab import FakeLab, fault_lab_spec

from overlaylab.providers.command import CommandResult
from overlaylab.verify.checks import kv, underlay
from overlaylab.verify.checks.kv import RUOK_SCRIPT, store_answers


@dataclass
class StubNode:
    """The two node calls a health request makes: an HTTP GET, or a command."""

    http: tuple[int, str] | OSError = (200, "")
    command: tuple[int, str] = (0, "")
    asked: list[object] = field(default_factory=list)

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        self.asked.append(path)
        if isinstance(self.http, OSError):
            raise self.http
        return self.http

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float | None = 60
    ) -> CommandResult:
        self.asked.append(list(argv))
        code, out = self.command
        return CommandResult(tuple(argv), code, out, "", "kv")


@pytest.mark.parametrize(
    ("backend", "answer", "ok", "said"),
    [
        ("etcd", (200, '{"health":"true","reason":""}'), True, 'GET /health: {"health":"true"'),
        ("etcd", (503, '{"health":"false","reason":"no leader"}'), False, "HTTP 503"),
        ("etcd", TimeoutError("timed out"), False, "no answer to GET /health within 2 s"),
        ("consul", (200, '"192.168.75.10:8300"'), True, "GET /v1/status/leader"),
        ("consul", (200, '""'), False, "HTTP 200"),  # up, but no leader elected
    ],
)
def test_http_stores_answer_their_health_request(
    backend: str, answer: tuple[int, str] | OSError, ok: bool, said: str
) -> None:
    node = StubNode(http=answer)
    answered, message = store_answers(node, backend, "192.168.75.10", 2379)  # type: ignore[arg-type]
    assert answered is ok
    assert said in message


@pytest.mark.parametrize(
    ("command", "ok", "said"),
    [
        ((0, "imok"), True, "ruok: imok"),
        ((124, ""), False, "no answer to ruok within 2 s"),
        ((0, ""), False, "not imok"),  # ruok not whitelisted: ZooKeeper closes silently
    ],
)
def test_zookeeper_answers_ruok(command: tuple[int, str], ok: bool, said: str) -> None:
    node = StubNode(command=command)
    answered, message = store_answers(node, "zookeeper", "192.168.76.10", 2181)  # type: ignore[arg-type]
    assert answered is ok and said in message
    [argv] = node.asked
    assert argv == ["timeout", "2", "bash", "-c", RUOK_SCRIPT, "ruok", "192.168.76.10", "2181"]


def test_one_connect_lost_to_a_slow_moment_is_tried_again(tmp_path: Path) -> None:
    lab = FakeLab(fault_lab_spec(), tmp_path / "state")
    lab.lost_connects["n2"] = 1
    assert not lab.verify([kv.REACHABLE]).failed
    lab.lost_connects["n2"] = 2  # twice in a row: that is the finding
    [failed] = lab.verify([kv.REACHABLE]).failed
    assert failed.source == "n2" and "timed out" in failed.message


def test_a_gossip_or_api_connect_lost_once_is_tried_again(tmp_path: Path) -> None:
    lab = FakeLab(fault_lab_spec(), tmp_path / "state")
    checks = [underlay.API, underlay.GOSSIP]
    # n2 checks 2 ports on each of 2 peers: one lost connect among them is retried.
    lab.lost_connects["n2"] = 1
    assert not lab.verify(checks).failed
    lab.drop("n3", "tcp", 2376)  # a real drop still fails, from every node
    failed = lab.verify(checks).failed
    assert {(r.source, r.target) for r in failed} == {("n1", "n3"), ("n2", "n3")}
