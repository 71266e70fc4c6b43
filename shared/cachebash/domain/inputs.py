"""The base every tool input inherits: strict about unknown fields and about JSON types, and
turning pydantic's complaints into one `InvalidInput` that names the field and the rule.

Arguments arrive as JSON, and `parse` validates them as the JSON they are, in pydantic's
strict mode: an integer parameter takes a JSON integer (not `true`, `"5"` or `5.0`), a boolean
takes `true`/`false` (not `1` or `"true"`), a number takes a JSON number (not `true` or
`"1.5"`), text takes a JSON string. Every number must be finite (NaN and Infinity are
refused; Python's JSON reader lets them through), and the types below bound every integer and
every id, so whatever passes here can be stored on every backend.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cachebash.domain.arguments import model_at, normalise, unknown_parameter
from cachebash.domain.errors import InvalidInput

# A program, group or tenant name: short, printable, safe as a document id (it starts with a
# letter or digit, so it is never '.', '..' or Firestore's reserved '__x__').
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
# Ids we generate are url-safe tokens; accept the same alphabet back. The first character is a
# letter or digit for the same reason as names: every id this accepts is a valid document id.
MAX_ID = 128
ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.:-]{{0,{MAX_ID - 1}}}$"
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]

# The largest integer any parameter takes: every JSON reader holds it exactly (JavaScript's
# Number.MAX_SAFE_INTEGER) and it fits Firestore's 64-bit integers with room to add.
MAX_INT = 2**53 - 1
Count = Annotated[int, Field(ge=0, le=MAX_INT)]

MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_SHORT = 200
MAX_TTL_SECONDS = 30 * 24 * 3600

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE)]
LongText = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
ShortText = Annotated[str, StringConstraints(max_length=MAX_SHORT)]
Ttl = Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS)]
MAX_WAIT_SECONDS = 25
IdempotencyKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    Field(description="Any unique string you choose for this call. Retrying with the same key (e.g. after a timeout) "
                      "returns the first call's result and changes nothing; remembered for 24 h."),
]
WaitSeconds = Annotated[
    float,
    Field(ge=0, le=MAX_WAIT_SECONDS, description="If nothing is available, wait up to this many seconds (0-25) for "
                                                 "something to arrive instead of polling; returns as soon as it does."),
]


def _descriptions_on_top(schema: dict[str, Any]) -> None:
    """A description carried by an optional parameter's type (`IdempotencyKey | None`) lands
    inside the schema's `anyOf`, where readers that look only at a property's `description` (many
    clients, our README) never see it: lift it to the property."""
    for prop in schema.get("properties", {}).values():
        if "description" not in prop:
            found = [branch.pop("description") for branch in prop.get("anyOf", ()) if "description" in branch]
            if found:
                prop["description"] = found[0]


class Input(BaseModel):
    """A tool's input. `parse` validates it strictly (see the module docstring); a model whose
    values arrive as text, such as URL query parameters, opts out with
    `model_config = ConfigDict(strict=False)` and then takes `"30"` for an integer."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, allow_inf_nan=False, defer_build=True,
                              json_schema_extra=_descriptions_on_top)


class NoArguments(Input):
    pass


M = TypeVar("M", bound=Input)


def parse(model: type[M], arguments: dict[str, Any]) -> M:
    """Validate raw tool arguments, raising `InvalidInput` for the first bad field. Names are
    read in either spelling and JSON text where a list or object is wanted (`arguments`)."""
    strict = model.model_config.get("strict", True)
    arguments = normalise(model, arguments)
    try:
        raw = json.dumps(arguments, allow_nan=True)
    except (TypeError, ValueError):
        raw = None  # not JSON at all (only a caller inside the process can do this)
    try:
        if raw is not None:
            return model.model_validate_json(raw, strict=strict)
    except ValidationError as exc:
        if not _unreadable(exc):
            raise _as_invalid_input(model, exc) from None
    # Text that no JSON reader accepts (a lone surrogate): the Python validator says where.
    try:
        model.model_validate(arguments)
    except ValidationError as exc:
        raise _as_invalid_input(model, exc) from None
    raise InvalidInput("(arguments): not valid JSON values", field="(arguments)")


def _unreadable(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" for error in exc.errors(include_url=False, include_input=False))


def _as_invalid_input(model: type[Input], exc: ValidationError) -> InvalidInput:
    problems: list[dict[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "(arguments)"
        problem = {"field": field, "rule": _rule(error)}
        if error["type"] == "extra_forbidden":
            problem["rule"], suggestion = unknown_parameter(model_at(model, error["loc"][:-1]), str(error["loc"][-1]))
            if suggestion is not None:
                problem["didYouMean"] = suggestion
        problems.append(problem)
    # A misspelt name is usually why a required one is "missing": say so first.
    problems.sort(key=lambda problem: "didYouMean" not in problem)
    first = problems[0]
    message = f"{first['field']}: {first['rule']}"
    if first["rule"].startswith("unknown parameter:"):
        message = f"unknown parameter '{first['field']}':{first['rule'].removeprefix('unknown parameter:')}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s), see 'problems')"
    return InvalidInput(message, field=first["field"], problems=problems)


# Pydantic's words for the strict JSON types, replaced by what to send instead.
_RULES = {
    "missing": "is required",
    "int_type": "must be an integer: a JSON number without a fraction, e.g. 5 (not 5.0, \"5\" or true)",
    "int_from_float": "must be an integer: a JSON number without a fraction, e.g. 5 (not 5.5)",
    "bool_type": "must be true or false (a JSON boolean, not 1 or \"true\")",
    "float_type": "must be a number (a JSON number, not a string or true/false)",
    "finite_number": "must be a finite number (not NaN or Infinity)",
    "model_type": "must be a JSON object",
    "list_type": "must be a JSON array",
}


_PATTERNS = {
    NAME_PATTERN: "a name: letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64",
    ID_PATTERN: f"an id: letters, digits, '_', '.', ':' and '-', starting with a letter or digit, at most {MAX_ID}",
}


def _rule(error: Any) -> str:
    kind = error["type"]
    if kind in _RULES:
        return _RULES[kind]
    if kind == "string_pattern_mismatch" and (pattern := error.get("ctx", {}).get("pattern")) in _PATTERNS:
        return f"must be {_PATTERNS[pattern]} (pattern {pattern})"
    return str(error["msg"]).replace("String", "text").replace("string", "text")
