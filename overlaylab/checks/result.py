"""What a check found. One `CheckResult` per thing tested (a pair, a name, a node)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "skip", "error"]


@dataclass
class CheckResult:
    check: str  # check id, e.g. "connectivity.tcp"
    subject: str  # what was tested, e.g. "node1 -> node2 over dn"
    status: Status
    message: str = ""
    hint: str = ""
    nodes: list[str] = field(default_factory=list)
    command: str = ""  # the command that showed it, ready to paste
    output: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
