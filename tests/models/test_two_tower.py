"""The two-tower retriever: towers, variants, contract basics (shapes, save/load, seeding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hgrec.data.dataset import Dataset
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.towers import Tower, TwoTowers
from hgrec.recommenders.two_tower import TwoTowerHGNNRecommender, TwoTowerRecommender
from tests.conftest import make_tiny_dataset
from tests.models.contract import VectorRecommenderContract, cluster_text

# Without id embeddings and cold twins (both on in the config's defaults, which the pipeline
# tests run): the plain towers these unit tests were written for.
PLAIN = {"id_dim": 0, "cold_twins": False}
SMALL = {"layers": [32, 16, 8], "batch_size": 32, "max_epochs": 2, "progress": False, **PLAIN}


pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The contract runs the config's defaults (shared id table, cold twins) at a tiny size: an
# 8-d table (a 64-d one memorises the 36 training users: 0.83 of the top-3 in the user's
# cluster for the 2T-HGNN; 8-d: 0.93 for both models, contract floor 0.9).
CONTRACT = {"layers": [32, 16], "batch_size": 32, "max_epochs": 8, "id_dim": 8, "progress": False}


class TestTwoTowerContract(VectorRecommenderContract):
    def make_model(self) -> Recommender:
        return TwoTowerRecommender(**CONTRACT)


class TestTwoTowerHGNNContract(VectorRecommenderContract):
    def make_model(self) -> Recommender:
        return TwoTowerRecommender(cluster_text(make_tiny_dataset(), seed=7), **CONTRACT)


def planted_features(ds: Dataset, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random unit "text" (24-d) and "HGNN" (16-d) vectors = cluster centre + noise."""
    rng = np.random.default_rng(seed)
    cluster = ds.catalog.items["cluster"].to_numpy()

    def unit(d: int, noise: float) -> np.ndarray:
        x = rng.normal(size=(3, d))[cluster] + noise * rng.normal(size=(len(cluster), d))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return unit(24, 1.0), unit(16, 0.5)


def train_set(ds: Dataset, text: np.ndarray | None, seed: int = 0) -> TrainSet:
    users = ds.users_in("train")
    return TrainSet.build(
        ds.catalog, ds.histories(users), item_text=text, event_names=ds.event_names,
        users=ds.users.iloc[users].reset_index(drop=True), seed=seed,
    )


