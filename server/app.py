"""The FastAPI app: OpenAI-compatible endpoints over one AsyncLLMEngine.

    GET  /health               200 once the model is loaded, 503 before (and if loading failed)
    GET  /metrics              Prometheus text (server.metrics)
    GET  /v1/models[/{id}]     the served model
    POST /v1/completions       server.openai_completions
    POST /v1/chat/completions  server.openai_chat

The socket is bound first and the model loads in a background task, so /health answers at once.
With an API key set, every /v1 route needs `Authorization: Bearer KEY` (compared in constant time).
A client that disconnects cancels its handler, which aborts its engine requests.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from server.errors import APIError, bad_request, from_validation_errors
from server.generation import Admission, cancel_on_disconnect
from server.metrics import Metrics
from server.protocol import ChatCompletionRequest, CompletionRequest
from server.tools import ToolGrammarCache

logger = logging.getLogger("gramserve.server")


@dataclass(frozen=True)
class ServerConfig:
    model: str | None = None
    served_model_name: str | None = None
    api_key: str | None = None
    max_queue: int = 64  # sequences allowed to wait beyond max_num_seqs before 429
    engine_kwargs: dict = field(default_factory=dict)  # EngineConfig.from_kwargs options


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine = None  # AsyncLLMEngine once loaded
        self.load_error: str | None = None
        self.served_model_name = config.served_model_name
        self.metrics = Metrics(self)
        self.admission = Admission(capacity=0)
        self.tool_grammars = ToolGrammarCache()
        self.created = int(time.time())

    def load(self) -> None:
        """Build the engine (blocking: runs on a worker thread)."""
        from engine.async_engine import AsyncLLMEngine
        from engine.config import EngineConfig
        from engine.llm_engine import LLMEngine

        cfg = EngineConfig.from_kwargs(model=self.config.model, max_waiting=self.config.max_queue,
                                       **self.config.engine_kwargs)
        core = LLMEngine(cfg, progress=False)
        self.served_model_name = self.config.served_model_name or core.loaded.name
        self.admission.capacity = cfg.scheduler.max_num_seqs + self.config.max_queue
        self.engine = AsyncLLMEngine(core)

    def require_engine(self) -> None:
        if self.engine is None:
            msg = f"the model failed to load: {self.load_error}" if self.load_error else "the model is loading"
            raise APIError(503, msg, code="model_not_ready", headers={"Retry-After": "5"})
        if self.engine.dead is not None:
            raise APIError(503, f"the engine stopped: {self.engine.dead!r}", code="engine_dead")

    def check_model(self, name: str) -> None:
        if name != self.served_model_name:
            raise APIError(404, f"the model {name!r} does not exist; this server serves "
                                f"{self.served_model_name!r}", param="model", code="model_not_found")


def _authorized(request: Request, key: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


async def _body(request: Request, model):
    try:
        data = await request.json()
    except ValueError:
        raise bad_request("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise from_validation_errors(e.errors()) from None


def create_app(config: ServerConfig) -> FastAPI:
    state = ServerState(config)

    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()

        async def load() -> None:
            try:
                await loop.run_in_executor(None, state.load)
                logger.info("model loaded: %s", state.served_model_name)
            except Exception as e:  # reported by /health and every /v1 route
                logger.exception("model load failed")
                state.load_error = f"{type(e).__name__}: {e}"

        task = asyncio.create_task(load())
        yield
        task.cancel()
        if state.engine is not None:
            state.engine.shutdown()

    app = FastAPI(title="gramserve", lifespan=lifespan)
    app.state.gramserve = state
    _install_middleware(app, state)
    _install_routes(app, state)
    return app


def _install_middleware(app: FastAPI, state: ServerState) -> None:
    @app.middleware("http")
    async def auth_and_count(request: Request, call_next):
        path = request.url.path
        if path.startswith("/v1") and state.config.api_key and not _authorized(request, state.config.api_key):
            response = APIError(401, "invalid or missing API key", code="invalid_api_key").response()
        else:
            response = await call_next(request)
        if path.startswith("/v1/"):
            endpoint = path if path in ("/v1/completions", "/v1/chat/completions", "/v1/models") else "other"
            state.metrics.requests.labels(endpoint, str(response.status_code)).inc()
        return response

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return from_validation_errors(exc.errors()).response()

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        logger.exception("unhandled error")
        return APIError(500, f"internal error: {type(exc).__name__}: {exc}").response()


def _install_routes(app: FastAPI, state: ServerState) -> None:
    from server.openai_chat import create_chat_completion
    from server.openai_completions import create_completion

    @app.get("/health")
    async def health():
        if state.engine is None or state.engine.dead is not None:
            detail = state.load_error or ("engine stopped" if state.engine is not None else "loading")
            return JSONResponse({"status": "unavailable", "detail": detail}, status_code=503)
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics():
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models")
    async def models():
        state.require_engine()
        return {"object": "list", "data": [_model_card(state)]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        state.require_engine()
        state.check_model(model_id)
        return _model_card(state)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        state.require_engine()
        req = await _body(request, ChatCompletionRequest)
        task = asyncio.create_task(create_chat_completion(state, req, request))
        return await cancel_on_disconnect(request, task)

    @app.post("/v1/completions")
    async def completions(request: Request):
        state.require_engine()
        req = await _body(request, CompletionRequest)
        task = asyncio.create_task(create_completion(state, req, request))
        return await cancel_on_disconnect(request, task)


def _model_card(state: ServerState) -> dict:
    core = state.engine.engine
    return {"id": state.served_model_name, "object": "model", "created": state.created, "owned_by": "gramserve",
            "max_model_len": core.max_model_len}
