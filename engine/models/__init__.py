"""Models: one Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) over the paged KV cache."""
from engine.models.config import SUPPORTED_ARCHITECTURES, ModelConfig, RopeConfig
from engine.models.decoder import DecoderLM

__all__ = ["SUPPORTED_ARCHITECTURES", "DecoderLM", "ModelConfig", "RopeConfig"]
