"""Docstring parsing for @tool: the summary and per-parameter descriptions.

Three common styles are understood; the first that yields parameters wins:

    Google                    Sphinx                      NumPy
    Args:                     :param city: the city       Parameters
        city (str): the           name                    ----------
            city name                                     city : str
                                                              the city name

The description is everything before the first section (Args/Parameters/Returns/...) or
`:param` field, with its lines re-joined; continuation lines of a parameter are joined by spaces.
"""
from __future__ import annotations

import inspect
import re

__all__ = ["parse_docstring"]

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|"
                      r"Attributes|See Also|Keyword Args|Keyword Arguments|Other Parameters)\s*:?\s*$")
_PARAM_SECTIONS = {"Args", "Arguments", "Parameters", "Params", "Keyword Args", "Keyword Arguments"}
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(?::\s*.*)?$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {parameter name: description}) of a docstring; ("", {}) for None."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if _SECTION.match(line.strip()) or line.strip().startswith(":"):
            break
        summary.append(line)
    description = "\n".join(summary).strip()
    params = _sphinx(lines) or _sections(lines)
    return description, params


def _sphinx(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    current = None
    for line in lines:
        stripped = line.strip()
        m = _SPHINX_PARAM.match(stripped)
        if m:
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif stripped.startswith(":"):
            current = None
        elif current and stripped:
            params[current] = f"{params[current]} {stripped}".strip()
    return params


def _sections(lines: list[str]) -> dict[str, str]:
    """Google- or NumPy-style parameter sections: items at the section's first indentation level."""
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _SECTION.match(lines[i].strip())
        i += 1
        if not m or m.group(1) not in _PARAM_SECTIONS:
            continue
        if i < len(lines) and set(lines[i].strip()) == {"-"}:  # NumPy underline
            i += 1
            numpy = True
        else:
            numpy = False
        body: list[str] = []
        while i < len(lines) and not _SECTION.match(lines[i].strip()):
            body.append(lines[i])
            i += 1
        params.update(_items(body, numpy))
    return params


def _items(body: list[str], numpy: bool) -> dict[str, str]:
    indents = [len(ln) - len(ln.lstrip()) for ln in body if ln.strip()]
    if not indents:
        return {}
    base = min(indents)  # item lines sit at the section's least indentation; deeper lines continue
    params: dict[str, str] = {}
    current = None
    for line in body:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if indent == base:
            m = (_NUMPY_ITEM if numpy else _GOOGLE_ITEM).match(text)
            current = m.group(1).lstrip("*") if m else None
            if current:
                params[current] = "" if numpy else m.group(2).strip()
        elif current:
            params[current] = f"{params[current]} {text}".strip()
    return params
