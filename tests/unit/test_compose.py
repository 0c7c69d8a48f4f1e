"""docker-compose's command line and environment, and a node's docker_env."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_specs import REPO, lab_variant, make_ctx

from overlaylab.context import LabContext
from overlaylab.up.steps.stacks import COMPOSE, compose_argv, compose_env


def test_compose_argv(ctx: LabContext) -> None:
    stack = ctx.spec.stacks[0]
    argv = compose_argv(ctx, stack, "up", "-d", "web")
    assert argv[0] == COMPOSE
    assert argv[argv.index("-p") + 1] == "demo"
    compose_file = Path(argv[argv.index("-f") + 1])
    assert compose_file.is_absolute()
    assert compose_file == REPO / "stacks" / "demo" / "docker-compose.yml"
    assert compose_file.is_file()
    assert argv[-3:] == ["up", "-d", "web"]


def test_compose_argv_does_not_depend_on_the_working_directory(
    ctx: LabContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = compose_argv(ctx, ctx.spec.stacks[0], "ps")
    monkeypatch.chdir(tmp_path)
    assert compose_argv(ctx, ctx.spec.stacks[0], "ps") == before


def test_compose_env_points_at_the_node_over_tls(
    ctx: LabContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERLAYLAB_TEST_KEEP", "kept")
    env = compose_env(ctx, "node1")
    assert env["DOCKER_HOST"] == "tcp://192.168.99.11:2376"
    assert env["DOCKER_TLS_VERIFY"] == "1"
    assert env["DOCKER_CERT_PATH"] == str(ctx.layout.client_cert_dir)
    assert env["OVERLAYLAB_TEST_KEEP"] == "kept"
    assert env == {**env, **ctx.node("node1").docker_env()}


def test_compose_env_drops_inherited_docker_compose_and_ca_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inherited = {
        "DOCKER_HOST": "tcp://evil:2375",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/root/.docker",
        "DOCKER_CONTEXT": "prod",
        "COMPOSE_FILE": "/elsewhere.yml",
        "COMPOSE_PROJECT_NAME": "other",
        "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
        "CURL_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
    }
    for key, value in inherited.items():
        monkeypatch.setenv(key, value)
    # Unix-socket form: the lab sets DOCKER_HOST only, so nothing inherited may remain.
    ctx = make_ctx(lab_variant(provider={"host_link": False}), tmp_path)
    env = compose_env(ctx, "node2")
    assert env["DOCKER_HOST"] == f"unix://{ctx.layout.docker_socket('node2')}"
    for key in inherited:
        if key != "DOCKER_HOST":
            assert key not in env, key
    assert env["PATH"]


def test_docker_env_tls_form(ctx: LabContext) -> None:
    assert ctx.node("node3").docker_env() == {
        "DOCKER_HOST": "tcp://192.168.99.13:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(ctx.layout.state_dir / "tls" / "client"),
        "DOCKER_MACHINE_NAME": "node3",
    }


def test_docker_env_unix_socket_without_host_link(tmp_path: Path) -> None:
    ctx = make_ctx(lab_variant(provider={"host_link": False}), tmp_path)
    assert ctx.provider.host_address is None
    assert ctx.node("node1").docker_env() == {
        "DOCKER_HOST": f"unix://{tmp_path / 'nodes' / 'node1' / 'docker.sock'}"
    }


def test_docker_env_unix_socket_without_tls(tmp_path: Path) -> None:
    ctx = make_ctx(lab_variant(engine={"tls": False}), tmp_path)
    assert ctx.provider.host_address is not None
    assert ctx.node("node1").docker_env() == {
        "DOCKER_HOST": f"unix://{ctx.layout.docker_socket('node1')}"
    }


def test_host_address_defaults_to_the_first_host_of_the_subnet(ctx: LabContext) -> None:
    assert str(ctx.provider.host_address) == "192.168.99.1"
