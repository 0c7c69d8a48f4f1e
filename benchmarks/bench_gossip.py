"""Do engines started together end up in one gossip cluster? Up, underlay.*, down; N times.

    sudo .venv/bin/python benchmarks/bench_gossip.py [--nodes 10 20] [--runs 5]

libnetwork's legacy overlay joins each engine to the serf cluster once, through one
neighbour; engines that pick each other form an island that never merges. `up`
staggers the engine starts and restarts the engines of an island should one form.
Each run brings a fresh lab up, runs `underlay.*` (`underlay.members`: every
engine's own gossip view must hold every engine), and takes the lab down.

Writes benchmarks/results/gossip.csv: nodes, run, engines_s (the engines step),
gossip_s (the gossip step: the island check, and the repair rounds if any), up_s,
islanders (engines `up` found outside the largest gossip cluster and restarted, over
every repair round), members_failed (underlay.* failures after `up`).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_lab import spec_text  # noqa: E402

from overlaylab.context import open_lab  # noqa: E402
from overlaylab.progress import Progress  # noqa: E402
from overlaylab.up import pipeline  # noqa: E402
from overlaylab.verify.run import run_verify, select_checks  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


class Recorder(Progress):
    """Quiet progress that keeps the `gossip` lines `up` says."""

    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.gossip: list[str] = []

    def item(self, where: str, message: str) -> None:
        if where == "gossip":
            self.gossip.append(message)


def islanders(lines: list[str]) -> int:
    """Engines named by the repair rounds' `... outside the largest ...` lines."""
    return sum(
        len(line.split(" outside ")[0].split(", ")) for line in lines if "restarting them" in line
    )


def run_once(nodes: int, run: int, out: csv.writer) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
        spec_dir = Path(tmp) / "inventory"
        spec_dir.mkdir()
        spec = spec_dir / f"bench{nodes}.yml"
        spec.write_text(spec_text(nodes).replace("file: stacks/", "file: ../../../stacks/"))
        progress = Recorder()
        ctx = open_lab(spec, progress)
        ctx.provider.destroy()
        try:
            report = pipeline.up(ctx)
            verify = run_verify(ctx, select_checks(only=["underlay.*"]))
        finally:
            ctx.provider.destroy()
        row = [
            nodes,
            run,
            f"{report.timings['engines']:.2f}",
            f"{report.timings['gossip']:.2f}",
            f"{report.seconds:.2f}",
            islanders(progress.gossip),
            len(verify.failed),
        ]
        out.writerow(row)
        print(
            f"{nodes} engines, run {run}: engines {row[2]}s, gossip {row[3]}s, up {row[4]}s, "
            f"restarted off an island: {row[5]}, underlay failures: {row[6]} "
            f"of {len(verify.results)}",
            file=sys.stderr,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "gossip.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(
            ["nodes", "run", "engines_s", "gossip_s", "up_s", "islanders", "members_failed"]
        )
        for nodes in args.nodes:
            for run in range(1, args.runs + 1):
                run_once(nodes, run, out)
                f.flush()


if __name__ == "__main__":
    main()
