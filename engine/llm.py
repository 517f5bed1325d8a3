"""The offline API, shaped like vLLM's so code ports by changing the import.

    from engine import LLM, SamplingParams
    llm = LLM()                                   # the embedded SmolLM2-135M-Instruct
    outs = llm.generate(["Hello"], SamplingParams(temperature=0, max_tokens=32))
    outs[0].outputs[0].text
"""
from __future__ import annotations

from typing import Any, Sequence

from tqdm.auto import tqdm

from engine.config import EngineConfig
from engine.llm_engine import EngineOutput, LLMEngine, PromptType
from engine.outputs import CompletionOutput, RequestOutput
from engine.sampling_params import SamplingParams


class LLM:
    def __init__(self, model: str | None = None, **kwargs: Any) -> None:
        progress = kwargs.pop("progress", True)
        self.engine = LLMEngine(EngineConfig.from_kwargs(model=model, **kwargs), progress=progress)
        self._counter = 0

    @classmethod
    def from_engine(cls, engine: LLMEngine) -> "LLM":
        """Wrap an existing engine (tests reuse one loaded model across engine configs)."""
        llm = cls.__new__(cls)
        llm.engine, llm._counter = engine, 0
        return llm

    def get_tokenizer(self):
        return self.engine.tokenizer

    def generate(
        self,
        prompts: PromptType | Sequence[PromptType],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
    ) -> list[RequestOutput]:
        if isinstance(prompts, (str, dict)) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        params = sampling_params or SamplingParams()
        plist = list(params) if isinstance(params, (list, tuple)) else [params] * len(prompts)
        if len(plist) != len(prompts):
            raise ValueError("sampling_params must be one SamplingParams or one per prompt")
        return self._run(list(prompts), plist, use_tqdm)

    def chat(
        self,
        messages: list[dict] | list[list[dict]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
        add_generation_prompt: bool = True,
        tools: list[dict] | None = None,
        chat_template: str | None = None,
    ) -> list[RequestOutput]:
        convs = [messages] if messages and isinstance(messages[0], dict) else messages
        prompts = [
            {"prompt_token_ids": self.engine.tokenizer.encode(
                self.render_chat(c, add_generation_prompt, tools, chat_template), add_special_tokens=False)}
            for c in convs
        ]
        return self.generate(prompts, sampling_params, use_tqdm)

    def render_chat(self, conv: list[dict], add_generation_prompt: bool = True, tools=None, chat_template=None) -> str:
        tok = self.engine.tokenizer
        kw = {"tools": tools} if tools else {}
        return tok.apply_chat_template(
            conv, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=chat_template, **kw
        )

    def _run(self, prompts: list[PromptType], plist: list[SamplingParams], use_tqdm: bool) -> list[RequestOutput]:
        eng = self.engine
        results: dict[str, RequestOutput] = {}
        order = []
        for prompt, p in zip(prompts, plist):
            rid = f"offline-{self._counter}"
            self._counter += 1
            text, ids = eng.tokenize_prompt(prompt)  # once: the engine takes the ids as they are
            eng.add_request(rid, {"prompt": text, "prompt_token_ids": ids}, p)
            outs = [CompletionOutput(index=i, text="", token_ids=[], cumulative_logprob=None,
                                     logprobs=[] if p.logprobs is not None else None, finish_reason=None)
                    for i in range(p.n)]
            results[rid] = RequestOutput(request_id=rid, prompt=text, prompt_token_ids=ids, outputs=outs, finished=False)
            order.append(rid)
        pending = {rid: plist[i].n for i, rid in enumerate(order)}
        bar = tqdm(total=len(order), desc="Processed prompts", disable=not use_tqdm, unit="req")
        try:
            while eng.has_unfinished_requests():
                for o in eng.step():
                    self._apply(results[o.request_id], o)
                    if o.finished:
                        pending[o.request_id] -= 1
                        if pending[o.request_id] == 0:
                            results[o.request_id].finished = True
                            bar.update(1)
        finally:
            bar.close()
            for rid in order:  # an interrupted run must not leave requests behind
                if not results[rid].finished:
                    eng.abort_request(rid)
        return [results[rid] for rid in order]

    @staticmethod
    def _apply(ro: RequestOutput, o: EngineOutput) -> None:
        c = ro.outputs[o.index]
        c.token_ids.extend(o.new_token_ids)
        c.text += o.delta_text
        if o.new_logprobs is not None and c.logprobs is not None:
            c.logprobs.extend(o.new_logprobs)
            c.cumulative_logprob = (c.cumulative_logprob or 0.0) + sum(
                d[t].logprob for d, t in zip(o.new_logprobs, o.new_token_ids)
            )
        if o.finished:
            c.finish_reason, c.stop_reason, c.error = o.finish_reason, o.stop_reason, o.error
            ro.num_cached_tokens = max(ro.num_cached_tokens, o.num_cached_tokens)
