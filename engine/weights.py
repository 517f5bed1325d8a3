"""Checkpoint readers: HF safetensors directories and GGUF files, both yielding HF-named tensors.

GGUF: the header is parsed here from a memory map (the `gguf` package's GGUFReader materializes
every vocabulary string and takes seconds on a 49k vocabulary); tensor data is dequantized one
tensor at a time with `gguf.quants.dequantize`, renamed to HF names, and llama.cpp's q/k row
permutation is undone for the llama architecture.

    GGUF file:  magic "GGUF" | version u32 | n_tensors u64 | n_kv u64 | kv pairs | tensor infos
                | padding to `general.alignment` | tensor data (offsets relative to this start)
"""
from __future__ import annotations

import glob
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

# metadata scalar types: id -> (struct format, width); 8 = string, 9 = array
_SCALAR = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
           6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
# GGUF block name -> HF module name inside model.layers.N
_LAYER_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
GGUF_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}


@dataclass(frozen=True)
class GGUFTensorInfo:
    name: str
    shape: tuple[int, ...]  # torch order (rows first)
    ggml_type: int
    offset: int  # absolute byte offset in the file


@dataclass
class GGUFFile:
    path: str
    metadata: dict  # string arrays are kept as their length only (the tokenizer reads them itself)
    tensors: dict[str, GGUFTensorInfo]
    blob: np.ndarray  # uint8 memory map of the whole file

    @property
    def architecture(self) -> str:
        return self.metadata["general.architecture"]


def _string(blob: np.ndarray, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", blob, pos)
    return bytes(blob[pos + 8 : pos + 8 + n]).decode("utf-8", errors="replace"), pos + 8 + n


def _value(blob: np.ndarray, pos: int, vtype: int):
    if vtype in _SCALAR:
        fmt, width = _SCALAR[vtype]
        return struct.unpack_from(fmt, blob, pos)[0], pos + width
    if vtype == 8:
        return _string(blob, pos)
    if vtype != 9:
        raise ValueError(f"GGUF metadata value of unknown type {vtype}")
    etype, count = struct.unpack_from("<IQ", blob, pos)
    pos += 12
    if etype in _SCALAR:
        fmt, width = _SCALAR[etype]
        if count > 4096:  # token types / scores: not needed here, skip the bytes
            return count, pos + count * width
        return list(struct.unpack_from(f"<{count}{fmt[1]}", blob, pos)), pos + count * width
    if etype != 8:
        raise ValueError(f"GGUF metadata array of unsupported element type {etype}")
    for _ in range(count):  # vocabulary / merges: walk past, keep the length
        (n,) = struct.unpack_from("<Q", blob, pos)
        pos += 8 + n
    return count, pos


def read_gguf(path: str) -> GGUFFile:
    """Parse the metadata and tensor table of a GGUF v2/v3 file (no tensor data is read)."""
    blob = np.memmap(path, mode="r", dtype=np.uint8)
    if bytes(blob[:4]) != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file (bad magic)")
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", blob, 4)
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version} is not supported (2 or 3)")
    pos, metadata = 24, {}
    for _ in range(n_kv):
        key, pos = _string(blob, pos)
        (vtype,) = struct.unpack_from("<I", blob, pos)
        metadata[key], pos = _value(blob, pos + 4, vtype)
    infos = []
    for _ in range(n_tensors):
        name, pos = _string(blob, pos)
        (ndim,) = struct.unpack_from("<I", blob, pos)
        dims = struct.unpack_from(f"<{ndim}Q", blob, pos + 4)
        ggml_type, offset = struct.unpack_from("<IQ", blob, pos + 4 + 8 * ndim)
        pos += 4 + 8 * ndim + 12
        infos.append((name, tuple(reversed(dims)), ggml_type, offset))  # ggml lists fastest dim first
    align = metadata.get("general.alignment", 32)
    data_start = (pos + align - 1) // align * align
    tensors = {n: GGUFTensorInfo(n, s, t, data_start + o) for n, s, t, o in infos}
    return GGUFFile(path, metadata, tensors, blob)


