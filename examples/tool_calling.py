"""Tool calling and typed structured outputs with the gramserve SDK.

Start a server, then run this file:

    gramserve serve --port 8000                 # or any OpenAI-compatible server
    python examples/tool_calling.py --base-url http://127.0.0.1:8000/v1

It runs a two-tool loop (one sync tool, one async tool), parses an answer into a nested pydantic
model, and streams a partial parse. `main(client)` is also what tests/sdk runs against a fake.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Annotated, Literal

from pydantic import BaseModel

from gramserve import Client, GramserveError, tool

CITIES = {"paris": (21.5, "Europe/Paris"), "tokyo": (27.0, "Asia/Tokyo"), "oslo": (4.0, "Europe/Oslo")}


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Current temperature in a city.

    Args:
        city: the city name, e.g. "Paris"
        unit: the temperature unit
    """
    celsius = CITIES.get(city.lower(), (15.0, ""))[0]
    value = celsius if unit == "celsius" else celsius * 9 / 5 + 32
    return {"city": city, "temperature": value, "unit": unit}


@tool
async def get_timezone(city: Annotated[str, "the city name"]) -> str:
    """The IANA time zone of a city."""
    await asyncio.sleep(0.01)  # stands in for a real async lookup
    return CITIES.get(city.lower(), (0.0, "UTC"))[1] or "UTC"


class Landmark(BaseModel):
    name: str
    year_built: int


class CityGuide(BaseModel):
    city: str
    country: str
    landmarks: list[Landmark]


def main(client: Client, out=sys.stdout) -> None:
    result = client.run("What is the weather in Paris, and which time zone is it in?",
                        tools=[get_weather, get_timezone], tool_choice="required", max_turns=4,
                        temperature=0, max_tokens=200)
    for call in result.tool_calls:
        print(f"called {call.name}({call.arguments}) -> {call.error or call.result}", file=out)
    print(f"answer: {result.content}", file=out)
    print(f"tokens: {result.usage.total_tokens} over {result.turns} turns", file=out)

    guide = client.parse("Describe Paris with two landmarks.", response_model=CityGuide,
                         temperature=0, max_tokens=200)
    print(f"parsed: {guide!r}", file=out)

    for partial in client.stream_parse("Describe Rome with one landmark.", response_model=CityGuide,
                                       temperature=0, max_tokens=200):
        print(f"partial: {partial!r}", file=out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default=None, help="default: the first model the server lists")
    args = parser.parse_args()
    try:
        with Client(base_url=args.base_url, model=args.model) as client:
            main(client)
    except GramserveError as e:
        sys.exit(f"error: {e}\n(is a server running at {args.base_url}? start one with `gramserve serve`)")
