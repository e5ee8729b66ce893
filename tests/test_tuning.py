"""Grid search: reuse gives the very B of a fresh fit, selection sees validation only, results, CLI, plots."""
import builtins
import csv
import json
import math

import click
import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from lae_fast import EASE, RDLAE, LinearAutoencoder
from lae_fast.cli import Context
from lae_fast.cli_data import datasets_command, parse_grid, tune_command
from lae_fast.evaluation import EvalSet, Split, evaluate, strong_split, weak_split
from lae_fast.models import model_names
from lae_fast.tuning import family_member, iter_solutions, tune

try:
    import matplotlib  # noqa: F401
except ImportError:
    HAS_MPL = False
else:
    HAS_MPL = True

FAMILY = tuple(n for n in model_names(base=LinearAutoencoder) if n != LinearAutoencoder.name)


def power_law(n_users=300, n_items=50, mean_len=8, alpha=1.1, seed=0, empty_items=()):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** alpha
    p[list(empty_items)] = 0
    p /= p.sum()
    rows = [np.sort(rng.choice(n_items, size=min(n_items - len(empty_items), max(1, rng.poisson(mean_len))),
                               replace=False, p=p)) for _ in range(n_users)]
    indptr = np.cumsum([0] + [r.size for r in rows])
    return sp.csr_matrix((np.ones(indptr[-1], dtype=np.float32), np.concatenate(rows), indptr),
                         shape=(n_users, n_items))


@pytest.fixture(scope="module")
def split():
    return strong_split(power_law(400, 60, mean_len=10, seed=10), n_heldout=60, random_state=10)


# -- reuse is exact --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xis", [(0.0, 0.35, 1.0, 0.7), (0.5,)])
def test_reuse_gives_bit_identical_B(dtype, xis):
    X = power_law(200, 40, seed=1, empty_items=(7,))  # an unused item: P_jj = 1/γ_j on the bound
    l2s, ps = (3.0, 40.0), (0.0, 0.25)
    timings = {}
    seen = []
    for sol in iter_solutions(X, l2s, ps, xis, dtype=dtype, num_threads=2, timings=timings):
        fresh = LinearAutoencoder(sol.l2, dropout=sol.dropout, xi=sol.xi, dtype=dtype, num_threads=2).fit(X)
        assert sol.B.dtype == fresh.B_.dtype
        assert np.array_equal(sol.B, fresh.B_), (sol.l2, sol.dropout, sol.xi)
        assert sol.inverse_reused == (sol.xi != xis[0])
        seen.append((sol.l2, sol.dropout, sol.xi))
    assert seen == [(a, b, c) for a in l2s for b in ps for c in xis]
    assert timings["n_inverses"] == len(l2s) * len(ps)


def test_preset_classes_match_the_family_points():
    X = power_law(150, 30, seed=4)
    sols = {(s.l2, s.dropout, s.xi): s.B.copy()
            for s in iter_solutions(X, [25.0], [0.0, 0.3], [0.0, 0.6, 1.0], num_threads=1)}
    assert np.array_equal(sols[(25.0, 0.0, 0.0)], EASE(l2=25.0, num_threads=1).fit(X).B_)
    assert np.array_equal(sols[(25.0, 0.3, 0.6)], RDLAE(l2=25.0, dropout=0.3, xi=0.6, num_threads=1).fit(X).B_)


def test_rows_equal_fresh_fits_evaluated_on_val(split):
    res = tune(split, "rdlae", {"l2": [5, 50], "dropout": [0.1, 0.4], "xi": [0.0, 0.5]}, ks=(5, 10),
               metric="ndcg@10", num_threads=1)
    assert len(res.rows) == 8
    for row in res.rows:
        model = RDLAE(l2=row["l2"], dropout=row["dropout"], xi=row["xi"], num_threads=1).fit(split.train)
        want = evaluate(model, split, ks=(5, 10), on="val", head_tail=True)
        for key, value in want.items():
            assert row[key] == value, key


# -- selection on validation only ----------------------------------------------------------------------

