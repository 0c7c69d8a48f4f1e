"""Where a spec's relative paths point: the folder that holds the spec file.

docker-compose resolves the files a compose file names against the compose file's own
folder; a spec does the same for `stacks[].file` and `images[].tarball`, so a spec can
be written anywhere, next to its files. Paths are made absolute lexically
(`os.path.abspath`, as compose does): `..` is folded, symlinks are not followed, so a
message names the path the user would type.
"""

from __future__ import annotations

import os
from pathlib import Path


def spec_dir_of(spec_path: str | Path) -> Path:
    """The absolute folder holding the spec file: relative paths in it resolve here."""
    return Path(os.path.abspath(spec_path)).parent


def resolve_in_spec_dir(spec_dir: Path, relative: str | Path) -> Path:
    """`relative` (a stack file, an image tarball) as an absolute path; an absolute
    `relative` stays as it is."""
    return Path(os.path.normpath(spec_dir / relative))
