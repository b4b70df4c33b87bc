"""YAML files checked against strict pydantic schemas (run configs, presets, search spaces), with
every problem reported as one line that names the file and the key path.

Generic over the schema: each function takes the root model it judges against. A discriminated
union (data.*: beat or record datasets) is walked through its members; pydantic's tag for a
member sits in an error's location and is left out of the key path (tags are in parentheses).
"""

from __future__ import annotations

import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, Tag, ValidationError

from ecgfusion.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float: YAML 1.1 wants ``1.0e-4`` and yields a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None


def read_yaml_file(path: str | os.PathLike, what: str = "config") -> Any:
    """The parsed YAML of a file (configs, presets, search spaces): one ConfigError line when it
    is missing, unreadable or not YAML."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc})") from None
    return parse_yaml(text, str(path))


def require_mapping(raw: Any, source: str, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        raise ConfigError(f"{source}: {what} must be a YAML mapping (key: value), not {kind}")
    return raw


def set_key(raw: dict[str, Any], key: str, value: Any, source: str) -> None:
    """``raw[a][b][c] = value`` for the key path ``a.b.c``, creating missing sections; a path
    through a plain value is a ConfigError naming ``source``."""
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"{source}: {where} is a value, it has no sub-keys")
        node = child
    node[parts[-1]] = value


# --------------------------------------------------------------------------- the schema's keys


def _members(annotation: Any, tag: str | None = None) -> list[tuple[type[BaseModel], str | None]]:
    """(model, its union tag) for each model a field's annotation holds."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, tag)]
    if typing.get_origin(annotation) is Annotated:
        inner, *extras = typing.get_args(annotation)
        tags = [e.tag for e in extras if isinstance(e, Tag)]
        return _members(inner, tags[0] if tags else tag)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return []


def fields_of(models: list[type[BaseModel]]) -> dict[str, Any]:
    """Every field of these models (union members share some), in declaration order."""
    out: dict[str, Any] = {}
    for model in models:
        for name, field in model.model_fields.items():
            out.setdefault(name, field)
    return out


def format_loc(loc: tuple[Any, ...]) -> str:
    # pydantic puts the union member or tag into loc (e.g. 'list[str]'); keep the key path only.
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif isinstance(item, str) and not re.search(r"[\[\]()]", item):
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (sub)model that holds the unknown key at ``loc``; a union member's tag
    in ``loc`` picks that member."""
    current: list[tuple[type[BaseModel], str | None]] = [(root, None)]
    dict_key = False  # the item after a dict field is one of its keys (search-space params)
    for item in loc[:-1]:
        if dict_key:
            dict_key = False
            continue
        if not isinstance(item, str):
            return []
        tagged = [(m, t) for m, t in current if t == item]
        if tagged:
            current = tagged
            continue
        fields = [m.model_fields[item] for m, _ in current if item in m.model_fields]
        annotations = [f.annotation for f in fields]
        dicts = [a for a in annotations if typing.get_origin(a) is dict]
        if dicts:
            annotations, dict_key = [typing.get_args(a)[1] for a in dicts], True
        current = [member for a in annotations for member in _members(a)]
    return list(fields_of([m for m, _ in current]))


def validation_message(exc: ValidationError, source: str, root: type[BaseModel]) -> str:
    """pydantic's first error as one line: source, key path, what is wrong (and how many more)."""
    errors = exc.errors()
    first = errors[0]
    path = format_loc(first["loc"])
    if first["type"] == "extra_forbidden":
        msg = f"unknown key; allowed keys here: {', '.join(allowed_keys(root, first['loc']))}"
    elif first["type"] == "missing":
        msg = "required key is missing"
    else:
        msg = first["msg"].removeprefix("Value error, ")
        if "input" in first and not isinstance(first["input"], dict | list):
            msg += f" (got {first['input']!r})"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{source}: {path}: {msg}{more}"


def check_key_path(root: type[BaseModel], parts: list[str], source: str) -> None:
    """Refuse a key path the schema does not have (free-form dicts like model.params aside); a
    key of any union member passes (validation then judges it for the member chosen)."""
    models = [root]
    for depth, part in enumerate(parts):
        fields = fields_of(models)
        where = ".".join(parts[: depth + 1])
        if part not in fields:
            raise ConfigError(
                f"{source}: unknown key {where}; allowed keys here: {', '.join(fields)}"
            )
        annotation = fields[part].annotation
        subs = [m for m, _ in _members(annotation)]
        if not subs:
            is_dict = typing.get_origin(annotation) is dict or annotation is dict
            if depth < len(parts) - 1 and not is_dict:
                raise ConfigError(f"{source}: {where} is a value, it has no sub-keys")
            return
        models = subs
