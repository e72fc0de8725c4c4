"""Synthetic canonical data with planted structure, at any size (tests and benchmarks).

What is planted, and why (each knob is an argument of :func:`generate`):

* **Item types.** An established type (many items, most interactions) and a sparse target
  type (``target_item_share`` of the items, ``target_interaction_share`` of the
  interactions, touched only by a ``target_user_fraction`` of the users, so the rest are
  cold-start users for the target type); more established types can be added.
* **Taste topics that cross types.** Every item has one of ``n_topics`` topics (items column
  ``topic``); every user has 1 or 2 topics and sends a ``topic_affinity`` share of their
  interactions to items of those topics, in every type. The rest go to a random topic.
* **Popularity skew.** Inside each (type, topic) group item ``r``-th by popularity is drawn
  with weight ``r ** -zipf_exponent``: with the defaults about 20% of the items take about
  80% of the interactions.
* **Text that carries the topic.** Titles and descriptions are drawn mostly from a per-topic
  vocabulary of pseudo-words, so a text encoder can recover topics (and cold items can be
  placed by their text alone).
* **Events.** Established types are all "stream"; the target type also has "preview" and
  "follow" (the paper's weak signals).
* **Users.** Log-normal activity (heavy tail, mean ``n_interactions / n_users``); a split
  column (train/valid/test by the given fractions); demographics ``country`` and ``age``
  weakly tied to the user's first topic.

Interactions are generated in fixed blocks of users, each with its own random stream derived
from ``seed``: :func:`generate` and :func:`write_synthetic` give identical data, and the
writer never holds more than one block of interactions in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from hgrec.data.io import TableWriter
from hgrec.data.load import random_split

BLOCK_USERS = 50_000  # users per generation block; fixed so output does not depend on chunking
EVENTS = ("follow", "preview", "stream")
TARGET_EVENT_P = (0.08, 0.12, 0.80)  # follow, preview, stream on the target type
COUNTRIES = ("US", "GB", "DE", "FR", "SE", "BR", "MX", "IN", "JP", "AU")
LANGUAGES = ("en", "es", "de", "fr", "sv", "pt")
START_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
WINDOW_SECONDS = 90 * 86_400  # the paper's 90-day history window
_SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou") + ("qu", "sh", "th", "ch")
_GENERIC = (
    "the", "of", "and", "a", "new", "my", "great", "little", "daily", "secret", "story",
    "guide", "life", "world", "notes", "deep", "night", "home", "journey", "time", "art",
    "show", "tales", "voices", "history", "talk", "inside", "beyond", "hour", "club",
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticParams:
    """Resolved parameters of one synthetic dataset (saved as ``meta.json`` by the writer)."""

    n_interactions: int
    n_users: int
    n_items: int
    item_types: tuple[str, ...]
    target_type: str
    n_topics: int
    target_item_share: float
    target_interaction_share: float
    target_user_fraction: float
    topic_affinity: float
    second_topic_p: float
    zipf_exponent: float
    activity_sigma: float
    min_user_interactions: int
    vocab_size: int
    valid_fraction: float
    test_fraction: float
    timestamps: bool
    seed: int


class Knobs(TypedDict, total=False):
    """The keyword arguments of :func:`generate` and :func:`write_synthetic` (see generate)."""

    n_users: int | None
    n_items: int | None
    item_types: Sequence[str]
    target_type: str
    n_topics: int
    target_item_share: float
    target_interaction_share: float
    target_user_fraction: float
    topic_affinity: float
    second_topic_p: float
    zipf_exponent: float
    activity_sigma: float
    min_user_interactions: int
    vocab_size: int
    valid_fraction: float
    test_fraction: float
    timestamps: bool
    seed: int


def make_params(
    n_interactions: int,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    item_types: Sequence[str] = ("podcast", "audiobook"),
    target_type: str = "audiobook",
    n_topics: int = 20,
    target_item_share: float = 0.2,
    target_interaction_share: float = 0.1,
    target_user_fraction: float = 0.4,
    topic_affinity: float = 0.9,
    second_topic_p: float = 0.5,
    zipf_exponent: float = 1.1,
    activity_sigma: float = 1.0,
    min_user_interactions: int = 3,
    vocab_size: int = 30,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    timestamps: bool = False,
    seed: int = 0,
) -> SyntheticParams:
    """Check the knobs and fill defaults (see :func:`generate` for their meaning)."""
    item_types = tuple(item_types)
    if n_interactions < 1:
        raise ValueError(f"n_interactions must be >= 1, got {n_interactions}")
    if len(set(item_types)) != len(item_types) or len(item_types) < 2:
        raise ValueError(f"item_types must be >= 2 distinct names, got {item_types}")
    if target_type not in item_types:
        raise ValueError(f"target_type {target_type!r} is not one of item_types {item_types}")
    if n_topics < 1:
        raise ValueError(f"n_topics must be >= 1, got {n_topics}")
    for label, v in (
        ("target_item_share", target_item_share),
        ("target_interaction_share", target_interaction_share),
        ("target_user_fraction", target_user_fraction),
    ):
        if not 0.0 < v < 1.0:
            raise ValueError(f"{label} must be in (0, 1), got {v}")
    for label, v in (("topic_affinity", topic_affinity), ("second_topic_p", second_topic_p)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{label} must be in [0, 1], got {v}")
    if not (0 <= valid_fraction and 0 <= test_fraction and valid_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions {valid_fraction=}, {test_fraction=}")
    min_user_interactions = max(1, min_user_interactions)
    if n_users is None:
        # About 20 interactions per user on average, as in typical implicit-feedback logs.
        n_users = max(1, n_interactions // 20)
    if n_users * min_user_interactions > n_interactions:
        raise ValueError(
            f"n_users={n_users} x min_user_interactions={min_user_interactions} exceeds "
            f"n_interactions={n_interactions}"
        )
    min_items = n_topics * len(item_types) * 10
    if n_items is None:
        n_items = max(min_items, n_interactions // 50)
    smallest = min(_items_per_type(n_items, item_types, target_type, target_item_share))
    if smallest < n_topics:
        raise ValueError(
            f"n_items={n_items} gives a type with {smallest} items, fewer than "
            f"n_topics={n_topics}; every (type, topic) needs an item"
        )
    return SyntheticParams(
        n_interactions=int(n_interactions),
        n_users=int(n_users),
        n_items=int(n_items),
        item_types=item_types,
        target_type=target_type,
        n_topics=int(n_topics),
        target_item_share=float(target_item_share),
        target_interaction_share=float(target_interaction_share),
        target_user_fraction=float(target_user_fraction),
        topic_affinity=float(topic_affinity),
        second_topic_p=float(second_topic_p),
        zipf_exponent=float(zipf_exponent),
        activity_sigma=float(activity_sigma),
        min_user_interactions=int(min_user_interactions),
        vocab_size=int(vocab_size),
        valid_fraction=float(valid_fraction),
        test_fraction=float(test_fraction),
        timestamps=bool(timestamps),
        seed=int(seed),
    )


def generate(
    n_interactions: int, **knobs: Unpack[Knobs]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Generate a canonical (items, interactions, users) triple in memory.

    Args:
        n_interactions: exact number of interaction rows.
        n_users: default ``n_interactions // 20``.
        n_items: default ``max(10 * n_topics * len(item_types), n_interactions // 50)``.
        item_types: type names; default ("podcast", "audiobook"); add e.g. "music" for 3.
        target_type: the sparse type (default "audiobook"); the others share the rest equally.
        n_topics: planted taste topics (default 20).
        target_item_share: share of items of the target type (0.2).
        target_interaction_share: expected share of interactions on the target type (0.1).
        target_user_fraction: share of users who ever touch the target type (0.4).
        topic_affinity: share of a user's interactions on their own topics (0.9).
        second_topic_p: probability that a user has a second topic (0.5).
        zipf_exponent: popularity skew inside a (type, topic) group (1.1).
        activity_sigma: log-normal sigma of user activity (1.0).
        min_user_interactions: every user has at least this many interactions (3).
        vocab_size: pseudo-words per topic vocabulary (30).
        valid_fraction, test_fraction: user split fractions (0.1, 0.1).
        timestamps: also write a ``timestamp`` column (epoch seconds in a 90-day window,
            non-decreasing with position).
        seed: drives every random choice.

    Returns:
        items (item_id, item_type, title, description, language, genre, topic),
        interactions (user_id, item_id, position, event[, timestamp]) grouped by user,
        users (user_id, split, country, age).
    """
    params = make_params(n_interactions, **knobs)
    plan = _Plan.build(params)
    blocks = [b.to_pandas() for b in plan.interaction_blocks()]
    return plan.items, pd.concat(blocks, ignore_index=True), plan.users


