"""Every endpoint: answers, unknown items, 422s and limits, unknown users, similar items."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hgrec.serving.limits import MAX_HISTORY, MAX_K
from hgrec.serving.load import load_state
from hgrec.serving.metrics import parse_text
from hgrec.serving.state import ServingState


def _cluster(state: ServingState, item_id: str) -> int:
    c = state.catalog
    return int(c.items["cluster"].to_numpy()[c.index_of([item_id])[0]])


@pytest.mark.parametrize("cluster", [0, 1, 2])
def test_recommend_new_user_gets_their_cluster(client: TestClient, state: ServingState, cluster: int) -> None:
    history = [{"item_id": f"k{cluster}_{j}"} for j in range(4)]
    r = client.post("/recommend", json={"history": history, "item_type": "food", "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unknown_items"] == [] and body["model"] == "hgnn-knn" and body["run_id"] == "run-a"
    items = body["items"]
    assert len(items) == 5 and all(it["item_type"] == "food" for it in items)
    assert all(_cluster(state, it["item_id"]) == cluster for it in items)
    scores = [it["score"] for it in items]
    assert scores == sorted(scores, reverse=True)
    # Timing split is reported for the load benchmark.
    assert "tower;dur=" in r.headers["server-timing"] and "index;dur=" in r.headers["server-timing"]


def test_recommend_matches_model_scores(client: TestClient, state: ServingState) -> None:
    """The index path returns the model's own top-k (HGNN-KNN: mean embedding . item)."""
    ids = ["k1_0", "f1_2", "k0_3"]
    r = client.post("/recommend", json={"history": [{"item_id": i} for i in ids],
                                        "item_type": "food", "k": 24, "exclude_seen": False})
    got = [it["item_id"] for it in r.json()["items"]]
    h, _ = state.history_from_request(ids, [None] * 3, [None] * 3, None)
    ref_ids, ref_scores = state.model.recommend(h, state.catalog.items_of_type("food"), 24)
    assert got == state.catalog.item_ids[ref_ids[0]].tolist()
    np.testing.assert_allclose([it["score"] for it in r.json()["items"]], ref_scores[0], rtol=1e-5)


def test_because_names_the_most_similar_history_items(client: TestClient, state: ServingState) -> None:
    history = ["k0_0", "k1_0", "k2_0"]
    r = client.post("/recommend", json={"history": [{"item_id": i} for i in history],
                                        "item_type": "food", "k": 6})
    z = state.explain_vectors
    hist_idx = state.catalog.index_of(history)
    for it in r.json()["items"]:
        rec = state.catalog.index_of([it["item_id"]])[0]
        sims = z[hist_idx] @ z[rec]
        expected = [history[j] for j in np.argsort(-sims)[:3]]
        assert [b["item_id"] for b in it["because"]] == expected
        # The strongest reason shares the recommended item's planted cluster.
        assert _cluster(state, it["because"][0]["item_id"]) == _cluster(state, it["item_id"])
        assert it["because"][0]["title"].startswith("kitchen tool")


def test_unknown_items_are_skipped_and_listed(client: TestClient) -> None:
    hist = [{"item_id": "nope"}, {"item_id": "k0_1"}, {"item_id": "nope"}, {"item_id": "gone"}]
    r = client.post("/recommend", json={"history": hist, "item_type": "food"})
    assert r.status_code == 200
    assert r.json()["unknown_items"] == ["nope", "gone"]
    assert len(r.json()["items"]) == 10


def test_exclude_seen(client: TestClient) -> None:
    hist = [{"item_id": f"f0_{j}"} for j in range(6)]
    seen = {h["item_id"] for h in hist}
    r = client.post("/recommend", json={"history": hist, "item_type": "food", "k": 24})
    got = [it["item_id"] for it in r.json()["items"]]
    assert len(got) == 24 - 6 and not seen & set(got)
    r = client.post("/recommend", json={"history": hist, "item_type": "food", "k": 24, "exclude_seen": False})
    assert seen <= {it["item_id"] for it in r.json()["items"]}


def test_empty_history_and_default_type(client: TestClient) -> None:
    r = client.post("/recommend", json={"k": 3})
    assert r.status_code == 200 and r.json()["item_type"] == "food"
    assert len(r.json()["items"]) == 3 and all(it["because"] == [] for it in r.json()["items"])


def test_timestamps_order_the_history(client: TestClient, state: ServingState) -> None:
    hist = [{"item_id": "k0_1", "timestamp": 30.0}, {"item_id": "k1_1", "timestamp": 10.0}]
    h, _ = state.history_from_request(["k0_1", "k1_1"], [None, None], [30.0, 10.0], None)
    assert state.catalog.item_ids[h.items].tolist() == ["k1_1", "k0_1"]
    assert client.post("/recommend", json={"history": hist}).status_code == 200


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"item_type": "books"}, "expected one of ['food', 'kitchen']"),
        ({"k": 0}, "greater than or equal to 1"),
        ({"k": MAX_K + 1}, f"less than or equal to {MAX_K}"),
        ({"history": [{"item_id": "k0_1"}] * (MAX_HISTORY + 1)}, f"at most {MAX_HISTORY} items"),
        ({"history": [{"item_id": "k0_1", "event": "teleport"}]}, "expected one of ['stream']"),
        ({"history": [{"item_id": ""}]}, "at least 1 character"),
        ({"history": [{"item_id": "k0_1", "colour": "red"}]}, "Extra inputs"),
        ({"history": [{"item_id": "k0_1", "timestamp": 1.0}, {"item_id": "k0_2"}]}, "on every entry or on none"),
        ({"k": "ten"}, "valid integer"),
    ],
)
def test_invalid_requests_get_422_saying_why(client: TestClient, body: dict, needle: str) -> None:
    r = client.post("/recommend", json=body)
    assert r.status_code == 422
    assert needle in r.text


