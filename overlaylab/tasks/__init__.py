"""The invoke collection: `invoke --list` shows every task."""

from invoke import Collection

from overlaylab.tasks import cluster, dev, verify

ns = Collection()
for module in (cluster, verify, dev):
    for name in module.__all__:
        ns.add_task(getattr(module, name))
