"""lae_fast.distributed: the Gram and all-user ranking over user shards, on a 2-worker dask LocalCluster.

The distributed results must equal the in-process ones exactly: the Gram bit for bit
(integer counts in float32), the fitted B bit for bit, every user's top-N list.
"""
import os
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

pytest.importorskip("distributed")  # guard only: CI installs the dask extra through .[test]
pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import lae_fast  # noqa: E402
from lae_fast import distributed as ld  # noqa: E402
from lae_fast.cli import main  # noqa: E402
from lae_fast.data import DataFormatError, Interactions, save_npz  # noqa: E402
from lae_fast.gram import gram_into  # noqa: E402

from conftest import power_law  # noqa: E402

N_USERS, N_ITEMS = 400, 50


@pytest.fixture(scope="module")
def inter():
    """Power-law data with non-contiguous user ids and item ids that are not column positions."""
    X = power_law(N_USERS, N_ITEMS, mean_len=9, seed=7)
    rng = np.random.default_rng(0)
    user_ids = np.sort(rng.choice(10 ** 6, size=N_USERS, replace=False))
    return Interactions.from_matrix(X, user_ids=user_ids, item_ids=np.arange(N_ITEMS) * 10 + 5)


@pytest.fixture(scope="module")
def shards(inter, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    npz = ld.save_shards(inter, root / "npz", 4)
    parquet = ld.save_shards(inter, root / "parquet", 3, format="parquet")
    return {"npz": str(root / "npz"), "parquet": str(root / "parquet"), "npz_files": npz, "parquet_files": parquet}


def _used(inter):
    """Columns that some user has: the item space of pair shards (only ids that occur)."""
    return np.flatnonzero(np.diff(inter.matrix.tocsc().indptr) > 0)


def _read_recs(output_dir):
    table = pq.read_table(str(output_dir))
    return {name: table.column(name).to_numpy() for name in ("user", "rank", "item", "score")}


def _assert_recs_match(recs, inter, model, N, filter_seen=True):
    """The parquet lists equal model.recommend for every user: ids, order, scores, padding left out."""
    ids, scores = model.recommend(inter.matrix, N, filter_already_liked_items=filter_seen)
    keep = ids >= 0
    order = np.lexsort((recs["rank"], recs["user"]))
    expected_users = np.repeat(inter.user_ids, keep.sum(axis=1))  # user ids are sorted in the fixture
    np.testing.assert_array_equal(recs["user"][order], expected_users)
    np.testing.assert_array_equal(recs["rank"][order], np.broadcast_to(np.arange(1, N + 1), ids.shape)[keep])
    np.testing.assert_array_equal(recs["item"][order], model.item_ids_[ids[keep]])
    np.testing.assert_array_equal(recs["score"][order], scores[keep])
    assert set(np.unique(recs["user"])) == set(inter.user_ids.tolist())  # every user has a list


# -- shards -------------------------------------------------------------------------------------

def test_save_and_list_shards(inter, shards):
    files = ld.list_shards(shards["npz"])
    assert files == shards["npz_files"] and len(files) == 4
    assert ld.list_shards(os.path.join(shards["parquet"], "*.parquet")) == shards["parquet_files"]
    parts = [ld.read_shard(f) for f in files]
    assert sum(p.n_users for p in parts) == inter.n_users and all(p.n_users > 0 for p in parts)
    np.testing.assert_array_equal(np.concatenate([p.user_ids for p in parts]), inter.user_ids)
    stacked = sp.vstack([p.matrix for p in parts]).tocsr()
    assert (stacked != inter.matrix).nnz == 0
    first = ld.read_shard(shards["parquet_files"][0])
    assert first.user_ids.dtype == np.int64 and np.isin(first.item_ids, inter.item_ids).all()


# -- Gram ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["npz", "parquet"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_equals_in_process_exactly(client, inter, shards, kind, dtype):
    G_ref = lae_fast.gram(inter.matrix, dtype=dtype)
    if kind == "parquet":  # pairs carry only the items that occur
        used = _used(inter)
        G_ref = G_ref[np.ix_(used, used)]
    for c in (client, None):
        res = ld.distributed_gram(shards[kind], client=c, dtype=dtype)
        assert res.G.dtype == dtype and res.G.flags.c_contiguous
        np.testing.assert_array_equal(res.G, G_ref)
        expected_ids = inter.item_ids if kind == "npz" else inter.item_ids[_used(inter)]
        np.testing.assert_array_equal(res.item_ids, expected_ids)
        assert (res.n_users, res.nnz, res.n_shards) == (inter.n_users, inter.nnz, len(shards[kind + "_files"]))


def test_gram_upper_triangle_and_given_item_space(client, inter, shards):
    G_ref = lae_fast.gram(inter.matrix)
    res = ld.distributed_gram(shards["npz"], client=client, mirror=False)
    np.testing.assert_array_equal(res.G, np.triu(G_ref))
    # pairs aligned to a given item space: unused items become zero rows, order follows item_ids
    reverse = inter.item_ids[::-1]
    res = ld.distributed_gram(shards["parquet"], client=client, item_ids=reverse)
    np.testing.assert_array_equal(res.G, G_ref[::-1, ::-1])


def test_gram_any_grouping_and_kernel_adds_into_its_output(client, inter, shards):
    """Tasks add several shards into one buffer (gram_into with mirror=False adds): any grouping, same G."""
    G_ref = lae_fast.gram(inter.matrix)
    for per_task in (1, 3, 4):
        res = ld.distributed_gram(shards["npz"], client=client, shards_per_task=per_task)
        np.testing.assert_array_equal(res.G, G_ref)
    X = inter.matrix
    G = np.zeros((N_ITEMS, N_ITEMS), dtype=np.float32)
    gram_into(X[:150], G, weighted=False, num_threads=1, mirror=False)
    gram_into(X[150:], G, weighted=False, num_threads=1, mirror=False)
    np.testing.assert_array_equal(G, np.triu(G_ref))
    with pytest.raises(ValueError, match="shards_per_task"):
        ld.distributed_gram(shards["npz"], client=client, shards_per_task=0)


def test_gram_from_dask_dataframe(client, inter, shards):
    dd = pytest.importorskip("dask.dataframe")
    df = dd.read_parquet(shards["parquet_files"])
    used = _used(inter)
    G_ref = lae_fast.gram(inter.matrix)[np.ix_(used, used)]
    for c in (client, None):
        np.testing.assert_array_equal(ld.distributed_gram(df, client=c).G, G_ref)
    # a filtered frame has empty partitions: they contribute nothing
    small = df[df.user <= inter.user_ids[99]]
    X = inter.matrix[:100]
    used = np.flatnonzero(np.diff(X.tocsc().indptr) > 0)
    res = ld.distributed_gram(small, client=client)
    np.testing.assert_array_equal(res.G, lae_fast.gram(X)[np.ix_(used, used)])
    assert res.n_users == 100


def test_float32_exactness_bound_warns(inter, shards, monkeypatch):
    monkeypatch.setattr(ld, "FLOAT32_EXACT_COUNT", 3)
    with pytest.warns(RuntimeWarning, match="float64"):
        ld.distributed_gram(shards["npz"], dtype=np.float32)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ld.distributed_gram(shards["npz"], dtype=np.float64)


# -- the readers' options on shards: rating_col / min_rating -------------------------------------

@pytest.fixture(scope="module")
def rated(inter, tmp_path_factory):
    """The fixture's interactions rated 1..5, as parquet shards (3 of them, by user) plus one shard of new users
    whose every rating is below 4; and the reference built with numpy alone from the rows rated >= 4."""
    rng = np.random.default_rng(11)
    X = inter.matrix
    df = pd.DataFrame({"user": np.repeat(inter.user_ids, np.diff(X.indptr)), "item": inter.item_ids[X.indices],
                       "rating": rng.integers(1, 6, X.nnz).astype(np.float64)})
    root = tmp_path_factory.mktemp("rated")
    bounds = np.searchsorted(df.user.to_numpy(), inter.user_ids[[0, 130, 260]])
    files = []
    for k, (lo, hi) in enumerate(zip(bounds, list(bounds[1:]) + [len(df)])):
        files.append(str(root / f"part-{k}.parquet"))
        pq.write_table(pa.Table.from_pandas(df.iloc[lo:hi], preserve_index=False), files[-1], row_group_size=200)
    low = pd.DataFrame({"user": [10 ** 7, 10 ** 7 + 1], "item": [5, 15], "rating": [1.0, 3.0]})
    files.append(str(root / "part-9.parquet"))
    pq.write_table(pa.Table.from_pandas(low, preserve_index=False), files[-1])
    pos = df[df.rating >= 4]
    users, items = np.unique(pos.user.to_numpy()), np.unique(pos.item.to_numpy())
    dense = np.zeros((users.size, items.size))
    dense[np.searchsorted(users, pos.user.to_numpy()), np.searchsorted(items, pos.item.to_numpy())] = 1.0
    return {"dir": str(root), "files": files, "frame": pd.concat([df, low]), "users": users, "items": items,
            "X": sp.csr_matrix(dense, dtype=np.float32), "G": (dense.T @ dense).astype(np.float32)}


def test_gram_with_min_rating_on_parquet_and_dask_frame_shards(client, rated):
    dd = pytest.importorskip("dask.dataframe")
    sources = {"parquet": rated["dir"], "frame": dd.read_parquet(rated["files"])}
    for (kind, source), c in [(k, c) for k in sources.items() for c in (client, None)]:
        for opts in ({"rating_col": "rating", "min_rating": 4}, {"min_rating": 4.0}):  # found by its usual name
            res = ld.distributed_gram(source, client=c, **opts)
            np.testing.assert_array_equal(res.G, rated["G"])
            np.testing.assert_array_equal(res.item_ids, rated["items"])
            assert (res.n_users, res.nnz) == (rated["users"].size, rated["X"].nnz), kind
            assert res.n_shards == 4  # the shard below min_rating is read and adds nothing


def test_fit_and_recommend_all_with_min_rating(client, rated, tmp_path):
    positives = Interactions.from_matrix(rated["X"], user_ids=rated["users"], item_ids=rated["items"])
    ref = lae_fast.EASE(l2=10.0).fit(positives)
    model = ld.fit_distributed(lae_fast.EASE(l2=10.0), rated["dir"], client=client, min_rating=4)
    np.testing.assert_array_equal(model.B_, ref.B_)
    res = ld.recommend_all(ref, rated["dir"], tmp_path / "recs", N=6, client=client, min_rating=4)
    assert res.n_users == rated["users"].size and len(res.files) == 3  # no list for the users without positives
    _assert_recs_match(_read_recs(tmp_path / "recs"), positives, ref, 6)


def test_shard_options_refused_where_they_do_not_apply(client, rated, shards):
    with pytest.raises(TypeError, match=r"min_rating do not apply to .*part-00000\.npz \(a npz file\); they apply "
                                        r"to delimited or parquet files"):
        ld.distributed_gram(shards["npz"], client=client, min_rating=4)
    with pytest.raises(TypeError, match=r"rating_col do not apply"):
        ld.recommend_all(lae_fast.EASE(l2=1.0).fit(Interactions.from_matrix(np.eye(3))), shards["npz"],
                         "unused-dir", rating_col="r")
    with pytest.raises(TypeError, match="min_rating"):
        ld.distributed_gram(rated["dir"], min_rating="4")
    with pytest.raises(DataFormatError, match=r"part-9\.parquet: no rows left after min_rating=4 \(all 2 ratings"):
        ld.read_shard(rated["files"][-1], min_rating=4)
    with pytest.raises(DataFormatError, match=r"partition 7: no column named 'score'.*pass rating_col="):
        ld.read_shard(rated["frame"], rating_col="score", name="partition 7")
    one = ld.read_shard(rated["frame"], min_rating=4)
    np.testing.assert_array_equal(one.user_ids, rated["users"])


def test_cli_fit_and_recommend_all_with_min_rating(rated, tmp_path):
    runner = CliRunner()
    ref = lae_fast.EASE(l2=12.0).fit(Interactions.from_matrix(rated["X"], user_ids=rated["users"],
                                                               item_ids=rated["items"]))
    out = str(tmp_path / "m.lae")
    r = runner.invoke(main, ["-q", "fit", rated["dir"], "--l2", "12", "--rating-col", "rating", "--min-rating", "4",
                             "-o", out])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(lae_fast.load_model(out).B_, ref.B_)
    r = runner.invoke(main, ["-q", "recommend-all", out, rated["dir"], "-o", str(tmp_path / "recs"), "-k", "4",
                             "--min-rating", "4"])
    assert r.exit_code == 0, r.output
    assert f"of {rated['users'].size} users" in r.output


def test_save_shards_keeps_timestamps(tmp_path):
    ts = np.array([30, 10, 20, 40, 50])
    inter = Interactions.from_pairs([1, 1, 2, 3, 3], [7, 8, 7, 8, 9], timestamps=ts)
    for fmt in ("npz", "parquet"):
        files = ld.save_shards(inter, tmp_path / fmt, 2, format=fmt)
        if fmt == "npz":
            got = np.concatenate([ld.read_shard(f).timestamps for f in files])
        else:
            got = np.concatenate([pq.read_table(f).column("timestamp").to_numpy() for f in files])
        np.testing.assert_array_equal(got, inter.timestamps)


# -- fit ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: lae_fast.EASE(l2=20.0),
                                  lambda: lae_fast.RDLAE(l2=30.0, dropout=0.2, xi=0.5, dtype=np.float64)])
