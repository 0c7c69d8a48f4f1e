"""The top-level Vagrantfile, checked by the real `vagrant validate` on rendered machines.

VirtualBox is not installed here and vagrant-libvirt is not packaged with Debian's
vagrant, so Vagrant cannot validate those two provider blocks (`--ignore-provider`
checks everything else). The docker block is validated for real: Vagrant calls the
docker provider usable when `docker version` exits 0, and nothing else of Docker is
touched by `validate`, so a stand-in CLI answering that one question lets Vagrant run
the docker provider's own configuration checks (image, create_args, ...).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from lab_specs import LAB_YML, REPO, lab_data

from overlaylab import vagrant_machines as vagrant
from overlaylab.spec import load_spec_file

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        shutil.which("vagrant") is None,
        reason="vagrant is not installed (apt-get install --no-install-recommends vagrant)",
    ),
]
VALIDATED = "Vagrantfile validated successfully."


def machines_for(tmp_path: Path, vm_provider: str) -> Path:
    """machines.json rendered from the default lab on the vagrant provider."""
    data = lab_data()
    data["provider"] = {"type": "vagrant", "vm_provider": vm_provider}
    data["stacks"] = []
    spec = tmp_path / "inventory" / f"{vm_provider}.yml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(yaml.safe_dump(data))
    machines = tmp_path / f"{vm_provider}.json"
    machines.write_text(vagrant.machines_json(load_spec_file(spec)))
    return machines


def docker_cli_stand_in(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    docker = folder / "docker"
    docker.write_text(
        '#!/bin/sh\n[ "$1" = version ] && echo "Client: stand-in" && exit 0\nexit 1\n'
    )
    docker.chmod(0o755)
    return folder


def vagrant_validate(
    tmp_path: Path, machines: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`vagrant validate` on the project's Vagrantfile; Vagrant's own files in tmp_path."""
    return subprocess.run(
        ["vagrant", "validate", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={
            **os.environ,
            "VAGRANT_CWD": str(REPO),  # the Vagrantfile under test
            "VAGRANT_DOTFILE_PATH": str(tmp_path / ".vagrant"),  # no .vagrant/ in the repo
            "VAGRANT_HOME": str(tmp_path / "vagrant.d"),
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "OVERLAYLAB_MACHINES": str(machines),
            **env,
        },
    )


def test_docker_provider_blocks_pass_vagrants_own_checks(tmp_path: Path) -> None:
    machines = machines_for(tmp_path, "docker")
    path = f"{docker_cli_stand_in(tmp_path)}:{os.environ['PATH']}"
    result = vagrant_validate(tmp_path, machines, PATH=path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert VALIDATED in result.stdout


def test_a_broken_docker_block_fails_validation(tmp_path: Path) -> None:
    """The check above can fail: Vagrant does look at what the machines file says."""
    machines = machines_for(tmp_path, "docker")
    data = json.loads(machines.read_text())
    data["providers"]["docker"]["create_args"] = " ".join(vagrant.DOCKER_CREATE_ARGS)
    machines.write_text(json.dumps(data))
    path = f"{docker_cli_stand_in(tmp_path)}:{os.environ['PATH']}"
    result = vagrant_validate(tmp_path, machines, PATH=path)
    assert result.returncode != 0
    assert '"create_args" must be an array' in result.stdout + result.stderr


@pytest.mark.parametrize("vm_provider", ["virtualbox", "libvirt", "docker"])
def test_every_provider_renders_a_valid_vagrantfile(tmp_path: Path, vm_provider: str) -> None:
    machines = machines_for(tmp_path, vm_provider)
    # vagrant-libvirt is not installed: Vagrant refuses an unknown default provider
    # even with --ignore-provider, so name one it has (the file's own default yields).
    env = {"VAGRANT_DEFAULT_PROVIDER": "virtualbox"} if vm_provider == "libvirt" else {}
    result = vagrant_validate(tmp_path, machines, "--ignore-provider", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert VALIDATED in result.stdout
    assert result.stdout.count("Ignoring provider config") == 4  # kv, node1..node3


def test_a_missing_machines_file_is_a_clear_error(tmp_path: Path) -> None:
    result = vagrant_validate(tmp_path, tmp_path / "none.json")
    assert result.returncode != 0
    assert "none.json does not exist" in result.stderr
    assert "./lab render -i SPEC" in result.stderr


def test_machines_file_of_the_default_lab_names_every_node() -> None:
    data = json.loads(vagrant.machines_json(load_spec_file(LAB_YML)))
    assert [m["name"] for m in data["machines"]] == ["kv", "node1", "node2", "node3"]


ARTICLE = REPO / "inventory" / "article-2015.yml"


def test_the_articles_render_validates_with_its_own_provider(tmp_path: Path) -> None:
    """`driver: virtualbox` renders VirtualBox machines: Vagrant validates them as
    rendered, with no default provider forced from outside (libvirt would fail:
    "The provider 'libvirt' could not be found")."""
    machines = tmp_path / "machines.json"
    machines.write_text(vagrant.machines_json(load_spec_file(ARTICLE)))
    assert json.loads(machines.read_text())["default_provider"] == "virtualbox"
    env = {k: v for k, v in os.environ.items() if k != "VAGRANT_DEFAULT_PROVIDER"}
    result = subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={
            **env,
            "VAGRANT_CWD": str(REPO),
            "VAGRANT_DOTFILE_PATH": str(tmp_path / ".vagrant"),
            "VAGRANT_HOME": str(tmp_path / "vagrant.d"),
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "OVERLAYLAB_MACHINES": str(machines),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert VALIDATED in result.stdout
