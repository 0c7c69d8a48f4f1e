#!/usr/bin/env bash
# The default lab's core work done by hand, as an expert would script it: the yardstick
# `invoke up` is measured against (benchmarks/bench_up_vs_script.py runs both in turn).
#
#   benchmarks/baseline_up.sh up   WORK ROOTFS_TAR [NET]   # prints "baseline up: S seconds"
#   benchmarks/baseline_up.sh down WORK [NET]
#
# up: a bridge and four namespaces (kv, n1..n3, each with its own hostname), etcd with
# the v2 API, three dockerd with cluster-store/cluster-advertise started together, the
# probe image imported into each from ROOTFS_TAR (a rootfs tarball), overlay `dn`, and
# the demo's `web` (n1) and `mongo` (n2) started with `docker run`. What it leaves out
# on purpose, and `up` does: TLS, compose, the gossip-island check, idempotence, clear
# errors, recovery from a crash. NET is the /24's first three octets (192.168.76).
#
# down removes everything up made (processes, mounts, cgroups, namespaces, bridge, WORK).
set -euo pipefail

action=$1 work=$2
if [[ $action == up ]]; then
  rootfs=$3 net=${4:-192.168.76}
else
  net=${3:-192.168.76}
fi
bridge=olbase-br
nodes=(kv n1 n2 n3)
engines=(n1 n2 n3)

address() { # node -> its address on the bridge
  case $1 in kv) echo "$net.10" ;; n1) echo "$net.11" ;; n2) echo "$net.12" ;; n3) echo "$net.13" ;; esac
}
docker_on() { local node=$1; shift; docker -H "unix://$work/$node/docker.sock" "$@"; }
in_node() { # node hostname argv...: run argv in the node's network namespace and a UTS namespace of its own
  local node=$1; shift
  nsenter --net="/run/netns/olbase-$node" unshare --uts -- sh -c 'hostname "$1" && shift && exec "$@"' sh "$node" "$@"
}

up() {
  local started pids=()
  started=$(date +%s%N)
  mkdir -p "$work"
  ip link add "$bridge" type bridge
  ip addr add "$net.1/24" dev "$bridge"
  ip link set "$bridge" up
  for node in "${nodes[@]}"; do
    ip netns add "olbase-$node"
    ip link add "olb-$node" type veth peer name eth1 netns "olbase-$node"
    ip link set "olb-$node" master "$bridge" up
    ip -n "olbase-$node" addr add "$(address "$node")/24" dev eth1
    ip -n "olbase-$node" link set eth1 up
    ip -n "olbase-$node" link set lo up
  done

  mkdir -p "$work/kv"
  in_node kv etcd --enable-v2=true --name kv --data-dir "$work/kv/data" \
    --listen-client-urls "http://$(address kv):2379" \
    --advertise-client-urls "http://$(address kv):2379" \
    --listen-peer-urls http://127.0.0.1:2380 >"$work/kv/etcd.log" 2>&1 &
  until busybox wget -q -O /dev/null "http://$(address kv):2379/v2/keys" 2>/dev/null; do sleep 0.05; done

  for node in "${engines[@]}"; do
    mkdir -p "$work/$node"
    in_node "$node" dockerd --data-root "$work/$node/data" --exec-root "$work/$node/exec" \
      --pidfile "$work/$node/dockerd.pid" -H "unix://$work/$node/docker.sock" \
      --cgroup-parent "olbase-$node" \
      --cluster-store "etcd://$(address kv):2379" --cluster-advertise eth1:2376 \
      >"$work/$node/dockerd.log" 2>&1 &
  done
  for node in "${engines[@]}"; do
    until docker_on "$node" version >/dev/null 2>&1; do sleep 0.05; done
  done

  for node in "${engines[@]}"; do
    docker_on "$node" import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' \
      "$rootfs" overlaylab/probe:1 >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"

  docker_on n1 network create -d overlay --subnet 10.0.9.0/24 dn >/dev/null
  docker_on n1 run -d --name web --net dn -e MONGO_HOST=mongo -p 80:5000 \
    overlaylab/probe:1 httpd -f -p 5000 -h /www >/dev/null &
  pids=($!)
  docker_on n2 run -d --name mongo --net dn \
    overlaylab/probe:1 httpd -f -p 27017 -h /www >/dev/null &
  pids+=($!)
  wait "${pids[@]}"
  local ms=$((($(date +%s%N) - started) / 1000000))
  printf 'baseline up: %d.%03d seconds\n' $((ms / 1000)) $((ms % 1000))
}

down() {
  for node in "${engines[@]}"; do
    [[ -S $work/$node/docker.sock ]] || continue
    docker_on "$node" ps -aq 2>/dev/null | xargs -r docker -H "unix://$work/$node/docker.sock" rm -f >/dev/null 2>&1 || true
  done
  pkill -TERM -f -- "--data-root $work/" 2>/dev/null || true
  pkill -TERM -f -- "--data-dir $work/kv/data" 2>/dev/null || true
  for _ in $(seq 100); do
    pgrep -f -- "$work/" >/dev/null || break
    sleep 0.1
  done
  pkill -KILL -f -- "$work/" 2>/dev/null || true
  grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  for node in "${nodes[@]}"; do
    ip netns delete "olbase-$node" 2>/dev/null || true
    find "/sys/fs/cgroup/olbase-$node" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  ip link delete "$bridge" 2>/dev/null || true
  rm -rf "$work"
}

"$action"