def test_fit_distributed_equals_fit(client, inter, shards, make):
    ref = make().fit(inter)
    model = ld.fit_distributed(make(), shards["npz"], client=client)
    np.testing.assert_array_equal(model.B_, ref.B_)
    np.testing.assert_array_equal(model.item_ids_, ref.item_ids_)
    np.testing.assert_array_equal(model.item_counts_, ref.item_counts_)
    assert (model.n_users_, model.nnz_) == (inter.n_users, inter.nnz)
    assert set(model.fit_seconds_) == {"gram", "inverse", "scaling"}


def test_fit_gram_matches_fit_and_validates(inter):
    ref = lae_fast.DLAE(l2=25.0, dropout=0.3).fit(inter)
    G = lae_fast.gram(inter.matrix)
    kept = G.copy()
    model = lae_fast.DLAE(l2=25.0, dropout=0.3).fit_gram(G, item_ids=inter.item_ids)
    np.testing.assert_array_equal(model.B_, ref.B_)
    np.testing.assert_array_equal(G, kept)  # copy=True leaves G alone
    upper = np.triu(G)
    np.testing.assert_array_equal(lae_fast.DLAE(l2=25.0, dropout=0.3).fit_gram(upper, copy=False).B_, ref.B_)
    with pytest.raises(ValueError, match="square"):
        lae_fast.EASE().fit_gram(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="item_ids"):
        lae_fast.EASE().fit_gram(G, item_ids=[1, 2])
    with pytest.raises(TypeError, match="item_ids= .*item_embeddings="):
        ld.fit_distributed(lae_fast.L3AE(), "unused")
    with pytest.raises(TypeError, match="cannot be fitted from a Gram; the distributed fit covers family, lae"):
        ld.fit_distributed(lae_fast.TextSimilarity(), "unused")


