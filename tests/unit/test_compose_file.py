"""spec/compose.py: the one reader of a stack's compose file, and the model it gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lab_specs import REPO

from overlaylab.report.topology import compose_networks
from overlaylab.spec import load_spec_file
from overlaylab.spec.compose import UNREADABLE, NotARegularFile, read_compose_file

V3 = """\
version: "3.8"
services:
  web:
    image: overlaylab/probe:1
    networks: [appnet]

  db:
    image: mongo:3.0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "docker-compose.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_model_holds_the_text_the_document_and_each_services_line(tmp_path: Path) -> None:
    compose = read_compose_file(write(tmp_path, V3))
    assert compose.text == V3
    assert compose.version(default="1") == "3.8"
    assert compose.services == {
        "web": {"image": "overlaylab/probe:1", "networks": ["appnet"]},
        "db": {"image": "mongo:3.0"},
    }
    assert compose.service_lines == {"web": 3, "db": 7}


def test_version_1_services_are_the_top_level_keys(tmp_path: Path) -> None:
    compose = read_compose_file(write(tmp_path, "web:\n  image: a\ndb:\n  image: b\n"))
    assert compose.version(default="1") == "1"
    assert list(compose.services or {}) == ["web", "db"]
    assert compose.service_lines == {"web": 1, "db": 3}


@pytest.mark.parametrize("text", ["", "- a\n- b\n", 'version: "2"\n', "services: [a]\n"])
def test_a_file_without_a_services_mapping_has_no_services(tmp_path: Path, text: str) -> None:
    compose = read_compose_file(write(tmp_path, text))
    assert compose.services is None
    # A reader that wants the mapping gets one: the file as written, or empty.
    assert compose.mapping == (compose.document if isinstance(compose.document, dict) else {})


def test_what_cannot_be_a_compose_file_raises_one_of_unreadable(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile):
        read_compose_file(fifo)  # refused without waiting for a writer
    for bad in (b"services: [\n", b"\xff\xfe"):
        path = tmp_path / "bad.yml"
        path.write_bytes(bad)
        with pytest.raises(UNREADABLE):
            read_compose_file(path)
    with pytest.raises(FileNotFoundError):
        read_compose_file(tmp_path / "missing.yml")


def test_the_topology_reads_service_networks_through_the_model() -> None:
    loaded = load_spec_file(REPO / "inventory" / "lab.yml")
    networks = compose_networks(loaded.spec, loaded.spec_dir)
    assert networks == {("demo", "web"): ["dn"], ("demo", "mongo"): ["dn"]}
