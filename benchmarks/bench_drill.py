"""`invoke drill` on real labs: up, drill every fault that applies, down; per fault the
outcome and the times, per lab the total and the machine's load.

    sudo .venv/bin/python benchmarks/bench_drill.py [--lab default swarm ssh] [--only K,...]

Labs: `default` (inventory/lab.yml), `swarm` (tests/testdata/labs/swarm.yml), `classic`
(tests/testdata/labs/classic.yml: a `swarm` binary on PATH builds its image) and `ssh`
(the default lab's layout on bare hosts reached over SSH: tests/integration/sshd_hosts.py
makes them, sshd in node namespaces). Each gets a cluster name and lab subnet of its own
(`bd*`), so a leftover is recognisable.

Appends to benchmarks/results/drill.csv: when, lab, fault, outcome, expected and
diagnosed rules, nodes, to_diagnosis_s, to_green_s, verifies, drill_s (the whole
drill), load1 before and after, cpus. Prints each lab's table in Markdown. (The
default-lab and swarm-mode rows with no `verifies` were taken from `invoke drill
--junit` runs of the same library code, the default spec under the cluster name f2d,
the swarm spec under f2s: one run stopped after `advertise`, the rest ran with --only.)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from overlaylab.context import open_lab  # noqa: E402
from overlaylab.faults.drill import DrillReport, choose, run_drill  # noqa: E402
from overlaylab.progress import Progress  # noqa: E402
from overlaylab.report.drill import markdown, summary  # noqa: E402
from overlaylab.up import pipeline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "drill.csv"
LABS = {
    "default": (ROOT / "inventory/lab.yml", "bdd", "192.168.74"),
    "swarm": (ROOT / "tests/testdata/labs/swarm.yml", "bds", "192.168.75"),
    # Needs a static classic swarm binary (`swarm`) on PATH to build its image.
    "classic": (ROOT / "tests/testdata/labs/classic.yml", "bdc", "192.168.76"),
}
FIELDS = [
    "when",
    "lab",
    "fault",
    "outcome",
    "expected",
    "diagnosed",
    "nodes",
    "to_diagnosis_s",
    "to_green_s",
    "verifies",
    "drill_s",
    "load1_before",
    "load1_after",
    "cpus",
]


def renamed(source: Path, name: str, prefix: str, folder: Path) -> Path:
    """The spec with a cluster name and subnet of its own, stack files made absolute."""
    spec = yaml.safe_load(source.read_text())
    old = spec["lab"]["subnet"].rsplit(".", 1)[0]
    spec["name"] = name
    text = yaml.safe_dump(spec, sort_keys=False).replace(old + ".", prefix + ".")
    spec = yaml.safe_load(text)
    for stack in spec.get("stacks") or []:
        stack["file"] = str((source.parent / stack["file"]).resolve())
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@contextlib.contextmanager
def ssh_lab(folder: Path) -> Iterator[Path]:
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from sshd_hosts import ssh_spec, sshd_hosts

    with sshd_hosts(folder, hidden=["etcd"]) as hosts:
        path = ssh_spec(folder, hosts)
        spec = yaml.safe_load(path.read_text())
        spec["name"] = "bdh"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        yield path


def drill_lab(lab: str, spec: Path, only: list[str], out: csv.DictWriter) -> DrillReport:
    ctx = open_lab(spec, Progress(quiet=True))
    ctx.provider.destroy()
    load_before = os.getloadavg()[0]
    try:
        pipeline.up(ctx)
        ctx = open_lab(spec, Progress(quiet=True))
        started = time.monotonic()
        report = run_drill(
            ctx,
            choose(only),
            progress=lambda line: print(f"{time.monotonic() - started:6.1f}s {line}", flush=True),
        )
    finally:
        ctx.provider.destroy()
    load_after = os.getloadavg()[0]
    when = datetime.now(UTC).isoformat(timespec="seconds")
    for row in report.rows:
        out.writerow(
            {
                "when": when,
                "lab": lab,
                "fault": row.fault,
                "outcome": row.outcome,
                "expected": row.expected,
                "diagnosed": " ".join(dict.fromkeys(row.diagnosed)),
                "nodes": " ".join(row.nodes),
                "to_diagnosis_s": "" if row.to_diagnosis is None else f"{row.to_diagnosis:.1f}",
                "to_green_s": "" if row.to_green is None else f"{row.to_green:.1f}",
                "verifies": row.verifies,
                "drill_s": f"{report.seconds:.1f}",
                "load1_before": f"{load_before:.2f}",
                "load1_after": f"{load_after:.2f}",
                "cpus": os.cpu_count(),
            }
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lab", nargs="+", default=["default", "swarm", "ssh"])
    parser.add_argument("--only", default="", help="fault kinds, comma-separated")
    args = parser.parse_args()
    only = [k for k in args.only.split(",") if k]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", newline="") as f, tempfile.TemporaryDirectory() as tmp:
        out = csv.DictWriter(f, FIELDS)
        if new:
            out.writeheader()
        for lab in args.lab:
            if lab == "ssh":
                with ssh_lab(Path(tmp)) as spec:
                    report = drill_lab(lab, spec, only, out)
            else:
                source, name, prefix = LABS[lab]
                report = drill_lab(lab, renamed(source, name, prefix, Path(tmp)), only, out)
            f.flush()
            print(f"\n### {lab}\n\n{markdown(report)}\n{summary(report)}\n", flush=True)


if __name__ == "__main__":
    main()
