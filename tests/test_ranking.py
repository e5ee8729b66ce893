"""lae_fast.topk / recommend / similar_items against a plain numpy reference."""
import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
import lae_fast.ranking as ranking
from lae_fast import EASE, RDLAE
from conftest import ref_topk  # the numpy reference shared with the other ranking tests


def assert_same(got, ref):
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32


def random_users(n_users, n_items, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(np.float32))


@pytest.fixture
def data(make_dyadic):
    X = random_users(40, 30, 0.2, seed=1)
    B = make_dyadic(30, seed=2)
    return X, B


@pytest.mark.parametrize("N", [1, 5, 30, 50])
def test_matches_reference(data, N):
    X, B = data
    assert_same(lae_fast.topk(X, B, N), ref_topk(X, B, N))


def test_ties_really_happen_in_dyadic_data(data):
    X, B = data
    S = X @ B.astype(np.float64)
    assert any(len(np.unique(r)) < r.size for r in S)  # so tie-breaking is exercised above


def test_N_larger_than_candidates_pads():
    X = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    B = np.arange(25, dtype=np.float32).reshape(5, 5)
    ids, scores = lae_fast.topk(X, B, 4)
    assert ids[0].tolist() == [4, 3, 2, -1]                  # two own items masked: one pad
    assert scores[0, :3].tolist() == [13.0, 11.0, 9.0] and np.isneginf(scores[0, 3])
    assert ids[1].tolist() == [0, 1, 2, 3]                   # empty history: all scores 0, by id
    assert scores[1].tolist() == [0.0] * 4
    assert_same((ids, scores), ref_topk(X, B, 4))


@pytest.mark.parametrize("N", [5, 8, 2 ** 31 - 1, 2 ** 40])
def test_N_is_capped_at_the_number_of_items(N):
    X = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    B = np.arange(25, dtype=np.float32).reshape(5, 5)
    ids, scores = lae_fast.topk(X, B, N)
    assert ids.shape == scores.shape == (2, 5)
    assert ids[0].tolist() == [4, 3, 2, -1, -1] and ids[1].tolist() == [0, 1, 2, 3, 4]
    assert_same((ids, scores), ref_topk(X, B, 5))


def test_everything_masked(data):
    X, B = data
    ids, scores = lae_fast.topk(X, B, 5, filter_items=np.arange(30))
    assert np.all(ids == -1) and np.all(np.isneginf(scores))
    ids, scores = lae_fast.topk(X, B, 5, items=[3, 4], filter_items=[4, 3])
    assert np.all(ids == -1) and np.all(np.isneginf(scores))
    # a user who has every item and filter_already_liked_items
    full = sp.csr_matrix(np.ones((2, 30), dtype=np.float32))
    ids, scores = lae_fast.topk(full, B, 3)
    assert np.all(ids == -1) and np.all(np.isneginf(scores))


def test_filter_ids_duplicated_and_out_of_order(data):
    X, B = data
    filt = [17, 3, 3, 29, 0, 17, 11]
    got = lae_fast.topk(X, B, 10, filter_items=filt)
    assert_same(got, ref_topk(X, B, 10, filter_items=filt))
    assert not np.isin(got[0], filt).any()
    assert_same(lae_fast.topk(X, B, 10, filter_items=np.array(filt, dtype=np.int16)), got)


def test_whitelist_and_whitelist_plus_filter(data):
    X, B = data
    items = [25, 2, 9, 14, 2, 7, 21, 0]
    got = lae_fast.topk(X, B, 6, items=items)
    assert_same(got, ref_topk(X, B, 6, items=items))
    assert np.isin(got[0][got[0] >= 0], items).all()
    got = lae_fast.topk(X, B, 6, items=items, filter_items=[9, 21, 5])
    assert_same(got, ref_topk(X, B, 6, items=items, filter_items=[9, 21, 5]))
    assert not np.isin(got[0], [9, 21, 5]).any()


def test_filter_already_liked_false(data):
    X, B = data
    got = lae_fast.topk(X, B, 8, filter_already_liked_items=False)
    assert_same(got, ref_topk(X, B, 8, filter_liked=False))
    # some user now gets one of their own items back (else the flag was not exercised)
    Xd = X.toarray() > 0
    assert any(Xd[u, got[0][u]].any() for u in range(X.shape[0]))


def test_history_values_and_duplicates_are_binarised(data):
    X, B = data
    Xw = X.copy()
    Xw.data = np.random.default_rng(0).integers(1, 9, Xw.nnz).astype(np.float32)
    assert_same(lae_fast.topk(Xw, B, 7), lae_fast.topk(X, B, 7))
    # duplicated entries in a hand-built CSR still count once
    rows = [X.indices[X.indptr[u]:X.indptr[u + 1]] for u in range(X.shape[0])]
    dup = [np.concatenate([r[::-1], r[:2]]) for r in rows]
    Xd = sp.csr_matrix((np.ones(sum(map(len, dup)), np.float32), np.concatenate(dup),
                        np.cumsum([0] + [len(r) for r in dup])), shape=X.shape)
    assert not Xd.has_canonical_format
    assert_same(lae_fast.topk(Xd, B, 7), lae_fast.topk(X, B, 7))


