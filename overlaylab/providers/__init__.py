"""Providers make hosts. Only `local` can run on this machine today."""

from __future__ import annotations

from typing import TYPE_CHECKING

from overlaylab.errors import OverlaylabError

if TYPE_CHECKING:
    from overlaylab.layout import LabLayout
    from overlaylab.providers.local import LocalProvider
    from overlaylab.spec.models import ClusterSpec


def get_provider(spec: ClusterSpec, layout: LabLayout) -> LocalProvider:
    kind = spec.provider.type
    if kind == "local":
        from overlaylab.providers.local import LocalProvider

        return LocalProvider(spec, layout)
    raise OverlaylabError(
        f"provider '{kind}' cannot bring a lab up yet: only the local provider is implemented. "
        "Set `provider: {type: local}` in the spec to run the same topology on this machine."
    )
