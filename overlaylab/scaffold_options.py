"""The choices `invoke new` offers, apart from scaffold.py: the task's help shows them,
and building the task collection (every `invoke` command) must not import what writing
a layout needs (the spec's models, Jinja2)."""

from __future__ import annotations

KV_BACKENDS = ("etcd", "zookeeper", "consul")
MODES = ("none", "classic-swarm", "swarm-mode")
PROVIDERS = ("local", "vagrant", "ssh", "docker-machine")
DEFAULT_SUBNET = "192.168.99.0/24"
DEFAULT_NODES = 3
