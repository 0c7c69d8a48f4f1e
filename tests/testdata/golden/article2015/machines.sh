#!/usr/bin/env bash
# Lab 'article2015' built with docker-machine (virtualbox driver), rendered by
# `invoke render` from inventory/article-2015.yml.
#
# These are the commands of the Docker 1.9 multi-host networking guide
# (get-started-overlay.md @v1.9.0), which the 2015 article followed, with this spec's
# names. Machine addresses come from `docker-machine ip` when the commands run.
# Needs docker-machine 0.16; a machine that already exists stops the script
# (`docker-machine rm NAME` first).
# Note: engine.version 1.9: docker-machine installs the engine its driver brings
#   (boot2docker's ISO, or the host's own with `generic`).
set -euo pipefail

# The KV store: machine keystore runs consul as a container (the guide's mh-keystore
# running consul).
docker-machine create -d virtualbox keystore
docker $(docker-machine config keystore) run -d -p "8500:8500" -h "consul" progrium/consul -server -bootstrap

# Engines: every engine on the KV store, and the classic swarm (swarm:1.2.9)
# discovering through it.
docker-machine create -d virtualbox --swarm --swarm-master \
  --swarm-discovery="consul://$(docker-machine ip keystore):8500" \
  --engine-opt="cluster-store=consul://$(docker-machine ip keystore):8500" \
  --engine-opt="cluster-advertise=eth1:2376" \
  --swarm-image swarm:1.2.9 node1
docker-machine create -d virtualbox --swarm \
  --swarm-discovery="consul://$(docker-machine ip keystore):8500" \
  --engine-opt="cluster-store=consul://$(docker-machine ip keystore):8500" \
  --engine-opt="cluster-advertise=eth1:2376" \
  --swarm-image swarm:1.2.9 node2
docker-machine create -d virtualbox --swarm \
  --swarm-discovery="consul://$(docker-machine ip keystore):8500" \
  --engine-opt="cluster-store=consul://$(docker-machine ip keystore):8500" \
  --engine-opt="cluster-advertise=eth1:2376" \
  --swarm-image swarm:1.2.9 node3

# Overlay networks, created through the swarm master; every engine sees them.
eval $(docker-machine env --swarm node1)
docker network create --driver overlay dn
