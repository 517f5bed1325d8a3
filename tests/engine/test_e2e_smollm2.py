"""End to end on the embedded SmolLM2-135M-Instruct: our engine against HF transformers.

Greedy, float32, 8 prompts of mixed lengths submitted together, 64 new tokens each, compared token
for token with a plain HF greedy loop over the same GGUF weights. `ignore_eos` keeps going past EOS
without changing the distribution, so HF runs with no EOS stopping at all (not min_new_tokens,
which would suppress EOS). A divergence is allowed only at a near-tie: at the first differing
position HF's logits of the two tokens differ by less than 1e-3 (vLLM's tests allow the same).
"""
from __future__ import annotations

import pytest
import torch

from engine.config import EngineConfig
from engine.llm import LLM
from engine.llm_engine import LLMEngine
from engine.sampling_params import SamplingParams

pytestmark = pytest.mark.slow

PROMPTS = [
    "The capital of France is",
    "Write a short poem about the ocean.\n",
    "def fibonacci(n):\n    ",
    "Once upon a time, in a land far away, there lived a",
    "List three colors: red,",
    " ".join(["The quick brown fox jumps over the lazy dog."] * 12),  # ~120 tokens
    "Q: What is 12 times 12?\nA:",
    "In the beginning of the twentieth century, the city grew rapidly as new industries "
    "arrived; factories, railways and schools changed the lives of its inhabitants, and " * 3,
]
NEW = 64


@pytest.fixture(scope="module")
def loaded(smollm2_loaded):
    return smollm2_loaded


@pytest.fixture(scope="module")
def hf_model(smollm2_hf):
    return smollm2_hf


@pytest.fixture(scope="module")
def hf_greedy(loaded, hf_model):
    """Per prompt: (token ids, logits at each step) of a plain HF greedy loop without EOS stopping."""
    tok = loaded.tokenizer
    results = []
    with torch.inference_mode():
        for p in PROMPTS:
            ids = torch.tensor([tok.encode(p, add_special_tokens=False)])
            out = hf_model(ids, use_cache=True)
            pkv, toks, logits = out.past_key_values, [], []
            for _ in range(NEW):
                step_logits = out.logits[0, -1].float()
                t = int(step_logits.argmax())
                toks.append(t)
                logits.append(step_logits)
                out = hf_model(torch.tensor([[t]]), past_key_values=pkv, use_cache=True)
                pkv = out.past_key_values
            results.append((toks, logits))
    return results


def _engine(loaded, **kw) -> LLM:
    return LLM.from_engine(LLMEngine(EngineConfig.from_kwargs(dtype="float32", **kw), loaded=loaded))


def _assert_matches_hf(outs, hf_greedy):
    for i, (out, (hf_toks, hf_logits)) in enumerate(zip(outs, hf_greedy)):
        ours = out.outputs[0].token_ids
        assert len(ours) == NEW
        for pos, (a, b) in enumerate(zip(ours, hf_toks)):
            if a != b:
                gap = abs(float(hf_logits[pos][a] - hf_logits[pos][b]))
                assert gap < 1e-3, f"prompt {i}: diverged at {pos} ({a} vs HF {b}), logit gap {gap:.2e} is no near-tie"
                break


GREEDY = SamplingParams(temperature=0, max_tokens=NEW, ignore_eos=True)


def test_greedy_batch_equals_hf(loaded, hf_greedy):
    llm = _engine(loaded)
    outs = llm.generate(PROMPTS, GREEDY, use_tqdm=False)
    _assert_matches_hf(outs, hf_greedy)
    assert all(o.outputs[0].finish_reason == "length" for o in outs)


def test_greedy_with_forced_preemption_equals_hf(loaded, hf_greedy):
    # 24 blocks x 16 slots = 384 token slots for 8 sequences growing to ~130-260 tokens each
    llm = _engine(loaded, num_blocks=24)
    outs = llm.generate(PROMPTS, GREEDY, use_tqdm=False)
    assert llm.engine.stats.num_preemptions > 0
    _assert_matches_hf(outs, hf_greedy)
    llm.engine.block_manager.check_invariants()
    assert llm.engine.block_manager.num_free_blocks == 24


def test_greedy_with_chunked_prefill_equals_hf(loaded, hf_greedy):
    llm = _engine(loaded, max_num_batched_tokens=24)
    outs = llm.generate(PROMPTS, GREEDY, use_tqdm=False)
    _assert_matches_hf(outs, hf_greedy)


def test_prefix_cache_hit_computes_fewer_tokens_and_gives_the_same_output(loaded):
    llm = _engine(loaded)
    shared = PROMPTS[7]
    p = SamplingParams(temperature=0, max_tokens=16)
    first = llm.generate([shared + " First question:"], p, use_tqdm=False)[0]
    computed_before = llm.engine.stats.num_prompt_tokens
    second = llm.generate([shared + " First question:"], p, use_tqdm=False)[0]
    computed = llm.engine.stats.num_prompt_tokens - computed_before
    assert second.num_cached_tokens >= 16 * (len(second.prompt_token_ids) // 16) - 16
    assert computed <= len(second.prompt_token_ids) - second.num_cached_tokens
    assert computed < len(second.prompt_token_ids) // 2
    assert second.outputs[0].token_ids == first.outputs[0].token_ids


def test_seeded_sampling_is_reproducible_across_batch_compositions(loaded):
    llm = _engine(loaded)
    p = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=24, seed=1234)
    alone = llm.generate([PROMPTS[3]], p, use_tqdm=False)[0].outputs[0].token_ids
    others = [SamplingParams(temperature=1.0, max_tokens=30, seed=s) for s in range(5)]
    mixed = llm.generate(PROMPTS[:3] + [PROMPTS[3]] + PROMPTS[4:6], others[:3] + [p] + others[3:5], use_tqdm=False)
    assert mixed[3].outputs[0].token_ids == alone
    other_seed = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=24, seed=99)
    assert llm.generate([PROMPTS[3]], other_seed, use_tqdm=False)[0].outputs[0].token_ids != alone


def test_n_parallel_samples_share_the_prompt_blocks(loaded):
    llm = _engine(loaded)
    p = SamplingParams(temperature=1.0, max_tokens=8, n=3, seed=7)
    out = llm.generate([PROMPTS[7]], p, use_tqdm=False)[0]
    assert [c.index for c in out.outputs] == [0, 1, 2]
    assert len({tuple(c.token_ids) for c in out.outputs}) > 1  # different samples
    assert out.num_cached_tokens > 0  # siblings hit the first sample's prompt blocks


def test_stop_string_and_logprobs(loaded):
    llm = _engine(loaded)
    base = llm.generate([PROMPTS[4]], SamplingParams(temperature=0, max_tokens=20), use_tqdm=False)[0].outputs[0]
    words = base.text.split()
    assert len(words) >= 2
    stop = words[1]
    out = llm.generate([PROMPTS[4]], SamplingParams(temperature=0, max_tokens=20, stop=[stop], logprobs=3), use_tqdm=False)[0].outputs[0]
    assert out.finish_reason == "stop" and out.stop_reason == stop
    assert stop not in out.text and base.text.startswith(out.text)
    assert len(out.logprobs) == len(out.token_ids)
    for tok, lp in zip(out.token_ids, out.logprobs):
        assert tok in lp and lp[tok].logprob <= 0
        assert len(lp) >= 3
