"""Soundness by sampling: 200 JSONSchemaBench schemas x 20 completions drawn under the token mask.

Each completion is sampled token by token with the SmolLM2 vocabulary from random logits (a fresh
random logit vector per completion; each step samples from its softmax over the allowed tokens,
so every allowed token has a chance).  Random logits alone would wander inside a string
forever, so after WANDER tokens the sampler "wants to finish", like a model near the end of its
answer: EOS and short closing tokens (quotes, closing brackets), and digits, get a logit bonus.
Some grammars have no short way out (a pattern like `^pbj:([a-z0-9-]+):...` needs a ':' the
bias does not favour), so after RANDOM_TOKENS the matcher's shortest completion is forced, as
the engine does when a request's max_tokens is about to run out.  The mask must still force
everything else.  Every completion must end with EOS within MAX_TOKENS, parse as JSON and
validate with `jsonschema` (formats checked too, where jsonschema can check them).
"""
import json
import os
import random

import jsonschema
import numpy as np
import pytest

from grammar import GrammarCompiler, GrammarError, allocate_bitmask
from shared_data import data_path

SCHEMAS = data_path("jsonschemabench", "schemas")
NUM_SCHEMAS = 200
COMPLETIONS = 20
WANDER = 24  # tokens of pure random logits before the sampler starts to wrap up
RANDOM_TOKENS = 256  # then the matcher's shortest completion is forced, as the engine does when
MAX_TOKENS = 1024  # max_tokens nears; the bound every completion must terminate within
MAX_SCHEMA_CHARS = 3000  # test budget: the corpus' larger schemas are covered by MaskBench
CLOSING = set(b'"}]')  # tokens made of these close strings, objects and arrays
DIGITS = set(b"0123456789")


def candidate_schemas() -> list[tuple[str, dict]]:
    """Every corpus schema under the size cap, in a fixed shuffle over all subsets."""
    rows = []
    for fname in sorted(os.listdir(SCHEMAS)):
        with open(os.path.join(SCHEMAS, fname)) as f:
            for line in f:
                row = json.loads(line)
                if len(line) < MAX_SCHEMA_CHARS:
                    rows.append((f"{fname[:-6]}/{row['id']}", row["schema"]))
    random.Random(0).shuffle(rows)
    return rows


class Sampler:
    def __init__(self, vocab):
        self.vocab = vocab
        self.row = allocate_bitmask(1, vocab.size)[0]
        self._allowed: dict[bytes, np.ndarray] = {}  # mask bytes -> allowed ids (masks repeat)
        self.cache_limit = 512
        bonus = np.zeros(vocab.size)  # [V] the wrap-up preference
        for i, tok in enumerate(vocab.tokens):
            if tok and len(tok) <= 3 and set(tok) <= CLOSING:
                bonus[i] = 10.0
            elif tok and len(tok) <= 2 and set(tok) <= DIGITS:
                bonus[i] = 4.0
        bonus[list(vocab.eos_token_ids)] = 14.0
        self.bonus = bonus
        special = set(vocab.special_token_ids)
        self.lookup = {t: i for i, t in enumerate(vocab.tokens) if t and i not in special}

    def spell(self, data: bytes) -> list[int]:
        """Greedy longest-match token ids spelling `data`."""
        out, i = [], 0
        while i < len(data):
            n = next(n for n in range(min(self.vocab.max_len, len(data) - i), 0, -1)
                     if data[i: i + n] in self.lookup)
            out.append(self.lookup[data[i: i + n]])
            i += n
        return out

    def allowed(self, matcher) -> np.ndarray:
        matcher.fill_bitmask(self.row)
        key = self.row.tobytes()
        got = self._allowed.get(key)
        if got is None:
            bits = np.unpackbits(self.row.view(np.uint8), bitorder="little")[: self.vocab.size]
            got = np.flatnonzero(bits).astype(np.int32)
            if len(self._allowed) >= self.cache_limit:
                self._allowed.clear()
            self._allowed[key] = got
        return got

    def complete(self, grammar, rng: np.random.Generator) -> tuple[bytes, bool]:
        """(output bytes, ended with EOS) of one completion under the mask.

        Exact sampling from softmax(logits) restricted to the allowed tokens: by inverse CDF
        over the whole vocabulary, retried until the token is allowed (cheap when most tokens
        are), or by Gumbel-max over the allowed ids when they are few."""
        logits = rng.normal(0.0, 2.0, self.vocab.size)  # [V]
        cdfs = []
        for extra in (0.0, self.bonus):  # wandering, then wrapping up
            w = np.exp(logits + extra - (logits + extra).max())
            cdfs.append(np.cumsum(w))
        m, out = grammar.matcher(), bytearray()
        for step in range(RANDOM_TOKENS):
            ids = self.allowed(m)
            assert ids.size, f"empty mask after {bytes(out)!r}"
            wrap = step >= WANDER
            tok = -1
            if ids.size > 2048:
                cdf = cdfs[wrap]
                for t in np.searchsorted(cdf, rng.random(64) * cdf[-1]).tolist():
                    if (int(self.row[t >> 5]) >> (t & 31)) & 1:
                        tok = t
                        break
            if tok < 0:
                score = logits[ids] + (self.bonus[ids] if wrap else 0.0) + rng.gumbel(size=ids.size)
                tok = int(ids[int(np.argmax(score))])
            assert m.accept_token(tok), (bytes(out), tok)
            if m.is_terminated():
                return bytes(out), True
            out += self.vocab.tokens[tok]
        rest = m.shortest_completion()  # out of random budget: close the output
        for tok in self.spell(rest) + self.vocab.eos_token_ids[:1]:
            if not m.accept_token(tok):
                return bytes(out), False
            out += self.vocab.tokens[tok] if not m.is_terminated() else b""
        return bytes(out), m.is_terminated() and len(self.spell(rest)) + RANDOM_TOKENS < MAX_TOKENS


@pytest.mark.skipif(not os.path.isdir(SCHEMAS), reason="JSONSchemaBench data not present")
def test_sampled_completions_terminate_parse_and_validate(smollm2_vocab):
    compiler = GrammarCompiler(smollm2_vocab, cache_size=1)
    sampler = Sampler(smollm2_vocab)
    checker = jsonschema.FormatChecker()
    failures, lengths, done = [], [], 0
    for name, schema in candidate_schemas():
        if done == NUM_SCHEMAS:
            break
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
            grammar = compiler.compile_json_schema(schema)  # strict: skip what it rejects
        except (GrammarError, jsonschema.SchemaError):
            continue
        validator = jsonschema.validators.validator_for(schema)(schema, format_checker=checker)
        rng = np.random.default_rng(done)
        done += 1
        for j in range(COMPLETIONS):
            out, ended = sampler.complete(grammar, rng)
            lengths.append(len(out))
            if not ended:
                failures.append((name, j, "no EOS within the bound", out[:200]))
                continue
            try:
                value = json.loads(out)
            except ValueError as e:
                failures.append((name, j, f"not JSON: {e}", out[:200]))
                continue
            errors = [e.message for e in validator.iter_errors(value)]
            if errors:
                failures.append((name, j, errors[:2], out[:200]))
    assert done == NUM_SCHEMAS
    print(f"\nsoundness by sampling: {done} schemas x {COMPLETIONS} completions, "
          f"{len(failures)} failures; output bytes median {int(np.median(lengths))}, "
          f"max {max(lengths)}")
    assert not failures, failures[:5]
