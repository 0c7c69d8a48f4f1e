"""Cross-field checks on a schema-valid cluster spec.

The pydantic models check each value on its own; the mistakes that cost an afternoon
are relations between values (an address outside the lab subnet, a cluster-store the
chosen engine no longer has, a stack placed on a KV-only node). Every check says where
the problem is (YAML path and line) and what would fix it.

Paths use the YAML spelling (`engine.cluster-store`, not `engine.cluster_store`).

By theme: nodes, networks, engines (KV store, engine options, orchestration), stacks
(images, compose files); report.py says where a problem is, rules.py runs them all.
"""

from overlaylab.spec.semantic.report import Loc, Locate, format_path, format_problem, suggest
from overlaylab.spec.semantic.rules import CHECKS, semantic_problems

__all__ = [
    "CHECKS",
    "Loc",
    "Locate",
    "format_path",
    "format_problem",
    "semantic_problems",
    "suggest",
]