def test_int64_indices(data):
    X, B = data
    X64 = X.copy()
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    assert_same(lae_fast.topk(X64, B, 9), ref_topk(X, B, 9))


def test_non_contiguous_and_float64_B(data):
    X, B = data
    ref = ref_topk(X, B, 9)
    assert_same(lae_fast.topk(X, np.asfortranarray(B), 9), ref)
    big = np.zeros((30, 60), dtype=np.float32)
    big[:, ::2] = B
    view = big[:, ::2]
    assert not view.flags.c_contiguous
    assert_same(lae_fast.topk(X, view, 9), ref)
    wide = np.zeros((30, 40), dtype=np.float32)
    wide[:, :30] = B
    assert_same(lae_fast.topk(X, wide[:, :30], 9), ref)
    assert_same(lae_fast.topk(X, B.astype(np.float64), 9), ref)
    assert_same(lae_fast.topk(X, np.asfortranarray(B.astype(np.float64)), 9), ref)


def test_float64_B_continuous_values():
    rng = np.random.default_rng(3)
    X = random_users(60, 25, 0.2, seed=4)
    B = rng.standard_normal((25, 25))
    assert_same(lae_fast.topk(X, B, 10), ref_topk(X, B, 10))


def test_ties_broken_by_lower_id():
    n = 10
    B = np.ones((n, n), dtype=np.float32)          # every item gets the same score
    X = sp.csr_matrix(np.array([[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]], dtype=np.float32))
    ids, scores = lae_fast.topk(X, B, 5)
    assert ids.tolist() == [[0, 1, 2, 4, 5]] and np.all(scores == 1.0)
    # two tie groups: columns 2, 5, 8 score 2; all others 1
    B[:, [8, 5, 2]] = 2.0
    ids, _ = lae_fast.topk(X, B, 6, filter_items=[5])
    assert ids.tolist() == [[2, 8, 0, 1, 4, 6]]
    # many users, exhaustive against the reference with a coarse B full of ties
    rng = np.random.default_rng(5)
    Bc = rng.integers(0, 3, size=(40, 40)).astype(np.float32)
    Xc = random_users(300, 40, 0.1, seed=6)
    assert_same(lae_fast.topk(Xc, Bc, 15, num_threads=2), ref_topk(Xc, Bc, 15))


def test_threads_give_identical_results_many_users(make_dyadic):
    X = random_users(700, 50, 0.1, seed=7)   # more than one group of 256 users
    B = make_dyadic(50, seed=8)
    one = lae_fast.topk(X, B, 12, num_threads=1)
    two = lae_fast.topk(X, B, 12, num_threads=2)
    assert_same(one, two)
    assert_same(one, ref_topk(X, B, 12))


def test_N_zero_and_no_users(data):
    X, B = data
    ids, scores = lae_fast.topk(X, B, 0)
    assert ids.shape == (40, 0) and scores.shape == (40, 0)
    ids, scores = lae_fast.topk(sp.csr_matrix((0, 30), dtype=np.float32), B, 4)
    assert ids.shape == (0, 4) and scores.shape == (0, 4)


def test_user_with_empty_history(data):
    X, B = data
    Xe = sp.vstack([X[:3], sp.csr_matrix((2, 30), dtype=np.float32), X[3:6]]).tocsr()
    got = lae_fast.topk(Xe, B, 6)
    assert_same(got, ref_topk(Xe, B, 6))
    assert got[0][3].tolist() == [0, 1, 2, 3, 4, 5] and np.all(got[1][3] == 0)


@pytest.mark.parametrize("block", [1, 7, 29, 30, 31])
def test_column_blocking(monkeypatch, make_dyadic, block):
    X = random_users(300, 30, 0.15, seed=9)
    B = make_dyadic(30, seed=10)
    ref = ref_topk(X, B, 11, filter_items=[4, 28], items=np.arange(2, 30))
    monkeypatch.setattr(ranking, "COLUMN_BLOCK", block)
    for nt in (1, 2):
        assert_same(lae_fast.topk(X, B, 11, filter_items=[4, 28], items=np.arange(2, 30), num_threads=nt),
                    ref)
    assert_same(lae_fast.topk(X, B.astype(np.float64), 11, filter_items=[4, 28], items=np.arange(2, 30)),
                ref)


def test_small_user_groups(monkeypatch, make_dyadic):
    X = random_users(50, 20, 0.2, seed=11)
    B = make_dyadic(20, seed=12)
    ref = ref_topk(X, B, 5)
    monkeypatch.setattr(ranking, "USERS_PER_GROUP", 3)
    monkeypatch.setattr(ranking, "COLUMN_BLOCK", 6)
    assert_same(lae_fast.topk(X, B, 5, num_threads=2), ref)


def test_single_item_catalogue():
    B = np.array([[2.0]], dtype=np.float32)
    X = sp.csr_matrix(np.array([[1], [0]], dtype=np.float32))
    ids, scores = lae_fast.topk(X, B, 2)
    assert ids.tolist() == [[-1], [0]]
    assert scores[1, 0] == 0.0


