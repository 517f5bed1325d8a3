"""Lark grammars -> IR, read with lark itself.

lark's own loader expands EBNF (?, *, +, [..], ~ ranges, templates, %import, aliases) into
plain rules (`Lark.rules`: origin -> one expansion of symbols) and compiles every terminal to a
Python regex or string (`Lark.terminals`); we run just that part of `Lark(...)` (_read_lark: not
the Earley parser it would build, only its checks) and lower exactly what it yields:
    rule NAME          -> Alt of its expansions, each a Seq of Refs
    terminal T         -> rule "T:T" = parse_regex(pattern, flags) or a Literal
    %ignore T1, T2     -> before every terminal occurrence and at the very end:  (T1 | T2)*
so the language is the CFG over bytes that lark's Earley parser with the `dynamic_complete`
lexer accepts.  Anything lark rejects, or that we cannot lower exactly (a regex construct
outside parse_regex's subset, a %declare'd terminal that needs a postlexer), raises
GrammarError with the grammar line.
"""
from __future__ import annotations

import functools
import os
import re
import threading

from lark.exceptions import GrammarError as LarkGrammarError
from lark.grammar import NonTerminal
from lark.load_grammar import (EXT, GrammarBuilder, PrepareLiterals, TerminalTreeToPattern,
                               nr_deepcopy_tree)
from lark.tree import Tree
from lark.utils import get_regexp_width

from . import ir
from .errors import GrammarError
from .regex import fold_case, parse_regex

IGNORE_RULE = "%ignore"
# lark's common.ESCAPED_STRING uses a lookbehind; this is the same language without it
_KNOWN_PATTERNS = {'".*?(?<!\\\\)(\\\\\\\\)*?"': r'"(?:[^"\\\n]|\\[^\n])*"'}


def _line_of(text: str, name: str) -> int | None:
    """1-based line where `name` is defined (or imported), if it can be found."""
    for pattern in (rf"^\s*[?!]?{re.escape(name)}(\.-?\d+)?\s*:",
                    rf"^\s*%import\s.*\b{re.escape(name)}\b"):
        m = re.search(pattern, text, re.MULTILINE)
        if m:
            return text.count("\n", 0, m.start()) + 1
    return None


def _lark_error_line(err: Exception) -> int | None:
    line = getattr(err, "line", None)
    if isinstance(line, int) and line > 0:
        return line
    m = re.search(r"[Ll]ine (\d+)", str(err))
    return int(m.group(1)) if m else None


@functools.lru_cache(maxsize=4096)
def _pattern_node(kind: str, value: str, flags: str) -> ir.Node:
    """The IR of a lark pattern (`kind` its class name: PatternStr or PatternRE).  A pure
    function of its arguments, memoized per process: grammars share terminals (keywords,
    common.lark's) and IR nodes are immutable.  (lru_cache keeps no exception: errors recur.)"""
    if kind == "PatternStr":
        if "i" not in flags:
            return ir.Literal(value.encode())
        return ir.Seq(tuple(ir.CharClass(tuple(fold_case([(ord(c), ord(c))]))) for c in value))
    value = _KNOWN_PATTERNS.get(value, value)
    return parse_regex(value, flags=flags.replace("m", "").replace("u", ""))


def _terminal_node(term, text: str) -> ir.Node:
    pattern = term.pattern
    try:
        return _pattern_node(type(pattern).__name__, pattern.value, "".join(sorted(pattern.flags)))
    except GrammarError as e:
        raise GrammarError(f"terminal {term.name}: {e.message}",
                           line=_line_of(text, term.name)) from None


def _precompiled_terminal(d):
    """An imported terminal's definition `d` with each alternative of its tree replaced by the
    lark Pattern that Grammar.compile's terminal transformer (TerminalTreeToPattern) makes of it,
    as a `pattern` leaf: that transformer builds a tree's pattern from its children's patterns
    alone, so every grammar compiling this tree (or a terminal that uses it, or an %extend of it)
    gets the same patterns without transforming the library's tree again.  The other readers of
    terminal trees see no difference: no symbol or `value` node either way, and compile's "empty
    terminal" check (exactly one `expansion` node, empty) needs only to know whether the tree has
    `expansion` nodes, which the wrapping keeps.  `d` itself when it is not that simple (an
    empty expansion, or an alternative the transformer rejects: compile keeps lark's error)."""
    if not d.is_term or d.tree is None or not all(isinstance(a, Tree) for a in d.tree.children) \
            or any(not e.children for e in d.tree.find_data("expansion")):
        return d
    to_pattern = PrepareLiterals() * TerminalTreeToPattern()
    alternatives = []
    for alt in d.tree.children:
        try:
            leaf = Tree("pattern", [to_pattern.transform(nr_deepcopy_tree(alt))])
        except Exception:
            return d
        has_expansion = any(True for _ in alt.find_data("expansion"))
        alternatives.append(Tree("expansion", [leaf]) if has_expansion else leaf)
    return type(d)(True, Tree("expansions", alternatives), d.params, d.options)


