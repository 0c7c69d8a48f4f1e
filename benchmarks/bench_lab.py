"""Time every phase of a lab's life, for 3 and 10 engine nodes, and measure memory.

    sudo .venv/bin/python benchmarks/bench_lab.py [--nodes 3 10] [--runs 3]
        [--mode none|swarm-mode|classic-swarm] [--label LABEL]

Writes benchmarks/results/phases[-MODE][-LABEL].csv (nodes, run, phase, seconds, detail) and
benchmarks/results/memory[-MODE][-LABEL].csv (nodes, run, node, peak_rss_mib): the peak resident
memory of everything running in the node's namespace (dockerd, containerd, shims,
docker-proxy) plus its containers, read from /proc/PID/status VmHWM after verify.
Labs get their own names and subnets, so a running default lab is not touched.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from overlaylab.context import open_lab  # noqa: E402
from overlaylab.progress import Progress  # noqa: E402
from overlaylab.providers.local.teardown import lab_cgroups  # noqa: E402
from overlaylab.up import pipeline  # noqa: E402
from overlaylab.verify.run import ALL_CHECKS, run_verify  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


SUBNETS = {
    ("none", 3): 94,
    ("none", 10): 95,
    ("none", 20): 78,
    ("swarm-mode", 3): 82,
    ("swarm-mode", 10): 81,
    ("classic-swarm", 3): 80,
    ("classic-swarm", 10): 79,
}


def spec_text(nodes: int, mode: str = "none") -> str:
    subnet = SUBNETS.get((mode, nodes), 93)
    lines = [
        "apiVersion: overlaylab/v1",
        "kind: Cluster",
        f"name: bench{nodes}{''.join(w[0] for w in mode.split('-')) if mode != 'none' else ''}",
        "lab:",
        f"  subnet: 192.168.{subnet}.0/24",
    ]
    engines = [f"n{i}" for i in range(1, nodes + 1)]
    if mode == "swarm-mode":
        # One manager and workers; no KV store: swarm mode keeps its own state.
        lines += ["kv: null", "engine:", "  cluster-store: null", "  cluster-advertise: null"]
        lines += ["orchestration:", "  mode: swarm-mode", "nodes:"]
        lines += [
            f"  - name: {n}\n    roles: [{'manager' if n == 'n1' else 'worker'}]" for n in engines
        ]
        stack = [
            "    file: stacks/swarm-demo/docker-compose.yml",
            "    services:",
            "      web: n1",
            "      api: n2",
        ]
    else:
        if mode == "classic-swarm":
            lines += ["orchestration:", "  mode: classic-swarm"]
        lines += ["nodes:", "  - name: kv", "    roles: [kv]"]
        for n in engines:
            role = "" if mode == "none" else ("swarm-master" if n == "n1" else "swarm-agent")
            lines.append(f"  - name: {n}" + (f"\n    roles: [engine, {role}]" if role else ""))
        stack = [
            "    file: stacks/demo/docker-compose.yml",
            "    services:",
            "      web: n1",
            "      mongo: n2",
        ]
    lines += [
        "networks:",
        "  - name: dn",
        "    subnet: 10.0.9.0/24",
        "stacks:",
        "  - name: demo",
        *stack,
    ]
    return "\n".join(lines) + "\n"


def node_peak_rss_mib(ctx, node: str) -> float:  # type: ignore[no-untyped-def]
    """Sum of VmHWM over the node's processes and its containers (cgroup parent)."""
    import subprocess

    ns = ctx.layout.node_ns(node)
    pids = {
        int(p)
        for p in subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True
        ).stdout.split()
    }
    for group in lab_cgroups(ctx.layout):
        if group.name == ctx.layout.cgroup_parent(node):
            for procs in group.rglob("cgroup.procs"):
                pids |= {int(p) for p in procs.read_text().split()}
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return round(total_kib / 1024, 1)


def run_once(
    nodes: int, run: int, phases: csv.writer, memory: csv.writer, mode: str = "none"
) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
        # Stack paths resolve against the spec's folder, benchmarks/<tmp>/inventory.
        spec_dir = Path(tmp) / "inventory"
        spec_dir.mkdir()
        spec = spec_dir / f"bench{nodes}.yml"
        spec.write_text(spec_text(nodes, mode).replace("file: stacks/", "file: ../../../stacks/"))
        ctx = open_lab(spec, Progress(quiet=True))
        ctx.provider.destroy()  # start clean
        try:
            report = pipeline.up(ctx)
            for phase, seconds in report.timings.items():
                phases.writerow([nodes, run, phase, f"{seconds:.3f}", ""])
            phases.writerow([nodes, run, "up (total)", f"{report.seconds:.3f}", ""])
            again = time.monotonic()
            pipeline.up(open_lab(spec, Progress(quiet=True)))
            phases.writerow([nodes, run, "up again (no-op)", f"{time.monotonic() - again:.3f}", ""])
            verify = run_verify(ctx, ALL_CHECKS, timeout=10.0)
            rate = len(verify.results) / verify.seconds
            phases.writerow(
                [
                    nodes,
                    run,
                    "verify",
                    f"{verify.seconds:.3f}",
                    f"{len(verify.results)} results, {len(verify.failed)} failed, "
                    f"{rate:.1f} results/s",
                ]
            )
            # Again, the probes running: what verify costs once the lab is set.
            again = run_verify(ctx, ALL_CHECKS, timeout=10.0)
            phases.writerow(
                [
                    nodes,
                    run,
                    "verify again",
                    f"{again.seconds:.3f}",
                    f"{len(again.results)} results, {len(again.failed)} failed, "
                    f"{len(again.results) / again.seconds:.1f} results/s",
                ]
            )
            for node in ctx.spec.engine_nodes:
                memory.writerow([nodes, run, node.name, node_peak_rss_mib(ctx, node.name)])
            if ctx.spec.kv is not None:
                memory.writerow([nodes, run, ctx.spec.kv.node, node_peak_rss_mib(ctx, "kv")])
        finally:
            started = time.monotonic()
            ctx.provider.destroy()
            phases.writerow([nodes, run, "down", f"{time.monotonic() - started:.3f}", ""])
        print(
            f"{mode}, {nodes} nodes, run {run}: up {report.seconds:.1f}s, verify "
            f"{verify.seconds:.1f}s ({len(verify.results)} results, {len(verify.failed)} "
            f"failed), again {again.seconds:.1f}s ({len(again.failed)} failed)",
            file=sys.stderr,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--mode",
        choices=["none", "swarm-mode", "classic-swarm"],
        default="none",
        help="orchestration.mode of the labs (classic-swarm needs `swarm` on PATH)",
    )
    parser.add_argument(
        "--label", default="", help="appended to the CSV names, to keep earlier results"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = ("" if args.mode == "none" else f"-{args.mode}") + (
        f"-{args.label}" if args.label else ""
    )
    with (
        (RESULTS / f"phases{suffix}.csv").open("w", newline="") as p,
        (RESULTS / f"memory{suffix}.csv").open("w", newline="") as m,
    ):
        phases, memory = csv.writer(p), csv.writer(m)
        phases.writerow(["nodes", "run", "phase", "seconds", "detail"])
        memory.writerow(["nodes", "run", "node", "peak_rss_mib"])
        for nodes in args.nodes:
            for run in range(1, args.runs + 1):
                run_once(nodes, run, phases, memory, args.mode)
                p.flush()
                m.flush()


if __name__ == "__main__":
    main()
