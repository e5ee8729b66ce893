"""Cold users (no known item in the history) and the JSON-ready answer of Recommender."""
import json

import numpy as np
import pytest
import scipy.sparse as sp

from lae_fast import EASE, L3AE, Recommender, TextSimilarity
from lae_fast.popularity import check_popularity, fill_cold, popularity_order

from test_serving import assert_same, ref_one


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    dense = (rng.random((300, 60)) < np.linspace(0.01, 0.3, 60)[rng.permutation(60)]).astype(np.float32)
    dense[:, 13] = 0  # an item nobody had
    X = sp.csr_matrix(dense)
    return EASE(l2=5.0).fit(X), X


def popular_ref(counts, N, *, filter_items=None, items=None):
    """A cold user's list by the numpy reference: items by count desc, then index asc; padded."""
    n = len(counts)
    return ref_one(np.zeros((n, n), np.float32), [], N, filter_items=filter_items, items=items, popularity=counts)


def test_the_popularity_is_the_training_counts(fitted):
    model, X = fitted
    np.testing.assert_array_equal(model.item_counts_, np.diff(X.tocsc().indptr))
    assert model.item_counts_[13] == 0


@pytest.mark.parametrize("form", ["dense", "pruned", "float16", "int8"])
def test_empty_history_gets_the_most_popular_items(fitted, form):
    model, X = fitted
    rec = Recommender(model)
    rec = {"dense": rec, "pruned": rec.prune(10), "float16": rec.compress("float16"),
           "int8": rec.compress("int8")}[form]
    counts = model.item_counts_
    for N in (1, 10, 59, 70):
        ids, scores, cold = rec.recommend_one([], N, return_cold=True)
        assert cold is True
        assert_same((ids, scores), popular_ref(counts, N))
        kw = {"filter_items": [int(np.argmax(counts)), 3], "items": np.arange(5, 50)}
        assert_same(rec.recommend_one([], N, **kw), popular_ref(counts, N, filter_items=kw["filter_items"],
                                                                items=kw["items"]))
    ids, scores, cold = rec.recommend_one(X[0].indices, 5, return_cold=True)
    assert cold is False and ids.shape == (5,)
    # ties in the counts go to the lower index
    ids, _ = rec.recommend_one([], 60)
    for a, b in zip(ids[:-1], ids[1:]):
        assert counts[a] > counts[b] or (counts[a] == counts[b] and a < b)


def test_all_unknown_ids_are_cold_and_counted(fitted):
    model, X = fitted
    ids_map = np.array([f"m{i}" for i in range(60)])
    rec = Recommender.from_matrix(model.B_, item_ids=ids_map, popularity=model.item_counts_)
    got, scores, n_unknown, cold = rec.recommend_one_ids(["nope", "m-1", "nope"], 8, return_cold=True)
    assert cold is True and n_unknown == 3
    ref_ids, ref_scores = popular_ref(model.item_counts_, 8)
    np.testing.assert_array_equal(got, ids_map[ref_ids])
    np.testing.assert_array_equal(scores, ref_scores)
    got, _, n_unknown, cold = rec.recommend_one_ids(["nope", "m3"], 8, return_cold=True)
    assert cold is False and n_unknown == 1
    assert len(rec.recommend_one_ids([], 8)) == 3  # the 3-tuple without return_cold
    with pytest.raises(ValueError, match="not in the model"):
        rec.recommend_one_ids(["nope"], 8, unknown="raise")


def test_without_popularity_a_cold_user_gets_nothing(fitted):
    model, _ = fitted
    rec = Recommender.from_matrix(model.B_)
    assert rec.popularity is None
    ids, scores, cold = rec.recommend_one([], 5, return_cold=True)
    assert cold and (ids == -1).all() and np.isneginf(scores).all()
    ids, scores, cold = rec.recommend_batch([[1], []], 5, return_cold=True)
    assert cold.tolist() == [False, True] and (ids[1] == -1).all() and (ids[0] >= 0).all()
    got, _, n_unknown = rec.recommend_one_ids([999], 5)
    assert got.size == 0 and n_unknown == 1
    with pytest.raises(ValueError, match="popularity"):
        Recommender.from_matrix(model.B_, popularity=np.ones(3))
    with pytest.raises(ValueError, match="popularity"):
        Recommender.from_matrix(model.B_, popularity=-np.ones(60))


def test_model_recommend_batch_and_single(fitted):
    model, X = fitted
    Xe = sp.vstack([X[:3], sp.csr_matrix((2, 60), dtype=np.float32), X[3:5]]).tocsr()
    ids, scores, cold = model.recommend(Xe, 7, return_cold=True)
    assert cold.tolist() == [False] * 3 + [True] * 2 + [False] * 2
    for u in (3, 4):
        assert_same((ids[u], scores[u]), popular_ref(model.item_counts_, 7))
    warm_ids, warm_scores = model.recommend(Xe[[0, 1, 2, 5, 6]], 7)
    assert_same((ids[~cold], scores[~cold]), (warm_ids, warm_scores))
    # filters apply to the popular list too
    ids, _ = model.recommend(Xe, 7, filter_items=[5], items=np.arange(30))
    assert_same((ids[3], _[3]), popular_ref(model.item_counts_, 7, filter_items=[5], items=np.arange(30)))
    # a 1-D history: a bool flag
    ids, scores, cold = model.recommend(np.zeros(60), 4, return_cold=True)
    assert cold is True and ids.tolist() == popular_ref(model.item_counts_, 4)[0].tolist()
    assert len(model.recommend(Xe, 3)) == 2
    # explicit zeros are no interaction: such a row is cold
    Z = sp.csr_matrix((np.zeros(2), ([0, 0], [1, 2])), shape=(1, 60))
    assert model.recommend(Z, 3, return_cold=True)[2].tolist() == [True]