# -- ranking ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["npz", "parquet"])
def test_recommend_all_equals_in_process_for_every_user(client, inter, shards, kind, tmp_path):
    model = lae_fast.EASE(l2=10.0).fit(inter)
    N = N_ITEMS - 5  # heavy users have fewer than N candidates: their padding must not be written
    res = ld.recommend_all(model, shards[kind], tmp_path / "dist", N=N, client=client, batch_users=37)
    assert len(res.files) == len(shards[kind + "_files"]) and res.n_users == inter.n_users
    assert res.n_unknown == 0
    recs = _read_recs(tmp_path / "dist")
    assert res.n_rows == recs["user"].size
    _assert_recs_match(recs, inter, model, N)
    local = ld.recommend_all(model, shards[kind], tmp_path / "local", N=N)  # client=None: plain loop
    assert [os.path.basename(f) for f in local.files] == [os.path.basename(f) for f in res.files]
    for a, b in zip(local.files, res.files):
        assert pq.read_table(a).equals(pq.read_table(b))
    assert pq.read_table(res.files[0]).schema.field("score").type == pa.float32()


def test_recommend_all_from_model_file_mmap_and_broadcast(client, inter, shards, tmp_path):
    model = lae_fast.RLAE(l2=15.0, xi=0.4).fit(inter)
    path = str(tmp_path / "m.lae")
    model.save(path)
    ld.recommend_all(path, shards["npz"], tmp_path / "mmap", N=7, client=client, filter_already_liked_items=False)
    ld.recommend_all(path, shards["npz"], tmp_path / "bcast", N=7, client=client, broadcast=True,
                     filter_already_liked_items=False)
    a, b = _read_recs(tmp_path / "mmap"), _read_recs(tmp_path / "bcast")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    _assert_recs_match(a, inter, model, 7, filter_seen=False)


