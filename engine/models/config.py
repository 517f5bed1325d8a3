"""ModelConfig: the frozen description of one Llama-family decoder, read from a HF config.

Llama, Mistral, Qwen2 and Qwen3 share one block; everything that differs between them is a flag
here (biases, q/k norm, tied embeddings, sliding window per layer, rope scaling). `from_hf_config`
is the only place that knows how each architecture spells those flags in transformers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

# HF architecture class -> model_type; the model_type is used when `architectures` is missing.
SUPPORTED_ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
}
ROPE_TYPES = ("default", "linear", "llama3", "yarn")


@dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding parameters (HF `rope_parameters` / `rope_scaling`, flattened)."""

    theta: float = 10000.0
    rope_type: str = "default"  # one of ROPE_TYPES
    factor: float | None = None  # linear / llama3 / yarn
    original_max_position_embeddings: int | None = None  # llama3 / yarn
    low_freq_factor: float = 1.0  # llama3
    high_freq_factor: float = 4.0  # llama3
    beta_fast: float = 32.0  # yarn
    beta_slow: float = 1.0  # yarn
    attention_factor: float | None = None  # yarn: cos/sin multiplier (None: derived from factor)
    mscale: float | None = None  # yarn
    mscale_all_dim: float | None = None  # yarn
    truncate: bool = True  # yarn


@dataclass(frozen=True)
class ModelConfig:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int
    rope: RopeConfig = field(default_factory=RopeConfig)
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    qkv_bias: bool = False  # bias on q/k/v projections (Qwen2 always; Llama/Qwen3 attention_bias)
    o_bias: bool = False  # bias on the output projection (Llama/Qwen3 attention_bias)
    mlp_bias: bool = False  # Llama's mlp_bias
    qk_norm: bool = False  # Qwen3: RMSNorm over head_dim on q and k before rotary
    sliding_window: int | None = None
    # per layer: True where that layer attends only to the last `sliding_window` positions
    sliding_layers: tuple[bool, ...] = ()
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    dtype: torch.dtype = torch.float32

    @property
    def attention_bias(self) -> bool:
        return self.qkv_bias or self.o_bias

    def layer_window(self, layer: int) -> int | None:
        """The sliding window of one layer, or None for full causal attention."""
        if self.sliding_window is None or not self.sliding_layers or not self.sliding_layers[layer]:
            return None
        return self.sliding_window

    def with_dtype(self, dtype: torch.dtype) -> "ModelConfig":
        return dataclasses.replace(self, dtype=dtype)

    @classmethod
    def from_hf_config(cls, hf_config, dtype: torch.dtype | None = None) -> "ModelConfig":
        """Read a transformers PretrainedConfig; ValueError names what is not supported."""
        arch = _architecture(hf_config)
        model_type = SUPPORTED_ARCHITECTURES[arch]
        act = getattr(hf_config, "hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise ValueError(f"{arch}: hidden_act {act!r} is not supported (only silu)")
        heads = hf_config.num_attention_heads
        head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // heads
        bias = bool(getattr(hf_config, "attention_bias", False))
        num_layers = hf_config.num_hidden_layers
        window, sliding = _sliding(hf_config, model_type, num_layers)
        return cls(
            architecture=arch,
            vocab_size=hf_config.vocab_size,
            hidden_size=hf_config.hidden_size,
            intermediate_size=hf_config.intermediate_size,
            num_layers=num_layers,
            num_heads=heads,
            num_kv_heads=getattr(hf_config, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            max_position_embeddings=hf_config.max_position_embeddings,
            rope=_rope(hf_config),
            rms_norm_eps=float(hf_config.rms_norm_eps),
            tie_word_embeddings=bool(getattr(hf_config, "tie_word_embeddings", False)),
            qkv_bias=True if model_type == "qwen2" else (bias and model_type in ("llama", "qwen3")),
            o_bias=bias and model_type in ("llama", "qwen3"),
            mlp_bias=bool(getattr(hf_config, "mlp_bias", False)) and model_type == "llama",
            qk_norm=model_type == "qwen3",
            sliding_window=window,
            sliding_layers=sliding,
            bos_token_id=getattr(hf_config, "bos_token_id", None),
            eos_token_ids=_as_ids(getattr(hf_config, "eos_token_id", None)),
            dtype=dtype if dtype is not None else torch.float32,
        )


def _architecture(hf_config) -> str:
    archs = list(getattr(hf_config, "architectures", None) or [])
    for arch in archs:
        if arch in SUPPORTED_ARCHITECTURES:
            return arch
    if archs:
        raise ValueError(
            f"unsupported architecture {archs[0]!r}; supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    by_type = {v: k for k, v in SUPPORTED_ARCHITECTURES.items()}
    model_type = getattr(hf_config, "model_type", None)
    if model_type not in by_type:
        raise ValueError(
            f"unsupported model_type {model_type!r}; supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    return by_type[model_type]


def _sliding(hf_config, model_type: str, num_layers: int) -> tuple[int | None, tuple[bool, ...]]:
    window = getattr(hf_config, "sliding_window", None)
    if model_type == "llama" or window is None:
        return None, ()
    if model_type == "mistral":  # Mistral slides on every layer when a window is set
        return int(window), (True,) * num_layers
    layer_types = getattr(hf_config, "layer_types", None)
    if layer_types is None:  # transformers 4.x Qwen2/Qwen3 spelling
        if not getattr(hf_config, "use_sliding_window", False):
            return None, ()
        first = getattr(hf_config, "max_window_layers", num_layers)
        layer_types = ["sliding_attention" if i >= first else "full_attention" for i in range(num_layers)]
    sliding = tuple(t == "sliding_attention" for t in layer_types)
    return (int(window), sliding) if any(sliding) else (None, ())


def _rope(hf_config) -> RopeConfig:
    # transformers 5: rope_parameters holds everything; 4.x: rope_theta + optional rope_scaling
    params = dict(getattr(hf_config, "rope_parameters", None) or {})
    if "full_attention" in params:  # nested per-layer-type parameters
        params = dict(params["full_attention"])
    scaling = getattr(hf_config, "rope_scaling", None)
    if not params and scaling:
        params = dict(scaling)
    theta = params.get("rope_theta", getattr(hf_config, "rope_theta", 10000.0))
    rope_type = params.get("rope_type", params.get("type", "default")) or "default"
    if rope_type not in ROPE_TYPES:
        raise ValueError(f"rope type {rope_type!r} is not supported; supported: {', '.join(ROPE_TYPES)}")
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        raise ValueError("partial_rotary_factor != 1 is not supported")
    orig = params.get("original_max_position_embeddings")
    if orig is None and rope_type in ("llama3", "yarn"):
        orig = getattr(hf_config, "original_max_position_embeddings", hf_config.max_position_embeddings)
    factor = params.get("factor")
    return RopeConfig(
        theta=float(theta),
        rope_type=rope_type,
        factor=None if factor is None else float(factor),
        original_max_position_embeddings=None if orig is None else int(orig),
        low_freq_factor=float(params.get("low_freq_factor", 1.0)),
        high_freq_factor=float(params.get("high_freq_factor", 4.0)),
        beta_fast=float(params.get("beta_fast") or 32.0),
        beta_slow=float(params.get("beta_slow") or 1.0),
        attention_factor=params.get("attention_factor"),
        mscale=params.get("mscale"),
        mscale_all_dim=params.get("mscale_all_dim"),
        truncate=bool(params.get("truncate", True)),
    )


def _as_ids(value) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)
