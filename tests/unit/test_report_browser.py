"""The HTML report in a real browser: headless Chromium renders a healthy and a broken
report (built from results made here, so this stays a unit-speed test), takes a
screenshot and dumps the DOM after the page's script ran.

Chromium runs with a throwaway HOME, profile and TMPDIR in a short-named folder under
/tmp (its singleton socket path must fit a unix socket's 108 bytes, which pytest's
tmp_path does not), removed afterwards, so nothing is left behind; --no-sandbox
because the tests run as root.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from html_reports import Page, broken_report, healthy_report
from lab_specs import LAB_YML

from overlaylab.report.html import render_report, write_html
from overlaylab.report.topology import compose_networks
from overlaylab.spec import load_spec
from overlaylab.spec.models import ClusterSpec
from overlaylab.verify.run import VerifyReport

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1280, 1800)

# Both marks: the tier (a second assignment would drop it, and the unit tier would
# start Chromium) and the skip without it.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless chromium is not installed (`apt-get install --no-install-recommends "
        "chromium`; `./lab test` installs it)",
    ),
]


@dataclass
class Rendered:
    png: bytes
    dom: str


def render_in_chromium(page: Path, scratch: Path, fragment: str = "") -> Rendered:
    """Screenshot and post-script DOM of `page`, from one headless Chromium run."""
    assert CHROMIUM is not None
    home = scratch / "home"
    for folder in (home, scratch / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    shot = scratch / "shot.png"
    env = {
        **os.environ,
        "HOME": str(home),
        "TMPDIR": str(scratch / "tmp"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    argv = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={scratch / 'profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={shot}",
        "--dump-dom",
        page.as_uri() + fragment,
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return Rendered(png=shot.read_bytes(), dom=done.stdout)


def png_size_and_pixels(png: bytes) -> tuple[int, int, bytes]:
    """(width, height, the decompressed scanlines) of a PNG, with the stdlib only."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    offset, data, width, height = 8, b"", 0, 0
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        body = png[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            data += body
        offset += 12 + length
    return width, height, zlib.decompress(data)


@pytest.fixture
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="olc-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def spec() -> ClusterSpec:
    return load_spec(LAB_YML)


def write_page(report: VerifyReport, spec: ClusterSpec, path: Path) -> Path:
    networks = compose_networks(spec, LAB_YML.parent)
    write_html(path, render_report(report, spec=spec, service_networks=networks))
    return path


def assert_screenshot_shows_a_page(png: bytes) -> None:
    width, height, pixels = png_size_and_pixels(png)
    assert (width, height) == WINDOW
    # A blank or error page compresses to almost nothing and uses few byte values;
    # diagnosis, picture and coloured matrices use many.
    assert len(png) > 30_000
    assert len(set(pixels)) > 100


def test_healthy_report_in_a_browser(spec: ClusterSpec, tmp_path: Path, scratch: Path) -> None:
    report = healthy_report(spec)
    page = write_page(report, spec, tmp_path / "healthy.html")
    rendered = render_in_chromium(page, scratch)
    assert_screenshot_shows_a_page(rendered.png)
    dom = Page(rendered.dom)
    diagnosis = dom.by_id("diagnosis")
    assert diagnosis is not None
    assert "every check passed" in diagnosis.text
    cells = dom.cells("dn", "connectivity.icmp")
    assert len(cells) == 9
    assert not [c for c in dom.elements if c.tag == "td" and "fail" in c.classes]
    # The inline script ran: it adds the "failures only" switch.
    assert dom.by_id("failures-only") is not None


def test_broken_report_in_a_browser(spec: ClusterSpec, tmp_path: Path, scratch: Path) -> None:
    report = broken_report(spec, "node2")
    page = write_page(report, spec, tmp_path / "broken.html")
    rendered = render_in_chromium(page, scratch)
    assert_screenshot_shows_a_page(rendered.png)
    dom = Page(rendered.dom)
    diagnosis = dom.by_id("diagnosis")
    assert diagnosis is not None
    assert "overlay data (VXLAN, udp/4789) is blocked to and from node2" in diagnosis.text
    for check in ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df"):
        cells = dom.cells("dn", check)
        assert len(cells) == 9, check  # one cell per pair
        failing = {
            (c.attrs["data-source"], c.attrs["data-target"]) for c in cells if "fail" in c.classes
        }
        assert failing == {
            ("node1", "node2"),
            ("node2", "node1"),
            ("node2", "node3"),
            ("node3", "node2"),
        }
    # The picture is there, with red paths.
    assert "<svg" in rendered.dom
    assert "#d32f2f" in rendered.dom


def test_a_link_to_a_result_opens_it(spec: ClusterSpec, tmp_path: Path, scratch: Path) -> None:
    report = broken_report(spec, "node2")
    page = write_page(report, spec, tmp_path / "broken.html")
    first_failure = next(i for i, r in enumerate(report.results) if r.failed)
    # (Only the DOM: a screenshot taken while the page scrolls to the fragment is blank.)
    rendered = render_in_chromium(page, scratch, fragment=f"#r-{first_failure}")
    dom = Page(rendered.dom)
    opened = dom.by_id(f"r-{first_failure}")
    assert opened is not None
    assert "open" in opened.attrs
    others = [e for e in dom.elements if e.tag == "details" and e is not opened]
    assert not [e for e in others if "open" in e.attrs]


def test_nothing_is_left_behind(spec: ClusterSpec, tmp_path: Path) -> None:
    tmp = Path(tempfile.gettempdir())
    before = set(tmp.iterdir())
    home_before = set(Path.home().iterdir()) if Path.home().exists() else set()
    page = write_page(healthy_report(spec), spec, tmp_path / "page.html")
    folder = Path(tempfile.mkdtemp(prefix="olc-"))
    try:
        render_in_chromium(page, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    new = {p for p in set(tmp.iterdir()) - before if not p.name.startswith("pytest-of-")}
    assert not new, f"chromium left {sorted(map(str, new))}"
    if Path.home().exists():
        assert set(Path.home().iterdir()) == home_before