def test_history_at_the_limit_is_accepted(client: TestClient) -> None:
    hist = [{"item_id": f"k0_{j % 10}"} for j in range(MAX_HISTORY)]
    assert client.post("/recommend", json={"history": hist, "k": MAX_K}).status_code == 200


def test_demographics_are_accepted(client: TestClient) -> None:
    body = {"history": [{"item_id": "k2_2"}], "user": {"country": "SE", "age": 31}, "k": 2}
    assert client.post("/recommend", json=body).status_code == 200


@pytest.mark.parametrize("user_id, k", [("u0", 5), ("u4", 3)])
def test_stored_user_recommendations(client: TestClient, state: ServingState, user_id: str, k: int) -> None:
    r = client.get(f"/users/{user_id}/recommendations", params={"item_type": "food", "k": k})
    assert r.status_code == 200, r.text
    got = [it["item_id"] for it in r.json()["items"]]
    assert len(got) == k
    h = state.stored_history(user_id)
    seen = set(state.catalog.item_ids[h.items])
    assert not seen & set(got)  # exclude_seen defaults to true
    ref, _ = state.model.recommend(h, state.catalog.items_of_type("food"), k, exclude=h)
    assert got == state.catalog.item_ids[ref[0]].tolist()


def test_unknown_user_is_404(client: TestClient) -> None:
    r = client.get("/users/nobody/recommendations")
    assert r.status_code == 404 and "nobody" in r.json()["detail"]


@pytest.mark.parametrize("item_type", [None, "food", "kitchen"])
def test_similar_items(client: TestClient, state: ServingState, item_type: str | None) -> None:
    params = {"k": 8} if item_type is None else {"k": 8, "item_type": item_type}
    r = client.get("/items/k1_3/similar", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["item"]["item_id"] == "k1_3"
    ids = [it["item_id"] for it in body["items"]]
    assert "k1_3" not in ids and len(ids) == 8
    assert all(_cluster(state, i) == 1 for i in ids)
    if item_type is not None:
        assert all(it["item_type"] == item_type for it in body["items"])
    z = state.explain_vectors
    q = state.catalog.index_of(["k1_3"])[0]
    pool = np.arange(state.catalog.n_items)
    if item_type is not None:
        pool = state.catalog.items_of_type(item_type)
    pool = pool[pool != q]
    ref = pool[np.argsort(-(z[pool] @ z[q]), kind="stable")[:8]]
    assert ids == state.catalog.item_ids[ref].tolist()


def test_similar_across_types_mixes_types(client: TestClient) -> None:
    types = {it["item_type"] for it in client.get("/items/f2_0/similar", params={"k": 20}).json()["items"]}
    assert types == {"food", "kitchen"}


@pytest.mark.parametrize("path, status", [("/items/zzz/similar", 404), ("/items/k0_1/similar?item_type=x", 422),
                                          ("/items/k0_1/similar?k=0", 422)])
def test_similar_errors(client: TestClient, path: str, status: int) -> None:
    assert client.get(path).status_code == status


def test_search_items(client: TestClient, state: ServingState) -> None:
    r = client.get("/items/search", params={"q": "TOOL 2", "item_type": "kitchen", "limit": 50})
    items = r.json()["items"]
    assert len(items) == 10 and all(it["title"].startswith("kitchen tool 2") for it in items)
    pop = [int(state.popularity[state.catalog.index_of([it["item_id"]])[0]]) for it in items]
    assert pop == sorted(pop, reverse=True)
    assert client.get("/items/search", params={"q": ""}).status_code == 422
    assert client.get("/items/search", params={"q": "zzz"}).json()["items"] == []


def test_health_metadata_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    m = client.get("/metadata").json()
    assert m["catalogue"] == {"food": 24, "kitchen": 30} and m["target_type"] == "food"
    assert m["model"]["name"] == "hgnn-knn" and m["trained_at"].startswith("2024-01-01")
    assert m["index"]["user"]["types"]["food"]["kind"] == "exact"
    assert m["run_id"] == "run-a" and "run_dir" not in m
    key = 'hgrec_http_requests_total{route="/recommend",method="POST",status="200"}'
    stage = 'hgrec_recommend_stage_seconds_sum{route="/recommend",stage="%s"}'
    before = parse_text(client.get("/metrics").text)
    client.post("/recommend", json={"history": [{"item_id": "k0_0"}]})
    after = parse_text(client.get("/metrics").text)
    assert after[key] == before.get(key, 0) + 1
    assert after[stage % "tower"] > before.get(stage % "tower", 0)
    assert after[stage % "index"] > before.get(stage % "index", 0)


def test_page_is_served(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "/items/search" in r.text and "/recommend" in r.text


def test_non_vector_model_is_served_by_its_scores(run_dir) -> None:  # type: ignore[no-untyped-def]
    state = load_state(run_dir, model_name="popularity")
    assert state.user_indexes is None and state.item_indexes is not None  # similar: HGNN
    h, _ = state.history_from_request(["k0_1"], [None], [None], None)
    rec = state.recommend(h, "food", 4, exclude_seen=True)
    counts = state.model.counts[state.catalog.items_of_type("food")]
    assert np.allclose(np.sort(rec.scores)[::-1], np.sort(counts)[::-1][:4])
    assert rec.timings.index == 0.0


def test_admin_route_is_off_without_a_token(client: TestClient) -> None:
    assert client.post("/admin/reload", json={}).status_code == 404
    assert "/admin/reload" not in client.get("/openapi.json").json()["paths"]
