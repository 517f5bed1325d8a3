"""GrammarCompiler: front ends -> IR -> CompiledGrammar, with an LRU cache keyed by the spec.

    compiler = GrammarCompiler(vocab)
    compiler.compile_json_schema(schema) / compile_json_object() / compile_lark(text)
    compiler.compile_regex(pattern) / compile_choice(["yes", "no"]) / compile_grammar(ir_grammar)

Compiling is cheap by design (the automaton is determinized and the masks computed lazily, on
first use, then cached inside the CompiledGrammar and shared by every matcher); the cache
returns the same CompiledGrammar for the same spec, so those lazy tables warm up across requests.
Thread-safe: the cache is behind a lock, and a CompiledGrammar guards its own lazy tables.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict

from . import ir
from ._gc import no_gc
from .errors import GrammarError
from .json_object import json_object_grammar
from .matcher import CompiledGrammar
from .prepare_native import grammar_nfa
from .regex import parse_regex
from .vocab import Vocabulary


class GrammarCompiler:
    def __init__(self, vocab: Vocabulary, cache_size: int = 128):
        self.vocab = vocab
        self.cache_size = cache_size
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def _cached(self, key: tuple, build) -> CompiledGrammar:
        with self._lock:
            got = self._cache.get(key)
            if got is not None:
                self._cache.move_to_end(key)
                return got
        try:
            with no_gc():  # the IR is dropped before the GC comes back (see _gc.no_gc)
                grammar, warnings = build()
                nfa = grammar_nfa(grammar)  # normalize.prepare's rules' automaton (in C where it can)
                del grammar
                compiled = CompiledGrammar(nfa, self.vocab, warnings)
                del nfa
        except RecursionError:  # a clear error for the one request, never a crash
            raise GrammarError("the grammar nests too deeply to compile") from None
        with self._lock:
            self._cache[key] = compiled
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return compiled

    def compile_grammar(self, grammar: ir.Grammar) -> CompiledGrammar:
        """The IR directly (not cached: IR grammars are not hashable by value)."""
        try:
            with no_gc():
                return CompiledGrammar(grammar_nfa(grammar), self.vocab)
        except RecursionError:
            raise GrammarError("the grammar nests too deeply to compile") from None

    def compile_regex(self, pattern: str) -> CompiledGrammar:
        return self._cached(("regex", pattern),
                            lambda: (ir.Grammar({"start": parse_regex(pattern)}), []))

    def compile_choice(self, choices: list[str]) -> CompiledGrammar:
        if not choices:
            raise GrammarError("choice needs at least one option")
        alts = tuple(ir.Literal(c.encode()) for c in choices)
        return self._cached(("choice", tuple(choices)),
                            lambda: (ir.Grammar({"start": ir.Alt(alts)}), []))

    def compile_json_object(self) -> CompiledGrammar:
        return self._cached(("json_object",), lambda: (json_object_grammar(), []))

    def compile_json_schema(self, schema, *, strict: bool = True,
                            allow_additional_properties_default: bool = True) -> CompiledGrammar:
        """A JSON Schema (dict or JSON text); GrammarError names the JSON pointer at fault."""
        from .json_schema import json_schema_to_grammar  # lazy: the front end is optional

        if isinstance(schema, (bytes, str)):
            try:
                schema = json.loads(schema)
            except ValueError as e:
                raise GrammarError(f"schema is not valid JSON: {e}", pointer="") from None
        key = ("json_schema", json.dumps(schema, sort_keys=True), strict,
               allow_additional_properties_default)
        return self._cached(key, lambda: json_schema_to_grammar(
            schema, strict=strict,
            allow_additional_properties_default=allow_additional_properties_default))

    def compile_lark(self, grammar_text: str, start: str = "start") -> CompiledGrammar:
        from .lark_frontend import lark_to_grammar

        return self._cached(("lark", grammar_text, start),
                            lambda: (lark_to_grammar(grammar_text, start=start), []))
