"""overlaylab/pyapp: the discovery demo's image, built offline from Debian's python3.

No image can be pulled, so the lab assembles a root filesystem from this machine's
Debian python3.11 packages (python3.11-minimal, libpython3.11-minimal and
libpython3.11-stdlib: their files as `dpkg -L` lists them, without tests, idle,
tkinter, ensurepip and pydoc data), the shared libraries the interpreter and its
extension modules link to, and the app itself (stacks/discovery/app.py). About 30 MB;
built in a second or two, deterministic for the same packages and app.
"""

from __future__ import annotations

import functools
import io
import subprocess
import tarfile
from pathlib import Path

from overlaylab.errors import OverlaylabError
from overlaylab.spec.models import APP_IMAGE
from overlaylab.up.rootfs import shared_libraries

PACKAGES = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib")
APP_SOURCE = Path(__file__).resolve().parents[2] / "stacks" / "discovery" / "app.py"
PYTHON = "/usr/bin/python3.11"
# Parts of the standard library an HTTP service never imports.
_LEFT_OUT = ("/test/", "/idlelib/", "/tkinter/", "/ensurepip/", "/pydoc_data/", "/__pycache__/")
IMAGE_CHANGES = [
    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    'CMD ["python3", "/app/app.py"]',
    "LABEL overlaylab.role=app",
]


def package_files(packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    listed = subprocess.run(["dpkg", "-L", *packages], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise OverlaylabError(
            f"the discovery demo's image is built from Debian's python3 ({', '.join(packages)}), "
            f"and dpkg does not list them: {listed.stderr.strip()} (apt-get install -y python3)"
        )
    files = []
    for line in listed.stdout.splitlines():
        path = Path(line)
        if path.is_file() and not path.is_symlink() and not any(p in line for p in _LEFT_OUT):
            files.append(path)
    return sorted(set(files))


def _add(tar: tarfile.TarFile, made: set[str], source: Path, name: str, mode: int) -> None:
    data = source.read_bytes()
    parts = name.strip("/").split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        if folder not in made:
            made.add(folder)
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
    info = tarfile.TarInfo(name.strip("/"))
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


@functools.cache
def app_rootfs() -> bytes:
    files = package_files()
    binaries = [f for f in files if f.suffix == ".so" or str(f) == PYTHON]
    libraries = sorted({lib for b in binaries for lib in shared_libraries(b)})
    buffer = io.BytesIO()
    made = {"tmp", "etc", "proc", "sys", "dev"}
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in sorted(made):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        for path in files:
            executable = str(path) == PYTHON or path.suffix == ".so"
            _add(tar, made, path, str(path), 0o755 if executable else 0o644)
        for library in libraries:
            if library.strip("/") not in made:
                made.add(library.strip("/"))
                _add(tar, made, Path(library).resolve(), library, 0o755)
        link = tarfile.TarInfo("usr/bin/python3")
        link.type, link.linkname = tarfile.SYMTYPE, "python3.11"
        tar.addfile(link)
        _add(tar, made, APP_SOURCE, "app/app.py", 0o644)
    return buffer.getvalue()


def stacks_use_app_image(compose_texts: list[str]) -> bool:
    return any(APP_IMAGE in text for text in compose_texts)