def test_recommend_all_string_ids_and_unknown_items(client, inter, tmp_path):
    """Pairs with string ids; items the model never saw are ignored and counted."""
    model = lae_fast.EASE(l2=10.0).fit(Interactions.from_matrix(inter.matrix, user_ids=inter.user_ids,
                                                                item_ids=inter.item_ids.astype(str)))
    X = inter.matrix.tocoo()
    users = np.array([f"u{u}" for u in inter.user_ids[X.row]])
    items = inter.item_ids[X.col].astype(str)
    extra_users, extra_items = np.array(["u" + str(inter.user_ids[0])] * 2), np.array(["new-1", "new-2"])
    os.makedirs(tmp_path / "s")
    pq.write_table(pa.table({"user": np.concatenate([users, extra_users]),
                             "item": np.concatenate([items, extra_items])}), tmp_path / "s" / "a.parquet")
    res = ld.recommend_all(model, tmp_path / "s", tmp_path / "out", N=5, client=client)
    assert res.n_unknown == 2 and res.n_users == inter.n_users
    recs = _read_recs(tmp_path / "out")
    assert recs["user"].dtype.kind in "OU" and recs["item"].dtype.kind in "OU"
    ids, _ = model.recommend(inter.matrix, 5)
    first = recs["item"][recs["user"] == f"u{inter.user_ids[0]}"]
    np.testing.assert_array_equal(first.astype(str), model.item_ids_[ids[0]])


