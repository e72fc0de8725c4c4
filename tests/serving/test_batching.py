"""Micro-batching: concurrent ``POST /recommend`` requests computed together get the answers
they get alone (same items, explanations, ids; scores equal to float32 rounding: torch's CPU
matmul blocks differently by batch size, measured up to the last bits), for HGNN-KNN and for
a small trained 2T-HGNN; the index's batched search equals its one-query search."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from hgrec.data.dataset import Dataset
from hgrec.models.base import TrainSet
from hgrec.recommenders.two_tower import TwoTowerRecommender
from hgrec.serving.app import StateHolder, create_app
from hgrec.serving.batching import MicroBatcher
from hgrec.serving.index import ExactIndex, VoyagerIndex
from hgrec.serving.load import load_state
from hgrec.serving.metrics import parse_text
from hgrec.serving.schemas import RecommendResponse
from hgrec.serving.state import ServingError, ServingState
from tests.conftest import make_tiny_dataset
from tests.serving.conftest import TEST_HOSTS
from tests.serving.runs import make_run, planted_embeddings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------- the batcher
def test_batcher_gathers_concurrent_jobs_into_one_call() -> None:
    calls: list[list[int]] = []

    def compute(jobs: list[int]) -> list[int | Exception]:
        calls.append(jobs)
        return [ValueError(f"odd {j}") if j == 3 else 10 * j for j in jobs]

    async def scenario(batcher: MicroBatcher[int, int]) -> list[Any]:
        return await asyncio.gather(*(batcher.submit(j) for j in range(7)), return_exceptions=True)

    got = asyncio.run(scenario(MicroBatcher(compute, max_batch=32)))
    assert calls == [list(range(7))]
    assert got[:3] == [0, 10, 20] and isinstance(got[3], ValueError) and got[4:] == [40, 50, 60]
    calls.clear()
    asyncio.run(scenario(MicroBatcher(compute, max_batch=3, window=0.001)))
    assert calls == [[0, 1, 2], [3, 4, 5], [6]]
    calls.clear()
    asyncio.run(scenario(MicroBatcher(compute, max_batch=1)))
    assert calls == [[j] for j in range(7)]


def test_batcher_fails_every_job_when_compute_fails() -> None:
    def compute(jobs: list[int]) -> list[int]:
        raise RuntimeError("boom")

    async def scenario() -> list[Any]:
        b: MicroBatcher[int, int] = MicroBatcher(compute)
        return await asyncio.gather(*(b.submit(j) for j in range(3)), return_exceptions=True)

    assert all(isinstance(e, RuntimeError) for e in asyncio.run(scenario()))


@pytest.mark.parametrize("kwargs, match", [({"max_batch": 0}, "max_batch 0"),
                                           ({"window": -1.0}, "window -1")])
def test_batcher_validates(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MicroBatcher(lambda jobs: jobs, **kwargs)


# ---------------------------------------------------------------------------- the index
@pytest.mark.parametrize("kind", ["exact", "voyager"])
def test_search_each_equals_one_query_search(kind: str) -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(300, 16)).astype(np.float32)
    items = np.arange(1000, 1300, dtype=np.int64)
    index = (ExactIndex(v, items) if kind == "exact"
             else VoyagerIndex.build(v, items, seed=0, progress=False))
    q = rng.normal(size=(9, 16)).astype(np.float32)
    ks = [1, 5, 10, 10, 3, 300, 7, 10, 2]
    exclude = [items[rng.choice(300, size=s, replace=False)] for s in (0, 3, 0, 40, 1, 5, 0, 299, 2)]
    got = index.search_each(q, ks, exclude)
    for r in range(len(q)):  # loop over queries
        ids, scores = index.search(q[r], ks[r], exclude=[exclude[r]])
        np.testing.assert_array_equal(got[r][0], ids[0])
        np.testing.assert_allclose(got[r][1], scores[0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- whole answers
def _two_tower_run(path: Path) -> Path:
    """The tiny run, served by a small trained 2T-HGNN that reads demographics."""
    make_run(path, models=("hgnn-knn",))
    ds = make_tiny_dataset(seed=0)
    users = ds.users.assign(country=np.where(np.arange(len(ds.users)) % 2 == 0, "SE", "US"),
                            age=np.arange(len(ds.users), dtype=float))
    ds = Dataset(name=ds.name, catalog=ds.catalog, users=users, interactions=ds.interactions,
                 target_type=ds.target_type)
    train_users = ds.users_in("train")
    train = TrainSet.build(ds.catalog, ds.histories(train_users), event_names=ds.event_names,
                           users=ds.users.iloc[train_users].reset_index(drop=True), seed=0)
    model = TwoTowerRecommender(planted_embeddings(ds, 0), layers=[32, 16, 8], batch_size=32,
                                max_epochs=2, progress=False, id_dim=0, cold_twins=False).fit(train)
    model.save(path / "models" / "2t-hgnn")
    return path


@pytest.fixture(scope="module")
def two_tower_state(tmp_path_factory: pytest.TempPathFactory) -> ServingState:
    state = load_state(_two_tower_run(tmp_path_factory.mktemp("batching") / "run-2t"))
    assert state.model_name == "2t-hgnn"
    return state


def _bodies(state: ServingState) -> list[dict[str, Any]]:
    """Varied requests: lengths, k, types, exclude_seen, unknown ids, timestamps, demographics
    (some with different field types), and two that must fail alone."""
    rng = np.random.default_rng(1)
    ids = state.catalog.item_ids.astype(str)
    bodies: list[dict[str, Any]] = []
    for j in range(40):  # loop over requests to send
        hist = [{"item_id": str(i)} for i in rng.choice(ids, size=int(rng.integers(0, 12)))]
        body: dict[str, Any] = {"history": hist, "k": int(rng.integers(1, 15)),
                                "item_type": ["food", "kitchen"][j % 2],
                                "exclude_seen": bool(j % 3)}
        if j % 5 == 0:
            body["history"] = hist + [{"item_id": f"nope-{j}"}, {"item_id": f"nope-{j}"}]
        if j % 7 == 0:
            for e in body["history"]:
                e["timestamp"] = float(rng.integers(0, 5))
        if j % 4 == 1:
            body["user"] = {"country": ["SE", "US", "XX"][j % 3], "age": float(j)}
        if j % 9 == 2:
            body["user"] = {"country": "US", "age": j}  # an int age: its own group
        bodies.append(body)
    bodies[11]["history"] = [{"item_id": str(ids[0]), "event": "teleport"}]  # 422 alone
    bodies[23]["item_type"] = "books"  # 422 alone
    return bodies


def _post_all(state: ServingState, bodies: list[dict[str, Any]], max_batch: int,
              concurrent: bool) -> tuple[list[httpx.Response], dict[str, float]]:
    app = create_app(StateHolder(state.run_dir, state=state), allowed_hosts=TEST_HOSTS,
                     max_batch=max_batch)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))

    async def scenario() -> tuple[list[httpx.Response], str]:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            if concurrent:
                out = list(await asyncio.gather(*(c.post("/recommend", json=b) for b in bodies)))
            else:
                out = [await c.post("/recommend", json=b) for b in bodies]
            return out, (await c.get("/metrics")).text

    responses, text = asyncio.run(scenario())
    return responses, parse_text(text)


def _ids(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item["item_id"], item["title"], item["item_type"],
            tuple(b["item_id"] for b in item["because"]))


def _scores(body: dict[str, Any]) -> list[float]:
    return [it["score"] for it in body["items"]] + [
        b["similarity"] for it in body["items"] for b in it["because"]]


@pytest.mark.parametrize("model", ["hgnn-knn", "2t-hgnn"])
def test_batched_answers_equal_unbatched_answers(state: ServingState, two_tower_state: ServingState,
                                                 model: str) -> None:
    s = state if model == "hgnn-knn" else two_tower_state
    bodies = _bodies(s)
    alone, _ = _post_all(s, bodies, max_batch=1, concurrent=False)
    together, samples = _post_all(s, bodies, max_batch=32, concurrent=True)
    batches = samples["hgrec_recommend_batches_total"]
    assert samples["hgrec_recommend_batched_requests_total"] == len(bodies) - 2
    assert batches < len(bodies) / 4, "concurrent requests were not batched"
    for body, a, b in zip(bodies, alone, together, strict=True):
        assert a.status_code == b.status_code, (body, a.text, b.text)
        if a.status_code != 200:
            assert a.content == b.content, body
            continue
        ja, jb = a.json(), b.json()
        assert {k: v for k, v in ja.items() if k != "items"} == {
            k: v for k, v in jb.items() if k != "items"}
        assert [_ids(it) for it in ja["items"]] == [_ids(it) for it in jb["items"]], body
        np.testing.assert_allclose(_scores(ja), _scores(jb), rtol=1e-5, atol=1e-6)
    assert [r.status_code for r in alone].count(422) == 2
    some = alone[5].json()
    assert some["unknown_items"] == ["nope-5"] and some["model"] == model


def test_recommend_batch_rows_equal_single_recommendations(two_tower_state: ServingState) -> None:
    s = two_tower_state
    rng = np.random.default_rng(2)
    ids = s.catalog.item_ids.astype(str)
    requests = [s.check_history([str(i) for i in rng.choice(ids, size=n)], [None] * n, [None] * n,
                                {"country": "SE", "age": 3.0})
                for n in (0, 1, 4, 9, 30)]
    batch, _ = s.batch_histories(requests)
    types, ks, flags = ["food", "kitchen", "food", "food", "kitchen"], [3, 5, 10, 1, 7], [True, False, True, True, False]
    recs = s.recommend_batch(batch, types, ks, flags)
    for r, req in enumerate(requests):  # loop over the batch
        one, _ = s.batch_histories([req])
        alone = s.recommend(one, types[r], ks[r], flags[r])
        got = recs[r]
        assert not isinstance(got, ServingError)
        np.testing.assert_array_equal(got.items, alone.items)
        np.testing.assert_allclose(got.scores, alone.scores, rtol=1e-5, atol=1e-6)
        assert [[h for h, _ in why] for why in got.because] == [
            [h for h, _ in why] for why in alone.because]


def test_answer_bytes_equal_the_response_model(client: Any, state: ServingState) -> None:
    """The answer rendered without pydantic models is what the documented model renders."""
    r = client.post("/recommend", json={"history": [{"item_id": "k0_1"}, {"item_id": "ü"}],
                                        "item_type": "food", "k": 4})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    model = RecommendResponse.model_validate(json.loads(r.content))
    assert model.model_dump_json().encode() == r.content
    assert "tower;dur=" in r.headers["server-timing"] and r.headers["x-hgrec-run"] == "run-a"
