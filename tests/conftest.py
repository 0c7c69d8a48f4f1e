"""Test tiers, as markers (`pytest -m unit`), not only folders.

- unit: tests/unit without a tier of its own: no root, no daemons, no browser, no
  subprocess of the project's CLI (`./lab test --unit`, about half a minute).
- tools: real programs besides Python, still without root or daemons: the project's
  CLI run as a user runs it, Vagrant's own `vagrant validate`.
- browser: headless Chromium rendering the HTML report.
- integration: real engines and labs (tests/integration; root).
"""

from __future__ import annotations

import pytest

TIERS = ("unit", "tools", "browser", "integration")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
        elif not any(item.get_closest_marker(tier) for tier in ("tools", "browser")):
            item.add_marker(pytest.mark.unit)
