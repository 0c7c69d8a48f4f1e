"""`invoke logs`' parts that need no lab: --since, the scrubbing of secrets, and the
collection's bookkeeping (what failed or hung is in the manifest, never an abort)."""

from __future__ import annotations

import json
import tarfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from overlaylab.errors import OverlaylabError
from overlaylab.evidence import collect as collect_module
from overlaylab.evidence.archive import EvidenceArchive, Manifest, scrub
from overlaylab.evidence.collect import collect
from overlaylab.evidence.items import Item
from overlaylab.evidence.since import lines_since, parse_duration

KEY = (
    b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBm0secret0material0\n-----END EC PRIVATE KEY-----\n"
)
TOKEN = b"SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-7p73s1dx5in4tatdymyhg9hu2"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0.5m", 30)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "15 minutes", "-5m", "5m garbage"])
def test_what_is_no_duration_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration: write it as e\.g\. 90s"):
        parse_duration(text)


@pytest.fixture
def utc_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zoneless times (ZooKeeper's) are the machine's local time: make that UTC here."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def test_lines_since_keeps_the_recent_lines_and_their_continuations(utc_here: None) -> None:
    log = (
        'time="2026-12-07T10:00:00.000000000Z" level=info msg="old"\n'
        "  continuation of old\n"
        'time="2026-12-07T11:00:01.5Z" level=info msg="new"\n'
        "panic: runtime error\n"
        "goroutine 1 [running]:\n"
        '{"level":"info","ts":"2026-12-07T11:00:02.000Z","msg":"etcd"}\n'
        "2026-12-07 09:59:59,123 [myid:] - INFO zookeeper, older\n"
        "2026-12-07T12:30:00+01:00 an hour ahead of UTC: 11:30Z\n"
        '{"level":"info","msg":"json-format dockerd","time":"2026-12-07T11:00:03Z"}\n'
    )
    kept = lines_since(log, datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    assert kept.splitlines() == [
        'time="2026-12-07T11:00:01.5Z" level=info msg="new"',
        "panic: runtime error",
        "goroutine 1 [running]:",
        '{"level":"info","ts":"2026-12-07T11:00:02.000Z","msg":"etcd"}',
        "2026-12-07T12:30:00+01:00 an hour ahead of UTC: 11:30Z",
        '{"level":"info","msg":"json-format dockerd","time":"2026-12-07T11:00:03Z"}',
    ]


def test_a_log_with_no_time_this_reads_is_kept_whole() -> None:
    log = "starting\nsomething without a time\n"
    assert lines_since(log, datetime(2026, 12, 7, tzinfo=UTC)) == log


def test_a_private_key_cut_short_is_removed_to_the_end() -> None:
    cut = b"log line\n" + KEY[:60]  # a tail that ends inside the key
    assert b"MHcCAQEEIBm0" not in scrub(cut) and scrub(cut).startswith(b"log line\n")


def test_an_unwritable_archive_is_a_clear_error_with_no_part_file(tmp_path: Path) -> None:
    archive, found = EvidenceArchive("top"), manifest()
    archive.add("a.txt", b"a")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OverlaylabError, match=r"cannot write the archive .*; pass another file"):
        archive.write(tmp_path / "a-file" / "out.tar.gz", found)  # its folder is a file
    target = tmp_path / "x.tar.gz"
    target.mkdir()  # a folder in the way of the file
    with pytest.raises(OverlaylabError):
        archive.write(target, found)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "x.tar.gz"]  # no .part


def test_private_keys_and_join_tokens_never_enter_the_archive() -> None:
    text = b'{"tlskey": "/tls/key.pem"}\n' + KEY + b"docker swarm join --token " + TOKEN
    clean = scrub(text)
    assert b"PRIVATE KEY" not in clean and b"secret0material" not in clean
    assert b"SWMTKN-1-" not in clean
    assert b'"tlskey": "/tls/key.pem"' in clean  # the path of a key is no secret


def manifest() -> Manifest:
    return Manifest(cluster="t", created="now", spec="t.yml", since=None, verify="skipped")


def test_a_failing_or_empty_item_is_recorded_and_the_rest_collected(tmp_path: Path) -> None:
    def dead_engine() -> bytes:
        raise ConnectionError("Cannot connect to the Docker daemon")

    items = [
        Item("n1/engine/info.json", "n1", "docker info", lambda: b'{"ok": true}'),
        Item("n2/engine/info.json", "n2", "docker info", dead_engine),
        Item("n2/engine/dockerd.log", "n2", "the engine's log", lambda: None),
        Item("n1/secret.txt", "n1", "a file", lambda: KEY.decode()),
    ]
    archive, found = EvidenceArchive("top"), manifest()
    collect(items, archive, found)
    assert archive.paths() == ["n1/engine/info.json", "n1/secret.txt"]
    reasons = {m.path: m.reason for m in found.missing}
    assert reasons == {
        "n2/engine/info.json": "ConnectionError: Cannot connect to the Docker daemon",
        "n2/engine/dockerd.log": "nothing there",
    }
    target = tmp_path / "out.tar.gz"
    archive.write(target, found)
    with tarfile.open(target) as tar:
        names = tar.getnames()
        document = json.load(tar.extractfile("top/manifest.json"))  # type: ignore[arg-type]
        data = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
    assert names[0] == "top/manifest.json"
    assert [e["path"] for e in document["collected"]] == ["n1/engine/info.json", "n1/secret.txt"]
    assert [m["path"] for m in document["not_collected"]] == [
        "n2/engine/dockerd.log",
        "n2/engine/info.json",
    ]
    assert b"secret0material" not in data


def test_the_manifest_is_scrubbed_too(tmp_path: Path) -> None:
    def leaky() -> bytes:
        raise RuntimeError("failed on " + KEY.decode())

    archive, found = EvidenceArchive("top"), manifest()
    collect([Item("n1/x", "n1", "x", leaky)], archive, found)
    target = tmp_path / "out.tar.gz"
    archive.write(target, found)
    with tarfile.open(target) as tar:
        text = tar.extractfile("top/manifest.json").read()  # type: ignore[union-attr]
    assert b"secret0material" not in text and b"private key removed" in text


def test_an_item_that_hangs_is_given_up_at_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect_module, "BACKSTOP", 0.1)
    release = threading.Event()
    items = [
        Item("n1/stuck.txt", "n1", "a command that never returns", lambda: release.wait(30), 0.1),
        Item("n1/fine.txt", "n1", "echo", lambda: "fine\n"),
    ]
    archive, found = EvidenceArchive("top"), manifest()
    try:
        collect(items, archive, found)
    finally:
        release.set()
    assert archive.paths() == ["n1/fine.txt"]
    [stuck] = found.missing
    assert (stuck.path, stuck.reason) == ("n1/stuck.txt", "no answer within 0.2 s")


def test_no_node_gets_more_items_at_once_than_its_sessions_allow() -> None:
    """An SSH host opens at most MaxSessions channels on one connection (10)."""
    running: dict[str, int] = {"n1": 0, "n2": 0}
    most: dict[str, int] = {"n1": 0, "n2": 0}
    guard = threading.Lock()

    def item_on(node: str) -> Callable[[], str]:
        def produce() -> str:
            with guard:
                running[node] += 1
                most[node] = max(most[node], running[node])
            time.sleep(0.05)
            with guard:
                running[node] -= 1
            return "ok"

        return produce

    items = [Item(f"{n}/{i}", n, "x", item_on(n)) for n in ("n1", "n2") for i in range(12)]
    archive, found = EvidenceArchive("top"), manifest()
    collect(items, archive, found)
    assert len(archive.paths()) == 24 and found.missing == []
    assert max(most.values()) <= collect_module.PER_NODE