@pytest.mark.parametrize("normalize", [True, False])
def test_tower_output_shape_is_last_layer(normalize: bool) -> None:
    tower = Tower(dense_dim=10, cardinalities=[3, 5], cat_dim=4, layers=[512, 256, 128],
                  normalize=normalize)
    out = tower(torch.randn(7, 10), torch.tensor([[0, 4]] * 7))
    assert out.shape == (7, 128) and tower.out_dim == 128
    linear = [m for m in tower.mlp if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [512, 256, 128]
    assert linear[0].in_features == 10 + 2 * 4
    norms = out.norm(dim=1)
    assert torch.allclose(norms, torch.ones(7), atol=1e-5) == normalize


@pytest.mark.parametrize("hgnn, name, cls", [(False, "2t", TwoTowerRecommender),
                                             (True, "2t-hgnn", TwoTowerHGNNRecommender)])
def test_constructor_picks_the_variant(hgnn: bool, name: str, cls: type) -> None:
    z = np.zeros((4, 2), np.float32) if hgnn else None
    model = TwoTowerRecommender(z, **SMALL)
    assert type(model) is cls and model.name == name
    assert isinstance(model, TwoTowerRecommender)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"loss": "bpr"}, "loss"), ({"batch_size": 0}, "batch_size"),
     ({"temperature": 0.0}, "temperature"), ({"layers": []}, "layers"),
     ({"max_steps_per_epoch": 0}, "max_steps_per_epoch")],
)
def test_constructor_validates(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TwoTowerRecommender(**kwargs)  # type: ignore[arg-type]


def test_unfitted_model_refuses_to_score(tiny_dataset: Dataset) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        TwoTowerRecommender(**SMALL).score(tiny_dataset.histories(np.arange(2)), np.arange(3))


def test_2t_hgnn_needs_embeddings(tiny_dataset: Dataset) -> None:
    with pytest.raises(ValueError, match="needs HGNN embeddings"):
        TwoTowerHGNNRecommender(**SMALL).fit(train_set(tiny_dataset, None))


IDS_OFF: dict[str, object] = {}
IDS_OWN = {"id_dim": 8, "id_min_count": 2, "id_shared": False}
IDS_SHARED = {"id_dim": 8, "id_min_count": 2, "id_shared": True}


@pytest.mark.parametrize("use_hgnn", [True, False])
@pytest.mark.parametrize("id_params", [IDS_OFF, IDS_OWN, IDS_SHARED])
def test_contract_shapes_save_load_and_seed(
    tiny_dataset: Dataset, tmp_path: Path, use_hgnn: bool, id_params: dict[str, object]
) -> None:
    ds = tiny_dataset
    text, z = planted_features(ds)
    train = train_set(ds, text)
    params = {**SMALL, **id_params}
    model = TwoTowerRecommender(z if use_hgnn else None, **params).fit(train)
    queries = ds.histories(ds.users_in("valid"))  # users never seen in training
    cands = ds.catalog.items_of_type("food")
    s = model.score(queries, cands)
    assert s.shape == (queries.n_users, len(cands)) and s.dtype == np.float32
    np.testing.assert_allclose(
        s, model.user_vectors(queries) @ model.item_vectors()[cands].T, rtol=1e-5, atol=1e-6
    )
    assert model.item_vectors().shape == (ds.catalog.n_items, 8)
    ids, _ = model.recommend(queries, cands, k=5, exclude=queries)
    assert ids.shape == (queries.n_users, 5) and np.isin(ids, cands).all()
    # an empty history (a brand-new user) still gets a vector
    assert np.isfinite(model.score(ds.histories(np.array([], np.int64)), cands)).all()

    model.save(tmp_path / "m")
    loaded = TwoTowerRecommender.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.name == model.name
    np.testing.assert_array_equal(loaded.score(queries, cands), s)

    if id_params:
        assert loaded.item_features is not None and model.item_features is not None
        assert loaded.item_features.id_code is not None and model.item_features.id_code is not None
        assert torch.equal(loaded.item_features.id_code, model.item_features.id_code)
        assert loaded.get_params() == model.get_params()

    again = TwoTowerRecommender(z if use_hgnn else None, **params).fit(train)
    np.testing.assert_array_equal(again.item_vectors(), model.item_vectors())
    other = TwoTowerRecommender(z if use_hgnn else None, **params).fit(train_set(ds, text, seed=1))
    assert not np.allclose(other.item_vectors(), model.item_vectors())


def test_demographics_flow_into_the_user_tower(tiny_dataset: Dataset) -> None:
    ds = tiny_dataset
    users = ds.users.copy()
    users["country"] = np.where(np.arange(len(users)) % 2 == 0, "se", "us")
    users["age"] = np.arange(len(users), dtype=float)
    ds = Dataset(name=ds.name, catalog=ds.catalog, users=users, interactions=ds.interactions,
                 target_type=ds.target_type)
    text, _ = planted_features(ds)
    model = TwoTowerRecommender(**SMALL).fit(train_set(ds, text))
    assert model.user_featurizer is not None
    assert list(model.user_featurizer.categorical_vocab) == ["country"]
    q = ds.histories(ds.users_in("valid")[:1])
    assert q.users is not None
    flipped = q.users.assign(country="us" if q.users["country"].iloc[0] == "se" else "se")
    q2 = type(q)(indptr=q.indptr, items=q.items, events=q.events, weights=q.weights, users=flipped)
    assert not np.allclose(model.user_vectors(q), model.user_vectors(q2))


# ---------------------------------------------------------------------------- item-id embeddings
@pytest.mark.parametrize("n, slots, id_dim", [(4, 1, 3), (3, 2, 5)])
def test_tower_id_inputs_widen_the_first_layer(n: int, slots: int, id_dim: int) -> None:
    tower = Tower(dense_dim=6, cardinalities=[3], cat_dim=2, layers=[16, 8], normalize=True,
                  id_dim=id_dim, id_slots=slots, n_ids=7)
    linear = [m for m in tower.mlp if isinstance(m, torch.nn.Linear)]
    assert linear[0].in_features == 6 + 2 + slots * id_dim
    if slots == 1:
        codes, offsets = torch.tensor([0, 6, 2, 2]), None
    else:  # bags: u0 (t0: [1, 2], t1: empty), u1 (t0: [3], t1: [4, 4]), u2 both empty
        codes, offsets = torch.tensor([1, 2, 3, 4, 4]), torch.tensor([0, 2, 2, 3, 5, 5])
    out = tower(torch.randn(n, 6), torch.zeros(n, 1, dtype=torch.long), codes, offsets)
    assert out.shape == (n, 8)
    ids = tower._id_input(n, codes, offsets)
    w = tower.id_table.weight.detach() if tower.id_table is not None else None
    assert w is not None and ids.shape == (n, slots * id_dim)
    if slots == 1:
        torch.testing.assert_close(ids, w[codes])
    else:
        want = torch.cat([w[[1, 2]].mean(0), torch.zeros(id_dim), w[3], w[4],
                          torch.zeros(2 * id_dim)]).view(n, -1)
        torch.testing.assert_close(ids, want)
    with pytest.raises(ValueError, match="id_codes"):
        tower(torch.randn(n, 6), torch.zeros(n, 1, dtype=torch.long))


@pytest.mark.parametrize("id_min_count", [1, 3, 10_000])
def test_rare_items_share_id_row_zero(tiny_dataset: Dataset, id_min_count: int) -> None:
    ds = tiny_dataset
    text, _ = planted_features(ds)
    train = train_set(ds, text)
    params = {**SMALL, "max_epochs": 1, "id_dim": 4, "id_min_count": id_min_count,
              "id_shared": False}
    model = TwoTowerRecommender(**params).fit(train)
    counts = np.bincount(train.histories.items, minlength=ds.catalog.n_items)
    feats = model.item_features
    assert feats is not None and feats.id_code is not None
    codes = feats.id_code.numpy()
    rare = counts < id_min_count
    assert (codes[rare] == 0).all() and (codes[~rare] >= 1).all()
    assert len(np.unique(codes[~rare])) == (~rare).sum()  # a row of its own each
    assert model.report_["id_rare_items"] == rare.sum()
    assert model.report_["id_rows"] == (~rare).sum() + 1
    assert model.item_tower is not None and model.item_tower.id_table is not None
    assert model.item_tower.id_table.num_embeddings == (~rare).sum() + 1


@pytest.mark.parametrize("shared", [True, False])
def test_id_tables_train_end_to_end(tiny_dataset: Dataset, shared: bool) -> None:
    """The user tower's bags backpropagate into the table it reads (own or the item tower's)."""
    ds = tiny_dataset
    text, _ = planted_features(ds)
    model = TwoTowerRecommender(**{**SMALL, "max_epochs": 1, "id_dim": 4, "id_shared": shared})
    model.fit(train_set(ds, text))
    assert model.user_tower is not None and model.item_tower is not None
    assert model.user_featurizer is not None and model.item_tower.id_table is not None
    assert (model.user_tower.id_table is None) == shared
    table = model.item_tower.id_table if shared else model.user_tower.id_table
    assert table is not None
    table.weight.grad = None
    inputs = model.user_featurizer.transform(ds.histories(ds.users_in("valid")))
    model.embed_users(inputs).sum().backward()
    assert table.weight.grad is not None
    used = torch.zeros(table.num_embeddings, dtype=torch.bool)
    assert inputs.id_codes is not None
    used[inputs.id_codes] = True
    assert (table.weight.grad[~used] == 0).all() and table.weight.grad[used].abs().sum() > 0


@pytest.mark.parametrize("kwargs, match", [({"id_dim": -1}, "id_dim"),
                                           ({"id_min_count": 0}, "id_min_count")])
def test_constructor_validates_id_params(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TwoTowerRecommender(**kwargs)  # type: ignore[arg-type]


def test_from_config_passes_id_params() -> None:
    from hgrec.config import TwoTowerConfig

    cfg = TwoTowerConfig(id_dim=12, id_min_count=4, id_shared=True)
    params = TwoTowerRecommender.from_config(cfg, progress=False).get_params()
    assert (params["id_dim"], params["id_min_count"], params["id_shared"]) == (12, 4, True)


# ---------------------------------------------------------------------------- runtime.device
def test_device_cpu_trains_identically_to_the_default(
    tiny_dataset: Dataset, tmp_path: Path
) -> None:
    """device="cpu" is today's default path: same seed, bit-identical vectors and lists."""
    ds = tiny_dataset
    text, z = planted_features(ds)
    train = train_set(ds, text)
    params = {**SMALL, **IDS_SHARED}
    default = TwoTowerRecommender(z, **params).fit(train)
    on_cpu = TwoTowerRecommender(z, **params, device="cpu").fit(train)
    assert on_cpu.device == torch.device("cpu") and "device" not in on_cpu.get_params()
    assert on_cpu.user_tower is not None and on_cpu.item_tower is not None
    tower_params = [*on_cpu.user_tower.parameters(), *on_cpu.item_tower.parameters()]
    assert all(p.device.type == "cpu" for p in tower_params)
    def losses(m: TwoTowerRecommender) -> list[float]:
        return [e["loss"] for e in m.report_["epochs"]]

    assert losses(on_cpu) == losses(default)
    queries, cands = ds.histories(ds.users_in("valid")), ds.catalog.items_of_type("food")
    np.testing.assert_array_equal(on_cpu.item_vectors(), default.item_vectors())
    for got, want in zip(on_cpu.recommend(queries, cands, k=5, exclude=queries),
                         default.recommend(queries, cands, k=5, exclude=queries)):
        np.testing.assert_array_equal(got, want)
    on_cpu.save(tmp_path / "m")
    loaded = TwoTowerRecommender.load(tmp_path / "m", device="cpu")
    assert loaded.device == torch.device("cpu")
    np.testing.assert_array_equal(loaded.score(queries, cands), default.score(queries, cands))


def test_from_config_passes_the_device() -> None:
    from hgrec.config import TwoTowerConfig

    model = TwoTowerRecommender.from_config(TwoTowerConfig(), progress=False, device="cpu")
    assert model.device == torch.device("cpu")
    assert TwoTowerRecommender.from_config(TwoTowerConfig()).device == torch.device("cpu")


@pytest.mark.parametrize("build", ["constructor", "from_config", "to", "load"])
def test_cuda_without_a_gpu_fails_before_training(
    tiny_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: str
) -> None:
    """CUDA asked for where it is unavailable (forced here, so this runs on GPU machines too):
    a one-line UserError naming runtime.device, and no training step is taken."""
    from hgrec.config import TwoTowerConfig
    from hgrec.errors import UserError

    ds = tiny_dataset
    text, _ = planted_features(ds)
    train = train_set(ds, text)
    fitted = None
    if build in ("to", "load"):  # fitted on the CPU before CUDA "disappears"
        fitted = TwoTowerRecommender(**{**SMALL, "max_epochs": 1}).fit(train)
        fitted.save(tmp_path / "m")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr("hgrec.recommenders.two_tower.train_two_tower", no_training)
    with pytest.raises(UserError, match="runtime.device") as err:
        if build == "constructor":
            TwoTowerRecommender(**SMALL, device="cuda").fit(train)
        elif build == "from_config":
            cfg = TwoTowerConfig()
            TwoTowerRecommender.from_config(cfg, progress=False, device="cuda").fit(train)
        elif build == "to":
            assert fitted is not None
            fitted.to("cuda").fit(train)
        else:
            TwoTowerRecommender.load(tmp_path / "m", device="cuda")
    assert "\n" not in str(err.value)
    if fitted is not None:  # a refused move leaves the model where it was
        assert fitted.device == torch.device("cpu")


def test_ddp_training_refuses_a_cuda_device(
    tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two-tower DDP runs on gloo / CPU: a non-CPU model device is a UserError up front."""
    from hgrec.errors import UserError
    from hgrec.training.two_tower import train_two_tower
    from hgrec.utils.distributed import DistInfo

    ds = tiny_dataset
    text, _ = planted_features(ds)
    train = train_set(ds, text)
    model = TwoTowerRecommender(**{**SMALL, "max_epochs": 1}).fit(train)  # built, on the CPU
    assert model.towers is not None
    cuda = property(lambda self: torch.device("cuda"))  # as if built on a GPU machine
    with monkeypatch.context() as patch, pytest.raises(UserError, match="runtime.device.*CPU only"):
        patch.setattr(TwoTowers, "device", cuda)
        train_two_tower(model.towers, model.cfg, train,
                        dist_info=DistInfo(rank=0, world_size=2, backend="gloo"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_device_trains_and_saves_cpu_state(tiny_dataset: Dataset, tmp_path: Path) -> None:
    ds = tiny_dataset
    text, z = planted_features(ds)
    train = train_set(ds, text)
    model = TwoTowerRecommender(z, **SMALL, **IDS_SHARED, device="cuda").fit(train)
    assert model.item_tower is not None and model.item_tower.id_table is not None
    assert model.item_tower.id_table.weight.device.type == "cuda"
    queries, cands = ds.histories(ds.users_in("valid")), ds.catalog.items_of_type("food")
    s = model.score(queries, cands)
    assert isinstance(s, np.ndarray) and s.dtype == np.float32 and np.isfinite(s).all()
    model.save(tmp_path / "m")
    loaded = TwoTowerRecommender.load(tmp_path / "m")  # CPU
    assert loaded.device == torch.device("cpu")
    np.testing.assert_array_equal(loaded.item_vectors(), model.item_vectors())
    np.testing.assert_allclose(loaded.score(queries, cands), s, atol=1e-4)
    # same init and batches as on the CPU; only float rounding differs (loose bound)
    cpu = TwoTowerRecommender(z, **SMALL, **IDS_SHARED).fit(train)
    assert np.abs(cpu.item_vectors() - model.item_vectors()).max() < 0.05
