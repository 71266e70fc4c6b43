"""The base every tool input inherits: strict about unknown fields, and turning pydantic's
complaints into one `InvalidInput` that names the field and the rule."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cachebash.domain.errors import InvalidInput

# A program, group or tenant name: short, printable, safe inside a document path.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
# Ids we generate are url-safe tokens; accept the same alphabet back.
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]

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


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class NoArguments(Input):
    pass


M = TypeVar("M", bound=Input)


def parse(model: type[M], arguments: dict[str, Any]) -> M:
    """Validate raw tool arguments, raising `InvalidInput` for the first bad field."""
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        raise _as_invalid_input(exc) from None


def _as_invalid_input(exc: ValidationError) -> InvalidInput:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "(arguments)"
        problems.append({"field": field, "rule": _rule(error)})
    first = problems[0]
    message = f"{first['field']}: {first['rule']}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s), see 'problems')"
    return InvalidInput(message, field=first["field"], problems=problems)


def _rule(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a parameter of this tool"
    return str(error["msg"]).replace("String", "text").replace("string", "text")