def write_synthetic(
    out_dir: str | Path,
    n_interactions: int,
    fmt: str = "parquet",
    *,
    progress: bool = True,
    **knobs: Unpack[Knobs],
) -> dict[str, Path]:
    """Write items / interactions / users files and ``meta.json`` into ``out_dir``.

    Args:
        out_dir: folder to create or fill (existing files of the same names are replaced).
        n_interactions: exact number of interaction rows.
        fmt: "parquet", "csv" or "tsv" (also "csv.gz", "tsv.gz").
        progress: show a progress bar over blocks of users.
        **knobs: the knobs of :func:`generate` (n_users, n_items, item_types, target_type,
            n_topics, ..., seed).

    Returns:
        {"items", "interactions", "users", "meta"} -> written paths. The interactions are
        written block by block (50k users each), so 50M rows need well under 24 GB.
    """
    if fmt not in ("parquet", "csv", "tsv", "csv.gz", "tsv.gz"):
        raise ValueError(f"fmt must be parquet, csv, tsv, csv.gz or tsv.gz; got {fmt!r}")
    params = make_params(n_interactions, **knobs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = _Plan.build(params)
    paths = {k: out / f"{k}.{fmt}" for k in ("items", "interactions", "users")}
    with TableWriter(paths["items"]) as w:
        w.write(plan.items)
    with TableWriter(paths["users"]) as w:
        w.write(plan.users)
    n_blocks = -(-params.n_users // BLOCK_USERS)
    with TableWriter(paths["interactions"]) as w:
        blocks = plan.interaction_blocks()
        for block in tqdm(blocks, total=n_blocks, desc="synthetic", disable=not progress):
            w.write(block)
    paths["meta"] = out / "meta.json"
    meta = asdict(params) | {"generator": "hgrec.datasets.synthetic", "format": fmt}
    paths["meta"].write_text(json.dumps(meta, indent=2) + "\n")
    return paths


def _items_per_type(
    n_items: int, types: Sequence[str], target: str, target_share: float
) -> list[int]:
    """Items per type: the target gets ``target_share``, the others split the rest equally."""
    n_target = max(1, int(round(n_items * target_share)))
    others = [t for t in types if t != target]
    base, extra = divmod(n_items - n_target, len(others))
    sizes = {t: base + (k < extra) for k, t in enumerate(others)}
    sizes[target] = n_target
    return [sizes[t] for t in types]


@dataclass(frozen=True)
class _Plan:
    """Everything except the interactions: items, users and the per-user sampling state."""

    params: SyntheticParams
    items: pd.DataFrame
    users: pd.DataFrame
    counts: np.ndarray  # (n_users,) int64 interactions per user
    topic1: np.ndarray  # (n_users,) int64 first topic
    topic2: np.ndarray  # (n_users,) int64 second topic (== topic1 when the user has one)
    p_target: np.ndarray  # (n_users,) float64 probability that an interaction is on the target type
    group_cum: np.ndarray  # (n_items,) float64 cumulative popularity, group g in (g, g + 1]
    group_items: np.ndarray  # (n_items,) int64 item index of each entry of group_cum
    item_ids: pa.Array  # (n_items,) string
    user_ids: pa.Array  # (n_users,) string

    @staticmethod
    def build(p: SyntheticParams) -> _Plan:
        rng = np.random.default_rng([p.seed, 0])
        n_types = len(p.item_types)
        sizes = _items_per_type(p.n_items, p.item_types, p.target_type, p.target_item_share)
        item_type = np.repeat(np.arange(n_types), sizes)
        # Round-robin topics inside each type, then shuffled: every (type, topic) is non-empty.
        within = np.arange(p.n_items) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        topic = within % p.n_topics
        topic = topic[_shuffle_within(item_type, rng)]
        group = item_type * p.n_topics + topic
        # Zipf rank inside each group: random order, then weight (rank + 1) ** -s.
        order = np.lexsort((rng.random(p.n_items), group))
        g_sorted = group[order]
        starts = np.searchsorted(g_sorted, g_sorted, side="left")
        rank = np.arange(p.n_items) - starts
        w = (rank + 1.0) ** -p.zipf_exponent
        csum = np.cumsum(w)
        before = np.concatenate([[0.0], csum])[starts]
        totals = np.bincount(g_sorted, weights=w)
        cum = (csum - before) / totals[g_sorted]
        last = np.r_[g_sorted[1:] != g_sorted[:-1], True]
        cum[last] = 1.0  # exact 1 so a draw never spills into the next group
        items = _items_table(p, item_type, topic, rng)

        n = p.n_users
        activity = rng.lognormal(0.0, p.activity_sigma, n)
        extra = p.n_interactions - p.min_user_interactions * n
        counts = p.min_user_interactions + rng.multinomial(extra, activity / activity.sum())
        topic1 = rng.integers(p.n_topics, size=n)
        two = (rng.random(n) < p.second_topic_p) & (p.n_topics > 1)
        shift = 1 + rng.integers(max(p.n_topics - 1, 1), size=n)  # never the first topic
        topic2 = np.where(two, (topic1 + shift) % p.n_topics, topic1)
        warm = rng.random(n) < p.target_user_fraction
        warm_total = counts[warm].sum()
        p_warm = min(0.95, p.target_interaction_share * p.n_interactions / max(warm_total, 1))
        p_target = np.where(warm, p_warm, 0.0)
        users = _users_table(p, topic1, rng)
        return _Plan(
            params=p,
            items=items,
            users=users,
            counts=counts.astype(np.int64),
            topic1=topic1,
            topic2=topic2,
            p_target=p_target,
            group_cum=g_sorted + cum,
            group_items=order.astype(np.int64),
            item_ids=pa.array(items["item_id"].to_numpy(dtype=object), pa.string()),
            user_ids=pa.array(users["user_id"].to_numpy(dtype=object), pa.string()),
        )

    def interaction_blocks(self) -> Iterator[pa.Table]:
        """Interaction tables for consecutive blocks of ``BLOCK_USERS`` users."""
        for b, lo in enumerate(range(0, self.params.n_users, BLOCK_USERS)):
            yield self._block(b, lo, min(lo + BLOCK_USERS, self.params.n_users))

    def _block(self, b: int, lo: int, hi: int) -> pa.Table:
        p = self.params
        rng = np.random.default_rng([p.seed, 1, b])
        cnt = self.counts[lo:hi]
        n = int(cnt.sum())
        user = np.repeat(np.arange(lo, hi), cnt)  # (n,)
        topic = np.where(rng.random(n) < 0.5, self.topic1[user], self.topic2[user])
        off = rng.random(n) >= p.topic_affinity
        topic[off] = rng.integers(p.n_topics, size=int(off.sum()))
        target_code = p.item_types.index(p.target_type)
        others = np.array([k for k in range(len(p.item_types)) if k != target_code])
        on_target = rng.random(n) < self.p_target[user]
        itype = np.where(on_target, target_code, others[rng.integers(len(others), size=n)])
        group = itype * p.n_topics + topic
        # Inverse-CDF draw inside the group: group g's cumulative weights lie in (g, g + 1].
        slot = np.searchsorted(self.group_cum, group + rng.random(n), side="right")
        item = self.group_items[slot]
        event = np.full(n, EVENTS.index("stream"), dtype=np.int8)
        event[on_target] = rng.choice(len(EVENTS), size=int(on_target.sum()), p=TARGET_EVENT_P)
        position = np.arange(n) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        cols: dict[str, pa.Array] = {
            "user_id": self.user_ids.take(pa.array(user)),
            "item_id": self.item_ids.take(pa.array(item)),
            "position": pa.array(position.astype(np.int64)),
            "event": pa.array(np.asarray(EVENTS, dtype=object)[event], pa.string()),
        }
        if p.timestamps:
            # Sorted uniform times inside each user's block keep timestamp order == position order.
            t = rng.random(n)
            t = t[np.lexsort((t, user))]
            cols["timestamp"] = pa.array(START_EPOCH + (t * WINDOW_SECONDS).astype(np.int64))
        return pa.table(cols)


def _shuffle_within(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation that shuffles entries only among equal ``codes`` (codes sorted)."""
    return np.lexsort((rng.random(len(codes)), codes))


def _vocabulary(p: SyntheticParams, rng: np.random.Generator) -> np.ndarray:
    """(n_topics * vocab_size,) pseudo-words of 2-3 syllables; topic t owns one slice."""
    n = p.n_topics * p.vocab_size
    syl = np.asarray(_SYLLABLES, dtype=object)
    idx = rng.integers(len(syl), size=(n, 3))
    words = pd.Series(syl[idx[:, 0]] + syl[idx[:, 1]], dtype="str")
    third = rng.random(n) < 0.5
    words = words + pd.Series(np.where(third, syl[idx[:, 2]], ""), dtype="str")
    return words.to_numpy(dtype=object)


def _words(
    topic: np.ndarray,
    n_words: int,
    p_topic: float,
    vocab: np.ndarray,
    p: SyntheticParams,
    rng: np.random.Generator,
) -> pd.Series:
    """(n,) str: ``n_words`` words per item, each from its topic vocabulary w.p. ``p_topic``."""
    n = len(topic)
    generic = np.asarray(_GENERIC, dtype=object)
    out = pd.Series([""] * n, dtype="str")
    for j in range(n_words):  # loop over word slots, not items
        own = vocab[topic * p.vocab_size + rng.integers(p.vocab_size, size=n)]
        other = generic[rng.integers(len(generic), size=n)]
        word = pd.Series(np.where(rng.random(n) < p_topic, own, other), dtype="str")
        out = word if j == 0 else out + " " + word
    return out


def _items_table(
    p: SyntheticParams, item_type: np.ndarray, topic: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    vocab = _vocabulary(p, rng)
    n = p.n_items
    title = _words(topic, 3, 0.85, vocab, p, rng).str.capitalize()
    description = _words(topic, 12, 0.6, vocab, p, rng) + "."
    types = np.asarray(p.item_types, dtype=object)
    # Language and genre are weak item features: right for the topic only part of the time.
    lang_of_topic = rng.integers(len(LANGUAGES), size=p.n_topics)
    language = np.where(rng.random(n) < 0.5, lang_of_topic[topic], 0)
    genre = np.where(rng.random(n) < 0.7, topic, rng.integers(p.n_topics, size=n))
    return pd.DataFrame(
        {
            "item_id": pd.Series("i" + pd.Series(np.arange(n)).astype("str"), dtype="str"),
            "item_type": pd.Series(types[item_type], dtype="str"),
            "title": title,
            "description": description,
            "language": pd.Series(np.asarray(LANGUAGES, dtype=object)[language], dtype="str"),
            "genre": "genre-" + pd.Series(genre).astype("str"),
            "topic": topic.astype(np.int64),
        }
    )


def _users_table(p: SyntheticParams, topic1: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = p.n_users
    country_of_topic = rng.integers(len(COUNTRIES), size=p.n_topics)
    anywhere = rng.integers(len(COUNTRIES), size=n)
    country = np.where(rng.random(n) < 0.35, country_of_topic[topic1], anywhere)
    age_shift = rng.uniform(-8.0, 8.0, size=p.n_topics)
    age = np.clip(np.round(rng.normal(35.0 + age_shift[topic1], 11.0)), 16, 80).astype(np.int64)
    split = random_split(n, p.valid_fraction, p.test_fraction, int(rng.integers(2**31)))
    return pd.DataFrame(
        {
            "user_id": pd.Series("u" + pd.Series(np.arange(n)).astype("str"), dtype="str"),
            "split": pd.Series(split, dtype="str"),
            "country": pd.Series(np.asarray(COUNTRIES, dtype=object)[country], dtype="str"),
            "age": age,
        }
    )
