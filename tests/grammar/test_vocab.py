"""Vocabulary.from_tokenizer: GPT-2 byte-level BPE and SentencePiece byte fallback; the trie."""
import numpy as np
import pytest

from grammar import Vocabulary
from grammar.vocab import _gpt2_byte_decoder


class FakeAdded:
    def __init__(self, content, special):
        self.content, self.special = content, special


class FakeTokenizer:
    def __init__(self, pieces, special_ids, eos, added=()):
        self.pieces, self.all_special_ids, self.eos_token_id = pieces, special_ids, eos
        self.added_tokens_decoder = {i: FakeAdded(pieces[i], i in special_ids) for i in added}

    def __len__(self):
        return len(self.pieces)

    def convert_ids_to_tokens(self, ids):
        return [self.pieces[i] for i in ids]


def test_gpt2_byte_level():
    enc = {b: c for c, b in _gpt2_byte_decoder().items()}
    assert len(enc) == 256
    words = [b"hello", b" world", b"\n\n", "é".encode(), b"\xe2\x82", b"\t{"]
    pieces = ["<|endoftext|>"] + ["".join(enc[b] for b in w) for w in words] + ["<tool>"]
    tok = FakeTokenizer(pieces, special_ids=[0], eos=0, added=[0, 7])
    v = Vocabulary.from_tokenizer(tok)
    assert v.tokens[1:7] == words and v.tokens[7] == b"<tool>"
    assert v.eos_token_ids == [0] and 0 in v.special_token_ids and 7 not in v.special_token_ids


def test_sentencepiece_byte_fallback():
    pieces = ["<unk>", "<s>", "</s>", "<0x0A>", "<0xC3>", "▁the", "▁", "ing", "▁▁"]
    tok = FakeTokenizer(pieces, special_ids=[0, 1, 2], eos=2, added=[0, 1, 2])
    v = Vocabulary.from_tokenizer(tok, eos_token_ids=[2])
    assert v.tokens[3:] == [b"\n", b"\xc3", b" the", b" ", b"ing", b"  "]
    assert set(v.special_token_ids) == {0, 1, 2}


def test_trie_layout():
    v = Vocabulary([b"ab", b"a", b"b", b"abc", b"<s>", b""], special_token_ids=[4])
    # every walkable token's node spells it, following parents back to the root
    for tid, node in zip(v.token_ids.tolist(), v.token_node.tolist()):
        spelled = b""
        while node:
            spelled = bytes([v.last_byte[node]]) + spelled
            node = v.parent[node]
        assert spelled == v.tokens[tid]
    assert 4 not in v.token_ids and 5 not in v.token_ids  # special and empty: never walked
    kids = [list(range(v.child_lo[n], v.child_hi[n])) for n in range(v.num_nodes)]
    assert all(v.parent[c] == n for n in range(v.num_nodes) for c in kids[n])
    assert np.all(np.diff(v.parent) >= 0)


def test_subtree_bytes_and_token_ranges():
    """The preorder layout the C walk reads: each node's own tokens, the tokens strictly below
    it, the bytes below it, its depth and height."""
    toks = [b"ab", b"a", b"b", b"abc", b"<s>", b"", b"abd", b"ab", b"ba", b"c"]
    v = Vocabulary(toks, special_token_ids=[4])
    nodes, n = v.pre_nodes, v.num_nodes
    spelled = {0: b""}
    for r in range(1, n):  # preorder: a node's parent comes before it
        spelled[r] = spelled[int(v.pre_parent[r])] + bytes([int(nodes["byte"][r])])
    assert sorted(spelled.values()) == [spelled[r] for r in range(n)]  # ranks in byte order
    for r in range(n):
        tlo, size = nodes["tlo"], int(nodes["size"][r])
        own = [t for t in v.token_ids.tolist() if toks[t] == spelled[r]]
        below = [t for t in v.token_ids.tolist() if toks[t].startswith(spelled[r]) and toks[t] != spelled[r]]
        assert sorted(v.sub_tokens32[tlo[r]:tlo[r + 1]].tolist()) == sorted(own)
        assert sorted(v.sub_tokens32[tlo[r + 1]:tlo[r + size]].tolist()) == sorted(below)
        bits = set()
        for t in below:
            bits |= set(toks[t][len(spelled[r]):])
        got = {b for b in range(256) if (int(v.pre_sub_bytes[r, b >> 6]) >> (b & 63)) & 1}
        assert got == bits, spelled[r]
        assert nodes["depth"][r] == len(spelled[r])
        assert nodes["height"][r] == max((len(toks[t]) - len(spelled[r]) for t in below), default=0)
    walkable = set(v.token_ids.tolist())
    for j, t in enumerate(v.sub_tokens32.tolist()):
        assert v.sub_token_len[j] == len(toks[t]) and t in walkable
        assert spelled[int(v.token_pre_node[t])] == toks[t]


@pytest.mark.slow
def test_smollm2_tokens_decode_like_the_tokenizer(smollm2_tokenizer, smollm2_vocab):
    for tid in range(17, smollm2_vocab.size, 97):
        text = smollm2_tokenizer.decode([tid])
        if "\ufffd" not in text:  # a partial UTF-8 sequence decodes lossily
            assert smollm2_vocab.tokens[tid] == text.encode(), tid
    assert smollm2_vocab.eos_token_ids == [smollm2_tokenizer.eos_token_id]
