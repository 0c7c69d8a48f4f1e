"""Warnings: valid specs that will not work as expected, each with its path, line and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from lab_specs import LAB_YML, REPO

from overlaylab.context import context_for
from overlaylab.errors import SpecError
from overlaylab.progress import Progress
from overlaylab.spec import load_spec, load_spec_file
from overlaylab.spec.warnings import overlay_link_mtu, spec_warnings

# Lines 1-3 of every inline spec.
HEAD = "apiVersion: overlaylab/v1\nkind: Cluster\nname: t\n"
NODES = "nodes:\n  - {name: kv, roles: [kv]}\n  - {name: a}\n"
OPTION = "com.docker.network.driver.mtu"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yml"
    path.write_text(HEAD + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def warnings_of(tmp_path: Path, body: str) -> list[str]:
    return [str(w) for w in load_spec_file(write(tmp_path, body)).warnings]


def test_default_overlay_on_a_1450_lab_warns_with_the_exact_fix(tmp_path: Path) -> None:
    body = "lab: {mtu: 1450}\n" + NODES + "networks:\n  - name: front\n    subnet: 10.0.9.0/24\n"
    [warning] = load_spec_file(write(tmp_path, body)).warnings
    assert warning.loc == ("networks", 0)
    assert warning.path == "networks[0]"
    assert warning.line == 9
    assert "overlay front will drop full-size packets between nodes" in warning.message
    assert "containers get 1450 bytes, 1500 with the VXLAN headers" in warning.message
    assert warning.message.endswith("but lab.mtu is 1450")
    # libnetwork subtracts the 50 VXLAN bytes from the option itself: the option is
    # the links' MTU, so the lab's own MTU is the value that fits.
    assert warning.fix == (
        f'set `options: {{{OPTION}: "1450"}}` on network front (the driver takes it as '
        "the links' MTU and gives containers 1400), or raise lab.mtu to 1500 if the links "
        "carry that much"
    )
    assert str(warning).startswith("line 9, networks[0]: overlay front will drop")
    assert "; fix: set `options: " in str(warning)


@pytest.mark.parametrize(
    "body",
    [
        # The lab's links carry what the default overlay puts on them.
        NODES + "networks: [{name: front}]\n",
        # Jumbo frames: more room than the overlay uses.
        "lab: {mtu: 9000}\n" + NODES + "networks: [{name: front}]\n",
        # Sized for the lab's links, as the warning says to do.
        "lab: {mtu: 1450}\n"
        + NODES
        + f'networks: [{{name: front, options: {{{OPTION}: "1450"}}}}]\n',
        # Smaller than needed still fits (the first guess, 1400, works).
        "lab: {mtu: 1450}\n"
        + NODES
        + f'networks: [{{name: front, options: {{{OPTION}: "1400"}}}}]\n',
        # A bridge network never leaves its node: no VXLAN, no lab link.
        "lab: {mtu: 1450}\n" + NODES + "networks: [{name: local, driver: bridge}]\n",
        # No overlay at all.
        "lab: {mtu: 1400}\n" + NODES,
    ],
    ids=["lab-1500", "jumbo", "sized", "smaller", "bridge", "no-networks"],
)
def test_no_warning_when_the_overlay_fits(tmp_path: Path, body: str) -> None:
    assert warnings_of(tmp_path, body) == []


def test_explicit_option_too_large_points_at_the_option(tmp_path: Path) -> None:
    body = (
        "lab: {mtu: 1450}\n"
        + NODES
        + "networks:\n"
        + "  - name: dn\n"
        + "  - name: back\n"
        + "    options:\n"
        + "      encrypted: ''\n"
        + f'      {OPTION}: "1500"\n'
    )
    found = load_spec_file(write(tmp_path, body)).warnings
    assert [(w.path, w.line) for w in found] == [
        ("networks[0]", 9),
        (f"networks[1].options['{OPTION}']", 13),
    ]
    back = found[1]
    assert f'{OPTION}: "1500" tells the driver the links carry 1500 bytes' in back.message
    # Other options are kept: the fix edits the one key, not the whole mapping.
    assert back.fix.startswith(f'set `{OPTION}: "1450"` in the options of network back')
    assert "gives containers 1400 minus the IPsec overhead" in back.fix


def test_warnings_without_a_file_have_no_line(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "lab: {mtu: 1450}\n" + NODES + "networks: [{name: dn}]\n"))
    [warning] = spec_warnings(spec)
    assert warning.line is None
    assert str(warning).startswith("networks[0]: overlay dn will drop")


def test_link_mtu_of_an_overlay() -> None:
    spec = load_spec(LAB_YML)
    network = spec.networks[0]
    assert overlay_link_mtu(network) == 1500
    assert overlay_link_mtu(network.model_copy(update={"options": {OPTION: "1400"}})) == 1400
    # "0" is the driver's own spelling of "the default".
    assert overlay_link_mtu(network.model_copy(update={"options": {OPTION: "0"}})) == 1500


def test_mtu_option_that_is_not_a_number_is_a_problem(tmp_path: Path) -> None:
    body = NODES + f'networks: [{{name: dn, options: {{{OPTION}: "big"}}}}]\n'
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, body))
    assert info.value.problems == [
        f"line 7, networks[0].options['{OPTION}']: 'big' is not a whole number of bytes; "
        'write the MTU in quotes, e.g. "1450"'
    ]


def test_the_lab_context_carries_the_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, "lab: {mtu: 1450}\n" + NODES + "networks: [{name: dn}]\n")
    progress = Progress(quiet=True)
    ctx = context_for(load_spec(path), path, state_dir=tmp_path / "state", progress=progress)
    assert [w.path for w in ctx.warnings] == ["networks[0]"]
    assert not (tmp_path / "state").exists()


def test_shipped_specs_have_no_warnings() -> None:
    for path in [*REPO.glob("inventory/*.yml"), *REPO.glob("tests/testdata/labs/*.yml")]:
        assert load_spec_file(path).warnings == [], path
