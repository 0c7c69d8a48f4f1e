"""The lab's KV store as a service registry: what apps registered there."""

from __future__ import annotations

import json
from typing import Any

from overlaylab.verify.context import VerifyContext
from overlaylab.waiting import asked_twice


def has_registry(vctx: VerifyContext) -> bool:
    """Does the lab's store serve as a registry apps can write to (etcd or consul)?"""
    kv = vctx.lab.spec.kv
    return kv is not None and kv.backend != "zookeeper"


def registered(vctx: VerifyContext) -> tuple[list[dict[str, Any]] | None, str]:
    """Endpoints in the lab's registry: [{name, id, address, port, health}], or why not.
    Read once per verify run (advertise.address and discovery.endpoints both ask)."""
    return vctx.once("registered", lambda: _read(vctx))


def _read(vctx: VerifyContext) -> tuple[list[dict[str, Any]] | None, str]:
    spec = vctx.lab.spec
    if spec.kv is None or not has_registry(vctx):
        return None, "the lab has no etcd or consul registry"
    kv = vctx.lab.node(spec.kv.node)
    address, port = str(spec.address_of(spec.kv.node)), spec.kv.client_port

    def get(path: str) -> tuple[int, str]:
        return asked_twice(lambda: kv.http_get(address, port, path))

    try:
        if spec.kv.backend == "etcd":
            status, body = get("/v2/keys/services?recursive=true")
            if status == 404:
                return [], ""
            found = []
            for service in json.loads(body).get("node", {}).get("nodes", []):
                for entry in service.get("nodes", []):
                    value = json.loads(entry["value"])
                    found.append({"name": service["key"].rsplit("/", 1)[-1], **value})
            return found, ""
        status, body = get("/v1/agent/services")
        services = json.loads(body) if status == 200 else {}
        return [
            {
                "name": s["Service"],
                "id": ident,
                "address": s["Address"],
                "port": s["Port"],
                "health": f"http://{s['Address']}:{s['Port']}/health",
            }
            for ident, s in sorted(services.items())
            if s["Service"] != "consul"
        ], ""
    except (OSError, ValueError, KeyError) as exc:
        return None, f"cannot read the registry on {spec.kv.node}: {exc}"
