"""Load a cluster spec: YAML -> strict models -> defaults -> semantic checks.

Every problem is reported at once, each as `line N, yaml.path: what is wrong; what would
be valid`, so one edit-run cycle fixes them all. Lines come from the YAML node tree
(`yaml.compose` keeps marks), not from re-searching the text.
"""

from __future__ import annotations

import ipaddress
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from overlaylab.errors import SpecError
from overlaylab.spec.compose import NotARegularFile, read_regular_bytes
from overlaylab.spec.models import NAME_PATTERN, ClusterSpec, LocalProviderSpec
from overlaylab.spec.paths import spec_dir_of
from overlaylab.spec.semantic import Loc, format_problem, semantic_problems, suggest
from overlaylab.spec.warnings import SpecWarning, spec_warnings

Problem = tuple[int, str]

# Addresses handed out to nodes without one: .10, .11, ... (the 2015 guides' habit of
# keeping the low addresses for the host and infrastructure).
FIRST_NODE_HOST = 10

_MERGE_TAG = "tag:yaml.org,2002:merge"
_QUOTED = re.compile(r"'([^']*)'")
# Plain-English versions of the patterns a user is most likely to trip over.
_PATTERN_HINTS: dict[str, str] = {
    NAME_PATTERN: "a lowercase letter, then up to 11 lowercase letters, digits or '-'",
    r"^\d+\.\d+$": 'MAJOR.MINOR in quotes, e.g. "20.10"',
}


# --- public API -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec with what loading it from a file taught: where its relative paths
    point and its warnings, located by line."""

    spec: ClusterSpec
    path: Path
    spec_dir: Path
    warnings: list[SpecWarning]


def load_spec(path: str | Path) -> ClusterSpec:
    """Read, validate and complete the spec at `path`; raise SpecError with every problem.

    Relative stack and image paths resolve against the folder that holds the file.
    """
    return load_spec_file(path).spec


def load_spec_file(path: str | Path) -> LoadedSpec:
    """`load_spec`, keeping the spec's folder and its warnings (with their lines)."""
    path = Path(path)
    spec_dir = spec_dir_of(path)
    spec, document = _parse(_read_text(path), str(path), spec_dir)
    return LoadedSpec(spec, path, spec_dir, spec_warnings(spec, document.locate))


def parse_spec(text: str, *, source: str, spec_dir: Path) -> ClusterSpec:
    """Like `load_spec` for YAML text; `source` names it in messages, relative paths
    resolve against `spec_dir`."""
    return _parse(text, source, spec_dir)[0]


def _parse(text: str, source: str, spec_dir: Path) -> tuple[ClusterSpec, YamlDocument]:
    document = _compose(text, source)
    problems = _duplicate_keys(document.root, ())
    spec: ClusterSpec | None = None
    try:
        spec = ClusterSpec.model_validate(document.data, by_name=False)
    except ValidationError as exc:
        problems += [_schema_problem(error, document) for error in exc.errors()]
    if problems or spec is None:
        # Semantic checks would only repeat or guess around schema problems.
        raise SpecError(source, _in_file_order(problems))
    apply_defaults(spec)
    problems = semantic_problems(spec, spec_dir, document.locate)
    if problems:
        raise SpecError(source, _in_file_order(problems))
    return spec, document


def apply_defaults(spec: ClusterSpec) -> None:
    """Fill in what depends on other values: the host's and the nodes' lab addresses."""
    subnet = spec.lab.subnet
    provider = spec.provider
    taken = {n.address for n in spec.nodes if n.address is not None}
    if isinstance(provider, LocalProviderSpec):
        if provider.host_address is None:
            provider.host_address = _first_host(subnet)
        if provider.host_link:
            taken.add(provider.host_address)
    candidate = subnet.network_address + FIRST_NODE_HOST
    for node in spec.nodes:
        if node.address is None:
            while candidate in taken:
                candidate += 1
            node.address = candidate
            taken.add(candidate)