class _GrammarBuilder(GrammarBuilder):
    """lark's GrammarBuilder, except that an import from lark's own library (`%import common.X`,
    the usual kind) reuses what the same import yielded before in this process instead of parsing
    the library grammar again (a third of a small grammar's load).  The library grammars are
    lark's package files, so the definitions an import adds depend only on the import: the
    library path and its name -> alias map; the terminals among them are kept precompiled
    (_precompiled_terminal).  Anything else (relative imports, imports nested in an imported
    grammar) goes through lark's do_import unchanged."""

    _cache: dict[tuple, dict] = {}  # (dotted path, aliases) -> the definitions it adds
    _cache_size = 64
    _lock = threading.Lock()

    def do_import(self, dotted_path, base_path, aliases, base_mangle=None) -> None:
        if base_path is not None or base_mangle is not None or self.import_paths \
                or self.global_keep_all_tokens:
            return super().do_import(dotted_path, base_path, aliases, base_mangle)
        key = (dotted_path, tuple(aliases.items()))
        with self._lock:
            definitions = self._cache.get(key)
        if definitions is None:
            fresh = GrammarBuilder()
            fresh.do_import(dotted_path, None, aliases)  # errors are lark's, and not cached
            definitions = {name: _precompiled_terminal(d) for name, d in fresh._definitions.items()}
            with self._lock:
                self._cache[key] = definitions
                while len(self._cache) > self._cache_size:
                    del self._cache[next(iter(self._cache))]
        for name in definitions:  # lark's check, same message
            if name in self._definitions:
                raise LarkGrammarError("Cannot import '%s' from '%s': Symbol already defined."
                                       % (name, os.path.join(*dotted_path) + EXT))
        for name, d in definitions.items():  # copies: the grammar may %extend what it imports
            tree = nr_deepcopy_tree(d.tree) if d.tree is not None else None
            self._definitions[name] = type(d)(d.is_term, tree, d.params, d.options)


@functools.lru_cache(maxsize=4096)
def _regexp_min_width(regexp: str) -> int:
    """The least width of a terminal's regex as lark's Earley matcher finds it (sre_parse),
    memoized per process (errors are not cached)."""
    return get_regexp_width(regexp)[0]


def _read_lark(text: str, start: str):
    """(terminals, rules, ignored terminal names) of a Lark grammar, exactly as
    `Lark(text, start=start, parser="earley", lexer="dynamic")` reads them, and with the same
    errors, but without building the Earley parser we never use: only lark's grammar loader and
    its EBNF -> BNF compilation run, followed by the two checks that building that parser makes
    (see `Lark._build_parser`)."""
    builder = _GrammarBuilder()  # as lark.load_grammar.load_grammar(text, "<string>", [], False)
    builder.load_grammar(text, "<string>")
    terminals, rules, ignore = builder.build().compile([start], set())
    # 1. the dynamic lexer's matcher (EarleyRegexpMatcher): every terminal a valid regex, not
    #    zero-width; its checks and errors, with the regex analysis memoized
    for term in terminals:
        regexp = term.pattern.to_regexp()
        try:
            width = _regexp_min_width(regexp)
        except ValueError:
            raise LarkGrammarError("Bad regexp in token %s: %s" % (term.name, regexp)) from None
        if width == 0:
            raise LarkGrammarError("Dynamic Earley doesn't allow zero-width regexps", term)
        re.compile(regexp)  # (re's own cache)
    # 2. Earley's GrammarAnalyzer: every rule used (the start rule last) is defined
    defined = {rule.origin for rule in rules}
    used = [sym for rule in rules for sym in rule.expansion if not sym.is_term]
    for sym in used + [NonTerminal(start)]:
        if sym not in defined:
            raise LarkGrammarError("Using an undefined rule: %s" % sym)
    return terminals, rules, ignore


def lark_to_grammar(text: str, start: str = "start") -> ir.Grammar:
    """The IR of a Lark grammar (lark syntax, start rule `start`)."""
    try:
        terminals, lark_rules, ignore = _read_lark(text, start)
    except Exception as e:  # lark raises several types: GrammarError, UnexpectedInput, KeyError...
        raise GrammarError(f"invalid Lark grammar: {str(e).strip().splitlines()[0]}",
                           line=_lark_error_line(e)) from None
    terms = {t.name: t for t in terminals}
    ignore = list(ignore)
    rules: dict[str, ir.Node] = {}
    alternatives: dict[str, list[ir.Node]] = {}
    used_terms: set[str] = set(ignore)

    def symbol(sym) -> ir.Node:
        if not sym.is_term:
            return ir.Ref(sym.name)
        if sym.name not in terms:
            raise GrammarError(f"terminal {sym.name} has no pattern (%declare'd for a postlexer)",
                               line=_line_of(text, sym.name))
        used_terms.add(sym.name)
        ref = ir.Ref("T:" + sym.name)
        return ir.Seq((ir.Ref(IGNORE_RULE), ref)) if ignore else ref

    for rule in lark_rules:
        seq = ir.Seq(tuple(symbol(s) for s in rule.expansion))
        alternatives.setdefault(rule.origin.name, []).append(seq)
    for name, alts in alternatives.items():
        rules[name] = alts[0] if len(alts) == 1 else ir.Alt(tuple(alts))
    for name in sorted(used_terms):
        rules["T:" + name] = _terminal_node(terms[name], text)
    if ignore:
        rules[IGNORE_RULE] = ir.Repeat(ir.Alt(tuple(ir.Ref("T:" + n) for n in ignore)), 0, None)
    top = "%start"
    rules[top] = ir.Seq((ir.Ref(start), ir.Ref(IGNORE_RULE))) if ignore else ir.Ref(start)
    return ir.Grammar(rules, start=top)
