"""pydantic's errors as problem lines: `line N, yaml.path: what is wrong; what would be
valid`, in the YAML's own spelling, with the values, keys or provider types that would
fit (found by walking the model types along the error's path)."""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from overlaylab.spec.models import NAME_PATTERN, ClusterSpec
from overlaylab.spec.semantic import Loc, format_problem, suggest
from overlaylab.spec.yaml_document import Problem, YamlDocument, describe_node

_QUOTED = re.compile(r"'([^']*)'")


# Plain-English versions of the patterns a user is most likely to trip over.
_PATTERN_HINTS: dict[str, str] = {
    NAME_PATTERN: "a lowercase letter, then up to 11 lowercase letters, digits or '-'",
    r"^\d+\.\d+$": 'MAJOR.MINOR in quotes, e.g. "20.10"',
}


def schema_problem(error: ErrorDetails, document: YamlDocument) -> Problem:
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
    got = f"got {describe_node(node)}; " if node is not None else ""
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
