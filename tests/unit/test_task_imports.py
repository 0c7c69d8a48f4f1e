"""Building the task collection (what every `invoke` command does first, `--list` alone)
imports none of the heavy libraries: each task imports what it runs on when it runs.

Checked in a fresh interpreter: this one has imported everything already.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context
from rich.console import Console

from overlaylab.errors import OverlaylabError
from overlaylab.tasks import common

HEAVY = ("docker", "pydantic", "rich", "paramiko", "jinja2", "requests", "cryptography")


def modules_after(statement: str, env: dict[str, str] | None = None) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return set(json.loads(done.stdout))


def environment(**changes: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    return {**kept, **changes}


def test_the_task_collection_imports_no_heavy_library() -> None:
    loaded = modules_after("from overlaylab.tasks import ns\nassert ns.task_names")
    assert [m for m in HEAVY if m in loaded] == []
    assert not any(m.startswith(("overlaylab.verify", "overlaylab.up")) for m in loaded)


def test_a_task_module_imports_its_libraries_when_the_task_runs() -> None:
    loaded = modules_after(
        "from overlaylab.tasks import verify\n"
        "verify.out.width"  # the first use of a console makes it
    )
    assert "rich.console" in loaded
    assert "overlaylab.verify.run" not in loaded


def test_the_lab_tasks_reach_engines_without_the_sdks_ssh_transport() -> None:
    """paramiko and its crypto are half of the docker SDK's import, for ssh:// URLs only."""
    statement = (
        "import overlaylab.tasks\n"
        "import docker\n"
        "docker.DockerClient(base_url='unix:///nowhere.sock', version='1.41')"
    )
    loaded = modules_after(statement, environment())
    assert "docker" in loaded
    assert [m for m in ("paramiko", "cryptography", "bcrypt", "nacl") if m in loaded] == []
    # fabric (SSH labs) still has paramiko
    assert "paramiko" in modules_after(f"{statement}\nimport fabric", environment())


def test_an_ssh_docker_host_keeps_the_sdks_ssh_transport() -> None:
    loaded = modules_after(
        "import overlaylab.tasks\nimport docker", environment(DOCKER_HOST="ssh://h")
    )
    assert "docker.transport.sshconn" in loaded


def test_the_consoles_are_made_on_first_use_and_write_to_their_file() -> None:
    buffer = io.StringIO()
    console = common._ConsoleOnFirstUse(buffer)
    console.print("[bold]hello[/]")  # type: ignore[attr-defined]
    assert buffer.getvalue() == "hello\n"
    assert isinstance(console._made, Console)


def test_engine_errors_still_become_a_clean_exit() -> None:
    import docker.errors
    import requests
    from invoke.exceptions import Exit

    def raises(exc: BaseException):  # type: ignore[no-untyped-def]
        @common.friendly_errors
        def task(c):  # type: ignore[no-untyped-def]
            raise exc

        return task

    for exc in (
        docker.errors.APIError("engine gone"),
        requests.ConnectionError("refused"),
        OverlaylabError("bad spec"),
    ):
        with pytest.raises(Exit) as exited:
            raises(exc)(Context())
        assert exited.value.code == 2
        assert str(exc) in str(exited.value.message)
    with pytest.raises(ValueError):  # a bug stays a traceback
        raises(ValueError("bug"))(Context())


def test_a_local_lab_opens_and_reaches_its_nodes_without_pyroute2() -> None:
    """pyroute2 imports all of itself; only making or removing links needs it."""
    lab = Path(__file__).resolve().parents[2] / "inventory" / "lab.yml"
    loaded = modules_after(
        f"from overlaylab.context import open_lab\nctx = open_lab({str(lab)!r})\nctx.node('node1')"
    )
    assert "overlaylab.providers.local.netns" in loaded
    assert "pyroute2" not in loaded


def test_entering_a_namespace_that_does_not_exist_fails_and_makes_none() -> None:
    from overlaylab.providers.local import plumbing

    with pytest.raises(FileNotFoundError):
        plumbing.enter("ol-no-such-namespace-for-a-test")
    assert not (plumbing.NETNS_DIR / "ol-no-such-namespace-for-a-test").exists()


def test_status_and_downs_fault_cleanup_load_the_record_not_the_catalogue() -> None:
    """`status` and `down` read the active faults' record; every fault kind loads only
    for the fault tasks."""
    loaded = modules_after("import overlaylab.status\nimport overlaylab.faults.teardown")
    assert "overlaylab.faults.records" in loaded
    assert "overlaylab.faults.catalogue" not in loaded
    assert not any(m.startswith("overlaylab.faults.") and m.endswith("services") for m in loaded)
    whole = modules_after("from overlaylab.faults import CATALOGUE\nassert 'vxlan' in CATALOGUE")
    assert "overlaylab.faults.catalogue" in whole
