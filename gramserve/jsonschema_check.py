"""Validate a JSON value against a JSON Schema dict: `check_instance(value, schema) -> [problems]`.

The `jsonschema` package (a full Draft 2020-12 validator) is used when it is installed; the SDK
does not depend on it, so without it this module checks the subset that structured outputs use:
type, enum, const, properties, required, additionalProperties, items, prefixItems, min/maxItems,
min/maxLength, pattern, minimum, maximum, exclusiveMinimum/Maximum, anyOf, oneOf, allOf and local
$ref ("#/$defs/..."). Other keywords are not checked by the fallback (the server's grammar
already enforced them while generating). Problems name the JSON pointer of the failing value.
"""
from __future__ import annotations

import functools
import importlib
import re
from typing import Any

__all__ = ["check_instance", "check_subset"]

_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def check_instance(value: Any, schema: dict[str, Any]) -> list[str]:
    """Human-readable problems, empty when `value` is valid."""
    full = _full_validator()
    if full is not None:
        validator_cls = full.validators.validator_for(schema)
        return [f"{e.json_path}: {e.message}" for e in validator_cls(schema).iter_errors(value)]
    return check_subset(value, schema)


@functools.lru_cache(maxsize=None)
def _full_validator() -> Any:
    """The jsonschema module when installed (imported on first use: it is slow to import), else None."""
    try:
        return importlib.import_module("jsonschema")
    except ImportError:
        return None


def check_subset(value: Any, schema: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    _check(value, schema, schema, "$", problems)
    return problems


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # bool is an int subclass in Python, never a JSON number
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, object))


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref are supported without the jsonschema package: {ref}")
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _check(value: Any, schema: Any, root: dict, path: str, out: list[str]) -> None:
    if schema is True or schema == {}:
        return
    if schema is False:
        out.append(f"{path}: no value is allowed here")
        return
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path, out)
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is_type(value, n) for n in names):
            out.append(f"{path}: {value!r} is not of type {types}")
            return
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} is not {schema['const']!r}")
    _check_combinators(value, schema, root, path, out)
    if isinstance(value, dict):
        _check_object(value, schema, root, path, out)
    elif isinstance(value, list):
        _check_array(value, schema, root, path, out)
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", float("inf")):
            out.append(f"{path}: length {len(value)} is outside minLength/maxLength")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']!r}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, out)


def _check_combinators(value: Any, schema: dict, root: dict, path: str, out: list[str]) -> None:
    for sub in schema.get("allOf", []):
        _check(value, sub, root, path, out)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            passing = sum(1 for sub in schema[key] if not _problems(value, sub, root, path))
            if passing == 0 or (key == "oneOf" and passing > 1):
                out.append(f"{path}: {value!r} matches {passing} of the {key} alternatives")


def _problems(value: Any, schema: Any, root: dict, path: str) -> list[str]:
    problems: list[str] = []
    _check(value, schema, root, path, problems)
    return problems


def _check_object(value: dict, schema: dict, root: dict, path: str, out: list[str]) -> None:
    props = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in value:
            out.append(f"{path}: missing required property {key!r}")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            _check(item, props[key], root, f"{path}.{key}", out)
        elif extra is False:
            out.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, dict):
            _check(item, extra, root, f"{path}.{key}", out)


def _check_array(value: list, schema: dict, root: dict, path: str, out: list[str]) -> None:
    if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", float("inf")):
        out.append(f"{path}: {len(value)} items is outside minItems/maxItems")
    prefix = schema.get("prefixItems", [])
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items", True)
        _check(item, sub, root, f"{path}[{i}]", out)


def _check_number(value: float, schema: dict, path: str, out: list[str]) -> None:
    bounds = [("minimum", lambda b: value >= b), ("maximum", lambda b: value <= b),
              ("exclusiveMinimum", lambda b: value > b), ("exclusiveMaximum", lambda b: value < b)]
    for key, ok in bounds:
        if key in schema and not ok(schema[key]):
            out.append(f"{path}: {value!r} violates {key} {schema[key]}")
