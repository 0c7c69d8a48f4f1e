"""The probe image's HTTP client (`wget` and `curl` in the image), run by this host's
perl with no modules, as in the image, against a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from overlaylab import probe_tools

pytestmark = pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl")
PERL = shutil.which("perl") or "perl"
# As in the image: no module path; $0 is the name it was called by (wget or curl).
NO_MODULES = "BEGIN { @INC = () } my $script = shift; $0 = $script; do $script; die $@ if $@"


class Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/missing":
            self.send_error(404)
            return
        body = f"hello from {self.path} as {self.headers['Host']}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()


def run(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / name
    script.write_bytes(probe_tools.source("http-get"))
    return subprocess.run(
        [PERL, "-e", NO_MODULES, str(script), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )


def test_wget_to_stdout_by_name(tmp_path: Path, server: int) -> None:
    got = run(tmp_path, "wget", "-qO-", f"http://localhost:{server}/page")
    assert (got.returncode, got.stdout) == (0, f"hello from /page as localhost:{server}\n")


def test_wget_saves_to_a_file_named_after_the_path(tmp_path: Path, server: int) -> None:
    got = run(tmp_path, "wget", f"http://127.0.0.1:{server}/file.txt")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "file.txt").read_text().startswith("hello from /file.txt")


def test_curl_prints_the_body_and_with_i_the_headers(tmp_path: Path, server: int) -> None:
    got = run(tmp_path, "curl", "-s", f"http://127.0.0.1:{server}/x")
    assert (got.returncode, got.stdout) == (0, f"hello from /x as 127.0.0.1:{server}\n")
    with_headers = run(tmp_path, "curl", "-si", f"http://127.0.0.1:{server}/x")
    assert with_headers.stdout.startswith("HTTP/1.0 200")


def test_server_errors_exit_as_the_real_tools_do(tmp_path: Path, server: int) -> None:
    url = f"http://127.0.0.1:{server}/missing"
    assert run(tmp_path, "wget", "-q", "-O", "-", url).returncode == 8
    assert run(tmp_path, "curl", "-sf", url).returncode == 22
    assert run(tmp_path, "curl", "-s", url).returncode == 0  # curl without -f: a page


def test_nothing_listening(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    refused = run(tmp_path, "curl", "-sS", f"http://127.0.0.1:{closed}/")
    assert refused.returncode == 7 and "can't connect" in refused.stderr
    assert run(tmp_path, "wget", "-q", f"http://127.0.0.1:{closed}/").returncode == 4
    # (An unknown name is tried in a real probe, against Docker's embedded DNS: here
    # a lookup would leave this machine.)


def test_a_fractional_timeout_still_bounds_a_silent_server(tmp_path: Path) -> None:
    """alarm() counts whole seconds: -m 0.5 must not turn the alarm off."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts (the kernel does), never answers
    try:
        port = silent.getsockname()[1]
        got = run(tmp_path, "curl", "-s", "-m", "0.5", f"http://127.0.0.1:{port}/")
        assert got.returncode == 28
        assert run(tmp_path, "wget", "-T", "soon", f"http://127.0.0.1:{port}/").returncode != 0
    finally:
        silent.close()
