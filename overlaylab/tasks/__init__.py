"""The invoke collection: `invoke --list` shows every task."""

from invoke import Collection

from overlaylab.tasks import cluster, dev, drill, faults, graph, logs, new, render, spec, verify

ns = Collection()
for module in (cluster, spec, verify, faults, drill, logs, render, graph, new, dev):
    for name in module.__all__:
        ns.add_task(getattr(module, name))
