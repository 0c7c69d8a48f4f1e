"""From many failing results to the few causes behind them.

One cut cable fails dozens of pairs; a reader wants one sentence. Each rule looks for
the signature of one known cause in the results (which checks fail, for which nodes,
while which others pass) and explains it. Rules run from the bottom of the stack up,
and a failure a rule has explained is not explained again. Only results with status
`fail` are evidence: an `error` means a check itself crashed, which says nothing
about the network, so errors are reported on their own, unless they are results
left untested because of a failure a rule explains (a dead engine's probes).

Rules read the results' structured fields (source, target, network, path), never
the human `subject`, so rewording a check cannot change a diagnosis.

The rules live by theme: `underlay` (engines, the lab network), `kv`, `gossip`,
`overlay` (peer entries, the data path), `names`, `stacks`, `swarm`; `evidence` holds
what they read and say, `rules` their order. A rule names checks by their definitions
(`engines.API`), not by id strings.
"""

from overlaylab.verify.diagnosis.evidence import Diagnosis, Evidence
from overlaylab.verify.diagnosis.rules import RULES, diagnose

__all__ = ["RULES", "Diagnosis", "Evidence", "diagnose"]