def test_recommend_all_refuses_stale_parts_unless_overwrite(inter, shards, tmp_path):
    model = lae_fast.EASE(l2=10.0).fit(inter)
    ld.recommend_all(model, shards["npz"], tmp_path, N=3)
    with pytest.raises(FileExistsError, match="overwrite"):
        ld.recommend_all(model, shards["npz"], tmp_path, N=3)
    res = ld.recommend_all(model, shards["parquet"], tmp_path, N=3, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(f) for f in res.files]  # old 4th part gone
    with pytest.raises(ValueError, match="N must"):
        ld.recommend_all(model, shards["npz"], tmp_path / "x", N=0)
    with pytest.raises(ValueError, match="path"):
        ld.recommend_all(model, shards["npz"], tmp_path / "y", N=3, broadcast=False)


def test_worker_processes_gram_fit_and_mmap_ranking(inter, shards, tmp_path):
    """Real worker processes: partial Grams and B travel serialised; each worker maps the model file."""
    from distributed import Client, LocalCluster

    ref = lae_fast.EASE(l2=10.0).fit(inter)
    path = str(tmp_path / "m.lae")
    ref.save(path)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        model = ld.fit_distributed(lae_fast.EASE(l2=10.0), shards["parquet"], client=c, item_ids=inter.item_ids)
        np.testing.assert_array_equal(model.B_, ref.B_)
        ld.recommend_all(path, shards["npz"], tmp_path / "recs", N=10, client=c)
        with pytest.raises(DataFormatError, match="two shards"):  # raised in a worker, same type here
            ld.distributed_gram([shards["npz_files"][0]] * 2, client=c)
    _assert_recs_match(_read_recs(tmp_path / "recs"), inter, ref, 10)


