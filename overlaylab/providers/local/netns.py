"""Open sockets inside a named network namespace from this (host) process.

A socket keeps the namespace it was created in, so a short-lived thread can enter
the namespace (setns(2)), create the socket and end; the caller
then uses it normally. This lets overlaylab probe a node's view of the lab (can
node1 reach the KV store?) without spawning `nsenter` for every probe. setns with
CLONE_NEWNET affects only the calling thread, which is why the work happens in a
thread of its own.
"""

from __future__ import annotations

import socket
import threading

from overlaylab.providers.local.plumbing import enter


def netns_socket(
    netns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
) -> socket.socket:
    result: dict[str, object] = {}

    def enter_and_create() -> None:
        try:
            enter(netns)  # an existing namespace only, never a new one
            result["sock"] = socket.socket(family, kind)
        except BaseException as exc:  # handed back to the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=enter_and_create, name=f"netns-{netns}")
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["sock"]  # type: ignore[return-value]


def tcp_connect_ok(netns: str, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
    """Can `netns` open a TCP connection to host:port? Returns (ok, why-not)."""
    try:
        sock = netns_socket(netns)
    except OSError as exc:
        return False, str(exc)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
        return True, ""
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()


TCP_REQUEST = b"GET / HTTP/1.0\r\n\r\n"


def tcp_answers(netns: str, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
    """Connect from `netns`, send TCP_REQUEST, wait for an answer or a close."""
    try:
        sock = netns_socket(netns)
    except OSError as exc:
        return False, str(exc)
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        try:
            sock.sendall(TCP_REQUEST)
            data = sock.recv(64)
        except TimeoutError:
            return False, f"accepts connections, then answers nothing within {timeout:g}s"
        except OSError as exc:  # reset: a server that refused the request, at work
            return True, f"accepts connections, then resets ({type(exc).__name__})"
    return True, "answers" if data else "accepts connections, then closes them"


def http_get(netns: str, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    """Minimal HTTP/1.0 GET from inside `netns`: (status, body). Raises OSError."""
    sock = netns_socket(netns)
    with sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks).decode(errors="replace")
    head, _, body = raw.partition("\r\n\r\n")
    status = int(head.split(" ", 2)[1]) if head.startswith("HTTP/") else 0
    return status, body
