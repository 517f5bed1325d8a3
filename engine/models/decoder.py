"""DecoderLM: one pre-norm decoder for Llama, Mistral, Qwen2 and Qwen3 over a paged KV cache.

    x = embed(input_ids)                                     [T, H]
    per layer:  h = x + o_proj(attn(rope(qkv(rms(x)))))      attention reads/writes the paged cache
                x = h + down(silu(gate) * up)(rms(h))        gate|up is one fused matmul
    hidden = rms(x)                                          [T, H], logits only for chosen rows

Each residual add is fused with the norm that follows it (`kernels.add_rms_norm`): a layer takes
(x, rms(x)) and returns (h, mlp output), and the next layer's input norm (or the final norm) adds.

The flat batch (engine/forward_batch.py) is passed explicitly; no per-sequence Python loop lives
here (the attention kernel owns that). q/k/v and gate/up are fused at load time, so a layer runs
four matmuls. Parameter names of the checkpoint are HF's; `load_hf_state_dict` maps them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from engine.forward_batch import ForwardBatch
from engine.models.config import ModelConfig
from engine.models.rope import apply_rotary, cos_sin_table

KVCache = tuple[torch.Tensor, torch.Tensor]  # k, v: [num_blocks, block_size, Hkv, D] each
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        h, d, dt = cfg.hidden_size, cfg.head_dim, cfg.dtype
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, d
        self.q_size, self.kv_size = cfg.num_heads * d, cfg.num_kv_heads * d
        self.eps = cfg.rms_norm_eps
        self.scale = d**-0.5
        self.window = cfg.layer_window(layer)
        self.input_norm = nn.Parameter(torch.ones(h, dtype=dt))
        # rows: [q (Hq*D) | k (Hkv*D) | v (Hkv*D)]
        self.qkv_proj = nn.Linear(h, self.q_size + 2 * self.kv_size, bias=cfg.qkv_bias, dtype=dt)
        self.q_norm = nn.Parameter(torch.ones(d, dtype=dt)) if cfg.qk_norm else None
        self.k_norm = nn.Parameter(torch.ones(d, dtype=dt)) if cfg.qk_norm else None
        self.o_proj = nn.Linear(self.q_size, h, bias=cfg.o_bias, dtype=dt)
        self.post_norm = nn.Parameter(torch.ones(h, dtype=dt))
        # rows: [gate (I) | up (I)]
        self.gate_up_proj = nn.Linear(h, 2 * cfg.intermediate_size, bias=cfg.mlp_bias, dtype=dt)
        self.down_proj = nn.Linear(cfg.intermediate_size, h, bias=cfg.mlp_bias, dtype=dt)
        self.packed: dict[str, object] | None = None  # kernels.pack_linear handles, see DecoderLM.pack

    def proj(self, name: str, x: torch.Tensor) -> torch.Tensor:
        linear = getattr(self, name)
        if self.packed is None:
            return F.linear(x, linear.weight, linear.bias)
        return kernels.linear(x, self.packed[name], linear.bias)

    def attention(self, x: torch.Tensor, rope_table: torch.Tensor, batch: ForwardBatch, kv: KVCache) -> torch.Tensor:
        t, hq, hkv, d = x.shape[0], self.num_heads, self.num_kv_heads, self.head_dim
        qkv = self.proj("qkv_proj", x)  # [T, (Hq + 2 Hkv) D]
        k_cache, v_cache = kv
        if self.q_norm is None:  # rotate q and k, write k and v to the cache: one kernel
            q = kernels.rope_write_kv(qkv, hq, hkv, rope_table, batch.positions, k_cache, v_cache,
                                      batch.slot_mapping)  # [T, Hq, D]
        else:  # Qwen3: per-head RMSNorm on q and k (their own weights) before the rotation
            qk = qkv[:, : self.q_size + self.kv_size].view(t, hq + hkv, d)  # [T, Hq + Hkv, D]
            v = qkv[:, self.q_size + self.kv_size :].view(t, hkv, d)  # [T, Hkv, D]
            qk = torch.cat([F.rms_norm(qk[:, :hq], (d,), self.q_norm, self.eps),
                            F.rms_norm(qk[:, hq:], (d,), self.k_norm, self.eps)], dim=1)
            cos, sin = rope_table[batch.positions].chunk(2, dim=-1)  # [T, D/2] each
            qk = apply_rotary(qk, cos.unsqueeze(1), sin.unsqueeze(1))  # q and k heads in one pass
            q = qk[:, :hq]  # [T, Hq, D]
            kernels.write_kv(k_cache, v_cache, qk[:, hq:], v, batch.slot_mapping)
        out = kernels.paged_attention(
            q, k_cache, v_cache, batch.query_start_loc, batch.seq_lens, batch.block_tables,
            self.scale, self.window, max_query_len=batch.max_query_len,
        )  # [T, Hq, D]
        return self.proj("o_proj", out.reshape(t, self.q_size))  # [T, H]

    def forward(
        self, residual: torch.Tensor, normed: torch.Tensor, rope_table: torch.Tensor, batch: ForwardBatch, kv: KVCache,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(residual x, rms(x) by input_norm) -> (h, mlp(rms(h) by post_norm)), h = x + attention.

        The MLP output is returned unadded: the next norm adds it to h in the same pass."""
        h, normed = kernels.add_rms_norm(self.attention(normed, rope_table, batch, kv), residual, self.post_norm,
                                         self.eps)
        gate_up = self.proj("gate_up_proj", normed)  # [T, 2I]
        return h, self.proj("down_proj", kernels.silu_mul(gate_up))  # [T, H] each


class DecoderLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, dtype=cfg.dtype)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.num_layers))
        self.norm = nn.Parameter(torch.ones(cfg.hidden_size, dtype=cfg.dtype))
        self.lm_head = None
        if not cfg.tie_word_embeddings:
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False, dtype=cfg.dtype)
        self.register_buffer("rope_table", torch.empty(0), persistent=False)
        self.packed_head = None  # kernels.pack_linear handle of output_weight, see pack()
        self.init_buffers()

    def init_buffers(self) -> None:
        """(Re)compute the non-parameter state: the [P, D] cos|sin table, in the model dtype."""
        if self.norm.is_meta:  # built on the meta device: computed after materialization
            return
        table = cos_sin_table(self.cfg.rope, self.cfg.head_dim, self.cfg.max_position_embeddings)
        self.rope_table = table.to(device=self.norm.device, dtype=self.cfg.dtype)

    @property
    def output_weight(self) -> torch.Tensor:  # [V, H]
        return self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def forward(self, batch: ForwardBatch, kv_caches: list[KVCache]) -> torch.Tensor:
        """Run every layer over the flat batch; returns final-normed hidden states [T, H]."""
        x = self.embed_tokens(batch.input_ids)  # [T, H]
        eps = self.cfg.rms_norm_eps
        residual, normed = kernels.add_rms_norm(x, None, self.layers[0].input_norm, eps)
        for i, (layer, kv) in enumerate(zip(self.layers, kv_caches, strict=True)):
            h, mlp_out = layer(residual, normed, self.rope_table, batch, kv)
            next_norm = self.layers[i + 1].input_norm if i + 1 < len(self.layers) else self.norm
            residual, normed = kernels.add_rms_norm(mlp_out, h, next_norm, eps)  # x = h + mlp(h), normed
        return normed

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[N, H] -> [N, V] float32."""
        if self.packed_head is not None:
            return kernels.linear(hidden.to(self.cfg.dtype), self.packed_head).float()
        return F.linear(hidden.to(self.cfg.dtype), self.output_weight).float()

    _PROJECTIONS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")

    @torch.no_grad()
    def pack(self) -> None:
        """Hand every matmul weight to the kernel backend's `pack_linear` once, after loading.

        On the CPU that re-lays float32 weights out for oneDNN (kernels/cpu_linear.py); the
        layers' own weights are then released (the packed copy replaces them), so a packed model
        cannot load a checkpoint again. The LM head is packed beside the embedding it may share.
        """
        if self.packed_head is not None:
            return
        pack_linear = kernels.pack_linear
        for layer in self.layers:
            packed = {name: pack_linear(getattr(layer, name).weight) for name in self._PROJECTIONS}
            if all(handle is getattr(layer, name).weight for name, handle in packed.items()):
                return  # this backend keeps plain weights: nothing to pack
            for name in self._PROJECTIONS:
                linear = getattr(layer, name)
                linear.weight = nn.Parameter(torch.empty(0, dtype=linear.weight.dtype), requires_grad=False)
            layer.packed = packed
        self.packed_head = pack_linear(self.output_weight)

    @torch.no_grad()
    def load_hf_state_dict(self, state_dict: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy HF-named weights in (fusing q/k/v and gate/up); raise on missing or unknown names."""
        if self.packed_head is not None:
            raise RuntimeError("this model's weights were packed for the kernels; build a new one to load weights")
        items = state_dict.items() if isinstance(state_dict, Mapping) else state_dict
        filled: set[str] = set()
        for name, tensor in items:
            target = self._target(name)
            if target is None:
                continue
            key, dest = target
            if dest.shape != tensor.shape:
                raise ValueError(f"{name}: checkpoint shape {tuple(tensor.shape)} != model {tuple(dest.shape)}")
            dest.copy_(tensor)
            filled.add(key)
        missing = sorted(set(self._expected_keys()) - filled)
        if missing:
            raise KeyError(f"checkpoint is missing {len(missing)} weights, e.g. {missing[:4]}")

    def _target(self, name: str) -> tuple[str, torch.Tensor] | None:
        """HF parameter name -> (name, the slice of our parameter it fills), None if ignored."""
        if name.endswith(_IGNORED_SUFFIXES) or (name == "lm_head.weight" and self.lm_head is None):
            return None
        if name == "model.embed_tokens.weight":
            return name, self.embed_tokens.weight
        if name == "model.norm.weight":
            return name, self.norm
        if name == "lm_head.weight":
            return name, self.lm_head.weight
        parts = name.split(".")  # model.layers.{i}.{module}.{proj}.{weight|bias}
        if len(parts) < 5 or parts[:2] != ["model", "layers"] or not parts[2].isdigit():
            raise ValueError(f"unexpected weight {name!r} for {self.cfg.architecture}")
        layer = self.layers[int(parts[2])]
        dest = _layer_slice(layer, ".".join(parts[3:]), self.cfg.intermediate_size)
        if dest is None:
            raise ValueError(f"unexpected weight {name!r} for {self.cfg.architecture}")
        return name, dest

    def _expected_keys(self) -> list[str]:
        cfg = self.cfg
        keys = ["model.embed_tokens.weight", "model.norm.weight"]
        if self.lm_head is not None:
            keys.append("lm_head.weight")
        per_layer = ["input_layernorm.weight", "post_attention_layernorm.weight"]
        mlp = ("gate", "up", "down")
        per_layer += [f"self_attn.{p}_proj.weight" for p in "qkvo"] + [f"mlp.{p}_proj.weight" for p in mlp]
        per_layer += [f"self_attn.{p}_proj.bias" for p in "qkv" if cfg.qkv_bias]
        per_layer += ["self_attn.o_proj.bias"] if cfg.o_bias else []
        per_layer += [f"mlp.{p}_proj.bias" for p in mlp if cfg.mlp_bias]
        per_layer += ["self_attn.q_norm.weight", "self_attn.k_norm.weight"] if cfg.qk_norm else []
        return keys + [f"model.layers.{i}.{k}" for i in range(cfg.num_layers) for k in per_layer]


