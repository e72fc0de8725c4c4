"""Text-feature throughput: backends, cold vs cached, and whether a shorter max_seq_length is
safe for titles.

``--study backends``: texts per second of each ``features.backend`` (torch, onnx, onnx-int8)
on one random sample of distinct Amazon titles, in one process, each with the same
``--threads``, interleaved repeats (best of), through the same length-sorted batching as
``embed_texts`` with no cache. Reference: the torch backend; printed per backend: texts/s, ratio
to torch, min and mean per-title cosine to torch's vector, and the one-off export and load
seconds (the export goes to a temp folder, so it is measured; a second load reuses it).

``--study lengths``: reference is cold embedding (torch) at the default max_seq_length=128;
cached reads and shorter lengths are printed as ratios to it. Also reports the title length in
tokens over the whole catalogue: a text with at most L tokens (including [CLS]/[SEP]) gets the
same vector at any max_seq_length >= L, so the share of titles longer than L is the share whose
vector changes.

Usage:
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/text_features.py --study backends --n 5000 --threads 2
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/text_features.py --study lengths --n 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hgrec.features import text as text_mod
from hgrec.features.text import embed_texts
from hgrec.features.text_backends import TEXT_BACKENDS, load_encoder
from hgrec.features.text_model import DEFAULT_MODEL, load_text_model, resolve_text_model
from hgrec.utils.seed import set_threads

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-food-kitchen" / "items.tsv"


def _timed(texts: list[str], **kw: object) -> tuple[float, np.ndarray, int]:
    t0 = time.perf_counter()
    f = embed_texts(texts, progress=False, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - t0, f.embeddings, f.n_embedded


def _n_tokens(st: object, texts: list[str]) -> np.ndarray:
    """(n,) token counts including [CLS]/[SEP], untruncated."""
    enc = st.tokenizer(texts, truncation=False, return_length=True)  # type: ignore[attr-defined]
    return np.asarray(enc["length"], dtype=np.int64)


def _encode(enc: object, texts: np.ndarray, batch_size: int) -> tuple[float, np.ndarray]:
    """Seconds and (n, d) unit vectors, batched exactly as embed_texts does (no cache)."""
    keys = np.empty(len(texts), dtype="S64")
    t0 = time.perf_counter()
    v = text_mod._embed_batches(enc, texts, keys, batch_size, None, False, "bench")  # type: ignore[arg-type]
    return time.perf_counter() - t0, v


def backend_study(args: argparse.Namespace, sample: list[str]) -> None:
    """texts/s of each backend on ``sample``, ratio and cosine to torch; see the module doc."""
    model = resolve_text_model(args.model)
    texts = np.array(sample, dtype=object)
    print(f"threads: torch {set_threads(args.threads)}, onnxruntime the same; "
          f"batch {args.batch_size}; max_seq_length {args.max_seq_length}")
    encoders, setup = {}, {}
    with tempfile.TemporaryDirectory() as models:
        for b in args.backends:  # export (timed), then load again from the export
            t0 = time.perf_counter()
            load_encoder(model, b, args.max_seq_length, "cpu", Path(models))
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            encoders[b] = load_encoder(model, b, args.max_seq_length, "cpu", Path(models))
            setup[b] = (first, time.perf_counter() - t0)
            _encode(encoders[b], texts[:16], args.batch_size)  # warm-up
    times: dict[str, list[float]] = {b: [] for b in args.backends}
    vecs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):  # interleaved: a slow spell on the shared machine hits all
        for b in args.backends:
            s, vecs[b] = _encode(encoders[b], texts, args.batch_size)
            times[b].append(s)
    ref = "torch" if "torch" in vecs else args.backends[0]
    ref_rate = len(texts) / min(times[ref])
    print(f"\n{'backend':<10} {'texts/s':>9} {'x ' + ref:>9} {'min cos':>8} {'mean cos':>8} "
          f"{'export+load s':>13} {'reload s':>8}  all runs s")
    for b in args.backends:
        rate = len(texts) / min(times[b])
        cos = (vecs[b] * vecs[ref]).sum(axis=1)  # unit rows: per-title cosine
        print(f"{b:<10} {rate:9.1f} {rate / ref_rate:9.2f} {cos.min():8.4f} {cos.mean():8.4f} "
              f"{setup[b][0]:13.1f} {setup[b][1]:8.1f}  "
              f"{' '.join(f'{t:.1f}' for t in times[b])}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--study", choices=["backends", "lengths", "all"], default="all")
    ap.add_argument("--items", type=Path, default=DATA)
    ap.add_argument("--n", type=int, default=300, help="titles to embed (0: every distinct title)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-seq-length", type=int, default=128, help="backends study")
    ap.add_argument("--lengths", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--backends", nargs="+", choices=TEXT_BACKENDS, default=list(TEXT_BACKENDS))
    ap.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    items = pd.read_csv(args.items, sep="\t", usecols=["title"], dtype=str)
    titles = items["title"].fillna("").str.strip()
    uniq = titles[titles.str.len() > 0].drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(args.seed)
    n = len(uniq) if args.n <= 0 else min(args.n, len(uniq))
    sample = uniq.iloc[rng.choice(len(uniq), size=n, replace=False)].tolist()
    print(f"catalogue: {len(titles)} titles, {len(uniq)} distinct non-empty; n={len(sample)}")
    if args.study in ("backends", "all"):
        backend_study(args, sample)
    if args.study in ("lengths", "all"):
        length_study(args, uniq, sample)


def length_study(args: argparse.Namespace, uniq: pd.Series, sample: list[str]) -> None:
    """Cold vs cached and shorter max_seq_length (torch backend); see the module doc."""
    set_threads(args.threads)

    # Token lengths over the whole catalogue: tokenizer only, batched in Rust.
    t0 = time.perf_counter()
    st = load_text_model(resolve_text_model(args.model), 512)
    load_s = time.perf_counter() - t0
    n_tok = _n_tokens(st, uniq.tolist())
    q = np.percentile(n_tok, [50, 90, 99, 100])
    print(f"model import+load: {load_s:.1f}s")
    print(
        f"title tokens (with [CLS]/[SEP]): p50={q[0]:.0f} p90={q[1]:.0f} p99={q[2]:.0f} "
        f"max={q[3]:.0f}"
    )
    # embed_texts sorts by length and pads each batch to its longest text, so the work is
    # ~ sum over batches of batch_size * min(longest, L) tokens: a noise-free estimate.
    by_len = np.sort(n_tok)[::-1]
    longest = by_len[:: args.batch_size]
    sizes = np.diff(np.append(np.arange(0, len(by_len), args.batch_size), len(by_len)))
    padded_ref = float((sizes * np.minimum(longest, 128)).sum())
    for L in sorted({*args.lengths, 128}):
        padded = float((sizes * np.minimum(longest, L)).sum())
        print(
            f"  titles longer than {L:>3} tokens: {(n_tok > L).mean():7.3%} "
            f"({int((n_tok > L).sum())}); "
            f"padded tokens for the catalogue vs L=128: {padded / padded_ref:.3f}"
        )

    common = {"model": args.model, "batch_size": args.batch_size}
    # Warm-up: first-call overheads do not belong to any configuration.
    embed_texts(sample[:8], cache_dir=None, progress=False, **common)
    # Interleaved repeats, best of each: the machine is shared, so single timings are noisy.
    times: dict[int, list[float]] = {L: [] for L in {*args.lengths, 128}}
    vecs: dict[int, np.ndarray] = {}
    for _ in range(args.repeats):
        for L in sorted(times, reverse=True):
            s, vecs[L], _ = _timed(sample, cache_dir=None, max_seq_length=L, **common)
            times[L].append(s)
    with tempfile.TemporaryDirectory() as cache:
        _, ref_cached, n_emb = _timed(sample, cache_dir=Path(cache), max_seq_length=128, **common)
        hit_s, hit, n_hit = _timed(sample, cache_dir=Path(cache), max_seq_length=128, **common)
    assert n_emb == len(sample) and n_hit == 0 and np.array_equal(hit, ref_cached)
    ref, ref_s = vecs[128], min(times[128])
    ref_rate = len(sample) / ref_s
    print(
        f"\nreference  cold   L=128: {ref_rate:9.1f} items/s  "
        f"(best of {args.repeats}: {ref_s:.2f}s for {len(sample)})"
    )
    print(
        f"cached          L=128: {len(sample) / hit_s:9.1f} items/s  "
        f"ratio {ref_s / hit_s:8.1f}x faster"
    )
    print(f"  -> 36k-title catalogue cold: ~{36298 / ref_rate / 60:.1f} min")
    for L in sorted(args.lengths):
        s, e = min(times[L]), vecs[L]
        cos = (e * ref).sum(axis=1)
        longer = _n_tokens(st, sample) > L
        short_diff = np.abs(e[~longer] - ref[~longer]).max() if (~longer).any() else 0.0
        print(
            f"cold            L={L:<3}: {len(sample) / s:9.1f} items/s  ratio {ref_s / s:5.2f}x; "
            f"min cosine to L=128 {cos.min():.4f}; {int(longer.sum())} truncated "
            f"(min cosine {cos[longer].min() if longer.any() else 1.0:.4f}); "
            f"max |diff| on untruncated {short_diff:.2e}"
        )


if __name__ == "__main__":
    main()
