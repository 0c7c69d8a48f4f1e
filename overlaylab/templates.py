"""Jinja2 rendering of the files in templates/ (daemon configs, machine data, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# The checkout: the top-level Vagrantfile and the .overlaylab/ folder live here.
PROJECT_ROOT = TEMPLATES_DIR.parent

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
    undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
    keep_trailing_newline=True,
    autoescape=False,
)


def render(template: str, **values: Any) -> str:
    return _env.get_template(template).render(**values)
