"""`invoke logs` on 3 and 20 engines: wall time with and without verify, archive size.

    sudo .venv/bin/python benchmarks/bench_logs.py [--nodes 3 20] [--runs 3]

Brings each lab up (its own name and subnet, see bench_lab.spec_text), runs one verify
so the probes exist (as on a lab someone is debugging), then times `invoke logs` as a
user runs it, and takes the lab down. Writes benchmarks/results/logs.csv (nodes, run,
verify, seconds, archive_kib, items, not_collected, load_1min).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_lab import RESULTS, spec_text  # noqa: E402


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv/bin/invoke"), *args], cwd=ROOT, capture_output=True, text=True
    )


def manifest_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        first = tar.getmembers()[0]
        handle = tar.extractfile(first)
        assert handle is not None and first.name.endswith("/manifest.json")
        return json.load(handle)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 20])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    # The spec sits two folders below the checkout, as bench_lab's, so stacks/ resolves.
    folder = tempfile.TemporaryDirectory(dir=ROOT / "benchmarks")
    with (RESULTS / "logs.csv").open("w", newline="") as out, folder as tmp:
        rows = csv.writer(out)
        rows.writerow(
            ["nodes", "run", "verify", "seconds", "archive_kib", "items", "not_collected", "load"]
        )
        for nodes in args.nodes:
            spec = Path(tmp) / f"logs{nodes}.yml"
            text = spec_text(nodes).replace(f"name: bench{nodes}", f"name: logs{nodes}")
            spec.write_text(text.replace("file: stacks/", "file: ../../stacks/"))
            assert invoke("up", "-i", str(spec)).returncode == 0
            try:
                invoke("verify", "-i", str(spec))  # the probes start once
                for run in range(1, args.runs + 1):
                    for verify in (True, False):
                        archive = Path(tmp) / f"logs{nodes}-{run}-{verify}.tar.gz"
                        extra = [] if verify else ["--no-verify"]
                        started = time.monotonic()
                        done = invoke("logs", "-i", str(spec), "-o", str(archive), *extra)
                        seconds = time.monotonic() - started
                        assert done.returncode == 0, done.stderr
                        manifest = manifest_of(archive)
                        rows.writerow(
                            [
                                nodes,
                                run,
                                verify,
                                f"{seconds:.2f}",
                                f"{archive.stat().st_size / 1024:.0f}",
                                len(manifest["collected"]),
                                len(manifest["not_collected"]),
                                f"{os.getloadavg()[0]:.2f}",
                            ]
                        )
                        out.flush()
                        print(nodes, run, verify, f"{seconds:.2f}s", archive.stat().st_size)
            finally:
                invoke("down", "-i", str(spec))


if __name__ == "__main__":
    main()
