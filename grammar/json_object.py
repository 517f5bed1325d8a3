"""IR for JSON mode: any JSON object, with whitespace and numbers bounded by construction.

Between two JSON tokens at most WS_MAX whitespace bytes ([ \\t\\n\\r]) are allowed: enough for the
compact form, `json.dumps` default (", " and ": ") and indented output up to depth 15 (2-space)
or 7 (4-space), never an endless run.  Integers have at most 20 digits, fractions 20, exponents 4.
Strings are unbounded but must be valid JSON strings (escapes checked, no control characters).
"""
from __future__ import annotations

from . import ir

WS_MAX = 32
INT_DIGITS, FRAC_DIGITS, EXP_DIGITS = 20, 20, 4


def _lit(s: str) -> ir.Literal:
    return ir.Literal(s.encode())


def _cls(*ranges: tuple[int, int]) -> ir.CharClass:
    return ir.CharClass(tuple(ranges))


def json_rules(ws_max: int = WS_MAX) -> dict[str, ir.Node]:
    """Rules `json_value`, `json_object`, `json_array` (recursive) with bounded whitespace."""
    ws = ir.Repeat(_cls((0x09, 0x0A), (0x0D, 0x0D), (0x20, 0x20)), 0, ws_max)
    digit, nonzero = _cls((0x30, 0x39)), _cls((0x31, 0x39))
    hexd = _cls((0x30, 0x39), (0x41, 0x46), (0x61, 0x66))
    char = ir.Alt((
        _cls((0x20, 0x21), (0x23, 0x5B), (0x5D, 0x10FFFF)),  # not '"', '\\', or a control char
        ir.Seq((_lit("\\"), ir.Alt((_cls((0x22, 0x22), (0x2F, 0x2F), (0x5C, 0x5C), (0x62, 0x62),
                                         (0x66, 0x66), (0x6E, 0x6E), (0x72, 0x72), (0x74, 0x74)),
                                    ir.Seq((_lit("u"), ir.Repeat(hexd, 4, 4))))))),
    ))
    string = ir.Seq((_lit('"'), ir.Repeat(char, 0, None), _lit('"')))
    integer = ir.Seq((ir.Repeat(_lit("-"), 0, 1),
                      ir.Alt((_lit("0"), ir.Seq((nonzero, ir.Repeat(digit, 0, INT_DIGITS - 1)))))))
    frac = ir.Repeat(ir.Seq((_lit("."), ir.Repeat(digit, 1, FRAC_DIGITS))), 0, 1)
    exp = ir.Repeat(ir.Seq((_cls((0x45, 0x45), (0x65, 0x65)), ir.Repeat(_cls((0x2B, 0x2B), (0x2D, 0x2D)), 0, 1),
                            ir.Repeat(digit, 1, EXP_DIGITS))), 0, 1)
    number = ir.Seq((integer, frac, exp))
    value = ir.Alt((ir.Ref("json_object"), ir.Ref("json_array"), string, number,
                    _lit("true"), _lit("false"), _lit("null")))
    member = ir.Seq((ws, string, ws, _lit(":"), ws, ir.Ref("json_value"), ws))
    obj = ir.Seq((_lit("{"), ir.Alt((ws, ir.Seq((member, ir.Repeat(ir.Seq((_lit(","), member)), 0, None))))),
                  _lit("}")))
    item = ir.Seq((ws, ir.Ref("json_value"), ws))
    arr = ir.Seq((_lit("["), ir.Alt((ws, ir.Seq((item, ir.Repeat(ir.Seq((_lit(","), item)), 0, None))))),
                  _lit("]")))
    return {"json_value": value, "json_object": obj, "json_array": arr}


def json_object_grammar(ws_max: int = WS_MAX) -> ir.Grammar:
    """Any JSON object (top level is `{...}`, no leading or trailing whitespace)."""
    return ir.Grammar({"start": ir.Ref("json_object"), **json_rules(ws_max)}, start="start")


def json_value_grammar(ws_max: int = WS_MAX) -> ir.Grammar:
    """Any JSON value."""
    return ir.Grammar({"start": ir.Ref("json_value"), **json_rules(ws_max)}, start="start")
