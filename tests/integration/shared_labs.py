"""Labs shared by the integration modules that need the same kind of lab: one `up` and
one `down` per profile, instead of one of each per module.

A profile is a lab spec (and, for the ssh provider, the bare hosts it runs on). The
tests that ask for a profile run one after another (conftest.py orders them so): its lab
comes up for the first of them and goes down after the last, and the host is compared
with its snapshot from before that `up`, once, after that `down`, as each module did for
its own lab. Only one shared lab is up at a time, so no lab's snapshot sees another.

A fault test heals what it broke. When the lab passes from one module to the next, it
must verify green: a heal that left something behind fails where it happened, not in a
later module's results.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, failures, invoke, verify_json

from overlaylab.context import LabContext, open_lab

# Makes the spec of a profile in a folder of its own; what it starts besides the lab (the
# ssh provider's bare hosts) it leaves on the stack, which is closed after `down`.
SpecMaker = Callable[[Path, contextlib.ExitStack], Path]


@dataclass(frozen=True)
class Profile:
    name: str
    make_spec: SpecMaker
    # Whether the modules sharing it held `down` to exit 0 (the ssh provider's tests do).
    down_must_succeed: bool = False
    # The module that has the lab last, when one leaves it changed for good (a stack
    # added) rather than healed.
    last: str | None = None


def spec_file(relative: str) -> SpecMaker:
    """A profile whose lab is a spec of the repository, as is, named as its modules name
    it (relative to the root, where the CLI runs)."""
    return lambda _folder, _stack: Path(relative)


@dataclass
class SharedLab:
    """One profile's lab while it is up."""

    profile: Profile
    spec: Path
    before: HostSnapshot
    up: subprocess.CompletedProcess[str]
    stack: contextlib.ExitStack
    module: str  # the module of the test that had it last
    _context: LabContext | None = field(default=None, repr=False)

    @property
    def context(self) -> LabContext:
        if self._context is None:
            self._context = open_lab(ROOT / self.spec)
        return self._context


class LabPool:
    """At most one shared lab up at a time: asking for another profile takes the
    current one down first (and checks the host after it)."""

    def __init__(self) -> None:
        self.current: SharedLab | None = None

    def acquire(self, profile: Profile, module: str) -> SharedLab:
        if self.current is not None and self.current.profile != profile:
            self.release()
        if self.current is None:
            self.current = self._bring_up(profile, module)
        elif self.current.module != module:
            self._hand_over(self.current, module)
        return self.current

    def _bring_up(self, profile: Profile, module: str) -> SharedLab:
        stack = contextlib.ExitStack()
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=profile.name)))
        before = HostSnapshot.take()
        try:
            spec = profile.make_spec(folder, stack)
            # Registered before `up` runs: a failed or interrupted `up` is taken down too.
            stack.callback(_down, spec, profile)
            up = invoke("up", "-i", str(spec))
        except BaseException:
            with contextlib.suppress(Exception):
                stack.close()
            raise
        return SharedLab(profile, spec, before, up, stack, module)

    @staticmethod
    def _hand_over(shared: SharedLab, module: str) -> None:
        """The lab goes on to the next module only if it verifies green."""
        report = verify_json(str(shared.spec))
        shared.module = module
        assert report["ok"], (
            f"the shared lab {shared.profile.name!r} is not green when handed on to {module}: "
            f"a test before it left something broken: {failures(report)}"
        )

    def release(self) -> None:
        """Take the current lab down and check the host is as it was before its `up`."""
        shared, self.current = self.current, None
        if shared is None:
            return
        shared.stack.close()
        left = wait_until_clean(shared.before)
        assert left == [], f"after the {shared.profile.name} lab: {left}"


def profile_of(item: pytest.Item, profiles: dict[str, Profile]) -> Profile | None:
    """A profile fixture in the item's closure, or named by a parameter of it (a fixture
    that picks its lab with request.getfixturevalue, like the node contract's `kind`)."""
    names = list(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        names += [v for v in callspec.params.values() if isinstance(v, str)]
    found = [profiles[name] for name in names if name in profiles]
    return found[0] if found else None


def grouped(items: list[pytest.Item], profiles: dict[str, Profile]) -> list[pytest.Item]:
    """`items` with those of each profile one after another, where its first one was
    (its `last` module at the end), everything else in its place."""
    first: dict[str, int] = {}
    keyed = []
    for index, item in enumerate(items):
        profile = profile_of(item, profiles)
        if profile is None:
            keyed.append(((index, False, index), item))
            continue
        start = first.setdefault(profile.name, index)
        keyed.append(((start, item.module.__name__ == profile.last, index), item))
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def _down(spec: Path, profile: Profile) -> None:
    down = invoke("down", "-i", str(spec), check=False)
    if profile.down_must_succeed:
        assert down.returncode == 0, down.stderr
