"""The benchmark's prompt set: deterministic token-id prompts cut from public-domain prose.

Every engine receives the very same token ids (no engine tokenizes on its own), so the columns of
benchmarks/throughput.py differ only in how they compute. Windows of 50-400 tokens are sampled
with a fixed seed from the SmolLM2 tokenization of TEXT (Dickens 1859, Lincoln 1863, Austen 1813,
Melville 1851; all public domain).
"""
from __future__ import annotations

import os
import random

TEXT = """\
It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of \
foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of \
Light, it was the season of Darkness, it was the spring of hope, it was the winter of despair, we \
had everything before us, we had nothing before us, we were all going direct to Heaven, we were \
all going direct the other way - in short, the period was so far like the present period, that \
some of its noisiest authorities insisted on its being received, for good or for evil, in the \
superlative degree of comparison only.

Four score and seven years ago our fathers brought forth on this continent, a new nation, \
conceived in Liberty, and dedicated to the proposition that all men are created equal. Now we are \
engaged in a great civil war, testing whether that nation, or any nation so conceived and so \
dedicated, can long endure. We are met on a great battle-field of that war. We have come to \
dedicate a portion of that field, as a final resting place for those who here gave their lives \
that that nation might live. It is altogether fitting and proper that we should do this. But, in \
a larger sense, we can not dedicate - we can not consecrate - we can not hallow - this ground. The \
brave men, living and dead, who struggled here, have consecrated it, far above our poor power to \
add or detract. The world will little note, nor long remember what we say here, but it can never \
forget what they did here. It is for us the living, rather, to be dedicated here to the unfinished \
work which they who fought here have thus far so nobly advanced. It is rather for us to be here \
dedicated to the great task remaining before us - that from these honored dead we take increased \
devotion to that cause for which they gave the last full measure of devotion - that we here highly \
resolve that these dead shall not have died in vain - that this nation, under God, shall have a \
new birth of freedom - and that government of the people, by the people, for the people, shall \
not perish from the earth.

It is a truth universally acknowledged, that a single man in possession of a good fortune, must be \
in want of a wife. However little known the feelings or views of such a man may be on his first \
entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, \
that he is considered the rightful property of some one or other of their daughters. "My dear Mr. \
Bennet," said his lady to him one day, "have you heard that Netherfield Park is let at last?" Mr. \
Bennet replied that he had not. "But it is," returned she; "for Mrs. Long has just been here, and \
she told me all about it." Mr. Bennet made no answer. "Do you not want to know who has taken it?" \
cried his wife impatiently. "You want to tell me, and I have no objection to hearing it." This was \
invitation enough.

Call me Ishmael. Some years ago - never mind how long precisely - having little or no money in my \
purse, and nothing particular to interest me on shore, I thought I would sail about a little and \
see the watery part of the world. It is a way I have of driving off the spleen and regulating the \
circulation. Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly \
November in my soul; whenever I find myself involuntarily pausing before coffin warehouses, and \
bringing up the rear of every funeral I meet; and especially whenever my hypos get such an upper \
hand of me, that it requires a strong moral principle to prevent me from deliberately stepping \
into the street, and methodically knocking people's hats off - then, I account it high time to get \
to sea as soon as I can. This is my substitute for pistol and ball. With a philosophical flourish \
Cato throws himself upon his sword; I quietly take to the ship. There is nothing surprising in \
this. If they but knew it, almost all men in their degree, some time or other, cherish very nearly \
the same feelings towards the ocean with me.
"""


def load_tokenizer(model_dir: str | None = None):
    """The SmolLM2 tokenizer: from the exported HF directory when present, else from the GGUF."""
    from transformers import AutoTokenizer

    if model_dir and os.path.exists(os.path.join(model_dir, "tokenizer.json")):
        return AutoTokenizer.from_pretrained(model_dir)
    from export_hf import find_gguf  # sibling module: benchmarks/peers is on sys.path

    folder, name = os.path.split(find_gguf())
    return AutoTokenizer.from_pretrained(folder, gguf_file=name)


def make_prompts(
    token_ids: list[int], n: int, seed: int = 0, min_len: int = 50, max_len: int = 400
) -> list[list[int]]:
    """n windows of token_ids, lengths uniform in [min_len, max_len], start offsets uniform.

    Invariant: the result depends only on (token_ids, n, seed, min_len, max_len), and the first k
    prompts of a larger set equal the prompts of a set of k (subsets of the run stay comparable).
    """
    if len(token_ids) < max_len:
        raise ValueError(f"text has {len(token_ids)} tokens, fewer than max_len={max_len}")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(min_len, max_len)
        start = rng.randint(0, len(token_ids) - length)
        out.append(list(token_ids[start:start + length]))
    return out


def benchmark_prompts(n: int = 64, seed: int = 0, model_dir: str | None = None) -> list[list[int]]:
    tok = load_tokenizer(model_dir)
    return make_prompts(tok.encode(TEXT, add_special_tokens=False), n, seed)
