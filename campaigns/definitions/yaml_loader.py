"""The YAML reader of campaign files: YAML 1.2 scalars, and a key given twice is an error naming its line.

Only true/false are booleans (a locale ``no`` stays "no"), ``09:00`` is text and not the sexagesimal number 540,
``01234`` stays text (a ZIP code in an audience), dates stay text until a field parses them, and a key given
twice in one mapping is an error instead of silently winning.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from campaigns.definitions.problems import CampaignFileError, Problem

__all__ = ["load_yaml"]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars and duplicate keys reported (see the module docstring for why)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                identity = (key_node.tag, key_node.value)
                if identity in seen:
                    raise ConstructorError(
                        None, None, f"the key '{key_node.value}' is given twice", key_node.start_mark
                    )
                seen.add(identity)
        return super().construct_mapping(node, deep=deep)


_REPLACED_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp")}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> object:
    """The document, or CampaignFileError with one problem naming the line of a syntax error."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: builds plain data only
    except yaml.YAMLError as exc:
        raise CampaignFileError([Problem("", _yaml_message(exc))]) from None


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if isinstance(exc, ConstructorError):
        detail = problem  # our own duplicate-key message, complete as it is
    else:
        detail = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    return f"line {mark.line + 1}, column {mark.column + 1}: {detail}" if mark is not None else detail