def brute_force(split, grid, on):
    return {l2: evaluate(EASE(l2=l2, num_threads=1).fit(split.train), split, ks=(10,), on=on)["ndcg@10"]
            for l2 in grid}


def test_winner_is_chosen_on_validation_not_test(split):
    grid = [1.0, 10.0, 100.0, 1000.0]
    val, test = brute_force(split, grid, "val"), brute_force(split, grid, "test")
    best_val, best_test = max(val, key=val.get), max(test, key=test.get)
    assert best_val != best_test  # the data disagree: the test below can tell the two apart
    res = tune(split, "ease", {"l2": grid}, ks=(10,), metric="ndcg@10", num_threads=1)
    assert res.best["l2"] == best_val and res.best_params == {"l2": best_val}
    assert [r["ndcg@10"] for r in res.rows] == [val[l2] for l2 in grid]
    on_test = tune(split, "ease", {"l2": grid}, ks=(10,), metric="ndcg@10", on="test", num_threads=1)
    assert on_test.best["l2"] == best_test and on_test.test is None


def test_test_set_never_influences_the_choice(split):
    grid = {"l2": [2.0, 30.0, 300.0], "dropout": [0.0, 0.3], "xi": [0.0, 0.6]}
    res = tune(split, "family", grid, ks=(10,), metric="ndcg@10", num_threads=1)
    rng = np.random.default_rng(0)
    junk = sp.random(*split.test.targets.shape, density=0.3, format="csr", random_state=rng)
    other = Split(train=split.train, val=split.val, protocol="strong",
                  test=EvalSet(inputs=split.test.inputs, targets=junk, users=split.test.users))
    res2 = tune(other, "family", grid, ks=(10,), metric="ndcg@10", num_threads=1)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "eval_seconds"} for r in rows]  # noqa: E731
    assert strip(res.rows) == strip(res2.rows) and res.best_params == res2.best_params
    assert res.test != res2.test


def test_refit_winner_and_its_test_metrics(split):
    res = tune(split, "rdlae", {"l2": [5, 50], "dropout": [0.2], "xi": [0.3, 0.7]}, ks=(10, 20),
               metric="recall@20", num_threads=1)
    assert isinstance(res.best_model, RDLAE)
    assert res.best_params == {k: res.best[k] for k in ("l2", "dropout", "xi")}
    assert res.test == evaluate(res.best_model, split, ks=(10, 20), on="test", head_tail=True)
    again = evaluate(res.best_model, split, ks=(10, 20), on="val", head_tail=True)
    assert again["recall@20"] == res.best["recall@20"]
    assert "recall_tail@20" in res.test and res.test["n_users_head"] > 0
    assert tune(split, "ease", {"l2": [5]}, refit=False, num_threads=1).best_model is None


def test_refit_winner_keeps_the_item_ids_of_a_split(split):
    """A Split of Interactions (not only a Dataset) gives the refitted winner the data's item ids."""
    from lae_fast.data import Interactions

    data = Interactions.from_matrix(power_law(seed=3), item_ids=[f"item-{j}" for j in range(50)])
    res = tune(strong_split(data, n_heldout=30, random_state=0), "ease", {"l2": [5, 50]}, ks=(10,),
               metric="ndcg@10", num_threads=1)
    np.testing.assert_array_equal(res.best_model.item_ids_, data.item_ids)


def test_family_search_gives_each_models_own_best(split):
    grid = {"l2": [3.0, 30.0, 300.0], "dropout": [0.0, 0.2, 0.5], "xi": [0.0, 0.4, 1.0]}
    res = tune(split, "family", grid, ks=(10,), metric="ndcg@10", num_threads=1, refit=False)
    assert {r["model"] for r in res.rows} == set(FAMILY)
    subgrids = {"lae": {"l2": grid["l2"]}, "ease": {"l2": grid["l2"]},
                "dlae": {"l2": grid["l2"], "dropout": [0.2, 0.5]}, "edlae": {"l2": grid["l2"], "dropout": [0.2, 0.5]},
                "rlae": {"l2": grid["l2"], "xi": [0.4]},
                "rdlae": {"l2": grid["l2"], "dropout": [0.2, 0.5], "xi": [0.4]}}
    for name, sub in subgrids.items():
        alone = tune(split, name, sub, ks=(10,), metric="ndcg@10", num_threads=1, refit=False)
        mine = res.best_for(name)
        assert (mine["l2"], mine["dropout"], mine["xi"]) == (alone.best["l2"], alone.best["dropout"], alone.best["xi"])
        assert mine["ndcg@10"] == alone.best["ndcg@10"]
    winner = tune(split, "family", grid, ks=(10,), metric="ndcg@10", num_threads=1)
    assert type(winner.best_model).__name__.lower() == winner.best["model"]


