"""Entry point for `invoke`: the task collection lives in the package."""

from overlaylab.tasks import ns  # noqa: F401
