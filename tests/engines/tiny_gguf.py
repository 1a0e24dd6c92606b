"""Writes small llama-architecture GGUF models with random weights, for running a real
llama-server in vramdeck's engine proofs (no model download: the `gguf` package from PyPI
writes the file; the layout is the one llama.cpp's `src/llama-model.cpp` loads for LLM_ARCH_LLAMA).

    python3 tiny_gguf.py OUT_DIR NAME [NAME ...] [--embd 512 --layers 8]
"""
import argparse
import os

import numpy as np
import gguf

VOCAB = 256 + 3  # three control tokens, then one token per byte (SentencePiece byte fallback)


def write(path: str, name: str, embd: int, layers: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ff = embd * 2
    heads = max(1, embd // 64)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(name)
    w.add_context_length(4096)
    w.add_embedding_length(embd)
    w.add_block_count(layers)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(embd // heads)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * VOCAB)
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    w.add_token_types(types + [gguf.TokenType.BYTE] * 256)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def t(name, *shape):
        w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float16))

    def ones(name, n):
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    t("token_embd.weight", VOCAB, embd)
    ones("output_norm.weight", embd)
    t("output.weight", VOCAB, embd)
    for i in range(layers):
        ones(f"blk.{i}.attn_norm.weight", embd)
        ones(f"blk.{i}.ffn_norm.weight", embd)
        for part in ("q", "k", "v", "output"):
            t(f"blk.{i}.attn_{part}.weight", embd, embd)
        t(f"blk.{i}.ffn_gate.weight", ff, embd)
        t(f"blk.{i}.ffn_up.weight", ff, embd)
        t(f"blk.{i}.ffn_down.weight", embd, ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("names", nargs="+")
    p.add_argument("--embd", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for i, name in enumerate(a.names):
        write(os.path.join(a.out, f"{name}.gguf"), name, a.embd, a.layers, seed=i)


if __name__ == "__main__":
    main()
