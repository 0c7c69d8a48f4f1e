"""The overlaylab CLI, run as a user would run it, for the integration tests.

A helper module rather than conftest.py: test modules import it by name, and the
name `conftest` is shared by tests/unit/conftest.py, so which one `from conftest
import ...` finds depends on the order pytest collects the folders in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def invoke(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI, as a user would, from the project root."""
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"invoke {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc
