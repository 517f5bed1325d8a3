"""Incremental detokenization with stop strings: token ids in, text deltas out, O(new tokens).

Two ways to turn ids into text, picked once per tokenizer:

* byte table (the fast path): for byte-level BPE (GPT-2/Llama-3/SmolLM style) and
  SentencePiece-style decoders (Metaspace, or Replace("▁"," ") + ByteFallback + Fuse + Strip),
  every token id maps to a fixed byte string, read once from the tokenizer's decoder config. The
  output text is then the UTF-8 decoding of the concatenated bytes: an incremental UTF-8 decoder
  holds back a character split across tokens until its last byte arrives, so a delta never
  contains a half character. Per add() the work is one dict/list lookup per new token.
  Equal to `tokenizer.decode(prompt + output)` minus the prompt's text, except that ByteFallback
  replaces a whole run of invalid byte tokens where we replace maximal invalid subparts (only
  reachable by sampling invalid UTF-8).
* window (any other tokenizer): vLLM/HF-style prefix/read offsets; each add() decodes only the
  few tokens since the last emitted character, twice.

Stop strings sit on top of either: text that could still become a stop string is held back
from the deltas (so a streaming client never sees part of one), and `text == "".join(deltas)`.
"""
from __future__ import annotations

import codecs
import json
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from engine.sampling_params import SamplingParams

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_WINDOW_CONTEXT = 5  # prompt tokens the window decoder starts from (leading-space context)
_WINDOW_MAX_WAIT = 16  # tokens the window decoder waits for a character to complete


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 byte-level alphabet: printable bytes stand for themselves, the other bytes are
    shifted to code points 256+ so every byte is a visible character."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table, shift = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shift)
            shift += 1
    return table


_UNICODE_TO_BYTE = {c: b for b, c in _bytes_to_unicode().items()}


@dataclass(frozen=True)
class _DecoderKind:
    byte_level: bool = False  # token chars are GPT-2 byte-alphabet characters
    metaspace: bool = False  # "▁" stands for a space
    byte_fallback: bool = False  # "<0xNN>" tokens are raw bytes
    strip_start: int = 0  # leading spaces removed from the very start of the decoded text
    drop_first_meta: bool = False  # Metaspace decoder: every "▁" of the first token is dropped


def _parse_decoder(cfg: dict | None) -> _DecoderKind | None:
    """Map a `tokenizers` decoder config to a _DecoderKind; None when we cannot model it."""
    if cfg is None:
        return None
    kind = cfg.get("type")
    if kind == "ByteLevel":
        return _DecoderKind(byte_level=True)
    if kind == "Metaspace":
        if cfg.get("replacement", "▁") != "▁":
            return None
        prepend = cfg.get("prepend_scheme", "always" if cfg.get("add_prefix_space", True)
                          else "never")
        return _DecoderKind(metaspace=True, drop_first_meta=prepend != "never")
    if kind != "Sequence":
        return None
    flags: dict[str, Any] = {}
    fused = False
    for sub in cfg.get("decoders", []):
        t = sub.get("type")
        if t == "Replace" and sub.get("pattern", {}).get("String") == "▁" \
                and sub.get("content") == " ":
            flags["metaspace"] = True
        elif t == "ByteFallback":
            flags["byte_fallback"] = True
        elif t == "Fuse":
            fused = True
        elif t == "Strip" and sub.get("content") == " " and sub.get("stop", 0) == 0 and fused:
            flags["strip_start"] = int(sub.get("start", 0))
        elif t == "ByteLevel":
            flags["byte_level"] = True
        else:
            return None
    if not flags or (flags.get("byte_level") and len(flags) > 1):
        return None  # empty, or byte-level mixed with SentencePiece steps: not modelled
    return _DecoderKind(**flags)


class TokenTable:
    """Immutable per-tokenizer data: the bytes of every token id and the special ids."""

    def __init__(self, token_bytes: list[bytes], special_ids: frozenset[int],
                 strip_start: int = 0, first_token_bytes: dict[int, bytes] | None = None,
                 ) -> None:
        self.token_bytes = token_bytes  # [vocab] bytes each id contributes to the text
        self.special_ids = special_ids  # ids dropped under skip_special_tokens
        self.strip_start = strip_start
        # ids whose bytes differ when they are the first (non-skipped) token of the sequence
        self.first_token_bytes = first_token_bytes or {}

    @classmethod
    def build(cls, backend: Any) -> "TokenTable | None":
        """From a `tokenizers.Tokenizer`; None if its decoder is not byte-level/SentencePiece."""
        cfg = json.loads(backend.to_str())
        kind = _parse_decoder(cfg.get("decoder"))
        if kind is None:
            return None
        vocab = backend.get_vocab_size(with_added_tokens=True)
        token_bytes = [b""] * vocab
        first: dict[int, bytes] = {}
        for i in range(vocab):
            tok = backend.id_to_token(i)
            if tok is not None:
                token_bytes[i] = cls._token_to_bytes(tok, kind)
                if kind.drop_first_meta and "▁" in tok:
                    first[i] = tok.replace("▁", "").encode("utf-8")
        special = frozenset(a["id"] for a in cfg.get("added_tokens", []) if a.get("special"))
        return cls(token_bytes, special, kind.strip_start, first)

    @staticmethod
    def _token_to_bytes(tok: str, kind: _DecoderKind) -> bytes:
        if kind.byte_level:
            try:  # as tokenizers' ByteLevel: a token outside the alphabet is taken verbatim
                return bytes(_UNICODE_TO_BYTE[c] for c in tok)
            except KeyError:
                return tok.encode("utf-8")
        if kind.byte_fallback and (m := _BYTE_TOKEN.match(tok)):
            return bytes([int(m.group(1), 16)])
        return (tok.replace("▁", " ") if kind.metaspace else tok).encode("utf-8")


_TABLES: "weakref.WeakKeyDictionary[Any, TokenTable | None]" = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def _backend_of(tokenizer: Any) -> Any:
    """The `tokenizers.Tokenizer` behind a HF fast tokenizer (or the tokenizer itself)."""
    if hasattr(tokenizer, "id_to_token") and hasattr(tokenizer, "to_str"):
        return tokenizer
    return getattr(tokenizer, "backend_tokenizer", None)


def token_table(tokenizer: Any) -> TokenTable | None:
    """The cached TokenTable of a tokenizer (built on first use), or None for the window path."""
    try:
        with _TABLES_LOCK:
            if tokenizer in _TABLES:
                return _TABLES[tokenizer]
    except TypeError:  # not weak-referenceable or not hashable: build without caching
        pass
    backend = _backend_of(tokenizer)
    table = TokenTable.build(backend) if backend is not None else None
    try:
        with _TABLES_LOCK:
            _TABLES[tokenizer] = table
    except TypeError:
        pass
    return table


class _ByteDecoder:
    """ids -> text through the TokenTable and an incremental UTF-8 decoder."""

    def __init__(self, table: TokenTable, prompt_ids: list[int], skip_special: bool) -> None:
        self._bytes = table.token_bytes
        self._skip = table.special_ids if skip_special else frozenset()
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        # The decoder's start-of-text rules (Strip, Metaspace's first token) apply to
        # prompt+output: they reach the output only when the prompt decodes to nothing.
        kept = [i for i in prompt_ids if i not in self._skip]  # once per request
        self._strip = 0 if any(self._bytes[i] for i in kept) else table.strip_start
        self._first = None if kept else table.first_token_bytes

    def decode(self, ids: list[int], final: bool = False) -> str:
        try:
            parts = [self._bytes[i] for i in ids if i not in self._skip]
        except IndexError:
            bad = [i for i in ids if not 0 <= i < len(self._bytes)]
            raise ValueError(f"token ids {bad} are outside the tokenizer's vocabulary "
                             f"(size {len(self._bytes)})") from None
        if self._first is not None and parts:  # the very first token of the sequence
            first_id = next(i for i in ids if i not in self._skip)
            parts[0] = self._first.get(first_id, parts[0])
            self._first = None
        text = self._utf8.decode(b"".join(parts), final)
        while self._strip and text:  # drop leading spaces once, at the very start
            if text[0] != " ":
                self._strip = 0
                break
            text, self._strip = text[1:], self._strip - 1
        return text


class _WindowDecoder:
    """ids -> text for any tokenizer with decode(): re-decode a short window of recent ids.

    ids[prefix:read] were already emitted (they give the context that fixes spacing);
    ids[read:] are new. A delta is emitted once it no longer ends in a replacement character.
    """

    def __init__(self, tokenizer: Any, prompt_ids: list[int], skip_special: bool) -> None:
        self._tok = tokenizer
        self._skip = skip_special
        self._ids = list(prompt_ids[-_WINDOW_CONTEXT:])
        self._prefix, self._read = 0, len(self._ids)

    def _decode(self, ids: list[int]) -> str:
        if hasattr(self._tok, "to_str"):  # a raw tokenizers.Tokenizer
            return self._tok.decode(ids, skip_special_tokens=self._skip)
        return self._tok.decode(ids, skip_special_tokens=self._skip,
                                clean_up_tokenization_spaces=False)

    def decode(self, ids: list[int], final: bool = False) -> str:
        self._ids.extend(ids)
        if self._read == len(self._ids):
            return ""
        prefix_text = self._decode(self._ids[self._prefix:self._read])
        text = self._decode(self._ids[self._prefix:])
        grown = len(text) > len(prefix_text) and not text.endswith("\ufffd")
        if not (grown or final or len(self._ids) - self._read >= _WINDOW_MAX_WAIT):
            return ""  # nothing new yet, or the last character is still incomplete
        del self._ids[:self._read]  # keep only the context of the next window
        self._prefix, self._read = 0, len(self._ids)
        return text[len(prefix_text):]


