"""logtail: the one helper that quotes the end of a log or of a command's output."""

from __future__ import annotations

from pathlib import Path

from overlaylab.logtail import QUOTE, file_tail, tail


def test_tail_keeps_the_last_lines_and_says_when_there_is_no_log() -> None:
    text = "\n".join(f"line {i}" for i in range(30)) + "\n\n"
    assert tail(text, 2) == "line 28\nline 29"
    assert tail(text, 2, quote=QUOTE) == "  | line 28\n  | line 29"
    assert tail(None) == "(no log)"
    assert tail(None, quote=QUOTE, missing="(gone)") == "  | (gone)"
    assert tail("") == ""


def test_file_tail_reads_after_the_last_marker_and_survives_a_missing_file(
    tmp_path: Path,
) -> None:
    log = tmp_path / "engine.log"
    log.write_text("old run\n--- start ---\nfirst\n--- start ---\nsecond\nthird\n")
    assert file_tail(log, 5, after="--- start ---") == "second\nthird"
    assert file_tail(log, 1) == "third"
    assert file_tail(tmp_path / "none.log", missing="(no output)") == "(no output)"
