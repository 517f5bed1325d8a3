"""SamplingParams / StructuredOutputsParams validation and normalization; output records."""
from __future__ import annotations

import pickle

import pytest

from engine.errors import InvalidParameterError
from engine.outputs import CompletionOutput, Logprob, RequestOutput
from engine.sampling_params import SamplingParams, SamplingType, StructuredOutputsParams


def test_defaults_match_vllm():
    p = SamplingParams()
    assert (p.n, p.presence_penalty, p.frequency_penalty, p.repetition_penalty) == (1, 0, 0, 1)
    assert (p.temperature, p.top_p, p.top_k, p.min_p, p.seed) == (1.0, 1.0, 0, 0.0, None)
    assert (p.stop, p.stop_token_ids, p.ignore_eos) == ([], [], False)
    assert (p.max_tokens, p.min_tokens, p.logprobs) == (16, 0, None)
    assert (p.include_stop_str_in_output, p.skip_special_tokens) == (False, True)
    assert p.logit_bias is None and p.structured_outputs is None
    assert p.sampling_type is SamplingType.RANDOM


INVALID = [
    ({"n": 0}, "n"), ({"n": 1.5}, "n"), ({"n": 10_000}, "n"),
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"frequency_penalty": -2.1}, "frequency_penalty"),
    ({"frequency_penalty": float("nan")}, "frequency_penalty"),
    ({"repetition_penalty": 0.0}, "repetition_penalty"),
    ({"repetition_penalty": float("inf")}, "repetition_penalty"),
    ({"temperature": -0.1}, "temperature"), ({"temperature": 2.5}, "temperature"),
    ({"temperature": float("inf")}, "temperature"), ({"temperature": "hot"}, "temperature"),
    ({"top_p": 0.0}, "top_p"), ({"top_p": 1.01}, "top_p"),
    ({"top_k": -2}, "top_k"), ({"top_k": 2.0}, "top_k"),
    ({"min_p": -0.01}, "min_p"), ({"min_p": 1.5}, "min_p"),
    ({"seed": 1.5}, "seed"),
    ({"max_tokens": 0}, "max_tokens"), ({"max_tokens": True}, "max_tokens"),
    ({"min_tokens": -1}, "min_tokens"), ({"min_tokens": 20, "max_tokens": 10}, "min_tokens"),
    ({"logprobs": -1}, "logprobs"), ({"logprobs": 21}, "logprobs"),
    ({"stop": ""}, "stop"), ({"stop": ["ok", ""]}, "stop"), ({"stop": [3]}, "stop"),
    ({"stop": 7}, "stop"),
    ({"stop_token_ids": [-1]}, "stop_token_ids"), ({"stop_token_ids": ["2"]}, "stop_token_ids"),
    ({"logit_bias": {5: 101}}, "logit_bias"), ({"logit_bias": {5: -100.5}}, "logit_bias"),
    ({"logit_bias": {"x": 1}}, "logit_bias"), ({"logit_bias": {-3: 1}}, "logit_bias"),
    ({"logit_bias": [1, 2]}, "logit_bias"),
    ({"ignore_eos": "yes"}, "ignore_eos"), ({"skip_special_tokens": 1}, "skip_special_tokens"),
    ({"include_stop_str_in_output": None}, "include_stop_str_in_output"),
    ({"structured_outputs": {"json": {}}}, "structured_outputs"),
    ({"temperature": 0.0, "n": 2}, "n"),
]


@pytest.mark.parametrize(("kwargs", "param"), INVALID)
def test_invalid_values_name_the_parameter(kwargs, param):
    with pytest.raises(InvalidParameterError) as info:
        SamplingParams(**kwargs)
    assert info.value.param == param
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{param}: ") and len(info.value.message) > 10


def test_boundaries_are_accepted():
    SamplingParams(temperature=2.0, top_p=1.0, min_p=1.0, presence_penalty=-2.0,
                   frequency_penalty=2.0, logprobs=20, logit_bias={0: -100, 1: 100},
                   min_tokens=16, max_tokens=16, top_k=1)
    SamplingParams(max_tokens=None, min_tokens=1000)  # None: the context window limits


def test_normalization():
    p = SamplingParams(stop="###", stop_token_ids=[5, 5, 7], top_k=-1, seed=-1, logprobs=True,
                       logit_bias={"12": 3, 4: -1.5}, temperature=0.001)
    assert p.stop == ["###"] and p.stop_token_ids == [5, 7]
    assert p.top_k == 0 and p.seed is None and p.logprobs == 1
    assert p.logit_bias == {12: 3.0, 4: -1.5}
    assert p.temperature == 0.01  # tiny temperatures are raised to keep logits / t finite
    assert SamplingParams(stop=["a", "b", "a"]).stop == ["a", "b"]


