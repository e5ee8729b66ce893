"""The neighbourhood route on dask (lae_fast.distributed_neighbors): no n×n anywhere, and bit for bit the
in-process fit on the same candidate lists, on a 2-worker LocalCluster.

The in-process fit reads G_SS from the dense G while n×n fits the memory budget; these tests make the
budget report (almost) no memory, so both sides take candidate lists, as they do past the wall.
"""
import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("distributed")  # guard only: CI installs the dask extra through .[test]

import lae_fast  # noqa: E402
from lae_fast import distributed as ld  # noqa: E402
from lae_fast import distributed_neighbors as dn  # noqa: E402
from lae_fast import neighbors as nbr  # noqa: E402
from lae_fast.data import DataFormatError, Interactions, save_npz  # noqa: E402
from lae_fast.models import base  # noqa: E402

from conftest import power_law  # noqa: E402

N_USERS, N_ITEMS, M = 600, 150, 8  # lists of 3 x 1.5m = 36 < 149 items: G_SS really comes from the lists


@pytest.fixture(scope="module")
def inter():
    X = power_law(N_USERS, N_ITEMS, mean_len=12, seed=3)
    return Interactions.from_matrix(X, user_ids=np.arange(N_USERS) * 3 + 1, item_ids=np.arange(N_ITEMS) * 7 + 2)


@pytest.fixture(scope="module")
def shards(inter, tmp_path_factory):
    root = tmp_path_factory.mktemp("nshards")
    ld.save_shards(inter, root / "npz", 5)
    return str(root / "npz")


@pytest.fixture
def past_the_wall(monkeypatch):
    """The dense n×n no longer fits: the fit on one machine takes candidate lists, as fit_on_lists does."""
    monkeypatch.setattr(base, "available_memory", lambda: 1)


def _embeddings(n, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


MODELS = {
    "ease": lambda: lae_fast.EASE(l2=20.0, neighbors=M),
    "rdlae": lambda: lae_fast.RDLAE(l2=30.0, dropout=0.2, xi=0.5, neighbors=M, dtype=np.float64),
    "l3ae": lambda: lae_fast.L3AE(l2_x=20.0, l2_e=5.0, l2_f=1.0, neighbors=M),
}


def _fit_pair(name, inter, shards, client):
    E = _embeddings(N_ITEMS) if name == "l3ae" else None
    ref = MODELS[name]().fit(inter, item_embeddings=E)
    kwargs = {"item_ids": inter.item_ids, "item_embeddings": E} if E is not None else {}
    got = ld.fit_distributed(MODELS[name](), shards, client=client, **kwargs)
    return ref, got


def _assert_same_model(got, ref):
    assert got.solver_ == ref.solver_ == "neighbors"
    assert sp.issparse(got.B_) and got.B_.format == ref.B_.format
    for attr in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got.B_, attr), getattr(ref.B_, attr))
    np.testing.assert_array_equal(got.item_ids_, ref.item_ids_)
    np.testing.assert_array_equal(got.item_counts_, ref.item_counts_)
    assert (got.n_users_, got.nnz_, got.neighbors_) == (ref.n_users_, ref.nnz_, ref.neighbors_)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_two_workers_equal_in_process_bit_for_bit(client, inter, shards, past_the_wall, name):
    ref, got = _fit_pair(name, inter, shards, client)
    _assert_same_model(got, ref)
    assert {"read", "candidates", "solve", "assemble"} <= set(got.fit_seconds_)
    assert "gram" not in got.fit_seconds_  # no n×n was formed
    ids_ref, sc_ref = ref.recommend(inter.matrix[:50], 10)
    ids, sc = got.recommend(inter.matrix[:50], 10)
    np.testing.assert_array_equal(ids, ids_ref)
    np.testing.assert_array_equal(sc, sc_ref)


def test_without_a_client_too(inter, shards, past_the_wall):
    ref, got = _fit_pair("ease", inter, shards, None)
    _assert_same_model(got, ref)