class _StopStrings:
    """Finds stop strings in a text window and measures how much of its end could start one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = stops
        self.max_len = max(len(s) for s in stops)
        # last char c -> [(k, s[:k])] over all proper prefixes s[:k] ending in c, longest first
        ends: dict[str, list[tuple[int, str]]] = {}
        for s in stops:
            for k in range(1, len(s)):
                ends.setdefault(s[k - 1], []).append((k, s[:k]))
        self._prefix_ends = {c: sorted(v, reverse=True) for c, v in ends.items()}

    def find(self, window: str) -> tuple[int, str] | None:
        """(start, stop) of the stop string that completes first in window, else None.

        "First" is the smallest end index, as when tokens arrive one at a time; on a tie the
        longer stop (earlier start) wins.
        """
        best = None
        for s in self.stops:
            start = window.find(s)
            if start >= 0:
                key = (start + len(s), start)
                if best is None or key < best[0]:
                    best = (key, s)
        return None if best is None else (best[0][1], best[1])

    def partial_len(self, window: str, limit: int) -> int:
        """Length of the longest suffix of window (at most limit) that is a proper prefix of
        some stop string, i.e. text that must be held back until the next token decides."""
        if not window:
            return 0
        for k, prefix in self._prefix_ends.get(window[-1], ()):
            if k <= limit and window.endswith(prefix):
                return k
        return 0


class IncrementalDetokenizer:
    """Turns one request's generated token ids into text deltas, applying stop strings.

    Invariants: `text == "".join(every delta returned)`; with include_stop_str_in_output False
    no returned delta contains any part of a stop string; after a stop string is found,
    `stopped` is True, `stop_reason` is that string and further tokens are ignored. Call
    `flush()` when the request ends for another reason to release held-back text.
    """

    def __init__(self, tokenizer: Any, prompt_token_ids: list[int],
                 params: SamplingParams) -> None:
        self._tokenizer = tokenizer
        self._table = token_table(tokenizer)
        skip = params.skip_special_tokens
        self._decoder = (_ByteDecoder(self._table, prompt_token_ids, skip)
                         if self._table is not None
                         else _WindowDecoder(tokenizer, prompt_token_ids, skip))
        self._stops = _StopStrings(list(params.stop)) if params.stop else None
        self._include_stop = params.include_stop_str_in_output
        self._chunks: list[str] = []  # released text, in order
        self._tail = ""  # last (max stop len - 1) released chars: a stop may start there
        self._pending = ""  # decoded but held back: could be the start of a stop string
        self.stop_reason: str | None = None
        self.finished = False

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    @property
    def text(self) -> str:
        """All released output text (held-back text excluded until flush())."""
        if len(self._chunks) > 1:  # join lazily, once per read after new text
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def add(self, token_ids: list[int]) -> str:
        """Append generated tokens; return the newly released text (possibly "")."""
        if self.finished or self.stopped:
            return ""
        return self._release(self._decoder.decode(token_ids), final=False)

    def flush(self) -> str:
        """The request ended (EOS, stop token, length, abort): release everything still held
        back (incomplete UTF-8 bytes become U+FFFD, as in a full decode). Idempotent."""
        if self.finished or self.stopped:
            self.finished = True
            return ""
        self.finished = True
        return self._release(self._decoder.decode([], final=True), final=True)

    def _release(self, new: str, final: bool) -> str:
        if self._stops is None:
            return self._emit(new)
        buf = self._pending + new
        window = self._tail + buf  # the only text a newly completed stop string can lie in
        hit = self._stops.find(window)
        if hit is not None:
            start, stop = hit
            end = start + len(stop) if self._include_stop else start
            self._pending = ""
            self.stop_reason = stop
            return self._emit(window[len(self._tail):max(end, len(self._tail))])
        keep = 0 if (final or self._include_stop) else self._stops.partial_len(window, len(buf))
        self._pending = buf[len(buf) - keep:] if keep else ""
        return self._emit(buf[:len(buf) - keep])

    def _emit(self, delta: str) -> str:
        if delta:
            self._chunks.append(delta)
            if self._stops is not None and self._stops.max_len > 1:
                self._tail = (self._tail + delta)[-(self._stops.max_len - 1):]
        return delta

    def detokenize_logprob_token(self, token_id: int) -> str:
        """The text of one token on its own, for logprobs (special tokens included; a token
        holding part of a UTF-8 character shows U+FFFD for the missing bytes)."""
        if self._table is not None:
            return self._table.token_bytes[token_id].decode("utf-8", "replace")
        if hasattr(self._tokenizer, "to_str"):
            return self._tokenizer.decode([token_id], skip_special_tokens=False)
        return self._tokenizer.decode([token_id], skip_special_tokens=False,
                                      clean_up_tokenization_spaces=False)
