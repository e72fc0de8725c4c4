"""Input validation shared by the baselines: errors name the row and the value."""

from __future__ import annotations

import numpy as np
import pytest

from hgrec.data.dataset import Dataset
from hgrec.data.histories import Histories
from hgrec.models.inputs import check_candidates, check_histories, history_matrix
from hgrec.recommenders.registry import BASELINES
from tests.models.contract import build_train


def test_history_outside_catalogue_names_row_and_item() -> None:
    hist = Histories.from_lists([[0, 1], [2, 9], [-1]])
    with pytest.raises(ValueError, match=r"2 history entries .* rows \[1, 2\], items \[9, -1\]"):
        check_histories(hist, 5, "m")


@pytest.mark.parametrize("cand", [[0, 5], [-1], [[0, 1]]])
def test_bad_candidates(cand: list) -> None:
    with pytest.raises(ValueError, match="candidates"):
        check_candidates(np.array(cand), 5, "m")


def test_history_matrix_is_binary() -> None:
    m = history_matrix(Histories.from_lists([[1, 1, 3], []]), 4, "m")
    np.testing.assert_array_equal(m.toarray(), [[0, 1, 0, 1], [0, 0, 0, 0]])


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_rejects_out_of_catalogue_items(tiny_dataset: Dataset, name: str) -> None:
    model = BASELINES[name]().fit(build_train(tiny_dataset))
    n = tiny_dataset.catalog.n_items
    with pytest.raises(ValueError, match="outside the catalogue"):
        model.score(Histories.from_lists([[0], [n]]), np.arange(3))
    with pytest.raises(ValueError, match="outside the catalogue"):
        model.score(Histories.from_lists([[0]]), np.array([n]))


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_score_before_fit_is_a_clear_error(name: str) -> None:
    with pytest.raises(RuntimeError, match="before score"):
        BASELINES[name]().score(Histories.empty(1), np.arange(3))
