"""Writers of small synthetic inputs in the formats flare provisions from, for offline tests.

They follow the format descriptions, independently of flare's readers.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np

TINY = dict(hidden=32, n_layers=2, n_heads=2, ffn=64, vocab=40, max_positions=16, type_vocab=2)
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581a", "\u2581b", "a", "b", "<mask>"]
# Tensors stored as Q4_0 in the synthetic file; the rest are f32.
Q4_NAMES = {"emb.word", "l0.q.w", "l0.fo.w", "l1.k.w", "l1.fi.w"}


def q4_0_reference(d: np.float16, qs: bytes) -> list[float]:
    """Q4_0 dequantization of one block written out from its definition, weight by weight."""
    low = [((qs[j] & 15) - 8) * float(d) for j in range(16)]
    high = [((qs[j] >> 4) - 8) * float(d) for j in range(16)]
    return low + high


def tensor_shapes(cfg=TINY) -> dict[str, tuple[int, ...]]:
    h, f = cfg["hidden"], cfg["ffn"]
    shapes = {
        "emb.word": (cfg["vocab"], h),
        "emb.pos": (cfg["max_positions"], h),
        "emb.type": (cfg["type_vocab"], h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    for i in range(cfg["n_layers"]):
        for part, shape in [("q", (h, h)), ("k", (h, h)), ("v", (h, h)), ("ao", (h, h)), ("aln", (h,)),
                            ("fi", (f, h)), ("fo", (h, f)), ("oln", (h,))]:
            shapes[f"l{i}.{part}.w"] = shape
            shapes[f"l{i}.{part}.b"] = (f,) if part == "fi" else (h,)
    return shapes


def make_e5_file(path: Path, seed: int = 0, cfg=TINY, version: int = 1) -> dict[str, np.ndarray]:
    """Write a tiny E5S1 file; return the float32 values each tensor must decode to (HF shapes)."""
    rng = np.random.default_rng(seed)
    expected: dict[str, np.ndarray] = {}
    payloads: list[tuple[str, int, int, bytes]] = []
    for name, shape in tensor_shapes(cfg).items():
        count = int(np.prod(shape))
        if name in Q4_NAMES:
            raw, values = bytearray(), []
            for _ in range(count // 32):
                d = np.float16(rng.uniform(0.01, 0.2))
                qs = bytes(rng.integers(0, 256, size=16, dtype=np.uint8))
                raw += d.tobytes() + qs
                values += q4_0_reference(d, qs)
            payloads.append((name, 1, count, bytes(raw)))
            expected[name] = np.array(values, dtype=np.float32).reshape(shape)
        else:
            values = rng.normal(size=shape).astype(np.float32)
            payloads.append((name, 0, count, values.astype("<f4").tobytes()))
            expected[name] = values

    out = io.BytesIO()
    out.write(b"E5S1" + struct.pack("<I", version))
    out.write(struct.pack("<7i", cfg["hidden"], cfg["n_layers"], cfg["n_heads"], cfg["ffn"], cfg["vocab"],
                          cfg["max_positions"], cfg["type_vocab"]))
    out.write(struct.pack("<fi", 1e-12, 32))
    blobs = [p.encode() for p in PIECES]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype("<u4")
    out.write(struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, int(offsets[-1])))
    out.write(offsets.tobytes() + np.zeros(len(PIECES), "<f4").tobytes() + b"".join(blobs))
    out.write(struct.pack("<iI", 1, 3) + b"abc")  # normalization block: opaque bytes
    # Directory entries have a fixed size once names are known, so data offsets can be computed.
    dir_size = 4 + sum(2 + len(n.encode()) + 1 + 4 + 8 + 8 for n, *_ in payloads)
    offset = out.tell() + dir_size
    out.write(struct.pack("<i", len(payloads)))
    data = io.BytesIO()
    for name, dtype, count, raw in payloads:
        pad = (-offset) % 64  # align like the real file does
        data.write(b"\0" * pad)
        offset += pad
        out.write(struct.pack("<H", len(name.encode())) + name.encode())
        out.write(struct.pack("<BIQQ", dtype, count, offset, len(raw)))
        data.write(raw)
        offset += len(raw)
    path.write_bytes(out.getvalue() + data.getvalue())
    return expected


def make_tokenizer_json(path: Path, pieces=PIECES) -> None:
    """A tiny Unigram tokenizer.json with XLM-R's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram([(p, 0.0 if p.startswith("<") else -1.0) for p in pieces], unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.save(str(path))


def make_wheel(path: Path, files: dict[str, bytes]) -> Path:
    """A zip shaped like a wheel, holding `files`."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def hf_key_map(n_layers: int) -> dict[str, str]:
    """File name -> BertModel key, written out independently of flare's table."""
    keys = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    modules = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
               "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
               "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
    for i in range(n_layers):
        for short, module in modules.items():
            keys[f"l{i}.{short}.w"] = f"encoder.layer.{i}.{module}.weight"
            keys[f"l{i}.{short}.b"] = f"encoder.layer.{i}.{module}.bias"
    return keys


def dumps(obj) -> bytes:
    return json.dumps(obj).encode()