def test_family_member_names():
    assert [family_member(p, x) for p, x in [(0, 0), (0, 1), (0, 0.5), (0.2, 0), (0.2, 1.5), (0.2, 0.5)]] == \
        ["ease", "lae", "rlae", "edlae", "dlae", "rdlae"]


def test_weak_protocol_and_interactions_input():
    X = power_law(300, 40, mean_len=12, seed=5)
    res = tune(X, "ease", {"l2": [10, 100]}, protocol="weak", random_state=1, num_threads=1)
    assert res.protocol == "weak"
    split = weak_split(X, random_state=1)
    assert res.rows[0]["ndcg@20"] == evaluate(EASE(l2=10, num_threads=1).fit(split.train), split, ks=(20,),
                                              on="val")["ndcg@20"]


# -- validation of arguments, failures ---------------------------------------------------------------------

@pytest.mark.parametrize("model, grid, kwargs, exc, match", [
    ("ease", {"xi": [0.1]}, {}, ValueError, r"model 'ease' has no free xi .*models with it: family, rlae, rdlae"),
    ("lae", {"dropout": [0.1]}, {}, ValueError, "has no free dropout"),
    ("rdlae", {"lambda": [1]}, {}, ValueError, "unknown hyper-parameter"),
    ("rdlae", {"l2": []}, {}, ValueError, "empty"),
    ("rdlae", {"dropout": [1.0]}, {}, ValueError, "dropout"),
    ("rdlae", {"l2": [-1]}, {}, ValueError, "l2"),
    ("svd", {}, {}, ValueError, "model must be one of"),
    ("ease", {}, {"metric": "auc"}, ValueError, "metric must look like"),
    ("ease", {}, {"on": "train"}, ValueError, "on must be"),
    ("ease", {}, {"protocol": "cold"}, ValueError, "protocol"),
])
def test_bad_arguments(model, grid, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        tune(power_law(100, 20), model, grid, n_heldout=10, **kwargs)


def test_split_without_validation_targets_is_refused(split):
    empty = EvalSet(inputs=split.val.inputs, targets=sp.csr_matrix(split.val.targets.shape), users=split.val.users)
    bad = Split(train=split.train, val=empty, test=split.test, protocol="weak")
    with pytest.raises(ValueError, match="val set has no target items.*val_fraction=0.1"):
        tune(bad, "ease", {"l2": [10]})


def test_failed_inverse_is_a_row_not_a_crash():
    X = power_law(200, 30, seed=2, empty_items=(3,))  # G singular: l2=0 cannot be inverted
    res = tune(X, "ease", {"l2": [0.0, 20.0]}, n_heldout=20, dtype=np.float64, num_threads=1)
    assert "error" in res.rows[0] and math.isnan(res.rows[0]["ndcg@20"]) and "positive definite" in res.rows[0]["error"]
    assert res.best["l2"] == 20.0
    with pytest.raises(ValueError, match="every grid point failed"):
        tune(X, "ease", {"l2": [0.0]}, n_heldout=20, dtype=np.float64, num_threads=1)


def test_on_edge_and_progress(split, capsys):
    calls = []
    res = tune(split, "ease", {"l2": [1e-3, 1e-2]}, num_threads=1, progress=lambda i, text: calls.append((i, text)))
    assert res.on_edge == ["l2"] and [c[0] for c in calls] == [1, 2] and "ease l2=0.001" in calls[0][1]
    tune(split, "ease", {"l2": [5, 10]}, num_threads=1, progress=True)
    err = capsys.readouterr().err
    assert "[1/2] ease l2=5" in err and "[2/2]" in err
    assert "widen the grid" in res.summary()


def test_results_written_as_csv_and_json(split, tmp_path):
    res = tune(split, "rlae", {"l2": [5, 50], "xi": [0.2, 0.8]}, num_threads=1)
    res.write(tmp_path / "r.csv")
    with open(tmp_path / "r.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and sum(int(r["selected"]) for r in rows) == 1
    chosen = next(r for r in rows if r["selected"] == "1")
    assert float(chosen["ndcg@20"]) == res.best["ndcg@20"] and float(chosen["xi"]) == res.best["xi"]
    res.write(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["best_params"] == res.best_params and data["selected_on"] == "val" and len(data["rows"]) == 4
    assert data["test"]["ndcg@20"] == res.test["ndcg@20"]
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        res.write(tmp_path / "r.txt")
    assert "winner (on val): rlae" in res.summary() and "TuneResult(model='rlae'" in repr(res)


# -- CLI ------------------------------------------------------------------------------------------------

@click.group()
@click.option("-q", "--quiet", is_flag=True)
@click.pass_context
def cli(ctx, quiet):
    ctx.obj = Context(1, quiet)


cli.add_command(tune_command)
cli.add_command(datasets_command)


@pytest.fixture()
def data_npz(tmp_path):
    path = tmp_path / "data.npz"
    sp.save_npz(path, power_law(300, 40, mean_len=10, seed=7))
    return path


def test_parse_grid_forms():
    assert parse_grid(["l2=100,500", "dropout=0.1,0.3", "xi=0"]) == {"l2": [100, 500], "dropout": [0.1, 0.3],
                                                                      "xi": [0]}
    assert parse_grid(["l2=1,2,p=0.5,xi=0,1"]) == {"l2": [1, 2], "dropout": [0.5], "xi": [0, 1]}
    for bad, match in [("1,2", "must start with a name"), ("l2=a", "not a number"), ("rho=1", "unknown"),
                       ("l2=", "has no values")]:
        with pytest.raises(click.BadParameter, match=match):
            parse_grid([bad])
    with pytest.raises(click.BadParameter, match="given twice"):
        parse_grid(["l2=1", "l2=2"])


def test_cli_tune_csv_json_and_table(data_npz, tmp_path):
    runner = CliRunner()
    out = tmp_path / "res.csv"
    r = runner.invoke(cli, ["tune", str(data_npz), "--model", "rdlae", "--grid", "l2=5,50", "--grid",
                            "dropout=0.1,0.3", "--grid", "xi=0,0.5", "--heldout", "30", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "winner (on val): rdlae" in r.output and "test set, winner refitted on train" in r.output
    assert "[8/8]" in r.output  # progress (stderr is mixed into output by the runner)
    assert len(out.read_text().splitlines()) == 9
    r = runner.invoke(cli, ["-q", "tune", str(data_npz), "--model", "family", "--grid", "l2=5,50,p=0,0.3,xi=0,0.5,1",
                            "--protocol", "weak", "--json", "--metric", "recall_tail@20"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["metric"] == "recall_tail@20" and data["protocol"] == "weak" and len(data["rows"]) == 12


@pytest.mark.parametrize("args, code, match", [
    (["--grid", "l2=x"], 2, "not a number"),
    (["--model", "ease", "--grid", "xi=0.5"], 1, "has no free xi"),
    (["-o", "out.txt"], 2, "must end in .csv or .json"),
    (["--plot", "out.jpg"], 2, "must end in .png"),
])
def test_cli_tune_errors(data_npz, args, code, match):
    r = CliRunner().invoke(cli, ["tune", str(data_npz)] + args)
    assert r.exit_code == code, r.output
    assert match in r.output and "Traceback" not in r.output


def test_cli_tune_unknown_data_is_one_error_line(tmp_path):
    r = CliRunner().invoke(cli, ["tune", str(tmp_path / "nope.zip")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert [line for line in r.output.splitlines() if line.startswith("Error:")]


def test_cli_datasets_lists_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAE_FAST_DATA", str(tmp_path))
    r = CliRunner().invoke(cli, ["datasets"])
    assert r.exit_code == 0 and "ml-100k" in r.output and "ml-1m" in r.output and str(tmp_path) in r.output
    r = CliRunner().invoke(cli, ["datasets", "--json"])
    data = json.loads(r.output)
    assert {d["name"] for d in data["datasets"]} >= {"ml-100k", "ml-1m"}
    assert not any(d["cached"] for d in data["datasets"])
    r = CliRunner().invoke(cli, ["datasets", "--fetch", "ml-20m"])
    assert r.exit_code == 2 and "not a known dataset" in r.output


@pytest.mark.parametrize("sub", ["tune", "datasets"])
def test_cli_help(sub):
    r = CliRunner().invoke(cli, [sub, "--help"])
    assert r.exit_code == 0 and "Example" in r.output


# -- plots ------------------------------------------------------------------------------------------------

def block_matplotlib(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_plot_without_matplotlib_names_the_extra(split, tmp_path, monkeypatch, data_npz):
    from lae_fast.plots import MissingDependencyError, plot_head_tail, plot_tuning

    res = tune(split, "ease", {"l2": [5, 50]}, num_threads=1, refit=False)
    block_matplotlib(monkeypatch)
    with pytest.raises(MissingDependencyError, match=r"pip install 'lae-fast\[plot\]'"):
        plot_tuning(res, tmp_path / "a.png")
    with pytest.raises(ImportError, match="matplotlib"):
        plot_head_tail({"EASE": res.best}, tmp_path / "b.png")
    r = CliRunner().invoke(cli, ["tune", str(data_npz), "--model", "ease", "--grid", "l2=5", "--plot",
                                 str(tmp_path / "c.png")])
    assert r.exit_code == 1 and "lae-fast[plot]" in r.output and "Traceback" not in r.output
    assert "loading" not in r.output  # refused before any work


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib not installed (optional extra)")
def test_plots_are_written(split, tmp_path, data_npz):
    from lae_fast.plots import plot_head_tail, plot_tuning

    res = tune(split, "family", {"l2": [5, 50], "dropout": [0, 0.3], "xi": [0, 0.5, 1]}, num_threads=1, refit=False)
    for path in (plot_tuning(res, tmp_path / "t.png"),
                 plot_head_tail({m: res.best_for(m) for m in FAMILY}, tmp_path / "h.png", k=20, title="x")):
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="head_tail=True"):
        plot_head_tail({"EASE": {"recall@20": 0.1}}, tmp_path / "x.png")
    r = CliRunner().invoke(cli, ["-q", "tune", str(data_npz), "--model", "ease", "--grid", "l2=5,50", "--plot",
                                 str(tmp_path / "cli.png")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cli.png").stat().st_size > 1000


def test_neighbourhood_grid_points_are_the_fits_they_stand_for(make_power_law):
    """tune(neighbors=m) builds the neighbour lists once; every point is bit for bit the fit of its model."""
    from lae_fast.tuning import iter_neighbor_solutions

    X = make_power_law(n_users=200, n_items=50, mean_len=7, seed=4)
    grid = dict(l2=[3.0, 12.0], dropout=[0.0, 0.3], xi=[0.0, 0.4])
    timings = {}
    seen = 0
    for sol in iter_neighbor_solutions(X, grid["l2"], grid["dropout"], grid["xi"], neighbors=6, timings=timings):
        ref = LinearAutoencoder(sol.l2, dropout=sol.dropout, xi=sol.xi, neighbors=6).fit(X)
        assert (sol.B != ref.B_).nnz == 0 and sol.B.shape == ref.B_.shape
        seen += 1
    assert seen == 8 and timings["solve"] > 0


def test_tune_on_the_neighbourhood_route_refits_on_it():
    X = sp.random(300, 30, density=0.2, format="csr", random_state=0)
    res = tune(X, "rdlae", {"l2": [5, 50], "dropout": [0.1], "xi": [0, 0.5]}, n_heldout=30, neighbors=8)
    assert len(res.rows) == 4 and res.best_model.solver_ == "neighbors" and res.best_model.neighbors == 8
    assert sp.issparse(res.best_model.B_)