# -- bad input ----------------------------------------------------------------------------------

def _npz_shard(path, X, user_ids, item_ids=None):
    save_npz(path, Interactions.from_matrix(X, user_ids=user_ids, item_ids=item_ids))


def test_mismatched_item_counts_across_shards(client, tmp_path):
    _npz_shard(tmp_path / "a.npz", sp.csr_matrix(np.eye(3)), [1, 2, 3])
    _npz_shard(tmp_path / "b.npz", sp.csr_matrix(np.eye(4)), [4, 5, 6, 7])
    with pytest.raises(DataFormatError, match=r"b\.npz: has 4 items but .*a\.npz has 3"):
        ld.distributed_gram(tmp_path, client=client)
    os.remove(tmp_path / "b.npz")
    _npz_shard(tmp_path / "b.npz", sp.csr_matrix(np.eye(3)), [4, 5, 6], item_ids=[7, 8, 9])
    with pytest.raises(DataFormatError, match="item ids differ"):
        ld.distributed_gram(tmp_path)


@pytest.mark.parametrize("kind", ["parquet", "npz", "frame"])
def test_uint64_and_negative_int64_ids_in_two_shards_never_merge(client, tmp_path, kind):
    """2**64 - 1 and -1 are the same 64 bits: two shards holding them are refused, never one item."""
    big = np.array([2 ** 64 - 1, 5], dtype=np.uint64)
    neg = np.array([-1, 5], dtype=np.int64)
    if kind == "parquet":
        pq.write_table(pa.table({"user": [1, 1], "item": big}), tmp_path / "a.parquet")
        pq.write_table(pa.table({"user": [2, 2], "item": neg}), tmp_path / "b.parquet")
        source, match = tmp_path, r"a\.parquet holds unsigned ids above 2\*\*63 - 1 and .*b\.parquet holds negative"
    elif kind == "npz":
        _npz_shard(tmp_path / "a.npz", sp.csr_matrix(np.ones((1, 2))), [1], item_ids=big)
        _npz_shard(tmp_path / "b.npz", sp.csr_matrix(np.ones((1, 2))), [2], item_ids=neg)
        source, match = tmp_path, r"b\.npz: its item ids differ from those of .*a\.npz"
    else:
        import dask.dataframe as dd
        import pandas as pd
        from dask import delayed

        parts = [delayed(pd.DataFrame)({"user": [1, 1], "item": big}),
                 delayed(pd.DataFrame)({"user": [2, 2], "item": neg})]
        source = dd.from_delayed(parts, meta=pd.DataFrame({"user": pd.Series([], dtype="int64"),
                                                           "item": pd.Series([], dtype="uint64")}), verify_meta=False)
        match = "holds unsigned ids above 2\\*\\*63 - 1 and .* holds negative ids"
    for c in (client, None):
        with pytest.raises(DataFormatError, match=match):
            ld.distributed_gram(source, client=c)


def test_user_in_two_shards_is_refused(client, tmp_path):
    _npz_shard(tmp_path / "a.npz", sp.csr_matrix(np.eye(3)), [1, 2, 3])
    _npz_shard(tmp_path / "b.npz", sp.csr_matrix(np.eye(3)), [3, 4, 5])
    for c in (client, None):
        with pytest.raises(DataFormatError, match=r"1 users \(e\.g\. 3\) have interactions in two shards"):
            ld.distributed_gram(tmp_path, client=c)
    G = ld.distributed_gram(tmp_path, client=client, check_users=False).G
    np.testing.assert_array_equal(G, 2 * np.eye(3, dtype=np.float32))


