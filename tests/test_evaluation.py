"""Tests for lae_fast.evaluation: splits, metrics and evaluate()."""
import math

import numpy as np
import pytest
import scipy.sparse as sp

from lae_fast import EASE
from lae_fast.data import Interactions
from lae_fast.evaluation import (EvalSet, Split, evaluate, format_metrics, ndcg_at_k, recall_at_k,
                                 recall_capped_at_k, strong_split, weak_split)

D2 = 1.0 / math.log2(3)  # discount of rank 2
D3 = 1.0 / math.log2(4)  # discount of rank 3 (= 1/2)


def rows_to_csr(rows, n_items):
    """CSR with one row per list of item indices."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([i for r in rows for i in r], dtype=np.int64)
    return sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(len(rows), n_items))


def row_set(X, u):
    return set(X.indices[X.indptr[u]:X.indptr[u + 1]].tolist())


def random_interactions(n_users=200, n_items=50, seed=0):
    """Users with 0..30 items each, values not all 1 (to check binarisation)."""
    rng = np.random.default_rng(seed)
    rows = [rng.choice(n_items, size=rng.integers(0, 31), replace=False) for _ in range(n_users)]
    X = rows_to_csr(rows, n_items)
    X.data = rng.integers(1, 5, size=X.nnz).astype(np.float64)
    return X


class FakeInteractions:
    def __init__(self, matrix):
        self.matrix = matrix


# -- metrics ---------------------------------------------------------------------------------

def test_metrics_hand_computed_example():
    ranked = np.array([[3, 1, -1]])
    T = rows_to_csr([[1, 5]], 6)
    assert recall_at_k(ranked, T, 2) == pytest.approx([1 / 2])
    assert recall_capped_at_k(ranked, T, 2) == pytest.approx([1 / 2])
    assert ndcg_at_k(ranked, T, 2) == pytest.approx([D2 / (1 + D2)])
    assert recall_at_k(ranked, T, 1) == pytest.approx([0.0])
    assert ndcg_at_k(ranked, T, 1) == pytest.approx([0.0])
    # padding is never a hit
    assert recall_at_k(ranked, T, 3) == pytest.approx([1 / 2])
    assert ndcg_at_k(ranked, T, 3) == pytest.approx([D2 / (1 + D2)])


def test_capped_and_uncapped_recall_differ_when_more_targets_than_k():
    ranked = np.array([[0, 5, 1]])
    T = rows_to_csr([[0, 1, 2, 3]], 6)  # |T| = 4 > k
    assert recall_at_k(ranked, T, 2) == pytest.approx([1 / 4])
    assert recall_capped_at_k(ranked, T, 2) == pytest.approx([1 / 2])
    assert ndcg_at_k(ranked, T, 2) == pytest.approx([1 / (1 + D2)])
    assert recall_at_k(ranked, T, 3) == pytest.approx([2 / 4])
    assert recall_capped_at_k(ranked, T, 3) == pytest.approx([2 / 3])
    assert ndcg_at_k(ranked, T, 3) == pytest.approx([(1 + D3) / (1 + D2 + D3)])


def test_metrics_nan_for_users_without_targets_and_no_cross_row_hits():
    ranked = np.array([[0, 1], [2, 0], [1, 2]])
    T = rows_to_csr([[2], [0], []], 3)
    assert recall_at_k(ranked, T, 1)[:2] == pytest.approx([0.0, 0.0])
    r2 = recall_at_k(ranked, T, 2)
    assert r2[:2] == pytest.approx([0.0, 1.0])
    n2 = ndcg_at_k(ranked, T, 2)
    assert n2[:2] == pytest.approx([0.0, D2])
    for metric in (recall_at_k, recall_capped_at_k, ndcg_at_k):
        out = metric(ranked, T, 2)
        assert out.dtype == np.float64 and out.shape == (3,)
        assert np.isnan(out[2]) and not np.isnan(out[:2]).any()


def test_metrics_binarise_targets():
    T = sp.csr_matrix(np.array([[0.0, 3.0, 0.0, 2.0]]))
    assert recall_at_k([[1, 0]], T, 2) == pytest.approx([1 / 2])


@pytest.mark.parametrize("metric", [recall_at_k, recall_capped_at_k, ndcg_at_k])
def test_metrics_reject_bad_shapes(metric):
    T = rows_to_csr([[0], [1]], 4)
    with pytest.raises(ValueError, match="k=3 exceeds"):
        metric(np.zeros((2, 2), dtype=int), T, 3)
    with pytest.raises(ValueError, match="3 rows"):
        metric(np.zeros((3, 2), dtype=int), T, 1)
    with pytest.raises(ValueError, match="k must be"):
        metric(np.zeros((2, 2), dtype=int), T, 0)
    with pytest.raises(ValueError, match="outside"):
        metric(np.array([[4, 0], [0, 1]]), T, 2)
    with pytest.raises(ValueError, match="2-D integer"):
        metric(np.zeros(2, dtype=int), T, 1)


# -- strong split ----------------------------------------------------------------------------

def test_strong_split_users_are_disjoint_and_cover_everyone():
    X = random_interactions()
    split = strong_split(X, n_heldout=25, random_state=0)
    assert split.protocol == "strong"
    val, test = split.val.users, split.test.users
    assert val.dtype == np.int64 and test.dtype == np.int64
    assert len(val) == len(test) == 25
    assert not set(val) & set(test)
    train_users = np.setdiff1d(np.arange(200), np.concatenate([val, test]))
    assert split.train.shape == (150, 50)
    Xb = (X > 0).astype(np.float32)
    assert (split.train.matrix != Xb[train_users]).nnz == 0
    assert set(np.unique(split.train.matrix.data)) <= {1.0}


def test_strong_split_foldin_and_targets_partition_each_row():
    X = random_interactions()
    f, min_items = 0.3, 6
    split = strong_split(FakeInteractions(X), n_heldout=0.1, target_fraction=f, min_items=min_items,
                         random_state=1)
    assert len(split.val.users) == len(split.test.users) == 20
    n_checked = 0
    for es in (split.val, split.test):
        assert es.inputs.shape == es.targets.shape == (20, 50)
        for i, u in enumerate(es.users):
            original, fold_in, targets = row_set(X, u), row_set(es.inputs.matrix, i), row_set(es.targets.matrix, i)
            assert fold_in | targets == original and not fold_in & targets
            L = len(original)
            expected = max(1, int(f * L)) if L >= min_items else 0
            assert len(targets) == expected
            n_checked += L >= min_items
    assert n_checked > 20  # the rule was exercised on real held-out users


def test_strong_split_seeds():
    X = random_interactions()
    a = strong_split(X, n_heldout=20, random_state=7)
    b = strong_split(X, n_heldout=20, random_state=np.random.default_rng(7))
    c = strong_split(X, n_heldout=20, random_state=8)
    for x, y in ((a.val, b.val), (a.test, b.test)):
        np.testing.assert_array_equal(x.users, y.users)
        assert (x.inputs.matrix != y.inputs.matrix).nnz == 0 and (x.targets.matrix != y.targets.matrix).nnz == 0
    assert (a.train.matrix != b.train.matrix).nnz == 0
    assert not np.array_equal(a.test.users, c.test.users)


def test_strong_split_same_users_different_targets_with_other_seed():
    X = rows_to_csr([list(range(20))] * 3, 20)  # 3 users: val, test and train user
    a = strong_split(X, n_heldout=1, random_state=0)
    seeds = [s for s in range(1, 50)
             if np.array_equal(strong_split(X, n_heldout=1, random_state=s).test.users, a.test.users)]
    assert seeds, "no other seed picked the same test user"
    b = strong_split(X, n_heldout=1, random_state=seeds[0])
    assert a.test.targets.nnz == b.test.targets.nnz == 4
    assert (a.test.targets.matrix != b.test.targets.matrix).nnz > 0


def test_strong_split_errors():
    X = random_interactions(n_users=10)
    with pytest.raises(ValueError, match=r"10 users.*5 for validation.*5 for test"):
        strong_split(X, n_heldout=5)
    with pytest.raises(ValueError, match="n_heldout"):
        strong_split(X, n_heldout=0)
    with pytest.raises(ValueError, match="n_heldout"):
        strong_split(X, n_heldout=0.6)
    with pytest.raises(ValueError, match="target_fraction"):
        strong_split(X, n_heldout=2, target_fraction=1.0)
    with pytest.raises(ValueError, match="min_items"):
        strong_split(X, n_heldout=2, min_items=1)
    with pytest.raises(TypeError, match="random_state"):
        strong_split(X, n_heldout=2, random_state="seed")


# -- weak split ------------------------------------------------------------------------------

def test_weak_split_partitions_every_row():
    X = random_interactions()
    split = weak_split(X, random_state=3)
    assert split.protocol == "weak"
    assert split.val.inputs is split.train and split.test.inputs is split.train
    tr, va, te = split.train.matrix, split.val.targets.matrix, split.test.targets.matrix
    assert tr.shape == va.shape == te.shape == X.shape
    np.testing.assert_array_equal(split.test.users, np.arange(200))
    for u in range(X.shape[0]):
        a, b, c = row_set(tr, u), row_set(va, u), row_set(te, u)
        assert a | b | c == row_set(X, u)
        assert not (a & b or a & c or b & c)
        if row_set(X, u):
            assert a  # at least one train item
    assert set(np.unique(tr.data)) <= {1.0}


@pytest.mark.parametrize("ratios, length, expected", [
    ((0.8, 0.1, 0.1), 10, (8, 1, 1)),
    ((0.8, 0.1, 0.1), 15, (11, 2, 2)),  # 1.5 rounds up
    ((0.8, 0.1, 0.1), 14, (12, 1, 1)),
    ((0.8, 0.1, 0.1), 5, (3, 1, 1)),
    ((0.8, 0.1, 0.1), 4, (4, 0, 0)),
    ((0.8, 0.1, 0.1), 1, (1, 0, 0)),
    ((0.8, 0.1, 0.1), 0, (0, 0, 0)),
    ((0.5, 0.25, 0.25), 3, (1, 1, 1)),
    ((0.5, 0.25, 0.25), 2, (1, 0, 1)),  # train keeps one; test served before val
    ((0.6, 0.4, 0.0), 5, (3, 2, 0)),
])
def test_weak_split_counts_follow_rounding_rule(ratios, length, expected):
    X = rows_to_csr([list(range(length)), list(range(length))], 20)
    split = weak_split(X, ratios=ratios, random_state=0)
    counts = (np.diff(split.train.matrix.indptr), np.diff(split.val.targets.matrix.indptr),
              np.diff(split.test.targets.matrix.indptr))
    assert tuple(int(c[0]) for c in counts) == expected
    assert tuple(int(c[1]) for c in counts) == expected


def test_weak_split_seeds():
    X = random_interactions()
    a, b = weak_split(X, random_state=5), weak_split(X, random_state=5)
    c = weak_split(X, random_state=6)
    assert (a.train.matrix != b.train.matrix).nnz == 0
    assert (a.test.targets.matrix != b.test.targets.matrix).nnz == 0
    assert (a.val.targets.matrix != b.val.targets.matrix).nnz == 0
    assert (a.test.targets.matrix != c.test.targets.matrix).nnz > 0


@pytest.mark.parametrize("ratios", [(0.8, 0.1), (0.8, 0.1, 0.2), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1),
                                    (0.8, float("nan"), 0.2)])
def test_weak_split_bad_ratios(ratios):
    with pytest.raises(ValueError, match="ratios"):
        weak_split(random_interactions(n_users=5), ratios=ratios)


# -- ids survive splits (issue 17: a model fitted on split.train used to get item ids 0..n-1) ---------

def id_interactions(n_users=120, n_items=30, seed=0):
    """Interactions whose ids are not their positions: users 'u<k>', items 1000 + 7k."""
    X = random_interactions(n_users, n_items, seed)
    return Interactions.from_matrix(X, user_ids=[f"u{k}" for k in range(n_users)],
                                    item_ids=1000 + 7 * np.arange(n_items))


@pytest.mark.parametrize("protocol", ["strong", "weak"])
def test_splits_keep_user_and_item_ids(protocol):
    data = id_interactions()
    split = (strong_split(data, n_heldout=20, random_state=0) if protocol == "strong"
             else weak_split(data, random_state=0))
    assert isinstance(split.train, Interactions)
    np.testing.assert_array_equal(split.train.item_ids, data.item_ids)
    for es in (split.val, split.test):
        assert isinstance(es.inputs, Interactions) and isinstance(es.targets, Interactions)
        for part in (es.inputs, es.targets):
            np.testing.assert_array_equal(part.item_ids, data.item_ids)
            np.testing.assert_array_equal(part.user_ids, data.user_ids[es.users])
    held = np.concatenate([split.val.users, split.test.users]) if protocol == "strong" else np.zeros(0, int)
    train_users = np.setdiff1d(np.arange(data.n_users), held)
    np.testing.assert_array_equal(split.train.user_ids, data.user_ids[train_users])
    # each train row is still the row of the user its id names
    for row in (0, split.train.n_users - 1):
        original = row_set(data.matrix, int(train_users[row]))
        assert row_set(split.train.matrix, row) <= original


@pytest.mark.parametrize("protocol", ["strong", "weak"])
def test_model_fitted_on_a_split_carries_the_item_ids_into_its_file(protocol, tmp_path):
    data = id_interactions()
    split = (strong_split(data, n_heldout=20, random_state=0) if protocol == "strong"
             else weak_split(data, random_state=0))
    model = EASE(l2=10.0).fit(split.train)
    np.testing.assert_array_equal(model.item_ids_, data.item_ids)
    model.save(tmp_path / "m.lae")
    from lae_fast import load_model

    np.testing.assert_array_equal(load_model(tmp_path / "m.lae").item_ids_, data.item_ids)


def test_bare_matrix_split_gets_positional_ids():
    X = random_interactions(n_users=60, n_items=40)
    split = strong_split(X, n_heldout=10, random_state=0)
    np.testing.assert_array_equal(split.train.item_ids, np.arange(40))
    np.testing.assert_array_equal(split.test.inputs.user_ids, split.test.users)


# -- evaluate --------------------------------------------------------------------------------

class DescendingModel:
    """Ranks items by index, highest first, never returning an input item."""

    def __init__(self, n_items):
        self.n_items = n_items
        self.calls = []

    def recommend(self, user_items, N=10, *, filter_already_liked_items=True):
        self.calls.append((user_items.shape[0], N, filter_already_liked_items))
        ids = np.full((user_items.shape[0], N), -1, dtype=np.int32)
        for u in range(user_items.shape[0]):
            seen = set(user_items[u].indices) if filter_already_liked_items else set()
            cand = [i for i in range(self.n_items - 1, -1, -1) if i not in seen][:N]
            ids[u, :len(cand)] = cand
        return ids, np.zeros(ids.shape, dtype=np.float32)


def hand_evalset():
    # user 0: ranking 4,3,2,1,0 -> target 4 at rank 1; user 1: no target;
    # user 2: ranking 5,3,... -> target 3 at rank 2
    inputs = rows_to_csr([[5], [1], [4]], 6)
    targets = rows_to_csr([[4, 0], [], [3]], 6)
    return EvalSet(inputs=inputs, targets=targets, users=np.array([3, 7, 9]))


def test_evaluate_fake_model_hand_numbers():
    model = DescendingModel(6)
    m = evaluate(model, hand_evalset(), ks=(2, 1), batch_size=1)
    expected = {
        "recall@1": (1 / 2 + 0) / 2, "recall_capped@1": (1 + 0) / 2, "ndcg@1": (1 + 0) / 2,
        "recall@2": (1 / 2 + 1) / 2, "recall_capped@2": (1 / 2 + 1) / 2,
        "ndcg@2": (1 / (1 + D2) + D2) / 2,
    }
    assert m["n_users"] == 2
    assert set(m) == set(expected) | {"n_users"}
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key
    # only users with targets are ranked, in batches of one, masking on, N = max(ks)
    assert model.calls == [(1, 2, True), (1, 2, True)]
    assert evaluate(DescendingModel(6), hand_evalset(), ks=(1, 2)) == pytest.approx(m)


def test_evaluate_per_user_gives_each_users_metrics():
    got = evaluate(DescendingModel(6), hand_evalset(), ks=(2, 1), batch_size=1, per_user=True)
    np.testing.assert_array_equal(got["users"], [0, 2])  # row 1 has no target
    np.testing.assert_allclose(got["recall@1"], [1 / 2, 0])
    np.testing.assert_allclose(got["recall@2"], [1 / 2, 1])
    np.testing.assert_allclose(got["ndcg@2"], [1 / (1 + D2), D2])
    assert got["n_users"] == 2 and got["recall@1"].dtype == np.float64
    means = evaluate(DescendingModel(6), hand_evalset(), ks=(2, 1))
    assert set(got) == set(means) | {"users"}
    for key in set(means) - {"n_users"}:
        assert got[key].mean() == pytest.approx(means[key]), key


def test_evaluate_per_user_long_tail_is_nan_outside_the_group():
    X = random_interactions(n_users=200, n_items=30, seed=5)
    split = strong_split(X, n_heldout=40, random_state=0)
    model = EASE(l2=10.0).fit(split.train)
    means = evaluate(model, split, ks=(5,), head_tail=True)
    got = evaluate(model, split, ks=(5,), head_tail=True, per_user=True, batch_size=7)
    for key in ("recall@5", "ndcg@5", "recall_head@5", "ndcg_tail@5"):
        assert got[key].shape == (means["n_users"],)
        assert np.nanmean(got[key]) == pytest.approx(means[key]), key
    assert np.count_nonzero(~np.isnan(got["recall_head@5"])) == means["n_users_head"]


def test_evaluate_picks_val_or_test_and_validates():
    es = hand_evalset()
    empty = EvalSet(inputs=es.inputs, targets=rows_to_csr([[], [], []], 6), users=es.users)
    split = Split(train=es.inputs, val=empty, test=es, protocol="strong")
    assert evaluate(DescendingModel(6), split, ks=(2,))["n_users"] == 2
    with pytest.raises(ValueError, match="has a target"):
        evaluate(DescendingModel(6), split, ks=(2,), on="val")
    with pytest.raises(ValueError, match="on must be"):
        evaluate(DescendingModel(6), split, on="train")
    with pytest.raises(ValueError, match="ks"):
        evaluate(DescendingModel(6), es, ks=(0, 2))
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(DescendingModel(6), es, batch_size=0)
    with pytest.raises(TypeError, match="Split or an EvalSet"):
        evaluate(DescendingModel(6), es.inputs)


def reference_metrics(B, inputs, targets, ks):
    """Plain numpy / Python reimplementation of evaluate() for a model scoring x_u @ B."""
    X_in = inputs.toarray().astype(np.float64)
    scores = X_in @ B.astype(np.float64)
    scores[X_in > 0] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")
    sums, n_users = {}, 0
    for u in range(targets.shape[0]):
        T = row_set(targets, u)
        if not T:
            continue
        n_users += 1
        for k in ks:
            top = [i for i in order[u, :k] if np.isfinite(scores[u, i])]
            hit_ranks = [r + 1 for r, i in enumerate(top) if i in T]
            dcg = sum(1 / math.log2(r + 1) for r in hit_ranks)
            idcg = sum(1 / math.log2(r + 1) for r in range(1, min(k, len(T)) + 1))
            for key, value in ((f"recall@{k}", len(hit_ranks) / len(T)),
                               (f"recall_capped@{k}", len(hit_ranks) / min(k, len(T))),
                               (f"ndcg@{k}", dcg / idcg)):
                sums[key] = sums.get(key, 0.0) + value
    return {key: v / n_users for key, v in sums.items()}, n_users


@pytest.mark.parametrize("protocol", ["strong", "weak"])
def test_evaluate_ease_matches_numpy_reference(protocol):
    X = random_interactions(n_users=300, n_items=40, seed=2)
    if protocol == "strong":
        split = strong_split(X, n_heldout=40, random_state=0)
    else:
        split = weak_split(X, random_state=0)
    model = EASE(l2=20.0, dtype=np.float64).fit(split.train)
    ks = (5, 10, 20)
    got = evaluate(model, split, ks=ks, batch_size=17)
    want, n_users = reference_metrics(model.B_, split.test.inputs.matrix, split.test.targets.matrix, ks)
    assert got["n_users"] == n_users > 0
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert 0 < got["recall@20"] < 1


# -- format_metrics --------------------------------------------------------------------------

def test_format_metrics_table():
    text = format_metrics({"recall@10": 0.125, "recall_capped@10": 0.25, "ndcg@10": 0.5,
                           "recall@100": 0.75, "ndcg@100": 0.875, "n_users": 42})
    lines = text.splitlines()
    assert lines[0].split() == ["k", "recall@k", "recall_capped@k", "ndcg@k"]
    assert lines[1].split() == ["10", "0.1250", "0.2500", "0.5000"]
    assert lines[2].split() == ["100", "0.7500", "-", "0.8750"]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned
    assert "recall_capped = hits / min(k, |T_u|)" in lines[3] and "42 users" in lines[3]


# -- long-tail metrics (head = top 20% items by training popularity) ------------------------------

def head_tail_evalset():
    # users: A (input 9; targets 8 tail, 5 head, 2 head), B (targets 2 head), C (no target),
    # D (targets 7 and 1, both tail); DescendingModel ranks 9, 8, 7, ... skipping inputs
    inputs = rows_to_csr([[9], [], [0], []], 10)
    targets = rows_to_csr([[8, 5, 2], [2], [], [7, 1]], 10)
    return EvalSet(inputs=inputs, targets=targets, users=np.arange(4))


POPULARITY = np.array([0, 0, 10, 0, 0, 8, 0, 0, 0, 1])  # head (2 of 10 items) = {2, 5}


def test_head_items_top_share_with_stable_ties():
    from lae_fast.evaluation import head_items

    assert np.flatnonzero(head_items(POPULARITY)).tolist() == [2, 5]
    assert np.flatnonzero(head_items([3, 3, 3, 3, 3], share=0.4)).tolist() == [0, 1]  # ties: lower index
    assert np.flatnonzero(head_items([1, 2, 3, 4, 5, 6], share=0.2)).tolist() == [4, 5]  # ceil(1.2) = 2 items
    train = rows_to_csr([[0, 3], [3], [3, 1]], 4)
    assert np.flatnonzero(head_items(train, share=0.25)).tolist() == [3]
    with pytest.raises(ValueError, match="share"):
        head_items(POPULARITY, share=1.0)


def test_head_tail_metrics_hand_computed():
    m = evaluate(DescendingModel(10), head_tail_evalset(), ks=(1, 4), head_tail=True, item_popularity=POPULARITY)
    expected = {
        # A: top4 = 8,7,6,5 -> head hit 5 (rank 4) of {5, 2}; tail hit 8 (rank 1) of {8}
        # B: top4 = 9,8,7,6 -> head target 2 missed; no tail target (excluded from tail means)
        # D: top4 = 9,8,7,6 -> tail hit 7 (rank 3) of {7, 1}; no head target (excluded from head means)
        "recall_head@4": (1 / 2 + 0) / 2, "ndcg_head@4": ((1 / math.log2(5)) / (1 + D2) + 0) / 2,
        "recall_tail@4": (1 + 1 / 2) / 2, "ndcg_tail@4": (1 + D3 / (1 + D2)) / 2,
        "recall_head@1": 0.0, "ndcg_head@1": 0.0, "recall_tail@1": (1 + 0) / 2, "ndcg_tail@1": (1 + 0) / 2,
        "recall@4": (2 / 3 + 0 + 1 / 2) / 3,
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key
    assert (m["n_users"], m["n_users_head"], m["n_users_tail"]) == (3, 2, 2)
    # the overall metrics are untouched by head_tail
    plain = evaluate(DescendingModel(10), head_tail_evalset(), ks=(1, 4))
    assert set(plain) | {f"{n}_{g}@{k}" for n in ("recall", "ndcg") for g in ("head", "tail") for k in (1, 4)} \
        | {"n_users_head", "n_users_tail"} == set(m)
    assert all(m[k] == plain[k] for k in plain)


def test_head_tail_popularity_from_split_train_or_required():
    es = head_tail_evalset()
    train = sp.csr_matrix((np.ones(19), ([0] * 10 + [1] * 8 + [2], [2] * 10 + [5] * 8 + [9])), shape=(3, 10))
    split = Split(train=train, val=es, test=es, protocol="weak")
    from_split = evaluate(DescendingModel(10), split, ks=(4,), head_tail=True)
    given = evaluate(DescendingModel(10), es, ks=(4,), head_tail=True, item_popularity=POPULARITY)
    assert from_split == pytest.approx(given)
    with pytest.raises(ValueError, match="item_popularity"):
        evaluate(DescendingModel(10), es, ks=(4,), head_tail=True)
    with pytest.raises(ValueError, match="covers 3 items"):
        evaluate(DescendingModel(10), es, ks=(4,), head_tail=True, item_popularity=[1, 2, 3])
    text = format_metrics(given)
    assert "recall_tail@k" in text.splitlines()[0] and "head/tail" in text and "(2 / 2 users)" in text
