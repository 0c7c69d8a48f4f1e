"""The UDP test's client against the probes' echo server: both probe_tools scripts,
run by this host's perl on loopback (the probe image carries the host's perl)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from overlaylab import probe_tools
from overlaylab.verify.checks.connectivity import UDP_RESEND, udp_test
from overlaylab.verify.probes import PROBE_COMMAND, PROBE_UDP_PORT, Probe

pytestmark = pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl")
PERL = shutil.which("perl") or "perl"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> Iterator[int]:
    yield free_udp_port()


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    """The scripts as the image holds them, in a folder of this host."""
    for tool in probe_tools.TOOLS:
        (tmp_path / tool).write_bytes(probe_tools.source(tool))
    return tmp_path


# Runs a script with no module path, as in the image, which has perl but no modules.
NO_MODULES = "BEGIN { @INC = () } my $script = shift; do $script; die $@ if $@"


def on_host(argv: list[str], tools: Path) -> list[str]:
    """A probe's command line, run here: the host's perl on the copied scripts."""
    assert argv[0].startswith(f"/{probe_tools.IMAGE_DIR}/"), argv
    return [PERL, "-e", NO_MODULES, str(tools / Path(argv[0]).name), *argv[1:]]


def echo_server(port: int, tools: Path) -> subprocess.Popen[bytes]:
    """The probe's own echo command (the part after httpd), on `port`."""
    argv = PROBE_COMMAND[2].split("exec ", 1)[1].split()
    assert argv[1:] == [str(PROBE_UDP_PORT)]
    return subprocess.Popen(on_host([argv[0], str(port)], tools))


def client_argv(source: str, port: int, tools: Path, sends: int | None = None) -> list[str]:
    """The UDP test's command from `source` to 127.0.0.1:port."""
    a = Probe("n1", "dn", source, "10.0.9.2")
    b = Probe("n2", "dn", "probe-dn-n2", "127.0.0.1")
    argv = [port if arg == str(PROBE_UDP_PORT) else arg for arg in udp_test(None, a, b).argv]  # type: ignore[arg-type]
    if sends is not None:
        argv[4] = str(sends)
    return on_host([str(arg) for arg in argv], tools)


def test_many_peers_at_once_all_get_their_own_echo(port: int, tools: Path) -> None:
    server = echo_server(port, tools)
    try:
        time.sleep(0.3)
        sources = [f"probe-dn-peer{i}" for i in range(60)]
        clients = [
            subprocess.Popen(client_argv(s, port, tools), stdout=subprocess.PIPE, text=True)
            for s in sources
        ]
        answers = [c.communicate(timeout=10)[0] for c in clients]
        codes = [c.returncode for c in clients]
    finally:
        server.kill()
        server.wait()
    # Each peer hears its own token back, never another peer's.
    assert codes == [0] * len(sources)
    assert [a.strip() for a in answers] == [f"overlaylab-udp-{s}" for s in sources]


def test_a_datagram_sent_before_the_server_listens_is_sent_again(port: int, tools: Path) -> None:
    client = subprocess.Popen(client_argv("probe-dn-late", port, tools), stdout=subprocess.PIPE)
    time.sleep(3 * UDP_RESEND)
    server = echo_server(port, tools)
    try:
        out, _ = client.communicate(timeout=10)
    finally:
        server.kill()
        server.wait()
    assert client.returncode == 0
    assert out.decode().strip() == "overlaylab-udp-probe-dn-late"


def test_no_server_means_no_echo_and_a_failing_exit(port: int, tools: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        client_argv("probe-dn-alone", port, tools, sends=3), capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "no echo" in done.stdout and "overlaylab-udp-probe-dn-alone" not in done.stdout
    # It waited its patience out: three datagrams, UDP_RESEND apart.
    assert time.monotonic() - started >= 3 * UDP_RESEND


def test_the_scripts_name_the_images_perl(tools: Path) -> None:
    for tool in probe_tools.TOOLS:
        assert (tools / tool).read_text().startswith("#!/opt/host/bin/perl\n")


def test_a_script_needing_a_module_fails_the_way_tools_are_run(tools: Path) -> None:
    """The check on the harness: with no module path, `use strict` cannot load."""
    (tools / "needs-module").write_text("use strict;\nprint 1;\n")
    done = subprocess.run(
        [PERL, "-e", NO_MODULES, str(tools / "needs-module")], capture_output=True, text=True
    )
    assert done.returncode != 0 and "strict.pm" in done.stderr