def test_parquet_missing_columns_nulls_and_empty(client, tmp_path):
    pq.write_table(pa.table({"uid": [1, 2], "item": [3, 4]}), tmp_path / "cols.parquet")
    with pytest.raises(DataFormatError, match=r"cols\.parquet: no column named 'user'; available columns: "
                                              r"\['uid', 'item'\]; pass user_col="):  # the message of read_parquet
        ld.distributed_gram(tmp_path / "cols.parquet", client=client)
    assert ld.distributed_gram(tmp_path / "cols.parquet", user_col="uid").nnz == 2
    pq.write_table(pa.table({"user": pa.array([], pa.int64()), "item": pa.array([], pa.int64())}),
                   tmp_path / "empty.parquet")
    with pytest.raises(DataFormatError, match=r"empty\.parquet: has no rows"):
        ld.distributed_gram(tmp_path / "empty.parquet", client=client)
    pq.write_table(pa.table({"user": [1, None], "item": [3, 4]}), tmp_path / "null.parquet")
    with pytest.raises(DataFormatError, match="1 missing values"):
        ld.distributed_gram(tmp_path / "null.parquet")
    pq.write_table(pa.table({"user": [1.5, 2.0], "item": [3, 4]}), tmp_path / "float.parquet")
    with pytest.raises(DataFormatError, match="integers or strings"):
        ld.distributed_gram(tmp_path / "float.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataFormatError, match="not a readable parquet"):
        ld.read_shard(tmp_path / "junk.parquet")


def test_empty_npz_shard_and_items_outside_given_space(client, tmp_path):
    np.savez(tmp_path / "empty.npz", indptr=np.zeros(3, np.int64), indices=np.zeros(0, np.int32),
             data=np.zeros(0, np.float32), shape=np.array([2, 3]))
    with pytest.raises(DataFormatError, match=r"empty\.npz: has no interactions"):
        ld.distributed_gram(tmp_path / "empty.npz", client=client)
    pq.write_table(pa.table({"user": [1, 2], "item": [10, 99]}), tmp_path / "p.parquet")
    with pytest.raises(DataFormatError, match=r"p\.parquet: 1 interactions name items that are not in item_ids"):
        ld.distributed_gram(tmp_path / "p.parquet", client=client, item_ids=[10, 11])


def test_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such shard"):
        ld.list_shards(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="matches no file"):
        ld.list_shards(str(tmp_path / "*.npz"))
    with pytest.raises(DataFormatError, match="holds no shard files"):
        ld.list_shards(tmp_path)
    _npz_shard(tmp_path / "a.npz", sp.csr_matrix(np.eye(2)), [1, 2])
    pq.write_table(pa.table({"user": [3], "item": [0]}), tmp_path / "b.parquet")
    with pytest.raises(DataFormatError, match="mixes npz and parquet"):
        ld.list_shards(tmp_path)
    (tmp_path / "c.csv").write_text("user,item\n1,2\n")
    with pytest.raises(DataFormatError, match="not a shard file"):
        ld.list_shards([tmp_path / "c.csv"])
    with pytest.raises(ValueError, match="n_shards"):
        ld.save_shards(Interactions.from_matrix(np.eye(2)), tmp_path / "s", 3)


def test_connect_and_missing_extra(monkeypatch):
    with ld.connect(None) as c:
        assert c is None
    with pytest.raises(ValueError, match="local:N"):
        with ld.connect("local:0"):
            pass
    cpus = lae_fast._threads.available_cpus()
    for spec in (f"local:{cpus + 1}", "local:999999"):  # bounded by the machine: no hang, no memory growth
        with pytest.raises(ValueError, match=rf"takes at most N = {cpus} one-thread workers"):
            with ld.connect(spec):
                pass
    two = min(2, cpus)
    for spec, layout in (("local", [cpus]), (f"local:{two}", [1] * two)):
        with ld.connect(spec, processes=False) as c:
            assert sorted(w["nthreads"] for w in ld._workers(c).values()) == layout
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'lae-fast\[dask\]'"):
        with ld.connect("local"):
            pass


def test_threads_per_task_split_the_machine(client, monkeypatch):
    monkeypatch.delenv("LAE_FAST_NUM_THREADS", raising=False)
    shares = ld._host_shares(client)
    assert sorted(shares.values()) == [2, 2]  # two one-thread workers on this host
    threads = client.gather([client.submit(ld._task_threads, None, shares, pure=False, workers=[addr])
                             for addr in shares])
    cpus = lae_fast._threads.available_cpus()
    assert threads == [max(1, cpus // 2)] * 2
    monkeypatch.setenv("LAE_FAST_NUM_THREADS", "5")  # an explicit setting on the worker wins
    assert client.submit(ld._task_threads, None, shares, pure=False).result() == 5
    assert ld._task_threads(3, shares) == 3


# -- CLI ----------------------------------------------------------------------------------------

def test_cli_fit_and_recommend_all(client, inter, shards, tmp_path):
    runner = CliRunner()
    address = client.scheduler.address
    ref = lae_fast.EASE(l2=12.0).fit(inter)
    for sched, name in ((address, "dist.lae"), (None, "local.lae")):
        args = ["-q", "fit", shards["npz"], "--l2", "12", "-o", str(tmp_path / name), "--json"]
        r = runner.invoke(main, args + (["--scheduler", sched] if sched else []))
        assert r.exit_code == 0, r.output
        assert '"shards": 4' in r.output and f'"n_users": {inter.n_users}' in r.output
        np.testing.assert_array_equal(lae_fast.load_model(str(tmp_path / name)).B_, ref.B_)
    r = runner.invoke(main, ["-q", "recommend-all", str(tmp_path / "dist.lae"), shards["parquet"], "-o",
                             str(tmp_path / "recs"), "-k", "8", "--scheduler", address])
    assert r.exit_code == 0, r.output
    assert f"of {inter.n_users} users" in r.output
    _assert_recs_match(_read_recs(tmp_path / "recs"), inter, ref, 8)
    r = runner.invoke(main, ["-q", "recommend-all", str(tmp_path / "dist.lae"), shards["parquet"], "-o",
                             str(tmp_path / "recs"), "-k", "8"])
    assert r.exit_code == 1 and "Error:" in r.output and "--overwrite" in r.output and "Traceback" not in r.output


def test_cli_errors(shards, tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["fit", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "m.lae")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(main, ["fit", shards["npz"], "--min-rating", "4", "-o", str(tmp_path / "m.lae")])
    assert r.exit_code == 2 and "--min-rating do not apply to" in r.output and "(a npz file)" in r.output
    r = runner.invoke(main, ["fit", shards["parquet"], "--sep", ",", "-o", str(tmp_path / "m.lae")])
    assert r.exit_code == 2 and "not to shards" in r.output
    r = runner.invoke(main, ["fit", shards["npz"], "--scheduler", "local:zero", "-o", str(tmp_path / "m.lae")])
    assert r.exit_code == 1 and "local:N" in r.output and "Traceback" not in r.output
    for sub in (["fit", shards["npz"], "-o", str(tmp_path / "m.lae")], ["recommend-all", str(shards["npz_files"][0]),
                                                                      shards["npz"], "-o", str(tmp_path / "r")]):
        r = runner.invoke(main, sub + ["--scheduler", "local:999999"])  # once a hang while memory grew
        assert r.exit_code == 1 and "takes at most N =" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["fit", str(tmp_path / "nothing-*.parquet"), "-o", str(tmp_path / "m.lae")])
    assert r.exit_code == 1 and "matches no file" in r.output
    assert not (tmp_path / "m.lae").exists()
    for sub in (["recommend-all", "--help"], ["fit", "--help"]):
        r = runner.invoke(main, sub)
        assert r.exit_code == 0 and "--scheduler" in r.output