def _first_host(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return subnet.network_address + (1 if subnet.prefixlen < 31 else 0)


def _in_file_order(problems: list[Problem]) -> list[str]:
    return [text for _, text in sorted(problems, key=lambda item: item[0])]


# --- reading and composing the YAML ---------------------------------------------------


@dataclass(frozen=True)
class YamlDocument:
    """The composed node tree (for line numbers) and the plain data it constructs to."""

    root: yaml.MappingNode
    data: dict[Any, Any]

    def walk(self, loc: Loc) -> tuple[yaml.Node | None, int, bool]:
        """(node at loc or None, its line or the nearest ancestor's, whether found)."""
        node: yaml.Node = self.root
        line = _line(node)
        for element in loc:
            found = _child(node, element)
            if found is None:
                return None, line, False
            key, node = found
            # A nested mapping starts on the line below its key; the key names it best.
            line = _line(node) if key is None or isinstance(node, yaml.ScalarNode) else _line(key)
        return node, line, True

    def locate(self, loc: Loc) -> tuple[int, bool]:
        _, line, present = self.walk(loc)
        return line, present


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _child(node: yaml.Node, element: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(element, int):
        return (None, node.value[element]) if 0 <= element < len(node.value) else None
    if not isinstance(node, yaml.MappingNode):
        return None
    found = None
    for key, value in node.value:  # the last duplicate wins, as in the constructed data
        if key.tag == _MERGE_TAG:
            for merged in value.value if isinstance(value, yaml.SequenceNode) else [value]:
                found = _child(merged, element) or found
        elif str(key.value) == str(element):
            found = (key, value)
    return found


# A spec of a hundred nodes is tens of KiB; past this it is not a spec.
MAX_SPEC_BYTES = 4 * 1024 * 1024


def _read_text(path: Path) -> str:
    try:
        raw = read_regular_bytes(path, MAX_SPEC_BYTES)
    except NotARegularFile as exc:
        raise SpecError(str(path), [f"{exc}; pass the spec's YAML file"]) from None
    except FileNotFoundError:
        raise SpecError(
            str(path), ["file not found; pass the path of a cluster spec, e.g. inventory/lab.yml"]
        ) from None
    except IsADirectoryError:
        raise SpecError(str(path), ["is a directory; pass the spec's YAML file"]) from None
    except OSError as exc:
        raise SpecError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = f"line {line}: not UTF-8 text; save the file as UTF-8"
        raise SpecError(str(path), [problem]) from None


def _compose(text: str, source: str) -> YamlDocument:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        raise SpecError(source, [_yaml_problem(exc)]) from None
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"line 1: YAML error: {exc}"]) from None
    finally:
        loader.dispose()
    expected = "expected a mapping with apiVersion: overlaylab/v1, kind: Cluster, name: and nodes:"
    if root is None:
        raise SpecError(source, [f"line 1: the file is empty; {expected}"])
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise SpecError(source, [f"line {_line(root)}: the top level is {_kind(root)}; {expected}"])
    return YamlDocument(root, data)


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "line 1"
    what = exc.problem or "invalid YAML"
    if exc.context and exc.context_mark:
        what += f" ({exc.context} on line {exc.context_mark.line + 1})"
    hint = "indent with spaces, not tabs" if "'\\t'" in what else "check indentation and quoting"
    return f"{where}: YAML syntax error: {what}; {hint}"


def _duplicate_keys(node: yaml.Node, loc: Loc) -> list[Problem]:
    """PyYAML silently keeps the last of two equal keys; a strict spec says so."""
    problems: list[Problem] = []
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*loc, index))
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if key.tag != _MERGE_TAG and name in seen:
                message = (
                    f"duplicate key (also on line {seen[name]}); YAML keeps only the last one, "
                    "so remove one of them"
                )
                problems.append((_line(key), format_problem(_line(key), (*loc, name), message)))
            seen[name] = _line(key)
            problems += _duplicate_keys(value, (*loc, name))
    return problems


# --- pydantic errors -> problem lines -------------------------------------------------


