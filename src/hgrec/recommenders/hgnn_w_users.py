"""HGNN-w-users: the paper's HGNN on a tripartite user-item graph (P1 section 5.1.3).

"An HGNN on a tripartite user-podcast-audiobook graph; each edge connects a user with a
podcast or audiobook whenever they stream it." Here the nodes are the catalogue items
(indices 0..n_items-1, their own types) followed by the training users (node type
``"user"``); there is one relation per (item type, user) pair and no item-item or user-user
relation. Items carry their text embeddings, users the L2-normalised mean text of their
items. The HGNN of P1 Eqs. 2-3 is trained with the Eq. 4 hinge loss on the user-item edges
(``hgrec.training.hgnn.train_hgnn``, balanced across the (type, user) relations).

Users never seen in training are embedded inductively, as if each were added **alone** to
the training graph: a query user q becomes a new "user" node, and every item i of its
history a private *copy* c(q, i) with i's text and i's training neighbourhood (edges to the
training users of i) plus the edge to q. One full-neighbourhood pass (``embed_items``) over
that augmented graph gives q's embedding; the score of candidate j is z_q . z_j, with z_j
the item embeddings of the training graph.

Why copies: edges are undirected, so a query user joined to the shared item nodes would
change those items' representations and thereby the other query users' embeddings (scores
would depend on the batch). A copy is seen only by its own query user. The training users
it touches already have i among their neighbours and its copy has the same features, so by
the idempotence of the max of Eq. 2 their layer-1 states do not change; for up to three
layers q's embedding therefore equals the one it would get in "training graph + q" exactly
(tests/models/test_hgnn_w_users.py checks this). Deeper models are refused.

Cost of one ``score`` call: one inference over the copies' edges, i.e. the sum of the
training degrees of the batch's history items (~0.9k per Amazon user), plus for 3 layers the
touched training users' own edges.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from hgrec.config import HGNNConfig
from hgrec.data.histories import Histories
from hgrec.graph.types import CoGraph, RelationEdges, relation_name
from hgrec.models.base import Recommender, TrainSet
from hgrec.models.hgnn import HGNN, embed_items
from hgrec.models.inputs import check_candidates, history_matrix
from hgrec.training.hgnn import build_model, train_hgnn

USER_TYPE = "user"
# Layers for which a copy-augmented graph reproduces "training graph + this user" exactly.
MAX_LAYERS = 3
# Budget for 2 shared CPU cores on Amazon (51k train users, 402k edges): see docs/baselines.md.
DEFAULT_HGNN_PARAMS: dict[str, Any] = {
    "type_matched_negatives": True,  # a user's positive food item against random food items
    "max_steps_per_epoch": 20,
    "max_epochs": 6,
    "patience": 3,
}


def node_types(item_type_names: tuple[str, ...]) -> tuple[str, ...]:
    """Type names of the tripartite graph: the item types plus ``"user"``, sorted (as
    ``CoGraph.type_names`` must be).

    Raises:
        ValueError: an item type is already called "user".
    """
    if USER_TYPE in item_type_names:
        raise ValueError(
            f"item type names {list(item_type_names)} contain {USER_TYPE!r}, the node type "
            "HGNN-w-users reserves for users; rename that item type"
        )
    return tuple(sorted((*item_type_names, USER_TYPE)))


def user_item_relations(
    item_node: np.ndarray,
    user_node: np.ndarray,
    node_type: np.ndarray,
    type_names: tuple[str, ...],
) -> dict[str, RelationEdges]:
    """Split user-item edges into one relation per (item type, user) pair.

    Args:
        item_node: (E,) int64 node index of each edge's item side.
        user_node: (E,) int64 node index of each edge's user side.
        node_type: (n_nodes,) int codes into ``type_names``.
        type_names: sorted node type names, ``"user"`` among them.

    Returns:
        relation_name(t, "user") -> edges for every item type t (maybe empty); src has the
        type whose name sorts first, as ``RelationEdges`` requires.
    """
    user_code = type_names.index(USER_TYPE)
    edge_type = node_type[item_node]
    if len(edge_type) and (edge_type == user_code).any():
        raise ValueError("user_item_relations: an item-side node has the user type")
    out: dict[str, RelationEdges] = {}
    for code, name in enumerate(type_names):  # loop over item types
        if name == USER_TYPE:
            continue
        m = edge_type == code
        items, users = item_node[m].astype(np.int64), user_node[m].astype(np.int64)
        src, dst = (items, users) if name < USER_TYPE else (users, items)
        out[relation_name(name, USER_TYPE)] = RelationEdges(
            min(name, USER_TYPE), max(name, USER_TYPE), src, dst, np.ones(len(src), np.int32)
        )
    return out


def tripartite_graph(
    item_type: np.ndarray, item_type_names: tuple[str, ...], matrix: sp.csr_matrix
) -> CoGraph:
    """The training graph: items 0..n_items-1, then one "user" node per row of ``matrix``.

    Args:
        item_type: (n_items,) codes into ``item_type_names`` (the catalogue's coding).
        item_type_names: the catalogue's sorted type names.
        matrix: (n_users, n_items) user-item matrix; each stored entry is one edge
            (duplicates are summed first, so each (user, item) pair is one edge).

    Returns:
        CoGraph with n_items + n_users nodes, relations ``relation_name(t, "user")`` only.
    """
    n_users, n_items = matrix.shape
    if len(item_type) != n_items:
        raise ValueError(f"item_type has {len(item_type)} entries, matrix has {n_items} columns")
    type_names = node_types(item_type_names)
    remap = np.array([type_names.index(t) for t in item_type_names], dtype=np.int16)
    node_type = np.concatenate(
        [remap[item_type], np.full(n_users, type_names.index(USER_TYPE), np.int16)]
    )
    coo = sp.csr_matrix(matrix, copy=True)
    coo.sum_duplicates()
    coo = coo.tocoo()
    rel = user_item_relations(
        coo.col.astype(np.int64), n_items + coo.row.astype(np.int64), node_type, type_names
    )
    return CoGraph(n_items + n_users, node_type, type_names, rel)


def mean_text(matrix: sp.csr_matrix, item_text: np.ndarray) -> np.ndarray:
    """(n_rows, d) float32 L2-normalised mean text embedding of each row's items (zeros for
    empty rows): users have no text of their own."""
    m = sp.csr_matrix(matrix, dtype=np.float32)
    s = np.asarray(m @ item_text, dtype=np.float32)  # (n_rows, d)
    norm = np.linalg.norm(s, axis=1, keepdims=True)
    return np.divide(s, norm, out=np.zeros_like(s), where=norm > 0)


class HGNNWithUsers(Recommender):
    """HGNN on the tripartite user-item graph; new users embedded inductively (module doc).

    Args:
        hgnn_params: HGNN settings by name (:meth:`hgrec.config.HGNNConfig.updated`)
            overriding ``DEFAULT_HGNN_PARAMS`` (then the HGNNConfig defaults);
            JSON-serialisable. At most 3 layers (``fanouts``).
        progress: show tqdm bars while training.

    Example:
        >>> model = HGNNWithUsers(hgnn_params={"max_epochs": 4}).fit(train)
        >>> ids, scores = model.recommend(histories, catalog.items_of_type("food"), k=10)
    """

    name: ClassVar[str] = "hgnn-w-users"
    scores_unseen_items: ClassVar[bool] = True  # from the item's text (and edges)

    def __init__(self, hgnn_params: dict[str, Any] | None = None, progress: bool = True) -> None:
        self.hgnn_params = dict(hgnn_params or {})
        # ValueError: an unknown setting (the message lists them) or a bad value
        self.cfg = HGNNConfig().updated(**{**DEFAULT_HGNN_PARAMS, **self.hgnn_params})
        if len(self.cfg.model.fanouts) > MAX_LAYERS:
            raise ValueError(
                f"hgnn_params fanouts {self.cfg.model.fanouts} means {len(self.cfg.model.fanouts)} layers; "
                f"HGNN-w-users embeds new users exactly for at most {MAX_LAYERS} layers"
            )
        self.progress = progress
        self.model: HGNN | None = None
        self.graph: CoGraph | None = None  # the training graph (items, then training users)
        self.features: np.ndarray | None = None  # (n_nodes, d) node features of ``graph``
        self.item_embeddings: np.ndarray | None = None  # (n_items, out_dim)
        self.item_type_names: tuple[str, ...] = ()
        self._item_users: sp.csr_matrix | None = None  # (n_items, n_train) item -> users
        self.history: list[dict[str, Any]] = []
        self.fit_report: dict[str, Any] = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, train: TrainSet) -> HGNNWithUsers:
        """Build the tripartite graph of ``train`` and train the HGNN on its edges (Eq. 4)."""
        t0 = time.perf_counter()
        cat = train.catalog
        if train.item_text is None:
            raise ValueError("HGNN-w-users needs TrainSet.item_text (item node features)")
        text = np.asarray(train.item_text, dtype=np.float32)
        if text.ndim != 2 or text.shape[0] != cat.n_items:
            raise ValueError(
                f"TrainSet.item_text has shape {text.shape}, expected ({cat.n_items}, d)"
            )
        self._setup(cat.item_type, cat.type_names, train.matrix, text)
        assert self.graph is not None and self.features is not None
        result = train_hgnn(
            self.graph, self.features, self.cfg, seed=train.seed, progress=self.progress
        )
        self.model = result.model
        self.item_embeddings = np.ascontiguousarray(result.embeddings[: cat.n_items])
        self.history = result.history
        n_train = train.matrix.shape[0]
        self.fit_report = {
            "items": cat.n_items,
            "train_users": n_train,
            "users_without_edges": int((np.diff(train.matrix.indptr) == 0).sum()),
            "edges": {r: e.n_edges for r, e in self.graph.relations.items()},
            "repeats_merged": int(len(train.histories.items) - train.matrix.nnz),
            "best_epoch": result.best_epoch,
            "seconds": time.perf_counter() - t0,
        }
        return self

    def _setup(
        self,
        item_type: np.ndarray,
        item_type_names: tuple[str, ...],
        matrix: sp.csr_matrix,
        item_text: np.ndarray,
    ) -> None:
        """Training graph, node features and item -> user adjacency (fit and set_state)."""
        m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        m.sum_duplicates()
        m.data[:] = 1.0
        self.item_type_names = tuple(item_type_names)
        self.graph = tripartite_graph(np.asarray(item_type), self.item_type_names, m)
        self.features = np.concatenate([item_text, mean_text(m, item_text)]).astype(np.float32)
        self._item_users = m.T.tocsr()
        self._item_users.sort_indices()

    # ------------------------------------------------------------------ inference
    def _require_fitted(self) -> tuple[HGNN, CoGraph, np.ndarray, np.ndarray, sp.csr_matrix]:
        if (
            self.model is None or self.graph is None or self.features is None
            or self.item_embeddings is None or self._item_users is None
        ):  # fmt: skip
            raise RuntimeError("HGNN-w-users is not fitted: call fit or set_state first")
        return self.model, self.graph, self.features, self.item_embeddings, self._item_users

    def query_graph(self, histories: Histories) -> tuple[CoGraph, np.ndarray, np.ndarray]:
        """The augmented graph in which ``histories`` are embedded (module docstring).

        Nodes: the n_items items, the training users touched by the copies (V), the n query
        users, then one copy per distinct (query user, item) pair. Edges: copy - query user,
        copy - each training user of its item, and for 3-layer models V - their items.

        Returns:
            graph, features (n_nodes, d) float32, and the (n,) node indices of the query
            users.
        """
        model, graph, features, _, item_users = self._require_fitted()
        n_items = item_users.shape[0]
        h = history_matrix(histories, n_items, self.name)  # (n, n_items), sorted, deduplicated
        n = h.shape[0]
        q_row = np.repeat(np.arange(n, dtype=np.int64), np.diff(h.indptr))  # (P,) copy -> user
        q_item = h.indices.astype(np.int64)  # (P,) copy -> item
        p = len(q_item)
        # Training users of each copy's item, as (copy, training user) pairs, vectorised.
        deg = np.diff(item_users.indptr)[q_item]  # (P,)
        c_of = np.repeat(np.arange(p, dtype=np.int64), deg)  # (sum deg,)
        seg = np.repeat(np.cumsum(deg) - deg, deg)
        t_user = item_users.indices[
            np.repeat(item_users.indptr[q_item], deg) + np.arange(len(c_of)) - seg
        ].astype(np.int64)
        touched, t_local = np.unique(t_user, return_inverse=True)  # V and each pair's slot
        n_v = len(touched)
        base_v, base_q = n_items, n_items + n_v
        base_c = base_q + n
        user_code = graph.type_names.index(USER_TYPE)
        node_type = np.concatenate(
            [
                graph.item_type[:n_items],
                np.full(n_v + n, user_code, np.int16),
                graph.item_type[q_item],
            ]
        ).astype(np.int16)
        item_text = features[:n_items]
        feats = np.concatenate(
            [
                item_text,
                features[n_items + touched],
                mean_text(h, item_text),
                item_text[q_item],
            ]
        ).astype(np.float32)
        item_side = [base_c + c_of, base_c + np.arange(p, dtype=np.int64)]
        user_side = [base_v + t_local.astype(np.int64), base_q + q_row]
        if model.n_layers >= 3:
            # Layer-1 states of V must see all their items, not only the copied ones.
            v_items = item_users.T.tocsr()[touched]  # (|V|, n_items)
            item_side.append(v_items.indices.astype(np.int64))
            user_side.append(base_v + np.repeat(np.arange(n_v), np.diff(v_items.indptr)))
        rel = user_item_relations(
            np.concatenate(item_side), np.concatenate(user_side), node_type, graph.type_names
        )
        aug = CoGraph(base_c + p, node_type, graph.type_names, rel)
        return aug, feats, base_q + np.arange(n, dtype=np.int64)

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """(n, out_dim) float32 unit embeddings of the query users (zeros for empty
        histories); one full-neighbourhood inference over :meth:`query_graph`."""
        model = self._require_fitted()[0]
        if histories.n_users == 0:
            return np.zeros((0, model.out_dim), np.float32)
        aug, feats, users = self.query_graph(histories)
        z = embed_items(model, aug, feats, self.cfg.inference.batch_edges)  # (n_nodes, out)
        return np.ascontiguousarray(z[users], dtype=np.float32)

    def score(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """(n, c) float32: z_user . z_item for each history and candidate."""
        item_emb = self._require_fitted()[3]
        cand = check_candidates(candidates, item_emb.shape[0], self.name)
        u = self.user_vectors(histories)  # (n, out_dim)
        return np.asarray(u @ item_emb[cand].T, dtype=np.float32)  # (n, c)

    # ------------------------------------------------------------------ persistence
    def get_params(self) -> dict[str, Any]:
        return {"hgnn_params": dict(self.hgnn_params), "progress": self.progress}

    def get_state(self) -> dict[str, np.ndarray]:
        """Weights (``model.<key>``), item text, types, training edges, item embeddings."""
        model, graph, features, item_emb, item_users = self._require_fitted()
        n_items = item_users.shape[0]
        users_items = item_users.T.tocsr()  # (n_train, n_items)
        state = {
            f"model.{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()
        }
        state.update(
            item_text=features[:n_items],
            item_type=self._catalog_codes(graph, n_items),
            item_type_names=np.array(self.item_type_names, dtype=str),
            train_indptr=users_items.indptr.astype(np.int64),
            train_items=users_items.indices.astype(np.int64),
            item_embeddings=item_emb,
        )
        return state

    def _catalog_codes(self, graph: CoGraph, n_items: int) -> np.ndarray:
        """(n_items,) int16 item type codes in the catalogue's coding (inverse of the remap)."""
        back = np.array(
            [self.item_type_names.index(t) if t != USER_TYPE else -1 for t in graph.type_names],
            dtype=np.int16,
        )
        return back[graph.item_type[:n_items]]

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        text = np.asarray(state["item_text"], dtype=np.float32)
        n_items = text.shape[0]
        indptr, items = np.asarray(state["train_indptr"]), np.asarray(state["train_items"])
        m = sp.csr_matrix(
            (np.ones(len(items), np.float32), items, indptr), shape=(len(indptr) - 1, n_items)
        )
        names = tuple(str(t) for t in state["item_type_names"])
        self._setup(np.asarray(state["item_type"]), names, m, text)
        assert self.graph is not None
        model = build_model(self.graph, text.shape[1], self.cfg, seed=0)
        model.load_state_dict(
            {k[len("model."):]: torch.from_numpy(np.array(v)) for k, v in state.items()
             if k.startswith("model.")}
        )  # fmt: skip
        self.model = model.eval()
        self.item_embeddings = np.asarray(state["item_embeddings"], dtype=np.float32)
