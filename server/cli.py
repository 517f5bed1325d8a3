"""The `gramserve` command line.

    gramserve generate "prompt" [--max-tokens N] [--temperature T] [--chat] [--model PATH]
    gramserve serve [--model PATH] [--host 127.0.0.1] [--port 8000] [--api-key KEY]
                    [--served-model-name NAME] [--max-num-seqs N] [--max-queue N] ...
"""
from __future__ import annotations

import argparse
import sys


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="HF directory or GGUF file (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16"], help="default: the measured CPU default")
    p.add_argument("--max-num-seqs", type=int, default=None)
    p.add_argument("--max-num-batched-tokens", type=int, default=None)
    p.add_argument("--max-model-len", type=int, default=None)


def _engine_kwargs(args: argparse.Namespace) -> dict:
    kw = {"dtype": args.dtype}
    for name in ("max_num_seqs", "max_num_batched_tokens", "max_model_len"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    return kw


def cmd_generate(args: argparse.Namespace) -> int:
    from engine import LLM, InvalidParameterError, SamplingParams

    try:
        params = SamplingParams(
            temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed,
            stop=args.stop or None,
        )
    except InvalidParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    llm = LLM(model=args.model, **_engine_kwargs(args))
    prompts = args.prompt
    if args.chat:
        outs = llm.chat([[{"role": "user", "content": p}] for p in prompts], params, use_tqdm=False)
    else:
        outs = llm.generate(prompts, params, use_tqdm=False)
    for out in outs:
        if len(outs) > 1:
            print(f"=== {out.prompt!r}")
        print(out.outputs[0].text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the OpenAI-compatible server until SIGINT/SIGTERM (uvicorn shuts down gracefully:
    open streams end, the engine thread stops)."""
    import logging
    import os

    import uvicorn

    from server.app import ServerConfig, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_key = args.api_key or os.environ.get("GRAMSERVE_API_KEY")
    config = ServerConfig(model=args.model, served_model_name=args.served_model_name, api_key=api_key,
                          max_queue=args.max_queue, engine_kwargs=_engine_kwargs(args))
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=5)
    return 0


def _add_serve_parser(sub) -> None:
    s = sub.add_parser("serve", help="serve the OpenAI-compatible API (chat, completions, tools, structured outputs)")
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (or set GRAMSERVE_API_KEY)")
    s.add_argument("--served-model-name", default=None, help="the model id clients send (default: the model's name)")
    s.add_argument("--max-queue", type=int, default=64,
                   help="sequences that may wait beyond --max-num-seqs; more get 429 with Retry-After")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    _add_engine_args(s)
    s.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gramserve", description="gramserve: structured-generation LLM serving")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate text offline for one or more prompts")
    g.add_argument("prompt", nargs="+")
    g.add_argument("--max-tokens", type=int, default=64)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--stop", action="append", default=[])
    g.add_argument("--chat", action=argparse.BooleanOptionalAction, default=True,
                   help="wrap each prompt as a user message through the chat template (default on)")
    _add_engine_args(g)
    g.set_defaults(func=cmd_generate)
    _add_serve_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
