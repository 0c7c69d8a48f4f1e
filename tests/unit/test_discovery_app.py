"""The discovery demo's app (stacks/discovery/app.py): how each build picks its address,
and its image's contents."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from types import ModuleType

import pytest
from lab_specs import REPO

from overlaylab.up.app_image import app_rootfs

# What an overlay container's interfaces look like: eth0 on the overlay, then eth1 on
# docker_gwbridge, added after it (a higher index): Java's order lists it first.
CONTAINER = [("eth1", "172.18.0.2"), ("eth0", "10.0.9.3")]


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app", REPO / "stacks/discovery/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_java_order_is_newest_interface_first(monkeypatch: pytest.MonkeyPatch) -> None:
    app = load_app()
    monkeypatch.setattr(app.socket, "if_nameindex", lambda: [(1, "lo"), (40, "eth0"), (42, "eth1")])
    addresses = {"lo": "127.0.0.1", "eth0": "10.0.9.3", "eth1": "172.18.0.2"}
    monkeypatch.setattr(app, "ipv4_of", addresses.get)
    assert app.addresses_in_java_order() == CONTAINER


def test_the_naive_build_picks_gwbridge_the_fixed_one_the_overlay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = load_app()
    monkeypatch.setattr(app, "addresses_in_java_order", lambda: CONTAINER)
    monkeypatch.delenv("PREFERRED_NETWORKS", raising=False)
    assert app.pick_address() == ("eth1", "172.18.0.2")
    monkeypatch.setenv("PREFERRED_NETWORKS", "10.0.9.0/24")
    assert app.pick_address() == ("eth0", "10.0.9.3")


def test_the_image_holds_debians_python_its_libraries_and_the_app() -> None:
    with tarfile.open(fileobj=io.BytesIO(app_rootfs())) as tar:
        names = set(tar.getnames())
        app = tar.extractfile("app/app.py")
        assert app is not None and b"def pick_address" in app.read()
    assert {"usr/bin/python3.11", "usr/bin/python3", "usr/lib/python3.11/http/server.py"} <= names
    assert any(n.startswith("lib/x86_64-linux-gnu/libc.so") for n in names)
    assert not any("/test/" in n for n in names)
