#!/usr/bin/env bash
# Lab 'lab' built with docker-machine (virtualbox driver), rendered by
# `invoke render` from inventory/lab.yml.
#
# These are the commands of the Docker 1.9 multi-host networking guide
# (get-started-overlay.md @v1.9.0), which the 2015 article followed, with this spec's
# names. Machine addresses come from `docker-machine ip` when the commands run.
# Needs docker-machine 0.16; a machine that already exists stops the script
# (`docker-machine rm NAME` first).
# Note: engine.version 20.10: docker-machine installs the engine its driver brings
#   (boot2docker's ISO, or the host's own with `generic`).
set -euo pipefail

# The KV store: machine kv runs etcd as a container (the guide's mh-keystore running
# consul).
docker-machine create -d virtualbox kv
docker $(docker-machine config kv) run -d -p "2379:2379" -h "etcd" gcr.io/etcd-development/etcd:v3.4.13 \
  /usr/local/bin/etcd --enable-v2=true \
  --listen-client-urls "http://0.0.0.0:2379" \
  --advertise-client-urls "http://$(docker-machine ip kv):2379"

# Engines: every engine on the KV store (cluster-store, cluster-advertise).
docker-machine create -d virtualbox \
  --engine-opt="cluster-store=etcd://$(docker-machine ip kv):2379" \
  --engine-opt="cluster-advertise=eth1:2376" \
  node1
docker-machine create -d virtualbox \
  --engine-opt="cluster-store=etcd://$(docker-machine ip kv):2379" \
  --engine-opt="cluster-advertise=eth1:2376" \
  node2
docker-machine create -d virtualbox \
  --engine-opt="cluster-store=etcd://$(docker-machine ip kv):2379" \
  --engine-opt="cluster-advertise=eth1:2376" \
  node3

# Overlay networks, created through node1; every engine sees them.
eval $(docker-machine env node1)
docker network create --driver overlay --subnet=10.0.9.0/24 dn
