"""Python types -> JSON Schema + validators, through pydantic.

Two entry points:

    function_schema(fn) -> FunctionSchema   a function's parameters as an arguments model:
        the JSON Schema sent as a tool's "parameters", and the validator of the model's arguments
    output_spec(response_model) -> OutputSpec   what `parse` sends as response_format and how it
        validates the answer: a pydantic model, a dataclass, a TypedDict, any type pydantic
        adapts (then that type comes back), or a plain JSON Schema dict (then a dict comes back)

Supported hints: str, int, float, bool, Literal, Enum, Optional / X | None, list, tuple, set,
dict, nested pydantic models, dataclasses and TypedDicts; a parameter with a default is not
required. Descriptions come from `Annotated[T, "desc"]`, `Annotated[T, Field(description=...)]`
or the docstring (docstrings.py). Argument objects forbid unknown keys (additionalProperties
false), so a hallucinated argument is reported back to the model instead of silently dropped.
"""
from __future__ import annotations

import functools
import inspect
import json
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .docstrings import parse_docstring
from .errors import OutputValidationError
from .jsonschema_check import check_instance

__all__ = ["FunctionSchema", "OutputSpec", "function_schema", "output_spec"]

_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class FunctionSchema:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    args_model: type[BaseModel]  # validates arguments; its fields are the function's parameters


def function_schema(fn: Callable[..., Any], name: str | None = None,
                    description: str | None = None) -> FunctionSchema:
    """The tool schema of a typed function; raises TypeError for *args/**kwargs or a missing hint."""
    doc_description, doc_params = parse_docstring(inspect.getdoc(fn))
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: *args/**kwargs cannot be described to a model as a tool")
        if param.name not in hints:
            raise TypeError(f"{fn.__qualname__}: parameter {param.name!r} needs a type hint to become a tool")
        hint, desc = _split_annotated(hints[param.name])
        desc = desc or doc_params.get(param.name)
        default = ... if param.default is param.empty else param.default
        extra = {"description": desc} if desc else {}  # an explicit None would erase Field(description=...)
        fields[param.name] = (hint, Field(default, **extra))
    tool_name = name or fn.__name__
    model = pydantic.create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("properties", {})
    return FunctionSchema(tool_name, description if description is not None else doc_description, schema, model)


def _split_annotated(hint: Any) -> tuple[Any, str | None]:
    """Annotated[T, "desc", *others] -> (Annotated[T, *others] or T, "desc")."""
    if typing.get_origin(hint) is not typing.Annotated:
        return hint, None
    base, *meta = typing.get_args(hint)
    texts = [m for m in meta if isinstance(m, str)]
    rest = [m for m in meta if not isinstance(m, str)]
    hint = typing.Annotated[(base, *rest)] if rest else base
    return hint, (" ".join(texts) or None)


@dataclass(frozen=True)
class OutputSpec:
    name: str
    schema: dict[str, Any]
    validate_json: Callable[[str], Any]  # raw text -> value; raises OutputValidationError

    def response_format(self) -> dict[str, Any]:
        return {"type": "json_schema", "json_schema": {"name": self.name, "schema": self.schema, "strict": True}}


def output_spec(response_model: Any) -> OutputSpec:
    if isinstance(response_model, dict):
        return _dict_spec(response_model)
    return _typed_spec(response_model)


def _dict_spec(schema: dict[str, Any]) -> OutputSpec:
    name = _NAME_OK.sub("_", str(schema.get("title") or "response"))[:64]

    def validate(raw: str) -> Any:
        try:
            value = json.loads(raw)
        except ValueError as e:
            raise OutputValidationError(f"the output is not JSON: {e}", raw) from e
        problems = check_instance(value, schema)
        if problems:
            raise OutputValidationError("the output does not match the schema: " + "; ".join(problems), raw,
                                        errors=problems)
        return value

    return OutputSpec(name, schema, validate)


_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "contains")


def _close_objects(schema: Any) -> Any:
    """additionalProperties: false on every object schema that declares properties and leaves
    the rest open: strict structured outputs (OpenAI's rule) need it, and it keeps the model from
    emitting keys the Python type would drop anyway. Walks schema keywords only (a property
    named "properties" is data, not a schema). Mutates and returns `schema`."""
    if not isinstance(schema, dict):
        return schema
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for key in _SUBSCHEMA_MAPS:
        for sub in (schema.get(key) or {}).values():
            _close_objects(sub)
    for key in _SUBSCHEMA_LISTS:
        for sub in schema.get(key) or []:
            _close_objects(sub)
    for key in _SUBSCHEMAS:
        _close_objects(schema.get(key))
    return schema


@functools.lru_cache(maxsize=256)
def _typed_spec(response_model: Any) -> OutputSpec:
    try:
        adapter = TypeAdapter(response_model)
        schema = _close_objects(adapter.json_schema())
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as e:
        raise TypeError(f"cannot derive a JSON Schema from {response_model!r}: {e}") from e
    name = _NAME_OK.sub("_", getattr(response_model, "__name__", None) or "response")[:64]

    def validate(raw: str) -> Any:
        try:
            return adapter.validate_json(raw)
        except pydantic.ValidationError as e:
            raise OutputValidationError(f"the output does not validate as {name}: {e}", raw,
                                        errors=e.errors()) from e

    return OutputSpec(name, schema, validate)
