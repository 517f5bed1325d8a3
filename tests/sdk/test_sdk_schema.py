"""Schema from type hints: every supported hint, descriptions, defaults, and argument validation."""
from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Literal, Optional

import pydantic
import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from gramserve import Tool, tool
from gramserve.docstrings import parse_docstring
from gramserve.schema import output_spec


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    zip_code: int


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Movie(TypedDict):
    title: str
    year: int


def _props(t: Tool) -> dict:
    return t.parameters["properties"]


def _resolve(t: Tool, prop: dict) -> dict:
    """Follow a $ref into the schema's $defs."""
    if "$ref" in prop:
        return t.parameters["$defs"][prop["$ref"].split("/")[-1]]
    return prop


@pytest.mark.parametrize("hint,expected", [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (list[int], {"type": "array", "items": {"type": "integer"}}),
    (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (Literal["a", "b"], {"enum": ["a", "b"], "type": "string"}),
    (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
])
def test_scalar_and_container_hints(hint, expected) -> None:
    def f(v): ...
    f.__annotations__ = {"v": hint}
    prop = _props(Tool(f))["v"]
    assert {k: prop[k] for k in expected} == expected
    assert Tool(f).parameters["required"] == ["v"]


def test_enum_nested_model_dataclass_typeddict() -> None:
    @tool
    def f(color: Color, address: Address, point: Point, movie: Movie) -> None: ...
    props = _props(f)
    assert _resolve(f, props["color"])["enum"] == ["red", "green"]
    address = _resolve(f, props["address"])
    assert address["required"] == ["street", "zip_code"]
    assert address["properties"]["zip_code"]["type"] == "integer"
    point = _resolve(f, props["point"])
    assert point["required"] == ["x"] and point["properties"]["y"]["default"] == 0.0
    assert _resolve(f, props["movie"])["properties"]["year"]["type"] == "integer"


def test_defaults_are_not_required_and_object_is_closed() -> None:
    @tool
    def f(a: str, b: int = 3, c: Optional[str] = None) -> None: ...
    assert f.parameters["required"] == ["a"]
    assert _props(f)["b"]["default"] == 3
    assert f.parameters["additionalProperties"] is False
    assert f.parameters["type"] == "object"


def test_no_parameters_gives_an_empty_object() -> None:
    @tool
    def now() -> str:
        """The time."""
    assert now.parameters["properties"] == {} and now.parameters["type"] == "object"
    assert now.validate_arguments({}) == {}


def test_annotated_descriptions_and_field() -> None:
    @tool
    def f(city: Annotated[str, "the city name"], days: Annotated[int, Field(ge=1, description="how many")] = 1):
        """Forecast."""
    assert _props(f)["city"]["description"] == "the city name"
    assert _props(f)["days"]["description"] == "how many" and _props(f)["days"]["minimum"] == 1
    with pytest.raises(pydantic.ValidationError):
        f.validate_arguments({"city": "Oslo", "days": 0})


GOOGLE = '''Look up the weather.

    Longer explanation.

    Args:
        city (str): the city
            name, in English
        unit: C or F

    Returns:
        text
    '''
SPHINX = '''Look up the weather.

    :param city: the city
        name, in English
    :param str unit: C or F
    :returns: text
    '''
NUMPY = '''Look up the weather.

    Parameters
    ----------
    city : str
        the city
        name, in English
    unit : str
        C or F

    Returns
    -------
    str
    '''


@pytest.mark.parametrize("doc", [GOOGLE, SPHINX, NUMPY], ids=["google", "sphinx", "numpy"])
def test_docstring_styles(doc: str) -> None:
    description, params = parse_docstring(doc)
    assert description.startswith("Look up the weather.")
    assert "Args" not in description and ":param" not in description and "Parameters" not in description
    assert params == {"city": "the city name, in English", "unit": "C or F"}


def test_docstring_feeds_the_tool_and_annotated_wins() -> None:
    def weather(city: Annotated[str, "explicit"], unit: str = "C") -> str:
        return city
    weather.__doc__ = GOOGLE
    t = Tool(weather)
    assert t.name == "weather" and t.description.startswith("Look up the weather.\n\nLonger explanation.")
    assert _props(t)["city"]["description"] == "explicit"
    assert _props(t)["unit"]["description"] == "C or F"


def test_decorator_options_and_callability() -> None:
    @tool(name="lookup", description="custom")
    def f(x: int) -> int:
        return x * 2
    assert f.name == "lookup" and f.description == "custom" and f(21) == 42
    assert f.to_openai()["function"]["name"] == "lookup"


def test_untyped_and_variadic_functions_are_rejected() -> None:
    def untyped(x): ...
    def variadic(*args: int): ...
    with pytest.raises(TypeError, match="type hint"):
        tool(untyped)
    with pytest.raises(TypeError, match=r"\*args"):
        tool(variadic)


def test_validate_arguments_coerces_builds_nested_objects_and_rejects_extras() -> None:
    @tool
    def f(color: Color, address: Address, point: Point, tags: list[str], n: int = 0) -> None: ...
    kwargs = f.validate_arguments({"color": "red", "address": {"street": "Main", "zip_code": "123"},
                                   "point": {"x": 1}, "tags": ["a"]})
    assert kwargs["color"] is Color.RED
    assert kwargs["address"] == Address(street="Main", zip_code=123)
    assert kwargs["point"] == Point(1.0, 0.0) and kwargs["n"] == 0
    with pytest.raises(pydantic.ValidationError):
        f.validate_arguments({"color": "blue", "address": {"street": "M", "zip_code": 1}, "point": {"x": 1},
                              "tags": []})
    with pytest.raises(pydantic.ValidationError, match="extra"):
        f.validate_arguments({"color": "red", "address": {"street": "M", "zip_code": 1}, "point": {"x": 1},
                              "tags": [], "bogus": 1})


@pytest.mark.parametrize("model,raw,expected", [
    (Address, '{"street": "Main", "zip_code": 1}', Address(street="Main", zip_code=1)),
    (Point, '{"x": 2.5}', Point(2.5)),
    (Movie, '{"title": "Alien", "year": 1979}', {"title": "Alien", "year": 1979}),
    (list[int], "[1, 2]", [1, 2]),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, '{"a": 1}', {"a": 1}),
])
def test_output_spec_kinds(model, raw, expected) -> None:
    spec = output_spec(model)
    fmt = spec.response_format()
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == spec.schema and spec.schema
    assert spec.validate_json(raw) == expected


def test_output_spec_names_are_api_safe() -> None:
    assert output_spec(Address).name == "Address"
    assert output_spec({"title": "my schema!", "type": "object"}).name == "my_schema_"
    assert output_spec({"type": "object"}).name == "response"


def test_output_objects_are_closed_without_touching_data() -> None:
    class Odd(BaseModel):
        properties: dict[str, int]  # a field named like the keyword
        items: list[Address]

    schema = output_spec(Odd).schema
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Address"]["additionalProperties"] is False
    assert set(schema["properties"]) == {"properties", "items"}  # no keyword injected among the fields
    assert schema["properties"]["properties"]["additionalProperties"] == {"type": "integer"}
