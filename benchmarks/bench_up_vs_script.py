"""`invoke up` and `invoke up verify` of the default lab against a hand-rolled script
doing the same core work, in the same run; and `invoke --list` (the start-up cost).

    sudo .venv/bin/python benchmarks/bench_up_vs_script.py [--runs 5] [--label LABEL]
        [--name pbench] [--subnet 192.168.80] [--script-net 192.168.81]

Runs, in turn and `--runs` times each: benchmarks/baseline_up.sh (namespaces on a
bridge, etcd v2, three dockerd started together, the probe image imported, overlay
`dn`, `web` and `mongo` by `docker run`), `invoke up` of the default lab's spec under
another name and subnet (TLS, compose, the island check and the rest kept), then
`invoke up verify` of the same fresh lab, then `invoke --list` three times. Each lab is
taken down before the next starts; take-down is not timed.

Writes benchmarks/results/up-vs-script[-LABEL].csv: run, what, seconds, load1, load5
(the machine's load average as the measurement started), where `what` is `script`
(the script's own clock), `script wall` (the script's process), `invoke up` (wall time
of the command, Python's start included), `up` (overlaylab's own total, as `up` prints
it), `invoke up verify` (wall), `invoke --list` (wall).
"""

from __future__ import annotations

import argparse
import csv
import os
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
UP_TOTAL = re.compile(r"is up in ([0-9.]+)s")


def lab_spec(folder: Path, name: str, subnet: str) -> Path:
    """The default spec, renamed and moved to its own subnet so a running lab is left be."""
    text = (ROOT / "inventory" / "lab.yml").read_text()
    text = text.replace("name: lab\n", f"name: {name}\n").replace("192.168.99.", f"{subnet}.")
    text = text.replace("file: ../stacks/", f"file: {ROOT}/stacks/")
    spec = folder / f"{name}.yml"
    spec.write_text(text)
    return spec


def script_run(work: Path, rootfs: Path, net: str) -> tuple[float, float]:
    started = time.monotonic()
    try:
        out = subprocess.run(
            ["bash", str(SCRIPT), "up", str(work), str(rootfs), net],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wall = time.monotonic() - started
    finally:
        subprocess.run(["bash", str(SCRIPT), "down", str(work), net], check=True)
    return float(out.split("baseline up: ")[1].split()[0]), wall


def invoke(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "invoke"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
    )


def timed(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = invoke(*args, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return wall, done.stderr


def overlaylab_up(spec: Path) -> tuple[float, float]:
    try:
        wall, said = timed("up", "-i", str(spec))
    finally:
        invoke("down", "-i", str(spec))
    match = UP_TOTAL.search(said)
    assert match, said
    return wall, float(match.group(1))


def overlaylab_up_verify(spec: Path) -> float:
    try:
        wall, _ = timed("up", "-i", str(spec), "verify", "-i", str(spec))
    finally:
        invoke("down", "-i", str(spec))
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", default="")
    parser.add_argument("--name", default="pbench", help="the lab's cluster name")
    parser.add_argument("--subnet", default="192.168.80", help="the lab's /24, three octets")
    parser.add_argument("--script-net", default="192.168.81", help="the script's /24")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    seen: dict[str, list[float]] = {}
    name = "up-vs-script" + (f"-{args.label}" if args.label else "") + ".csv"
    with (
        tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp,
        (RESULTS / name).open("w", newline="") as f,
    ):
        rootfs = Path(tmp) / "probe-rootfs.tar"
        rootfs.write_bytes(build_probe_rootfs())
        spec = lab_spec(Path(tmp), args.name, args.subnet)
        out = csv.writer(f)
        out.writerow(["run", "what", "seconds", "load1", "load5"])

        def record(run: int, what: str, seconds: float, load: tuple[float, ...]) -> None:
            out.writerow([run, what, f"{seconds:.3f}", f"{load[0]:.2f}", f"{load[1]:.2f}"])
            seen.setdefault(what, []).append(seconds)
            f.flush()

        for run in range(1, args.runs + 1):
            load = os.getloadavg()
            script, script_wall = script_run(Path(tmp) / "script", rootfs, args.script_net)
            record(run, "script", script, load)
            record(run, "script wall", script_wall, load)
            load = os.getloadavg()
            wall, total = overlaylab_up(spec)
            record(run, "invoke up", wall, load)
            record(run, "up", total, load)
            load = os.getloadavg()
            record(run, "invoke up verify", overlaylab_up_verify(spec), load)
            for _ in range(3):
                load = os.getloadavg()
                record(run, "invoke --list", timed("--list")[0], load)
            print(
                f"run {run}: script {script:.2f}s, invoke up {wall:.2f}s (up {total:.2f}s), "
                f"invoke up verify {seen['invoke up verify'][-1]:.2f}s, "
                f"invoke --list {seen['invoke --list'][-1]:.2f}s, load {load[0]:.2f}",
                file=sys.stderr,
            )
    med = {what: statistics.median(values) for what, values in seen.items()}
    print(
        f"medians: script {med['script']:.2f}s, invoke up {med['invoke up']:.2f}s "
        f"({med['invoke up'] / med['script']:.2f}x), up {med['up']:.2f}s "
        f"({med['up'] / med['script']:.2f}x), invoke up verify {med['invoke up verify']:.2f}s "
        f"({med['invoke up verify'] / med['script']:.2f}x), invoke --list "
        f"{med['invoke --list']:.2f}s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
