"""A passage's sentence vectors packed into one Milvus VARCHAR, and unpacked again."""

from __future__ import annotations

import base64

import numpy as np

MAX_VARCHAR = 65_535  # the longest VARCHAR Milvus keeps, in bytes


def pack_vectors(vectors: np.ndarray) -> str:
    """Sentence vectors as one string: float32 when it fits a Milvus VARCHAR, else float16, else cut.

    Passages of the default size (120 words) have a few sentences: float32, exactly as stored in
    the embedded backend. Only a passage of more than ~32 sentences (384-d) is stored in float16,
    and past ~64 its last sentences have no vector (they then score by their terms alone).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    for kind, dtype in (("f", np.float32), ("h", np.float16)):
        packed = kind + ":" + base64.b64encode(vectors.astype(dtype).tobytes()).decode("ascii")
        if len(packed) <= MAX_VARCHAR:
            return packed
    per_row = vectors.shape[1] * 2 * 4 / 3
    keep = int((MAX_VARCHAR - 2) // per_row)
    return "h:" + base64.b64encode(vectors[:keep].astype(np.float16).tobytes()).decode("ascii")


def unpack_vectors(packed: str, sentences: int, dimension: int) -> np.ndarray:
    """The `sentences` vectors of `pack_vectors`' string, float32; those cut off are zeros."""
    kind, _, data = packed.partition(":")
    dtype = np.float32 if kind == "f" else np.float16
    vectors = np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(-1, dimension).astype(np.float32)
    if vectors.shape[0] < sentences:
        vectors = np.vstack([vectors, np.zeros((sentences - vectors.shape[0], dimension), np.float32)])
    return vectors
