"""What a check found. One `CheckResult` per thing tested (a pair, a name, a node)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "skip", "error"]


PathKind = Literal["cross-host", "same-host", ""]


@dataclass
class CheckResult:
    """One tested thing. `subject` is for people; the structured fields are for code.

    `source` and `target` are lab nodes (the node a probe ran from, the node it
    tested), `network` the overlay involved and `path` whether a pair crossed hosts.
    Diagnosis reasons over these fields only, never over the wording of `subject`.
    """

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
    source: str = ""
    target: str = ""
    network: str = ""
    path: PathKind = ""

    @classmethod
    def skip(
        cls, check: str, subject: str, message: str, nodes: list[str] | None = None
    ) -> CheckResult:
        """A check that does not apply to this spec (one overlay: nothing to isolate)."""
        return cls(check=check, subject=subject, status="skip", message=message, nodes=nodes or [])

    @classmethod
    def untested(
        cls, check: str, node: str, message: str, because: str, **where: str
    ) -> CheckResult:
        """Something the spec asks for that could not be tested, because `because` failed.

        Never a skip: an untested node must not pass. It is an error that names the
        finding it follows from, so diagnosis can file it under that cause.
        """
        return cls(
            check=check,
            subject=node,
            status="error",
            message=f"not tested: {message}",
            hint=f"see {because}",
            nodes=[node],
            target=where.pop("target", node),
            details={"untested_because": because},
            **where,  # type: ignore[arg-type]
        )

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
