"""How raw tool arguments are read before they are validated, for every tool alike.

Agents echo the names they were given, and the names they are given come in two styles:
responses are camelCase (`claimToken`), some parameters snake_case (`claim_token`). So every
parameter, at any depth, is accepted under both spellings; the schema publishes one (the
field's name, unchanged so existing clients keep working) and the other is an alias. Some
clients send a list or object argument as JSON text (Claude Desktop does); where a parameter
takes a list or an object and never text, such text is read as the JSON it holds. A name
that is neither spelling of any parameter is refused by validation; `unknown_parameter` then
says which known name is closest.
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.alias_generators import to_camel, to_snake

from cachebash.domain.errors import InvalidInput

T = TypeVar("T")


def other_spelling(name: str) -> str:
    """`claim_token` <-> `claimToken`; a name with one spelling (`type`) is its own."""
    if "_" in name:
        camel = to_camel(name)
        return camel[:1].lower() + camel[1:]
    return to_snake(name)


@cache
def spellings(model: type[BaseModel]) -> dict[str, str]:
    """Every accepted name of `model`'s parameters -> the field it sets."""
    names = {other_spelling(field): field for field in model.model_fields}
    names.update({field: field for field in model.model_fields})
    return names


def aliases(model: type[BaseModel]) -> dict[str, str]:
    """Field -> its other spelling, for the fields that have one (what the README shows)."""
    return {field: other for field in model.model_fields if (other := other_spelling(field)) != field}


def normalise(model: type[BaseModel], arguments: Any, at: str = "") -> Any:
    """`arguments` with every name in its schema spelling and JSON text decoded where a list or
    object is wanted, nested models included. Anything not a JSON object is returned as it is,
    for validation to refuse in its own words."""
    if not isinstance(arguments, Mapping):
        return arguments
    names = spellings(model)
    result: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in arguments.items():
        field = names.get(key, key) if isinstance(key, str) else key
        if field in given:
            raise InvalidInput(f"{at}{key}: '{given[field]}' and '{key}' are two spellings of the same parameter; "
                               "pass it once", field=f"{at}{key}")
        given[field] = key
        info = model.model_fields.get(field) if isinstance(field, str) else None
        result[field] = value if info is None else _read(info.annotation, value, f"{at}{field}.")
    return result


def _read(annotation: Any, value: Any, at: str) -> Any:
    """One value, by what its annotation takes."""
    kinds = _kinds(annotation)
    if isinstance(value, str) and "text" not in kinds and kinds & {"list", "object"}:
        value = _json_text(value, kinds)
    models = [kind for kind in kinds if isinstance(kind, type)]
    if isinstance(value, Mapping) and len(models) == 1:
        return normalise(models[0], value, at)
    item = _item_annotation(annotation)
    if item is not None and isinstance(value, list):
        return [_read(item, element, f"{at}{index}.") for index, element in enumerate(value)]
    return value


def _json_text(value: str, kinds: frozenset[Any]) -> Any:
    try:
        decoded = json.loads(value, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return value  # not JSON: validation says what the parameter takes
    wanted = (isinstance(decoded, list) and "list" in kinds) or (isinstance(decoded, dict) and "object" in kinds)
    return decoded if wanted else value


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def _memo(fn: Callable[[Any], T]) -> Callable[[Any], T]:
    """Remember what `fn` says of each annotation: the same few are read on every call of every
    tool, and working them out again was most of what reading the arguments cost. An
    annotation that cannot be hashed (metadata that is not) is worked out each time."""
    found: dict[Any, T] = {}

    def memoised(annotation: Any) -> T:
        try:
            return found[annotation]
        except KeyError:
            found[annotation] = value = fn(annotation)
            return value
        except TypeError:
            return fn(annotation)

    return memoised


@_memo
def _kinds(annotation: Any) -> frozenset[Any]:
    """What an annotation takes: 'text', 'list', 'object' and the model classes among them."""
    return frozenset(_find_kinds(annotation))


def _find_kinds(annotation: Any) -> set[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return set(_kinds(get_args(annotation)[0]))
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds(arg) for arg in get_args(annotation)))
    if origin is Literal:
        return {"text"} if any(isinstance(arg, str) for arg in get_args(annotation)) else set()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"object", annotation}
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
        return {"list"}
    if origin is dict or annotation is dict:
        return {"object"}
    if annotation is str or (isinstance(annotation, type) and issubclass(annotation, str)):
        return {"text"}
    return set()


@_memo
def _item_annotation(annotation: Any) -> Any:
    """The element type of a list annotation (through Optional and Annotated), else None."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _item_annotation(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        items = [item for arg in get_args(annotation) if (item := _item_annotation(arg)) is not None]
        return items[0] if len(items) == 1 else None
    if origin is list and get_args(annotation):
        return get_args(annotation)[0]
    return None


def model_at(model: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose fields are at `path` (a validation error's location without its last
    part), or None when the path does not lead to one."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part) if isinstance(current, type) and issubclass(current, BaseModel) else None
        if info is None:
            return None
        annotation = _item_annotation(info.annotation) or info.annotation
        found = [kind for kind in _kinds(annotation) if isinstance(kind, type)]
        if len(found) != 1:
            return None
        current = found[0]
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def closest(name: str, known: Mapping[str, str]) -> str | None:
    """What `name` most likely meant among `known` (each accepted spelling -> the name to
    suggest), compared without case, '_' and '-'."""
    def squash(text: str) -> str:
        return text.lower().replace("_", "").replace("-", "")

    squashed = {squash(spelling): meant for spelling, meant in known.items()}
    match = difflib.get_close_matches(squash(name), list(squashed), n=1, cutoff=0.6)
    return squashed[match[0]] if match else None


def unknown_parameter(model: type[BaseModel] | None, name: str) -> tuple[str, str | None]:
    """What to tell an agent that passed `name`, and the name it probably meant."""
    if model is None:
        return "unknown parameter", None
    suggestion = closest(name, spellings(model))
    if suggestion is not None:
        return f"unknown parameter: did you mean {suggestion}?", suggestion
    if not model.model_fields:
        return "unknown parameter: this tool takes no parameters", None
    return f"unknown parameter: the parameters are {', '.join(model.model_fields)}", None