def test_lists_summed_over_shards_equal_the_lists_from_X(client, inter, shards, monkeypatch):
    monkeypatch.setattr(dn, "items_per_block", lambda n: 10)  # 15 blocks: more than are let in flight at once
    ref = nbr.cooccurrence_candidates(inter.matrix, 40)
    opts = ld._ShardOptions("user", "item", None, None)
    shard_list, vocab, shares = ld._open(shards, client, None, opts, None)
    parts = [client.submit(dn._shard_matrix, s.data, s.name, s.kind, opts, vocab, None, shares, True, pure=False)
             for s in shard_list]
    seen = []
    lists = dn.distributed_candidates(parts, ref.item_counts, 40, client=client, num_threads=None, shares=shares,
                                      progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(lists.indices, ref.indices)
    np.testing.assert_array_equal(lists.counts, ref.counts)
    assert len(seen) == 15 and seen[-1] == (N_ITEMS, N_ITEMS)


def test_item_blocks_bound_the_rows_held():
    assert dn.items_per_block(N_ITEMS) == N_ITEMS  # a small catalogue is one block
    assert dn.items_per_block(91_599) == dn.BLOCK_ENTRIES // 91_599
    assert dn.items_per_block(10 ** 7) == 64  # at least 64 rows a task, however large n


def test_where_the_dense_gram_fits_the_route_reads_it(client, inter, shards):
    """Memory to spare: the distributed Gram, then the neighbourhood solve on the exact G, as in one process."""
    ref = MODELS["ease"]().fit(inter)
    got = ld.fit_distributed(MODELS["ease"](), shards, client=client)
    _assert_same_model(got, ref)
    assert "gram" in got.fit_seconds_


def test_a_user_in_two_shards_is_refused(client, tmp_path, past_the_wall):
    X = power_law(40, 30, mean_len=5, seed=1)
    a = Interactions.from_matrix(X[:25], user_ids=np.arange(25), item_ids=np.arange(30))
    b = Interactions.from_matrix(X[20:], user_ids=np.arange(20, 40), item_ids=np.arange(30))
    save_npz(tmp_path / "a.npz", a)
    save_npz(tmp_path / "b.npz", b)
    with pytest.raises(DataFormatError, match="have interactions in two shards"):
        ld.fit_distributed(lae_fast.EASE(neighbors=4), str(tmp_path), client=client)


def test_progress_reports_candidates_then_columns(inter, shards, past_the_wall):
    seen = []
    ld.fit_distributed(MODELS["ease"](), shards, progress=lambda done, total: seen.append((done, total)))
    assert seen.count((N_ITEMS, N_ITEMS)) == 2  # both phases reach the end


def test_fit_candidates_checks_its_lists(inter):
    lists = nbr.cooccurrence_candidates(inter.matrix, 16)
    with pytest.raises(ValueError, match=f"needs {nbr.LOOKUP_FACTOR * nbr.refine_width(M)}"):
        lae_fast.EASE(neighbors=M).fit_candidates(lists)
    with pytest.raises(TypeError, match="CandidateLists"):
        lae_fast.EASE(neighbors=M).fit_candidates(inter.matrix)
    with pytest.raises(TypeError, match="no neighbourhood route"):
        lae_fast.EASEText().fit_candidates(lists)


def test_column_blocks_join_into_the_full_solve(inter):
    lists = nbr.cooccurrence_candidates(inter.matrix, 64)
    full = nbr.solve_columns(lists, l2=20.0, m=M, refine=True, k=2 * M)
    blocks = [nbr.solve_columns(lists, l2=20.0, m=M, refine=True, k=2 * M, columns=(a, b)).block(a, b)
              for a, b in [(90, N_ITEMS), (0, 37), (37, 90)]]
    joined = nbr.join_column_blocks(blocks, N_ITEMS)
    assert (joined.B != full.B).nnz == 0
    np.testing.assert_array_equal(joined.B.indptr, full.B.indptr)
    with pytest.raises(ValueError, match="do not cover"):
        nbr.join_column_blocks(blocks[:2], N_ITEMS)
    for bad in [(5, 5), (0, N_ITEMS + 1), (-1, 3), ("a", 3), (1,)]:
        with pytest.raises(ValueError, match="columns"):
            nbr.solve_columns(lists, l2=20.0, m=M, columns=bad)


def test_cli_fit_on_shards_with_neighbors(inter, shards, past_the_wall, tmp_path):
    """`lae-fast fit SHARDS --neighbors m --scheduler local:2`: the lists route, saved as a sparse model."""
    import json

    from click.testing import CliRunner

    from lae_fast.cli import main

    out = tmp_path / "m.lae"
    res = CliRunner().invoke(main, ["fit", shards, "--model", "ease", "--l2", "20", "--neighbors", str(M),
                                    "--scheduler", "local:2", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["solver"] == "neighbors" and summary["shards"] == 5
    loaded, ref = lae_fast.load_model(str(out)), MODELS["ease"]().fit(inter)
    assert loaded.solver_ == "neighbors" and loaded.neighbors == M
    for attr in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(loaded.B_, attr), getattr(ref.B_, attr))
    np.testing.assert_array_equal(loaded.item_ids_, ref.item_ids_)


def test_automatic_switch_is_announced_and_equal(client, inter, shards, past_the_wall):
    """neighbors=None past the wall: the route switches on the cluster as in one process, and says so."""
    with pytest.warns(base.RouteWarning, match="neighbourhoods"):
        ref = lae_fast.EASE(l2=20.0).fit(inter)
    with pytest.warns(base.RouteWarning, match="neighbourhoods"):
        got = ld.fit_distributed(lae_fast.EASE(l2=20.0), shards, client=client)
    _assert_same_model(got, ref)
