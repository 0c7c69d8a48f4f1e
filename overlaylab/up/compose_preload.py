"""Run by docker-compose's own Python, not overlaylab's: import compose, then wait for
one command (see compose_warm.py).

The command arrives on stdin as one JSON line, {"argv": [...], "env": {...}}: it runs
as `docker-compose` would run it, with that environment. An empty stdin means no
command came: exit 0. Standalone on purpose: compose's interpreter has no overlaylab.
"""

import json
import os
import sys

CANNOT_IMPORT = 97  # compose_warm.CANNOT_IMPORT: the caller runs the command the usual way


def main() -> int:
    try:
        from compose.cli.main import main as compose_main
    except ImportError as exc:
        print(f"compose_preload: cannot import compose: {exc}", file=sys.stderr)
        return CANNOT_IMPORT
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)
    os.environ.clear()
    os.environ.update(job["env"])
    sys.argv = job["argv"]
    compose_main()  # exits itself on errors, with compose's own messages
    return 0


if __name__ == "__main__":
    sys.exit(main())
