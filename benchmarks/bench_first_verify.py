"""The first `invoke verify` of a fresh lab (it starts the probes) and the next one, on
3 and 10 engines, wall clock and verify's own clock.

    sudo .venv/bin/python benchmarks/bench_first_verify.py [--nodes 3 10] [--runs 2]
        [--label LABEL] [--subnet 192.168.82]

Per run: `invoke up` of a fresh lab (default lab's shape: a KV node, N engines, overlay
`dn`, the demo stack), `invoke verify --format json` twice, `invoke down`. Writes
benchmarks/results/first-verify[-LABEL].csv: nodes, run, what, seconds, load1, load5,
detail, where `what` is `up` (wall), `first verify` / `verify again` (wall) and
`first verify (own)` / `verify again (own)` (the report's own seconds).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def spec_text(nodes: int, name: str, subnet: str) -> str:
    engines = "\n".join(f"  - name: n{i}" for i in range(1, nodes + 1))
    return f"""apiVersion: overlaylab/v1
kind: Cluster
name: {name}
lab:
  subnet: {subnet}.0/24
nodes:
  - name: kv
    roles: [kv]
{engines}
networks:
  - name: dn
    subnet: 10.0.9.0/24
stacks:
  - name: demo
    file: {ROOT}/stacks/demo/docker-compose.yml
    services:
      web: n1
      mongo: n2
"""


def invoke(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "invoke"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return time.monotonic() - started, done


def one_run(spec: Path, nodes: int, run: int, out: Any) -> None:
    """Up, two verifies, down; a row per measurement."""

    def record(what: str, seconds: float, load: tuple[float, ...], detail: str = "") -> None:
        row = [nodes, run, what, f"{seconds:.3f}", f"{load[0]:.2f}", f"{load[1]:.2f}", detail]
        out.writerow(row)

    try:
        load = os.getloadavg()
        wall, done = invoke("up", "-i", str(spec))
        if done.returncode != 0:
            raise SystemExit(f"up failed:\n{done.stderr}")
        record("up", wall, load)
        said = []
        for what in ("first verify", "verify again"):
            load = os.getloadavg()
            wall, done = invoke("verify", "-i", str(spec), "--format", "json")
            report = json.loads(done.stdout)
            counts = report["summary"]
            failed = counts.get("fail", 0) + counts.get("error", 0)
            detail = f"{counts['total']} results, {failed} failed"
            record(what, wall, load, detail)
            record(f"{what} (own)", report["seconds"], load, detail)
            said.append(f"{what} {wall:.2f}s ({report['seconds']:.2f}s own, {detail})")
        print(f"{nodes} engines, run {run}: " + ", ".join(said), file=sys.stderr)
    finally:
        invoke("down", "-i", str(spec))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--label", default="")
    parser.add_argument("--subnet", default="192.168.82", help="the labs' /24, three octets")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "first-verify" + (f"-{args.label}" if args.label else "") + ".csv"
    with (
        tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp,
        (RESULTS / name).open("w", newline="") as f,
    ):
        out = csv.writer(f)
        out.writerow(["nodes", "run", "what", "seconds", "load1", "load5", "detail"])
        for nodes in args.nodes:
            spec = Path(tmp) / f"p{nodes}.yml"
            spec.write_text(spec_text(nodes, f"pverify{nodes}", args.subnet))
            for run in range(1, args.runs + 1):
                one_run(spec, nodes, run, out)
                f.flush()


if __name__ == "__main__":
    main()