def dequantize(gf: GGUFFile, info: GGUFTensorInfo) -> torch.Tensor:
    """One tensor as float32 in torch order."""
    import gguf

    qtype = gguf.GGMLQuantizationType(info.ggml_type)
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    numel = int(np.prod(info.shape))
    nbytes = numel // block * type_size
    raw = gf.blob[info.offset : info.offset + nbytes]
    if qtype == gguf.GGMLQuantizationType.F32:
        arr = raw.view(np.float32).copy()
    elif qtype == gguf.GGMLQuantizationType.F16:
        arr = raw.view(np.float16).astype(np.float32)
    else:
        rows = numel // info.shape[-1]
        arr = gguf.quants.dequantize(raw.reshape(rows, -1), qtype)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).reshape(info.shape)


def hf_name(gguf_name: str) -> str | None:
    """'blk.3.attn_q.weight' -> 'model.layers.3.self_attn.q_proj.weight'; None if not a model weight."""
    base, _, kind = gguf_name.rpartition(".")
    if base in _TOP_NAMES:
        return f"{_TOP_NAMES[base]}.{kind}"
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _LAYER_NAMES:
        return f"model.layers.{parts[1]}.{_LAYER_NAMES[parts[2]]}.{kind}"
    return None  # e.g. rope_freqs.weight (llama3 factors, derived from the config instead)


def unpermute_qk(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's interleaving of the rotary halves: rows (head, d/2, 2) -> (head, 2, d/2)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def iter_gguf_tensors(gf: GGUFFile, progress: bool = True) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (HF name, float32 tensor) for every model weight of the file."""
    from tqdm.auto import tqdm

    arch = gf.architecture
    heads = gf.metadata.get(f"{arch}.attention.head_count")
    kv_heads = gf.metadata.get(f"{arch}.attention.head_count_kv", heads)
    for info in tqdm(gf.tensors.values(), desc="Loading GGUF", unit="tensor", disable=not progress):
        name = hf_name(info.name)
        if name is None:
            continue
        tensor = dequantize(gf, info)
        if arch == "llama" and ".attn_q." in info.name:
            tensor = unpermute_qk(tensor, heads)
        elif arch == "llama" and ".attn_k." in info.name:
            tensor = unpermute_qk(tensor, kv_heads)
        yield name, tensor


def gguf_hf_config(gf: GGUFFile):
    """A transformers config for the GGUF's architecture, built from its metadata."""
    from transformers import AutoConfig

    arch, md = gf.architecture, gf.metadata
    if arch not in GGUF_ARCHITECTURES:
        raise ValueError(f"GGUF architecture {arch!r} is not supported; supported: {', '.join(GGUF_ARCHITECTURES)}")
    heads = md[f"{arch}.attention.head_count"]
    kwargs = dict(
        architectures=[GGUF_ARCHITECTURES[arch]],
        vocab_size=gf.tensors["token_embd.weight"].shape[0],
        hidden_size=md[f"{arch}.embedding_length"],
        intermediate_size=md[f"{arch}.feed_forward_length"],
        num_hidden_layers=md[f"{arch}.block_count"],
        num_attention_heads=heads,
        num_key_value_heads=md.get(f"{arch}.attention.head_count_kv", heads),
        head_dim=md.get(f"{arch}.attention.key_length", md[f"{arch}.embedding_length"] // heads),
        max_position_embeddings=md.get(f"{arch}.context_length", 2048),
        rms_norm_eps=md.get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6),
        rope_theta=md.get(f"{arch}.rope.freq_base", 10000.0),
        tie_word_embeddings="output.weight" not in gf.tensors,
        bos_token_id=md.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=md.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=md.get("tokenizer.ggml.padding_token_id"),
    )
    if arch in ("llama", "qwen3"):
        kwargs["attention_bias"] = "blk.0.attn_q.bias" in gf.tensors
    scaling = md.get(f"{arch}.rope.scaling.type")
    if scaling not in (None, "none"):
        kwargs["rope_scaling"] = dict(
            rope_type=scaling, factor=md.get(f"{arch}.rope.scaling.factor"),
            original_max_position_embeddings=md.get(f"{arch}.rope.scaling.original_context_length"),
        )
    return AutoConfig.for_model(arch, **kwargs)


def find_safetensors(path: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {path}")
    return files


def iter_safetensors(files: list[str], progress: bool = True) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (name, tensor) from safetensors files, one tensor at a time (memory-mapped)."""
    from safetensors import safe_open
    from tqdm.auto import tqdm

    handles = [safe_open(f, framework="pt") for f in files]
    keys = [(h, k) for h in handles for k in h.keys()]
    for handle, key in tqdm(keys, desc="Loading safetensors", unit="tensor", disable=not progress):
        yield key, handle.get_tensor(key)
