"""Every kind of model file lae-fast writes is read by every reader of model files.

Kinds: a dense fitted model, a sparse fitted model (the neighbourhood route), and the serving files of
Recommender.save (dense, pruned, float16 / int8 compressed). Readers: lae_fast.load_model,
Recommender.load, `lae-fast recommend`, `lae-fast info` and recommend-all. Every answer is checked
against the brute-force top-N of the B the file holds.
"""
import json

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import lae_fast
from lae_fast.cli import main
from lae_fast.compression import decompress
from lae_fast.data import Interactions, save_npz

from conftest import power_law, ref_topk

N = 6


@pytest.fixture(scope="module")
def inter():
    X = power_law(n_users=150, n_items=40, mean_len=6, seed=3)
    ids = np.array([f"movie {j}" for j in range(X.shape[1])])
    return Interactions.from_matrix(X, item_ids=ids)


@pytest.fixture(scope="module")
def files(inter, tmp_path_factory):
    """name -> (path, the dense float64 B the file stands for)."""
    d = tmp_path_factory.mktemp("kinds")
    dense = lae_fast.EASE(l2=5.0).fit(inter)
    sparse = lae_fast.RDLAE(l2=5.0, dropout=0.2, xi=0.3, neighbors=8).fit(inter)
    out = {}
    dense.save(d / "dense.lae")
    out["dense model"] = (d / "dense.lae", np.asarray(dense.B_, dtype=np.float64))
    sparse.save(d / "sparse.lae")
    out["sparse model"] = (d / "sparse.lae", sparse.B_.toarray().astype(np.float64))
    rec = lae_fast.Recommender(dense)
    rec.save(d / "serving-dense.lae")
    out["serving dense"] = (d / "serving-dense.lae", np.asarray(dense.B_, dtype=np.float64))
    pruned = rec.prune(5)
    pruned.save(d / "pruned.lae")
    out["serving pruned"] = (d / "pruned.lae", lae_fast.load_model(d / "pruned.lae").B_.toarray().astype(np.float64))
    for codec in ("float16", "int8"):
        c = rec.compress(codec)
        c.save(d / f"{codec}.lae")
        out[f"serving {codec}"] = (d / f"{codec}.lae", decompress(c._snap.packed).astype(np.float64))
    return out


KINDS = ["dense model", "sparse model", "serving dense", "serving pruned", "serving float16", "serving int8"]


def test_sparse_model_file_is_csr_and_memory_mapped(files):
    model = lae_fast.load_model(files["sparse model"][0])
    assert sp.isspmatrix_csr(model.B_) and model.solver_ == "neighbors"
    assert not model.B_.data.flags.owndata and not model.B_.data.flags.writeable  # a view of the mapped file


@pytest.mark.parametrize("kind", KINDS)
def test_load_model_reads_every_kind(inter, files, kind):
    path, B = files[kind]
    model = lae_fast.load_model(path)
    np.testing.assert_array_equal(model.item_ids_, inter.item_ids)
    X = inter.matrix[:30]
    ids, scores = model.recommend(X, N)
    ref_ids, _ = ref_topk(X, B, N)
    np.testing.assert_array_equal(ids, ref_ids)
    if kind.startswith("serving"):
        assert model.name == "" and model.solver_ == "given"
        with pytest.raises(TypeError, match="Recommender"):
            model.save(path.with_suffix(".again"))


@pytest.mark.parametrize("kind", KINDS)
def test_recommender_and_cli_read_every_kind(inter, files, kind, tmp_path):
    path, B = files[kind]
    rec = lae_fast.Recommender.load(path)
    hist = inter.matrix[4].indices
    ids, _ = rec.recommend_one(hist, N)
    np.testing.assert_array_equal(ids, ref_topk(inter.matrix[4], B, N)[0][0])
    # the CLI: recommend for three users given by their original ids, and info
    users = [0, 4, 9]
    rows = ["user,item"] + [f"u{u},\"{inter.item_ids[i]}\"" for u in users for i in inter.matrix[u].indices]
    (tmp_path / "h.csv").write_text("\n".join(rows) + "\n")
    res = CliRunner().invoke(main, ["-q", "recommend", str(path), str(tmp_path / "h.csv"), "-k", str(N),
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    for u in users:
        expect = [inter.item_ids[j] for j in ref_topk(inter.matrix[u], B, N)[0][0] if j >= 0]
        assert [r["item"] for r in got[f"u{u}"]] == expect
    info = CliRunner().invoke(main, ["info", str(path), "--json"])
    assert info.exit_code == 0 and json.loads(info.output)["checksum"] == "ok"


def test_from_weights_contract(inter):
    B = np.random.default_rng(0).normal(size=(inter.n_items, inter.n_items))
    model = lae_fast.ItemItemModel.from_weights(B, item_ids=inter.item_ids)
    np.testing.assert_array_equal(model.recommend(inter.matrix[:5], 4)[0], ref_topk(inter.matrix[:5], B, 4)[0])
    with pytest.raises(TypeError, match="fitted with fit"):
        lae_fast.EASE.from_weights(B)
    with pytest.raises(ValueError, match="square"):
        lae_fast.ItemItemModel.from_weights(B[:, :-1])
    with pytest.raises(TypeError, match="float32 or float64"):
        lae_fast.ItemItemModel.from_weights(B.astype(np.int64))


def test_recommend_all_ranks_a_sparse_model_like_recommend(inter, files, tmp_path):
    from lae_fast.distributed import recommend_all, save_shards
    import pandas as pd

    save_npz(tmp_path / "all.npz", inter)
    shards = save_shards(inter, tmp_path / "shards", 3)
    model = lae_fast.load_model(files["sparse model"][0])
    res = recommend_all(files["sparse model"][0], shards, tmp_path / "out", N=N)
    got = pd.concat([pd.read_parquet(f) for f in res.files])
    ids, _ = model.recommend(inter.matrix, N)
    for u in range(0, inter.n_users, 17):
        mine = got[got["user"] == inter.user_ids[u]].sort_values("rank")["item"].tolist()
        assert mine == [inter.item_ids[j] for j in ids[u] if j >= 0]
