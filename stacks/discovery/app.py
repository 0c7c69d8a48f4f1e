"""A service that registers itself for discovery, as the article's Spring Cloud app did.

On start it picks "its" address, registers address:port and a health URL in the lab's
registry, keeps the registration alive, and serves the health URL. How it picks:

- ADDRESS_PICK=java-enumeration (the naive app): the first non-loopback IPv4 address
  in Java's NetworkInterface enumeration order, which on Linux lists the newest
  interface first. In an overlay container that is eth1, the docker_gwbridge leg, an
  address no other host can reach: Spring Cloud before InetUtils (spring-cloud-consul
  #115) registered exactly that.
- PREFERRED_NETWORKS=10.0.9.0/24[,...] (the fixed app): the first address inside one
  of these networks, as spring.cloud.inetutils.preferred-networks does; the overlay's
  known subnet makes it the overlay address.

REGISTRY is consul://HOST:PORT (the agent's service API, with an HTTP check) or
etcd://HOST:PORT (v2 keys under /services/NAME/ID with a TTL). Standard library only.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIOCGIFADDR = 0x8915
TTL = 30  # seconds a registration lives unless renewed (etcd)
RENEW = 10


def ipv4_of(interface: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(
                sock.fileno(), SIOCGIFADDR, struct.pack("256s", interface.encode()[:15])
            )
        except OSError:
            return None  # no IPv4 address on it
    return socket.inet_ntoa(packed[20:24])


def addresses_in_java_order() -> list[tuple[str, str]]:
    """(interface, address), newest interface (highest index) first, loopback left out."""
    found = []
    for _index, name in sorted(socket.if_nameindex(), reverse=True):
        address = ipv4_of(name)
        if address and not address.startswith("127."):
            found.append((name, address))
    return found


def pick_address() -> tuple[str, str]:
    candidates = addresses_in_java_order()
    preferred = [n for n in os.environ.get("PREFERRED_NETWORKS", "").split(",") if n]
    for network in preferred:
        for name, address in candidates:
            if ipaddress.IPv4Address(address) in ipaddress.IPv4Network(network):
                return name, address
    if not candidates:
        sys.exit("no IPv4 address to register")
    return candidates[0]


def _put(url: str, body: bytes, content_type: str) -> None:
    request = urllib.request.Request(url, data=body, method="PUT")
    request.add_header("Content-Type", content_type)
    # The registry is on the lab network: never through a proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5):
        pass


def register(registry: str, name: str, ident: str, address: str, port: int) -> None:
    scheme, _, where = registry.partition("://")
    health = f"http://{address}:{port}/health"
    if scheme == "consul":
        service = {
            "ID": ident,
            "Name": name,
            "Address": address,
            "Port": port,
            "Check": {"HTTP": health, "Interval": "10s", "Timeout": "2s"},
        }
        _put(
            f"http://{where}/v1/agent/service/register",
            json.dumps(service).encode(),
            "application/json",
        )
        return
    value = json.dumps({"id": ident, "address": address, "port": port, "health": health})
    form = urllib.parse.urlencode({"value": value, "ttl": TTL}).encode()
    url = f"http://{where}/v2/keys/services/{name}/{ident}"
    _put(url, form, "application/x-www-form-urlencoded")


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        status = 200 if self.path == "/health" else 404
        body = json.dumps({"status": "UP" if status == 200 else "no such path"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # health checks every few seconds would flood the log


def keep_registered(registry: str, name: str, ident: str, address: str, port: int) -> None:
    while True:
        try:
            register(registry, name, ident, address, port)
        except OSError as exc:  # the registry may be starting; try again
            print(f"register failed: {exc}", flush=True)
        time.sleep(RENEW)


def main() -> None:
    name = os.environ.get("SERVICE_NAME", "app")
    port = int(os.environ.get("PORT", "8080"))
    registry = os.environ["REGISTRY"]
    interface, address = pick_address()
    ident = socket.gethostname()
    print(f"{name}: registering {address}:{port} ({interface}) in {registry}", flush=True)
    server = ThreadingHTTPServer(("0.0.0.0", port), Health)
    threading.Thread(
        target=keep_registered, args=(registry, name, ident, address, port), daemon=True
    ).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
