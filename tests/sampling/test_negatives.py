from __future__ import annotations

import numpy as np
import pytest

from hgrec.sampling.negatives import NegativeSampler

TYPES = np.array([0, 1, 1, 0, 2, 1, 0, 0, 2, 1])


@pytest.mark.parametrize("type_matched", [False, True])
def test_shape_range_and_types(type_matched):
    s = NegativeSampler(TYPES, 7, type_matched=type_matched)
    pos = np.array([0, 1, 4, 9, 2])
    neg = s.sample(pos, np.random.default_rng(0))
    assert neg.shape == (5, 7) and neg.min() >= 0 and neg.max() < len(TYPES)
    if type_matched:
        assert (TYPES[neg] == TYPES[pos][:, None]).all()


def test_type_matched_uniform_within_type():
    s = NegativeSampler(TYPES, 1, type_matched=True)
    neg = s.sample(np.full(6000, 4), np.random.default_rng(1)).ravel()
    assert set(np.unique(neg)) == {4, 8}
    assert abs((neg == 4).mean() - 0.5) < 0.03


def test_deterministic_and_bad_count():
    s = NegativeSampler(TYPES, 3)
    a = s.sample(np.arange(4), np.random.default_rng(2))
    assert np.array_equal(a, s.sample(np.arange(4), np.random.default_rng(2)))
    with pytest.raises(ValueError):
        NegativeSampler(TYPES, 0)


@pytest.mark.parametrize("size", [1, 4, 10, 50])
def test_pool_distinct_in_range_and_deterministic(size):
    s = NegativeSampler(TYPES, 3)
    pool = s.sample_pool(size, np.random.default_rng(3))
    assert len(pool) == min(size, len(TYPES)) and len(np.unique(pool)) == len(pool)
    assert pool.min() >= 0 and pool.max() < len(TYPES)
    assert np.array_equal(pool, s.sample_pool(size, np.random.default_rng(3)))
    with pytest.raises(ValueError):
        s.sample_pool(0, np.random.default_rng(3))


@pytest.mark.parametrize("type_matched", [False, True])
def test_pool_mask_hand_case(type_matched):
    s = NegativeSampler(TYPES, 1, type_matched=type_matched)
    anchor, positive, pool = np.array([0, 4]), np.array([1, 8]), np.array([1, 2, 4, 8, 3])
    # edge (0 -> 1): pool node 1 is the positive; edge (4 -> 8): 4 the anchor, 8 the positive.
    expected = np.array([[0, 1, 1, 1, 1], [1, 1, 0, 0, 1]], dtype=bool)
    if type_matched:  # positive 1 has type 1 (pool types 1, 1, 2, 2, 0); positive 8 type 2
        expected &= np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 0]], dtype=bool)
    assert np.array_equal(s.pool_mask(anchor, positive, pool), expected)


@pytest.mark.parametrize("type_matched", [False, True])
def test_pool_valid_count_equals_mask_sum(type_matched):
    rng = np.random.default_rng(5)
    item_type = rng.integers(0, 3, size=60)
    s = NegativeSampler(item_type, 4, type_matched=type_matched)
    for _ in range(20):
        pool = s.sample_pool(25, rng)
        anchor = rng.integers(0, 60, size=40)
        positive = (anchor + rng.integers(1, 60, size=40)) % 60  # never the anchor
        assert s.pool_valid_count(anchor, positive, pool) == s.pool_mask(anchor, positive, pool).sum()
