"""gramserve's grammar library: JSON Schema / Lark / regex / choice -> token automaton -> matcher.

    from grammar import Vocabulary, GrammarCompiler, GrammarError, allocate_bitmask
    compiler = GrammarCompiler(Vocabulary.from_tokenizer(tok))
    m = compiler.compile_regex(r"\\d+").matcher()
    bits = allocate_bitmask(1, compiler.vocab.size)
    m.fill_bitmask(bits[0]); m.accept_token(tid)

Standalone: imports nothing of gramserve's other packages and never torch.
"""
from . import ir
from .compiler import GrammarCompiler
from .errors import GrammarError
from .matcher import CompiledGrammar, GrammarMatcher
from .regex import parse_regex
from .vocab import Vocabulary, allocate_bitmask

__all__ = ["ir", "GrammarCompiler", "GrammarError", "CompiledGrammar", "GrammarMatcher",
           "Vocabulary", "allocate_bitmask", "parse_regex"]
