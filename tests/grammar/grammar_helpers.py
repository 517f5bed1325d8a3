"""Test helpers: brute-force masks from the reference recognizer, bit twiddling, random walks."""
import json
import random

import numpy as np

from grammar import allocate_bitmask, ir
from grammar.reference import Recognizer, viable_tokens


def allowed_ids(row: np.ndarray, size: int) -> set[int]:
    bits = np.unpackbits(row.view(np.uint8), bitorder="little")[:size]
    return set(np.flatnonzero(bits).tolist())


def brute_mask(rec: Recognizer, output: bytes, vocab) -> set[int]:
    """{t : output + bytes(t) is a viable prefix} (walkable tokens) + EOS iff output is complete."""
    special = set(vocab.special_token_ids)
    walk = [t if i not in special else b"" for i, t in enumerate(vocab.tokens)]
    out = viable_tokens(rec, output, walk)
    if rec.feed(output).complete():
        out |= set(vocab.eos_token_ids)
    return out


def random_walk_check(compiled, grammar: ir.Grammar, steps: int, seed: int,
                      check_every: int = 1) -> bytes:
    """Sample tokens under the fast mask; every `check_every` steps compare it with brute force."""
    rng = random.Random(seed)
    vocab = compiled.vocab
    rec = Recognizer(grammar)
    m = compiled.matcher()
    row = allocate_bitmask(1, vocab.size)[0]
    output = b""
    for step in range(steps):
        m.fill_bitmask(row)
        fast = allowed_ids(row, vocab.size)
        if step % check_every == 0:
            brute = brute_mask(rec, output, vocab)
            assert fast == brute, (output, sorted(fast ^ brute)[:20])
        if not fast:
            break
        tok = rng.choice(sorted(fast))
        assert m.accept_token(tok)
        if tok in vocab.eos_token_ids:
            assert m.is_terminated()
            break
        output += vocab.tokens[tok]
    return output


def ir_nodes(node) -> list:
    """Every IR node at or below `node` (a shared subtree once per parent)."""
    from grammar.normalize import _children
    out, todo = [], [node]
    while todo:
        n = todo.pop()
        out.append(n)
        todo.extend(_children(n))
    return out


def schema_keys(schema, skip=()) -> list[str]:
    """The property names a schema declares or requires anywhere, in the order they first
    appear (but `skip`), then "zz", a name it never declares."""
    found: dict[str, None] = {}

    def walk(s):
        if isinstance(s, dict):
            found.update(dict.fromkeys(s.get("properties", {})))
            found.update(dict.fromkeys(s.get("required", [])))
            for v in s.values():
                walk(v)
        elif isinstance(s, list):
            for v in s:
                walk(v)
    walk(schema)
    return [k for k in found if k not in skip] + ["zz"]


def accepts_json(compiled, value) -> bool:
    """Does the compiled grammar take json.dumps(value) whole?"""
    m = compiled.matcher()
    return m.accept_bytes(json.dumps(value).encode()) and m.can_terminate()
