"""Reading the engines' registrations from the store: one slow answer is asked again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

from lab_specs import LAB_YML

from overlaylab.overlay import registrations
from overlaylab.spec import load_spec

LISTING = {"node": {"nodes": [{"key": "/docker/nodes/192.168.99.11:2376"}]}}


@dataclass
class SlowStore:
    """The KV node's handle: its first `failures` GETs time out, then the store answers."""

    failures: int
    asked: list[str] = field(default_factory=list)

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        self.asked.append(path)
        if len(self.asked) <= self.failures:
            raise TimeoutError("timed out")
        return 200, json.dumps(LISTING)


def lab_with(store: SlowStore) -> SimpleNamespace:
    return SimpleNamespace(spec=load_spec(LAB_YML), node=lambda name: store)


def test_one_slow_answer_is_asked_again_before_it_counts() -> None:
    store = SlowStore(failures=1)
    found, why = registrations._etcd_registrations(lab_with(store))  # type: ignore[arg-type]
    assert found == {"192.168.99.11:2376"} and why == ""
    assert store.asked == ["/v2/keys/docker/nodes/"] * 2


def test_a_store_that_stays_silent_is_said_so_after_the_second_try() -> None:
    store = SlowStore(failures=2)
    found, why = registrations._etcd_registrations(lab_with(store))  # type: ignore[arg-type]
    assert found is None and why == "etcd does not answer: timed out"
    assert len(store.asked) == 2
