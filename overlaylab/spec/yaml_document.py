"""A spec's YAML read and composed with its marks: the plain data pydantic validates, and
the node tree that gives every YAML path its line (`yaml.compose` keeps marks, so lines
are never re-searched in the text). Reading refuses what is not a regular file, or is
too large; duplicate keys and YAML syntax errors become problem lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from overlaylab.errors import SpecError
from overlaylab.spec.compose import NotARegularFile, read_regular_bytes
from overlaylab.spec.semantic import Loc, format_problem

Problem = tuple[int, str]


_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlDocument:
    """The composed node tree (for line numbers) and the plain data it constructs to."""

    root: yaml.MappingNode
    data: dict[Any, Any]

    def walk(self, loc: Loc) -> tuple[yaml.Node | None, int, bool]:
        """(node at loc or None, its line or the nearest ancestor's, whether found)."""
        node: yaml.Node = self.root
        line = line_of(node)
        for element in loc:
            found = child_of(node, element)
            if found is None:
                return None, line, False
            key, node = found
            # A nested mapping starts on the line below its key; the key names it best.
            line = (
                line_of(node) if key is None or isinstance(node, yaml.ScalarNode) else line_of(key)
            )
        return node, line, True

    def locate(self, loc: Loc) -> tuple[int, bool]:
        _, line, present = self.walk(loc)
        return line, present


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def child_of(node: yaml.Node, element: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(element, int):
        return (None, node.value[element]) if 0 <= element < len(node.value) else None
    if not isinstance(node, yaml.MappingNode):
        return None
    found = None
    for key, value in node.value:  # the last duplicate wins, as in the constructed data
        if key.tag == _MERGE_TAG:
            for merged in value.value if isinstance(value, yaml.SequenceNode) else [value]:
                found = child_of(merged, element) or found
        elif str(key.value) == str(element):
            found = (key, value)
    return found


# A spec of a hundred nodes is tens of KiB; past this it is not a spec.
MAX_SPEC_BYTES = 4 * 1024 * 1024


def read_spec_text(path: Path) -> str:
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


def compose_document(text: str, source: str) -> YamlDocument:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        raise SpecError(source, [yaml_problem(exc)]) from None
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"line 1: YAML error: {exc}"]) from None
    finally:
        loader.dispose()
    expected = "expected a mapping with apiVersion: overlaylab/v1, kind: Cluster, name: and nodes:"
    if root is None:
        raise SpecError(source, [f"line 1: the file is empty; {expected}"])
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise SpecError(
            source, [f"line {line_of(root)}: the top level is {kind_of(root)}; {expected}"]
        )
    return YamlDocument(root, data)


def yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "line 1"
    what = exc.problem or "invalid YAML"
    if exc.context and exc.context_mark:
        what += f" ({exc.context} on line {exc.context_mark.line + 1})"
    hint = "indent with spaces, not tabs" if "'\\t'" in what else "check indentation and quoting"
    return f"{where}: YAML syntax error: {what}; {hint}"


def duplicate_keys(node: yaml.Node, loc: Loc) -> list[Problem]:
    """PyYAML silently keeps the last of two equal keys; a strict spec says so."""
    problems: list[Problem] = []
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += duplicate_keys(item, (*loc, index))
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if key.tag != _MERGE_TAG and name in seen:
                message = (
                    f"duplicate key (also on line {seen[name]}); YAML keeps only the last one, "
                    "so remove one of them"
                )
                problems.append((line_of(key), format_problem(line_of(key), (*loc, name), message)))
            seen[name] = line_of(key)
            problems += duplicate_keys(value, (*loc, name))
    return problems


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"a single value ({describe_node(node)})"


def describe_node(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping" if node.value else "an empty mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list" if node.value else "an empty list"
    if node.tag.endswith(":null"):
        return "no value"
    if node.tag.endswith(":str"):
        return repr(node.value)
    return str(node.value)  # numbers and booleans as written