def _layer_slice(layer: DecoderLayer, name: str, inter: int) -> torch.Tensor | None:
    """A layer-relative HF name ('self_attn.k_proj.weight') -> the tensor (slice) it lands in."""
    q, kv = layer.q_size, layer.kv_size
    module, _, kind = name.rpartition(".")  # kind: weight | bias
    if kind not in ("weight", "bias"):
        return None
    fused = {  # HF module -> (our fused linear, row range)
        "self_attn.q_proj": (layer.qkv_proj, 0, q),
        "self_attn.k_proj": (layer.qkv_proj, q, q + kv),
        "self_attn.v_proj": (layer.qkv_proj, q + kv, q + 2 * kv),
        "mlp.gate_proj": (layer.gate_up_proj, 0, inter),
        "mlp.up_proj": (layer.gate_up_proj, inter, 2 * inter),
    }
    plain = {
        "self_attn.o_proj": layer.o_proj, "mlp.down_proj": layer.down_proj,
    }
    norms = {
        "input_layernorm": layer.input_norm, "post_attention_layernorm": layer.post_norm,
        "self_attn.q_norm": layer.q_norm, "self_attn.k_norm": layer.k_norm,
    }
    if module in fused:
        linear, start, stop = fused[module]
        param = getattr(linear, kind)
        return None if param is None else param[start:stop]
    if module in plain:
        return getattr(plain[module], kind)
    if module in norms and kind == "weight":
        return norms[module]
    return None