def test_greedy_turns_truncation_off():
    p = SamplingParams(temperature=0, top_p=0.5, top_k=5, min_p=0.2)
    assert p.sampling_type is SamplingType.GREEDY
    assert (p.top_p, p.top_k, p.min_p) == (1.0, 0, 0.0)
    assert SamplingParams(seed=3).sampling_type is SamplingType.RANDOM_SEED


def test_stop_token_sets_and_eos():
    p = SamplingParams(stop_token_ids=[7]).with_eos([2])
    assert p.all_stop_token_ids == {2, 7} and p.finish_token_ids == {2, 7}
    q = p.with_updates(ignore_eos=True)
    assert q.finish_token_ids == {7}  # EOS no longer ends the request...
    assert q.all_stop_token_ids == {2, 7}  # ...but is still masked before min_tokens
    assert SamplingParams().all_stop_token_ids == frozenset()


def test_clone_and_with_updates():
    p = SamplingParams(stop=["x"], logit_bias={1: 2.0}).with_eos([0])
    c = p.clone()
    c.stop.append("y")
    c.logit_bias[3] = 1.0
    assert p.stop == ["x"] and p.logit_bias == {1: 2.0}
    assert c.all_stop_token_ids == {0}
    u = p.with_updates(temperature=0.5, stop="z")
    assert u.temperature == 0.5 and u.stop == ["z"] and p.temperature == 1.0
    with pytest.raises(InvalidParameterError) as info:
        p.with_updates(top_p=0)
    assert info.value.param == "top_p"
    with pytest.raises(TypeError):
        p.with_updates(best_of=2)


def test_structured_outputs_exactly_one():
    with pytest.raises(InvalidParameterError, match="got none") as info:
        StructuredOutputsParams()
    assert info.value.param == "structured_outputs"
    with pytest.raises(InvalidParameterError, match="json, regex"):
        StructuredOutputsParams(json={}, regex="a+")


@pytest.mark.parametrize("kwargs", [
    {"json": "{not json"}, {"json": "[1, 2]"}, {"json": 3}, {"regex": ""}, {"grammar": 5},
    {"choice": []}, {"choice": ["a", 1]}, {"choice": "ab"}, {"json_object": False},
])
def test_structured_outputs_bad_values(kwargs):
    with pytest.raises(InvalidParameterError) as info:
        StructuredOutputsParams(**kwargs)
    assert info.value.param == "structured_outputs"


def test_structured_outputs_kind_and_cache_key():
    a = StructuredOutputsParams(json={"type": "object", "required": ["a"]})
    b = StructuredOutputsParams(json='{"required": ["a"], "type": "object"}')
    assert a.kind == "json" and a.cache_key() == b.cache_key()
    assert StructuredOutputsParams(regex="a+").cache_key() != \
        StructuredOutputsParams(grammar="a+").cache_key()
    assert StructuredOutputsParams(choice=["x", "y"]).kind == "choice"
    assert StructuredOutputsParams(json_object=True).kind == "json_object"
    p = SamplingParams(structured_outputs=a)
    assert p.clone().structured_outputs == a


def test_error_pickles():
    err = pickle.loads(pickle.dumps(InvalidParameterError("top_p", "must be in (0, 1]")))
    assert err.param == "top_p" and str(err) == "top_p: must be in (0, 1]"


def test_completion_output_finish_reasons():
    out = CompletionOutput(index=0, text="hi", token_ids=[1, 2], cumulative_logprob=-0.5,
                           logprobs=[{1: Logprob(-0.2, 1, "h")}, {2: Logprob(-0.3, 2, "i")}])
    assert not out.finished()
    done = CompletionOutput(0, "hi", [1], finish_reason="stop", stop_reason="###")
    assert done.finished() and done.stop_reason == "###"
    with pytest.raises(ValueError, match="finish_reason"):
        CompletionOutput(0, "", [], finish_reason="eos")
    with pytest.raises(ValueError, match="stop_reason"):
        CompletionOutput(0, "", [], finish_reason="length", stop_reason=5)
    req = RequestOutput("r1", "p", [9], [done], finished=True)
    assert req.num_cached_tokens == 0 and req.outputs[0].text == "hi"
