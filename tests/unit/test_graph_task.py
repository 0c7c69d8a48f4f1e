"""`invoke graph`: the picture of a spec's lab, written where asked, and every way it
can go wrong said as a one-line error (exit 2), never a traceback."""

from __future__ import annotations

import html
import io
from pathlib import Path

import pytest
from invoke import Context
from invoke.exceptions import Exit
from lab_specs import LAB_YML
from rich.console import Console

from overlaylab.tasks import graph as graph_task


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_graph(**flags: object) -> None:
    graph_task.graph(Context(), inventory=str(LAB_YML), **flags)


def test_default_output_is_the_cluster_name_here(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(graph_task, "err", Console(file=buffer, width=200, color_system=None))
    run_graph()
    svg = html.unescape((workdir / "lab.svg").read_text())  # dot writes "-" as "&#45;"
    assert svg.startswith("<?xml")  # a standalone file keeps its XML declaration
    assert "probe-dn-node1" in svg
    assert "demo/web" in svg
    said = buffer.getvalue()
    assert "drew lab 'lab'" in said
    assert "lab.svg" in said


def test_png_where_asked(workdir: Path) -> None:
    run_graph(out="pictures/lab.png")  # folders are created
    assert (workdir / "pictures" / "lab.png").read_bytes().startswith(b"\x89PNG")
    assert not list((workdir / "pictures").glob(".*.tmp"))


def test_a_bad_extension_is_refused_before_anything(workdir: Path) -> None:
    with pytest.raises(Exit) as exited:
        run_graph(out="lab.jpg")
    assert exited.value.code == 2
    assert str(exited.value.message) == (
        "error: lab.jpg: the picture is written as .svg or .png, not '.jpg'"
    )
    assert list(workdir.iterdir()) == []


def test_a_missing_spec_exits_2(workdir: Path) -> None:
    with pytest.raises(Exit) as exited:
        graph_task.graph(Context(), inventory=str(workdir / "nope.yml"))
    assert exited.value.code == 2
    assert "nope.yml" in str(exited.value.message)


def test_without_graphviz_it_says_what_to_install(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(workdir))  # no dot on PATH
    with pytest.raises(Exit) as exited:
        run_graph()
    assert exited.value.code == 2
    assert "apt-get install graphviz" in str(exited.value.message)
    assert not (workdir / "lab.svg").exists()


def test_an_unwritable_target_exits_2(workdir: Path) -> None:
    (workdir / "taken").write_text("a file, not a folder")
    with pytest.raises(Exit) as exited:
        run_graph(out="taken/lab.svg")
    assert exited.value.code == 2
    assert "cannot write taken/lab.svg" in str(exited.value.message)


def test_graph_is_a_listed_task() -> None:
    from overlaylab.tasks import ns

    assert "graph" in ns.task_names
