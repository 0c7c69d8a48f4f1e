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

    @classmethod
    def skip(
        cls, check: str, subject: str, message: str, nodes: list[str] | None = None
    ) -> CheckResult:
        """A result for something that could not or need not be tested, and why."""
        return cls(check=check, subject=subject, status="skip", message=message, nodes=nodes or [])

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
