"""grammar/automata.py: regex IR -> DFA, intersections, complements and length bounds, checked
against Python's `re` on random strings (through the reference recognizer, which reads the
resulting ir.Automaton), and through the compiled matcher."""
import random
import re

import pytest

from grammar import GrammarCompiler, Vocabulary, automata, ir
from grammar.reference import accepts
from grammar.regex import parse_regex

ALPHABET = "ab-1é9z"
PATTERNS = [r"^[a-z]+(-[a-z]+)*$", r"ab", r"^a*b?$", r"\d{2,3}", r"^(é|b)+$", r"^[^a]*$", r"^ab|9$"]


def strings(seed: int, n: int = 150):
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 7))) for _ in range(n)]


def matches(node: ir.Node, s: str) -> bool:
    return accepts(ir.Grammar({"start": node}), s.encode())


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("lo, hi", [(0, None), (2, 4), (3, None), (0, 2), (5, 3)])
def test_length_restriction_matches_python_re(pattern, lo, hi):
    node = automata.restrict(parse_regex(pattern, search=True), lo, hi)
    for s in strings(len(pattern) + lo):
        want = re.search(pattern, s) is not None and lo <= len(s) and (hi is None or len(s) <= hi)
        assert matches(node, s) == want, (pattern, lo, hi, s)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_intersection_and_complement_match_python_re(pattern):
    node = parse_regex(pattern, search=True)
    both = automata.restrict(node, also=parse_regex(r"[0-9a]", search=True))
    neither = automata.none_of([node, parse_regex("^b", search=True)])
    for s in strings(7 + len(pattern)):
        hit = re.search(pattern, s) is not None
        assert matches(both, s) == (hit and re.search(r"[0-9a]", s) is not None), (pattern, s)
        assert matches(neither, s) == (not hit and not s.startswith("b")), (pattern, s)


def test_empty_results_and_the_state_bound():
    assert automata.restrict(parse_regex("abc"), 4, None) == ir.NOTHING
    assert automata.none_of([parse_regex(r"[\s\S]*", search=False)]) == ir.NOTHING
    wide = parse_regex(r"[a-z]{40}x[a-z]{40}", search=True)  # the DFA must remember 40 positions
    assert automata.restrict(wide, 0, 200) is None  # past MAX_STATES: the caller reports it


def test_automaton_compiles_to_the_same_language():
    node = automata.restrict(parse_regex(r"^[a-z]+(-[a-z]+)*$"), 3, 6)
    compiled = GrammarCompiler(Vocabulary([bytes([i]) for i in range(256)])).compile_grammar(ir.Grammar({"start": node}))
    for s in strings(3) + ["abc", "ab-cd", "a-b-c"]:
        m = compiled.matcher()
        got = m.accept_bytes(s.encode()) and m.can_terminate()
        assert got == (re.fullmatch(r"[a-z]+(-[a-z]+)*", s) is not None and 3 <= len(s) <= 6), s


def test_an_unanchored_pattern_is_one_state_once_it_has_matched():
    """After an unanchored pattern's match every continuation is accepted: the subsets that
    still track partial matches are one DFA state.  A long alternation (a patternProperties
    key list from JSONSchemaBench) made 7,451 states, and 1.8 s of lowering, before."""
    words = ["Red", "Blue", "Yellow", "Gold", "Silver", "Crystal", "Ruby", "Sapphire", "Emerald",
             "FireRed", "LeafGreen", "Diamond", "Pearl", "Platinum", "HeartGold", "SoulSilver",
             "Black", "White", "Black 2", "White 2", "X", "Y", "Omega Ruby", "Alpha Sapphire",
             "Sun", "Moon", "Ultra Sun", "Ultra Moon", "Let's Go Pikachu", "Let's Go Eevee"]
    pattern = "|".join(words)
    dfa = automata.language(parse_regex(pattern, search=True))
    assert len(dfa.trans) < 300
    other = automata.Dfa.from_ir(parse_regex(pattern, search=True)).complement()

    def run(d: automata.Dfa, s: str) -> bool:
        q = d.start
        for ch in s:
            q = next((t for lo, hi, t in d.trans[q] if lo <= ord(ch) <= hi), None)
            if q is None:
                return False
        return q in d.finals

    rng = random.Random(5)
    samples = [rng.choice(["", "x ", "Let's "]) + rng.choice(words)[: rng.randint(1, 9)] + rng.choice(["", " Ruby", "Sun"])
               for _ in range(300)]
    for s in samples + ["", "Re", "Red", "xxRedxx", "Let's Go Pika", "Let's Go Pikachu!"]:
        want = re.search(pattern, s) is not None
        assert run(dfa, s) == want, s
        assert run(other, s) == (not want), s
    node = dfa.to_ir()  # and through the reference recognizer, as the compiler reads it
    for s in ["Let's Go Eevee!", "Let's Go Eeve", "xFireRe", "FireRedx"]:
        assert matches(node, s) == (re.search(pattern, s) is not None), s


@pytest.mark.parametrize("pattern", PATTERNS + [r"^(ab|a-b|9)*z?$", r"^(a|é)(a|é)(a|é)?$"])
def test_minimize_keeps_the_language_and_shrinks(pattern):
    dfa = automata.Dfa.from_ir(parse_regex(pattern, search=True))
    small = dfa.minimize()
    assert len(small.trans) <= len(dfa.trim().trans)
    for s in strings(len(pattern) + 7, 300):
        assert matches(small.to_ir(), s) == bool(re.search(pattern, s)), s


def test_minimize_merges_the_states_a_spelled_out_pattern_repeats():
    """uri's grammar repeats pchar (and its %XX escape) in each part: 48 subset states, 14 once
    states with the same futures are merged (so a uri can be counted to a maxLength of 255)."""
    from grammar.formats import FORMATS

    dfa = automata.Dfa.from_ir(parse_regex(FORMATS["uri"], search=False))
    assert len(dfa.minimize().trans) < len(dfa.trans) // 2
    assert automata.restrict(parse_regex(FORMATS["uri"], search=False), 0, 255) is not None