def _schema_problem(error: ErrorDetails, document: YamlDocument) -> Problem:
    loc, holder = _yaml_loc(tuple(error["loc"]))
    kind = error["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, "type")  # the discriminator key is what the user has to fix
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc = loc[:-1]
    node, line, _ = document.walk(loc)
    if is_key:  # only non-string keys fail, and YAML gave them their type by their look
        message = f'key {loc[-1]} must be a string; put it in quotes: "{loc[-1]}"'
    else:
        message = _message(error, node, holder, loc)
    return line, format_problem(line, loc, message)


def _message(
    error: ErrorDetails, node: yaml.Node | None, holder: type[BaseModel] | None, loc: Loc
) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    got = f"got {_describe(node)}; " if node is not None else ""
    key = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        valid = _valid_keys(holder)
        return f"unknown key{suggest(key, valid) or ';'} valid keys: {', '.join(valid)}"
    if kind == "missing":
        return f"required key is missing{_missing_hint(holder, key)}"
    if kind == "literal_error":
        return got + _one_of(_QUOTED.findall(ctx["expected"]), node)
    if kind == "union_tag_invalid":
        return got + _one_of(_QUOTED.findall(ctx["expected_tags"]), node)
    if kind == "union_tag_not_found":
        return "required key is missing; " + _one_of(_provider_types(), None)
    if kind == "string_pattern_mismatch":
        pattern = ctx["pattern"]
        hint = _PATTERN_HINTS.get(pattern)
        return got + f"must match {pattern}" + (f" ({hint})" if hint else "")
    if kind == "value_error":
        return got + str(ctx["error"])
    if kind == "string_type":
        return got + "must be a string" + _quote_hint(node)
    if kind == "bool_parsing":
        return got + "must be true or false"
    if kind == "ip_v4_address":
        return got + "must be an IPv4 address, e.g. 192.168.99.11"
    if kind == "ip_v4_network":
        return got + "must be an IPv4 network with the host bits zero, e.g. 192.168.99.0/24"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if loc == ("provider",):
            return got + _provider_hint(node)
        return got + "must be a mapping (key: value)"
    if kind == "list_type":
        return got + "must be a list (`- item` lines or [a, b])"
    if kind == "too_short":
        return got + f"must have at least {ctx['min_length']} item(s)"
    return got + error["msg"].replace("Input should be", "must be")


def _provider_hint(node: yaml.Node | None) -> str:
    types_ = _provider_types()
    value = node.value if isinstance(node, yaml.ScalarNode) else None
    if value in types_:
        return f"must be a mapping; write provider: {{type: {value}}}"
    return f"must be a mapping with type: one of {', '.join(types_)}"


def _one_of(values: list[str], node: yaml.Node | None) -> str:
    if len(values) == 1:
        return f"must be {values[0]}"
    value = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    return f"must be one of {', '.join(values)}{suggest(value, values)}"


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping" if node.value else "an empty mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list" if node.value else "an empty list"
    if node.tag.endswith(":null"):
        return "no value"
    if node.tag.endswith(":str"):
        return repr(node.value)
    return str(node.value)  # numbers and booleans as written


def _quote_hint(node: yaml.Node | None) -> str:
    # `version: 20.10` is the float 20.1 to YAML; quoting keeps the text as written.
    if isinstance(node, yaml.ScalarNode) and not node.tag.endswith((":str", ":null")):
        return f'; put it in quotes: "{node.value}"'
    return ""


def _missing_hint(holder: type[BaseModel] | None, key: str) -> str:
    field = _field(holder, key) if holder is not None else None
    if field is None:
        return ""
    values = _literal_values(field.annotation)
    if len(values) == 1:
        return f"; add {key}: {values[0]}"
    if field.description:
        return f"; add {key}: ({field.description})"
    return f"; add {key}:"


# --- walking the model types along a pydantic loc -------------------------------------


def _yaml_loc(loc: Loc) -> tuple[Loc, type[BaseModel] | None]:
    """The YAML path for a pydantic loc (union tags dropped) and the model that holds
    its last key (for listing valid keys)."""
    out: list[str | int] = []
    holder: type[BaseModel] | None = None
    tp: Any = ClusterSpec
    for element in loc:
        tp = _strip(tp)
        tags = _union_tags(tp)
        if isinstance(element, str) and element in tags:
            tp = tags[element]  # pydantic names the union member; YAML has no such level
            continue
        holder = tp if _is_model(tp) else None
        # pydantic gives a mapping key such as `1:` as the int 1; the path wants `.1`.
        out.append(str(element) if typing.get_origin(tp) is dict else element)
        tp = _child_type(tp, element)
    return tuple(out), holder


def _strip(tp: Any) -> Any:
    """Drop Annotated metadata and None from Optional."""
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _strip(members[0])
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _union_tags(tp: Any) -> dict[str, type[BaseModel]]:
    if typing.get_origin(tp) not in (Union, types.UnionType):
        return {}
    tags: dict[str, type[BaseModel]] = {}
    for member in typing.get_args(tp):
        if _is_model(member) and "type" in member.model_fields:
            for value in _literal_values(member.model_fields["type"].annotation):
                tags[value] = member
    return tags


def _provider_types() -> list[str]:
    return list(_union_tags(_strip(ClusterSpec.model_fields["provider"].annotation)))


def _child_type(tp: Any, element: str | int) -> Any:
    if _is_model(tp):
        field = _field(tp, str(element))
        return field.annotation if field is not None else None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and args:
        return args[0]
    if origin is dict and args:
        return args[0] if element == "[key]" else args[1]
    return None


def _field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (field.alias, name):
            return field
    return None


def _valid_keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _literal_values(tp: Any) -> list[str]:
    tp = _strip(tp)
    return [str(v) for v in typing.get_args(tp)] if typing.get_origin(tp) is Literal else []


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"a single value ({_describe(node)})"