# ---------------------------------------------------------------------------------------------
# through a fitted model
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def model(X_small):
    return RDLAE(2.0, dropout=0.2, xi=0.5).fit(X_small)


def test_recommend_matches_reference(model, X_small):
    ids, scores = model.recommend(X_small, N=6)
    rids, rscores = ref_topk(X_small, model.B_, 6, popularity=model.item_counts_)
    np.testing.assert_allclose(scores, rscores, rtol=1e-5, atol=1e-6)
    # ids agree wherever the reference has no near-tie at that rank
    S = (X_small.toarray() > 0) @ model.B_.astype(np.float64)
    for u in range(X_small.shape[0]):
        for r in range(6):
            if ids[u, r] != rids[u, r]:
                assert abs(S[u, ids[u, r]] - S[u, rids[u, r]]) < 1e-5
    for row in scores:  # best first, padding last
        finite = row[np.isfinite(row)]
        assert np.all(np.diff(finite) <= 0) and np.all(np.isfinite(row[:finite.size]))


def test_recommend_one_dimensional_input(model, X_small):
    row = X_small[0].toarray().ravel()
    ids, scores = model.recommend(row, N=4)
    assert ids.shape == (4,) and scores.shape == (4,)
    ids2, scores2 = model.recommend(X_small[0], N=4)
    assert ids2.shape == (1, 4)
    np.testing.assert_array_equal(ids, ids2[0])
    np.testing.assert_array_equal(scores, scores2[0])


def test_recommend_options_are_passed_through(model, X_small):
    got = model.recommend(X_small, N=5, filter_items=[1, 2], items=np.arange(8),
                          filter_already_liked_items=False, num_threads=2)
    ref = lae_fast.topk(X_small, model.B_, 5, filter_items=[1, 2], items=np.arange(8),
                        filter_already_liked_items=False, num_threads=1)
    warm = np.diff(X_small.indptr) > 0  # users 3 and 7 have no item: ranked by popularity
    assert_same((got[0][warm], got[1][warm]), (ref[0][warm], ref[1][warm]))
    cold = ref_topk(X_small, model.B_, 5, filter_items=[1, 2], items=np.arange(8), filter_liked=False,
                    popularity=model.item_counts_)
    assert_same((got[0][~warm], got[1][~warm]), (cold[0][~warm], cold[1][~warm]))


def _ref_similar(B, i, N):
    cand = np.array([j for j in range(B.shape[0]) if j != i])
    s = B[i, cand].astype(np.float32)
    return cand[np.lexsort((cand, -s))][:N]


def test_similar_items_uses_rows_of_B(X_full):
    model = EASE(3.0).fit(X_full)
    B = model.B_
    assert np.abs(B - B.T).max() > 1e-3
    for i in range(12):
        ids, scores = model.similar_items(i, N=5)
        assert ids.shape == (5,)
        np.testing.assert_array_equal(ids, _ref_similar(B, i, 5))
        np.testing.assert_array_equal(scores, B[i, ids])
    # columns would give a different answer for some item
    assert any(not np.array_equal(_ref_similar(B, i, 3), _ref_similar(B.T, i, 3)) for i in range(12))
    ids, scores = model.similar_items([4, 0, 4], N=3)
    assert ids.shape == (3, 3)
    np.testing.assert_array_equal(ids[0], _ref_similar(B, 4, 3))
    np.testing.assert_array_equal(ids[1], _ref_similar(B, 0, 3))
    np.testing.assert_array_equal(ids[2], ids[0])


def test_similar_items_with_filters(X_full):
    model = EASE(3.0).fit(X_full)
    ids, _ = model.similar_items(2, N=20, items=[0, 1, 2, 3], filter_items=[3])
    assert ids.tolist()[:2] == sorted([0, 1], key=lambda j: (-model.B_[2, j], j))
    assert ids.tolist()[2:] == [-1] * 10  # 12 items: N=20 capped at 12


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(filter_items=[30]), "filter_items"),
    (dict(filter_items=[-1]), "filter_items"),
    (dict(items=[0, 99]), "items"),
    (dict(items=[[1, 2]]), "items"),
    (dict(filter_items=[1.5]), "filter_items"),
    (dict(N=-1), "N"),
    (dict(N=2.5), "N"),
    (dict(N=True), "N"),
])
def test_bad_arguments(data, kwargs, match):
    X, B = data
    kwargs = {"N": 5, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        lae_fast.topk(X, B, **kwargs)


def test_wrong_item_count_and_shapes(data, model, X_small):
    X, B = data
    with pytest.raises(ValueError, match="29 items"):
        lae_fast.topk(X[:, :29], B, 5)
    with pytest.raises(ValueError, match="square"):
        lae_fast.topk(X, B[:, :29], 5)
    with pytest.raises(ValueError, match="items"):
        model.recommend(X_small[:, :10], N=3)
    with pytest.raises(ValueError, match="item_ids"):
        model.similar_items(12)
    with pytest.raises(ValueError, match="item_ids"):
        model.similar_items([-1])
    Xn = X.copy()
    Xn.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lae_fast.topk(Xn, B, 5)