def test_models_without_counts_give_cold_users_nothing():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((40, 20)) < 0.3).astype(np.float32))
    E = rng.standard_normal((20, 8))
    model = TextSimilarity().fit(X, E)
    assert getattr(model, "item_counts_", None) is None
    ids, scores, cold = model.recommend(sp.csr_matrix((1, 20)), 4, return_cold=True)
    assert cold.tolist() == [True] and (ids == -1).all()
    # L3AE keeps them
    model = L3AE(l2_x=5.0, l2_e=5.0, l2_f=0.5).fit(X, E)
    ids, _ = model.recommend(sp.csr_matrix((1, 20)), 4)
    assert ids[0].tolist() == popular_ref(model.item_counts_, 4)[0].tolist()


def test_a_model_with_a_sparse_B_falls_back_too(fitted):
    _, X = fitted
    model = EASE(l2=5.0, neighbors=10).fit(X)
    assert sp.issparse(model.B_)
    Xe = sp.vstack([X[:2], sp.csr_matrix((1, 60), dtype=np.float32)]).tocsr()
    ids, scores, cold = model.recommend(Xe, 5, return_cold=True)
    assert cold.tolist() == [False, False, True]
    assert_same((ids[2], scores[2]), popular_ref(model.item_counts_, 5))
    assert_same(Recommender(model).recommend_one([], 5), popular_ref(model.item_counts_, 5))


def test_popularity_survives_files(tmp_path, fitted):
    model, _ = fitted
    path = tmp_path / "m.laef"
    model.save(path)
    for rec in (Recommender.load(path), Recommender.load(path).prune(5), Recommender.load(path).compress("int8")):
        np.testing.assert_array_equal(rec.popularity, model.item_counts_)
        p = tmp_path / "s.laef"
        rec.save(p)
        again = Recommender.load(p)
        np.testing.assert_array_equal(again.popularity, model.item_counts_)
        assert_same(again.recommend_one([], 6), popular_ref(model.item_counts_, 6))


def test_popularity_helpers():
    assert check_popularity(None, 3) is None
    np.testing.assert_array_equal(popularity_order(np.array([1.0, 5.0, 5.0, 0.0])), [1, 2, 0, 3])
    ids = np.zeros((3, 4), np.int32)
    scores = np.zeros((3, 4), np.float32)
    allowed = np.array([1, 0, 1, 1], np.uint8)
    counts = np.array([1.0, 5.0, 5.0, 0.0])
    fill_cold(ids, scores, np.array([False, True, False]), counts, popularity_order(counts), allowed)
    assert ids.tolist() == [[0] * 4, [2, 0, 3, -1], [0] * 4]
    assert scores[1].tolist() == [5.0, 1.0, 0.0, -np.inf]
    with pytest.raises(ValueError, match="finite non-negative"):
        check_popularity([1.0, np.nan], 2)
    with pytest.raises(ValueError, match="one training count per item"):
        check_popularity(["a", "b"], 2)


# ---------------------------------------------------------------------------------------------
# JSON-ready answers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ids_map", [np.arange(100, 160), np.array([f'it"em\\{i}é' for i in range(60)])])
def test_recommend_json_is_recommend_one_ids(fitted, ids_map):
    model, X = fitted
    rec = Recommender.from_matrix(model.B_, item_ids=ids_map, popularity=model.item_counts_)
    for u in range(30):
        hist = list(ids_map[X[u].indices]) + ["unknown-id"]
        body = rec.recommend_json(hist, 12, filter_items=ids_map[:3])
        got = json.loads(body)
        ids, scores, n_unknown, cold = rec.recommend_one_ids(hist, 12, filter_items=ids_map[:3], return_cold=True)
        assert got["items"] == ids.tolist() and got["n_unknown"] == n_unknown == 1 and got["cold"] is cold
        np.testing.assert_allclose(got["scores"], scores, rtol=5e-6, atol=0)  # 6 digits
        assert len(body) < 40 + 12 * (len(json.dumps(ids_map[0].item())) + 14)  # short numbers
    got = json.loads(rec.recommend_json(["unknown"], 5))
    assert got["cold"] is True and got["items"] == ids_map[popular_ref(model.item_counts_, 5)[0]].tolist()
    assert json.loads(rec.recommend_json([], 0)) == {"items": [], "scores": [], "n_unknown": 0, "cold": True}


def test_recommend_json_digits_and_non_finite_scores():
    B = np.array([[0.0, 1 / 3, np.inf], [2.0, 0.0, 1.0], [0.5, 0.25, 0.0]], dtype=np.float32)
    rec = Recommender.from_matrix(B)
    got = json.loads(rec.recommend_json([0], 2, digits=3))
    assert got["items"] == [2, 1] and got["scores"] == [None, 0.333]  # inf has no JSON literal
    assert json.loads(rec.recommend_json([1], 2, digits=9))["scores"] == [2.0, 1.0]
    with pytest.raises(ValueError, match="digits"):
        rec.recommend_json([1], 2, digits=0)
    with pytest.raises(ValueError, match="unknown must be"):
        rec.recommend_json([1], 2, unknown="drop")
