"""`invoke up` of the default lab against a hand-rolled script doing the same core work.

    sudo .venv/bin/python benchmarks/bench_up_vs_script.py [--runs 5]

Runs, in turn and `--runs` times each: benchmarks/baseline_up.sh (namespaces on a
bridge, etcd v2, three dockerd started together, the probe image imported, overlay
`dn`, `web` and `mongo` by `docker run`), then `invoke up` of the default lab's spec
under another name and subnet (TLS, compose, the island check and the rest kept).
Each is taken down before the next starts; take-down is not timed.

Writes benchmarks/results/up-vs-script.csv: run, what, seconds, where `what` is
`script` (the script's own clock), `invoke up` (wall time of the command, Python's
start included) and `up` (overlaylab's own total, as `up` prints it).
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from overlaylab.up.steps.images import build_probe_rootfs  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SCRIPT = ROOT / "benchmarks" / "baseline_up.sh"
SCRIPT_NET = "192.168.76"
LAB_SUBNET = "192.168.75"
UP_TOTAL = re.compile(r"is up in ([0-9.]+)s")


def lab_spec(folder: Path) -> Path:
    """The default spec, renamed and moved to its own subnet so a running lab is left be."""
    text = (ROOT / "inventory" / "lab.yml").read_text()
    text = text.replace("name: lab\n", "name: benchup\n").replace("192.168.99.", f"{LAB_SUBNET}.")
    text = text.replace("file: ../stacks/", f"file: {ROOT}/stacks/")
    spec = folder / "benchup.yml"
    spec.write_text(text)
    return spec


def script_run(work: Path, rootfs: Path) -> float:
    try:
        out = subprocess.run(
            ["bash", str(SCRIPT), "up", str(work), str(rootfs), SCRIPT_NET],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        subprocess.run(["bash", str(SCRIPT), "down", str(work), SCRIPT_NET], check=True)
    return float(out.split("baseline up: ")[1].split()[0])


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "invoke"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


def overlaylab_run(spec: Path) -> tuple[float, float]:
    started = time.monotonic()
    try:
        said = invoke("up", "-i", str(spec)).stderr
        wall = time.monotonic() - started
    finally:
        invoke("down", "-i", str(spec))
    match = UP_TOTAL.search(said)
    assert match, said
    return wall, float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    seen: dict[str, list[float]] = {"script": [], "invoke up": [], "up": []}
    with (
        tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp,
        (RESULTS / "up-vs-script.csv").open("w", newline="") as f,
    ):
        rootfs = Path(tmp) / "probe-rootfs.tar"
        rootfs.write_bytes(build_probe_rootfs())
        spec = lab_spec(Path(tmp))
        out = csv.writer(f)
        out.writerow(["run", "what", "seconds"])
        for run in range(1, args.runs + 1):
            script = script_run(Path(tmp) / "script", rootfs)
            wall, total = overlaylab_run(spec)
            for what, seconds in (("script", script), ("invoke up", wall), ("up", total)):
                out.writerow([run, what, f"{seconds:.3f}"])
                seen[what].append(seconds)
            f.flush()
            print(
                f"run {run}: script {script:.2f}s, invoke up {wall:.2f}s (up {total:.2f}s)",
                file=sys.stderr,
            )
    medians = {what: statistics.median(values) for what, values in seen.items()}
    print(
        f"medians: script {medians['script']:.2f}s, invoke up {medians['invoke up']:.2f}s "
        f"({medians['invoke up'] / medians['script']:.2f}x), up {medians['up']:.2f}s "
        f"({medians['up'] / medians['script']:.2f}x)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
