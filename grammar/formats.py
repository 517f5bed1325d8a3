"""JSON Schema `format` values as full-match regular expressions over the decoded string.

Each pattern accepts a SUBSET of the strings the format's RFC allows (never a superset), so a
grammar built from it never emits an invalid value. Where we cut, the cut is listed here:
- date / date-time: real calendar dates, leap years included; leap seconds (":60") are rejected.
- time: RFC 3339 full-time, so a time zone ("Z" or +hh:mm) is required; fraction <= 9 digits.
- duration: ISO 8601 as in RFC 3339 appendix A, numbers of at most 9 digits.
- email: dot-atom local part of at most two atoms (<= 63 chars, no quoted strings) @ hostname.
- hostname: up to 4 labels of 1-63 letters/digits/hyphens (<= 255 chars by construction,
  but RFC 1123 caps at 253: labels are therefore limited to 62 characters), none with hyphens
  in 3rd and 4th place (so no "xn--" A-label: their Punycode cannot be checked by a pattern).
- ipv4: dotted quad without leading zeros. ipv6: RFC 4291 text forms (no zone ids).
- uri / uri-reference: RFC 3986's grammar (scheme, authority with a numeric port, paths, query,
  fragment) without userinfo ("user@host") or IP-literal hosts ("[::1]"), which keeps the
  automaton small enough to count up to a maxLength; a relative reference has no ':' before its
  first '/', '?' or '#' (path-noscheme).
- iri / iri-reference / idn-email: their ASCII forms (every URI is an IRI, every email an
  idn-email): the uri / uri-reference / email patterns.
- json-pointer (RFC 6901) and relative-json-pointer (with index manipulation, as 2020-12's
  reference has it): exact.
- uri-template: RFC 6570 level 4 with ASCII literals (no ucschar / iprivate characters).
"""
from __future__ import annotations

_D2 = r"[0-9]{2}"
_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # 0001-9999: no year 0
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DATE = (
    rf"(?:{_YEAR}-(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    rf"|{_YEAR}-(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    rf"|{_YEAR}-02-(?:0[1-9]|1[0-9]|2[0-8])"
    rf"|{_LEAP_YEAR}-02-29)"
)
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[zZ]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_N = r"[0-9]{1,9}"
# RFC 3339 appendix A: a unit follows only the one before it (P1Y2D and PT1H2S are not durations)
_DUR_DATE = rf"(?:{_N}Y(?:{_N}M(?:{_N}D)?)?|{_N}M(?:{_N}D)?|{_N}D)"
_DUR_TIME = rf"T(?:{_N}H(?:{_N}M(?:{_N}S)?)?|{_N}M(?:{_N}S)?|{_N}S)"
# a label: letters, digits, inner hyphens, at most 62 long, and not hyphens 3rd and 4th (RFC 5891
# reserves those: "xn--" A-labels need a Punycode check a pattern cannot make, so none is taken)
_L, _M = "[A-Za-z0-9]", "[A-Za-z0-9-]"
_LABEL = rf"{_L}(?:{_L}|{_M}{_L}|{_M}(?:{_L}{_L}|-{_L})|{_M}(?:{_L}{_M}|-{_L}){_M}{{0,57}}{_L})?"
_HOSTNAME = rf"{_LABEL}(?:\.{_LABEL}){{0,3}}"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = "(?:" + "|".join([
    rf"(?:{_H}:){{7}}{_H}",
    rf"(?:{_H}:){{1,7}}:",
    rf"(?:{_H}:){{1,6}}:{_H}",
    rf"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}",
    rf"(?:{_H}:){{1,4}}(?::{_H}){{1,3}}",
    rf"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}",
    rf"(?:{_H}:){{1,2}}(?::{_H}){{1,5}}",
    rf"{_H}:(?::{_H}){{1,6}}",
    rf":(?::{_H}){{1,7}}",
    "::",
    rf"(?:{_H}:){{6}}{_IPV4}",
    rf"::(?:ffff(?::0{{1,4}})?:)?{_IPV4}",
]) + ")"
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*"
# RFC 3986's grammar: pchar, then the authority (a registered name, a numeric port), paths, query
# and fragment; userinfo ("user@host") and IP literal hosts ("[::1]") are left out
_PCT = r"%[0-9A-Fa-f]{2}"
_SEGMENT_NC = rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=@]|{_PCT})"  # path-noscheme's first segment: no ':'
_PCHAR = rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|{_PCT})"
_AUTHORITY = rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|{_PCT})*(?::[0-9]*)?"  # no userinfo: a smaller automaton
_TAIL = rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"  # query, fragment
_PATH = rf"(?:{_PCHAR}|/)*"
_URI = rf"{_SCHEME}:(?://{_AUTHORITY}(?:/{_PATH})?|/(?:{_PCHAR}{_PATH})?|{_PCHAR}{_PATH})?{_TAIL}"
_RELATIVE = rf"(?://{_AUTHORITY}(?:/{_PATH})?|/(?:{_PCHAR}{_PATH})?|{_SEGMENT_NC}+(?:/{_PATH})?)?{_TAIL}"
_HEX = "[0-9a-fA-F]"

_JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"
_VARCHAR = r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})"
_VARSPEC = rf"{_VARCHAR}(?:\.?{_VARCHAR})*(?::[1-9][0-9]{{0,3}}|\*)?"
_TEMPLATE_EXPR = rf"\{{[+#./;?&=,!@|]?{_VARSPEC}(?:,{_VARSPEC})*\}}"
_TEMPLATE_LITERAL = r"(?:[!#$&()*+,\-./0-9:;=?@A-Z\[\]_a-z~]|%[0-9A-Fa-f]{2})"

FORMATS: dict[str, str] = {
    "date": _DATE,
    "time": _TIME,
    "date-time": rf"{_DATE}[Tt]{_TIME}",
    "duration": rf"P(?:{_DUR_DATE}(?:{_DUR_TIME})?|{_DUR_TIME}|{_N}W)",
    "email": rf"{_ATEXT}{{1,31}}(?:\.{_ATEXT}{{1,31}})?@{_HOSTNAME}",
    "hostname": _HOSTNAME,
    "ipv4": _IPV4,
    "ipv6": _IPV6,
    "uuid": rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    "uri": _URI,
    "uri-reference": rf"{_URI}|{_RELATIVE}",
    "json-pointer": _JSON_POINTER,
    "relative-json-pointer": rf"(?:0|[1-9][0-9]*)(?:[+-][1-9][0-9]*)?(?:#|{_JSON_POINTER})",
    "uri-template": rf"(?:{_TEMPLATE_LITERAL}|{_TEMPLATE_EXPR})*",
}
FORMATS["iri"], FORMATS["iri-reference"], FORMATS["idn-email"] = FORMATS["uri"], FORMATS["uri-reference"], \
    FORMATS["email"]


# formats the specification defines that we cannot enforce: asking for one is an error in strict
# mode; any other format name is an annotation (the spec says unknown formats are ignored)
KNOWN_UNSUPPORTED = frozenset({"idn-hostname", "regex"})


def format_pattern(name: str) -> str | None:
    """The full-match regex for a supported format, or None when the format is unknown."""
    return FORMATS.get(name)
