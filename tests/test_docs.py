"""The docs run: what README.md, docs/*.md and every ``--help`` show is executed here, and fails when it breaks.

* every ```python block of README.md and docs/*.md (the blocks of one file in order, in one namespace);
* every ``lae-fast`` command of their shell blocks (```bash / ```console; environment set-up such as
  ``python3 -m venv`` / ``pip install`` / ``pytest`` is what ``.ci/run`` itself runs, so it is not repeated);
* every line under ``Examples:`` in the ``--help`` of every command, subgroups included;
* the doctests of every module of the package;
* every number a doc quotes between ``<!-- quotes FILE#SECTION -->`` and ``<!-- /quotes -->`` must appear in
  that benchmark output, and every recorded ``Command: `python ...``` runs from the repository root.

Each block runs in a fresh copy of a workspace holding the files the examples name (:func:`workspace`, made
from MovieLens-100K, fetched once from its pinned PyPI wheel and cached). Where a documented command cannot
run here as written, :data:`REWRITES` says what runs instead and why; every rewrite must match some
documented text, so none outlives the text it stands for. Kernels run on one thread: the suite shares two cores, and two BLAS
threads on a busy machine made a MovieLens tuning 5x slower; this checks results, not speed.
"""
from __future__ import annotations

import contextlib
import csv
import doctest
import importlib
import io
import json
import os
import pkgutil
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import click
import numpy as np
import pytest
from click.testing import CliRunner

import lae_fast
from lae_fast.cli import main

from conftest import cli_commands

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
SHELL_LANGS = ("bash", "console", "sh", "shell")
N_TEXTS = 300  # movies with a text: enough for L3AE, few enough to embed in a few seconds

#: (documented text, what runs here instead, why). Each must apply to at least one block or example.
REWRITES: List[Tuple[str, str, str]] = [
    ("tcp://10.0.0.5:8786", "{scheduler}",
     "no cluster here: the address of a dask scheduler this test starts (tcp, workers in this process)"),
    ("/shared/", "", "the shared storage of a cluster: the workspace"),
    ("bench solvers --n 4000 8000", "bench solvers --n 300 600", "n³ per route: the size sets the cost only"),
    ("bench solvers --n 4000", "bench solvers --n 300", "n³ per route: the size sets the cost only"),
    ("bench solvers 2000 ", "bench solvers 300 ", "n³ per route: the size sets the cost only"),
    ("tune ml-1m ", "tune ml-100k ", "ML-1M takes ~20 s to tune; the same command on MovieLens-100K"),
]
#: documented commands whose outcome here is a clear one-line error, and what it must say
EXPECTED_ERRORS: Dict[str, str] = {
    # exporting needs torch and a Hugging Face model folder, neither of which a test run has
    "lae-fast export-encoder ./all-MiniLM-L6-v2 ./minilm-onnx --quantize": "lae-fast[export]",
}


# -- what the docs hold ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository root
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}"


def fenced_blocks() -> List[Block]:
    blocks = []
    for path in DOC_FILES:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"^\s*```(\w*)\s*$", lines[i])
            if not m:
                i += 1
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            blocks.append(Block(str(path.relative_to(ROOT)), i + 1, m.group(1), "\n".join(lines[i + 1:end]) + "\n"))
            i = end + 1
    return blocks


def joined_lines(text: str) -> List[str]:
    """Lines with ``\\`` continuations joined."""
    out, current = [], ""
    for line in text.splitlines():
        current += line.strip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        out.append(current)
        current = ""
    return [line for line in out + [current] if line]


def lae_fast_commands(text: str) -> List[str]:
    """The ``lae-fast ...`` commands of shell text (after ``$`` prompts, between ``&&``)."""
    out = []
    for line in joined_lines(text):
        for part in line.lstrip("$ ").split("&&"):
            part = part.strip()
            if part.startswith("lae-fast "):
                out.append(part)
    return out


def help_examples() -> Dict[str, List[str]]:
    """``{command path: its Examples: lines}`` for every command of ``lae-fast``."""
    out = {}
    for path, cmd in cli_commands():
        with click.Context(cmd, info_name=path) as ctx:
            text = cmd.get_help(ctx)
        section = re.split(r"\n\s*Examples?:\n", text)
        assert len(section) == 2, f"{path} --help has no Examples: section"
        body = section[1].split("\n\n")[0]
        out[path] = lae_fast_commands(body)
        assert out[path], f"{path} --help lists no lae-fast command under Examples:"
    return out


PYTHON_FILES = sorted({b.path for b in fenced_blocks() if b.lang == "python"})
SHELL_BLOCKS = [b for b in fenced_blocks() if b.lang in SHELL_LANGS and lae_fast_commands(b.text)]
HELP_EXAMPLES = help_examples()


def rewrite(text: str, scheduler: str) -> str:
    for old, new, _why in REWRITES:
        text = text.replace(old, new.format(scheduler=scheduler))
    return text


# -- the workspace the examples run in -------------------------------------------------------------

def _movielens_100k_raw():
    """(ratings rows (user, item, rating, timestamp), {item: (title, year, genres)}) of the cached ML-100K."""
    from lae_fast.datasets import fetch_files
    from lae_fast.datasets._fetch import MOVIELENS_100K

    paths = fetch_files(MOVIELENS_100K, subdir="ml-100k")
    with open(paths["ml-100k.inter"]) as fh:
        next(fh)
        ratings = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    movies = {}
    with open(paths["ml-100k.item"], encoding="utf-8", errors="replace") as fh:
        next(fh)
        for line in fh:
            item, title, year, genres = (line.rstrip("\n").split("\t") + [""] * 4)[:4]
            movies[int(item)] = (title.strip(), year.strip(), genres.split())
    return [(int(u), int(i), int(float(r)), int(float(t))) for u, i, r, t in ratings], movies


@pytest.fixture(scope="module")
def scheduler():
    """A dask scheduler at a tcp address, its workers threads of this process (they see its working directory)."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Every file the examples name, made from MovieLens-100K (ratings >= 4 where a model is fitted)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lae_fast.data import load_interactions, save_npz
    from lae_fast.distributed import save_shards
    from lae_fast.text import default_encoder, embed_items, save_embeddings
    from lae_fast.text.encoder import default_model_paths

    ws = tmp_path_factory.mktemp("docs-workspace")
    ratings, movies = _movielens_100k_raw()
    with open(ws / "ratings.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("user", "item", "rating", "timestamp")] + ratings)
    columns = list(zip(*ratings))
    pq.write_table(pa.table({name: list(col) for name, col in zip(("user", "item", "rating", "timestamp"), columns)}),
                   ws / "ratings.parquet")
    X = load_interactions(ws / "ratings.csv", min_rating=4)
    save_npz(ws / "data.npz", X)
    first5 = [(X.user_ids[u], X.item_ids[i]) for u in range(5) for i in X.matrix[u].indices]  # original ids
    with open(ws / "histories.csv", "w") as fh:
        fh.write("user,item\n" + "".join(f"{u},{i}\n" for u, i in first5))
    pq.write_table(pa.table({"user": [int(u) for u, _ in first5], "item": [int(i) for _, i in first5]}),
                   ws / "histories.parquet")
    # item texts for the first N_TEXTS movies of X (sorted ids, all present: one text sequence for every
    # example, so the embedding cache serves all but the first)
    texted = [int(i) for i in X.item_ids[:N_TEXTS]]
    records = []
    for item in texted:
        title, year, genres = movies[item]
        rec = {"item": item, "title": title, "year": year, "genres": ", ".join(genres)}
        rec["text"] = "{title} ({year}). Genres: {genres}".format(**rec)
        records.append(rec)
    for name in ("movies.jsonl", "items.jsonl"):
        (ws / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    with open(ws / "movies.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("movieId", "title", "genres")]
                                 + [(r["item"], r["title"], "|".join(movies[r["item"]][2])) for r in records])
    E, _ = embed_items([r["item"] for r in records], {r["item"]: r["text"] for r in records}, default_encoder())
    save_embeddings(ws / "emb.npz", [r["item"] for r in records], E)
    # encoder folders: copies of the default model (./minilm-onnx stands in for export-encoder's output)
    model, tokenizer = default_model_paths()
    for folder in ("my-onnx-model", "minilm-onnx"):
        (ws / folder).mkdir()
        os.symlink(model, ws / folder / "model.onnx")
        os.symlink(tokenizer, ws / folder / "tokenizer.json")
    (ws / "all-MiniLM-L6-v2").mkdir()  # a Hugging Face folder to export: see EXPECTED_ERRORS
    lae_fast.EASE(l2=500.0).fit(X).save(ws / "ease.lae")
    lae_fast.EASE(l2=500.0, neighbors=32).fit(X).save(ws / "ease-nb.lae")
    save_shards(X, ws / "shards", 4)
    save_shards(X, ws / "histories", 4, format="parquet")
    (ws / "ratings").mkdir()  # user shards that keep their ratings (a sharded fit with --min-rating)
    for part in (0, 1):
        rows = list(zip(*[r for r in ratings if r[0] % 2 == part]))
        table = pa.table({name: list(col) for name, col in zip(("user", "item", "rating", "timestamp"), rows)})
        pq.write_table(table, ws / "ratings" / f"part-{part}.parquet")
    # a GroupLens-format ml-1m.zip made from these ratings (the real one may not be redistributed)
    with zipfile.ZipFile(ws / "ml-1m.zip", "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ratings))
        zf.writestr("ml-1m/movies.dat", "".join(f"{i}::{t} ({y})::{'|'.join(g)}\n"
                                                for i, (t, y, g) in sorted(movies.items())))
    return ws


@pytest.fixture
def fresh(workspace, tmp_path, monkeypatch):
    """A private copy of the workspace as the working directory, kernels on one thread."""
    here = tmp_path / "ws"
    shutil.copytree(workspace, here, symlinks=True)
    monkeypatch.chdir(here)
    monkeypatch.setenv("LAE_FAST_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return here


def run_cli(command: str) -> click.testing.Result:
    args = shlex.split(command, comments=True)
    assert args[0] == "lae-fast", command
    return CliRunner().invoke(main, args[1:], prog_name="lae-fast", catch_exceptions=True)


def check_cli(documented: str, scheduler: str) -> None:
    command = rewrite(documented, scheduler)
    result = run_cli(command)
    expected = EXPECTED_ERRORS.get(documented)
    if expected is not None:
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert result.exit_code == 1 and len(errors) == 1 and expected in errors[0], result.output
        return
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"`{command}` raised") from result.exception
    assert result.exit_code == 0, f"`{command}` failed:\n{result.output}"


# -- the docs, run ---------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", PYTHON_FILES)
def test_python_blocks(doc, fresh, scheduler, monkeypatch):
    from lae_fast.models.registry import MODEL_REGISTRY

    catalogue = dict(MODEL_REGISTRY)  # docs/ARCHITECTURE.md registers an example model: put it back after
    namespace: dict = {"__name__": "__docs__"}
    try:
        for block in (b for b in fenced_blocks() if b.path == doc and b.lang == "python"):
            code = compile(rewrite(block.text, scheduler), block.name, "exec")
            with contextlib.redirect_stdout(io.StringIO()):
                exec(code, namespace)
    finally:
        MODEL_REGISTRY.clear()
        MODEL_REGISTRY.update(catalogue)


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.name)
def test_shell_blocks(block, fresh, scheduler):
    for command in lae_fast_commands(block.text):
        check_cli(command, scheduler)


@pytest.mark.parametrize("path", sorted(HELP_EXAMPLES))
def test_help_examples(path, fresh, scheduler):
    for command in HELP_EXAMPLES[path]:
        check_cli(command, scheduler)


def test_every_rewrite_and_expected_error_is_needed():
    """A rewrite or an expected error that no documented text needs is stale."""
    documented = ([b.text for b in fenced_blocks() if b.lang == "python"]
                  + [c for b in SHELL_BLOCKS for c in lae_fast_commands(b.text)]
                  + [c for cmds in HELP_EXAMPLES.values() for c in cmds])
    for old, _, why in REWRITES:
        assert any(old in text for text in documented), f"no documented example contains {old!r} ({why})"
    for command in EXPECTED_ERRORS:
        assert command in documented, command


def test_inventory(capsys):
    """What this module executes, counted (printed with pytest -s)."""
    py = [b for b in fenced_blocks() if b.lang == "python"]
    shell = [c for b in SHELL_BLOCKS for c in lae_fast_commands(b.text)]
    examples = [c for cmds in HELP_EXAMPLES.values() for c in cmds]
    with capsys.disabled():
        print(f"\ndocs run: {len(py)} python blocks in {len(PYTHON_FILES)} files, {len(shell)} lae-fast commands in "
              f"{len(SHELL_BLOCKS)} shell blocks, {len(examples)} help example lines of {len(HELP_EXAMPLES)} "
              "commands")
    assert len(py) >= 8 and len(shell) >= 23 and len(examples) >= 43 and len(HELP_EXAMPLES) == len(cli_commands())


# -- the README tour names items as the CLI does (issue 17, item 1) -----------------------------------

def test_readme_tour_ids_equal_the_cli_ids(fresh):
    tour = next(b for b in fenced_blocks() if b.path == "README.md" and "strong_split" in b.text)
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(tour.text, tour.name, "exec"), namespace)
    X, model, ids = namespace["X"], namespace["model"], namespace["ids"]
    np.testing.assert_array_equal(model.item_ids_, X.item_ids)  # the fit on split.train kept the ids
    tour_ids = model.item_ids_[ids]
    with open("first5.csv", "w") as fh:  # the same five histories, as a user would write them
        fh.write("user,item\n" + "".join(f"{X.user_ids[u]},{X.item_ids[i]}\n" for u in range(5)
                                          for i in X.matrix[u].indices))
    result = run_cli("lae-fast recommend ease.lae first5.csv -k 10 --json -q")
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output)
    for u in range(5):
        assert [r["item"] for r in cli[str(X.user_ids[u])]] == tour_ids[u].tolist()
    # and they are MovieLens ids: the user's own movies are never recommended back
    assert not set(tour_ids[0].tolist()) & set(X.item_ids[X.matrix[0].indices].tolist())


# -- numbers and commands quoted from benchmark output ------------------------------------------------

_QUOTE = re.compile(r"<!-- quotes (?P<src>[^ #]+)(?:#(?P<section>[\w-]+))? -->(?P<body>.*?)<!-- /quotes -->", re.S)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def numbers(text: str) -> set:
    return {m.group(0).rstrip(",") for m in _NUMBER.finditer(text)}


def section_text(src: str, section) -> str:
    text = (ROOT / src).read_text()
    if section is None:
        return text
    m = re.search(rf"<!-- {re.escape(section)}:start -->(.*?)<!-- {re.escape(section)}:end -->", text, re.S)
    assert m, f"{src} has no section {section}"
    return m.group(1)


QUOTES = [(str(p.relative_to(ROOT)), m) for p in DOC_FILES for m in _QUOTE.finditer(p.read_text())]


@pytest.mark.parametrize("doc, quote", QUOTES, ids=[f"{d}->{m['src']}#{m['section']}" for d, m in QUOTES])
def test_quoted_numbers_come_from_their_source(doc, quote):
    source = numbers(section_text(quote["src"], quote["section"]))
    missing = sorted(numbers(quote["body"]) - source)
    assert not missing, f"{doc} quotes {missing}, which {quote['src']}#{quote['section']} does not hold"


def test_quotes_cover_the_docs_that_cite_benchmarks():
    cited = {doc for doc, _ in QUOTES}
    assert {"README.md", "docs/SERVING.md", "docs/SCALE.md"} <= cited


_COMMAND = re.compile(r"(?:Command: `|^    )(python (bench/\S+\.py)[^`\n]*)", re.M)
RECORDED = sorted({(m.group(2), m.group(1)) for p in DOC_FILES + [ROOT / "bench" / "RESULTS.md"]
                   for m in _COMMAND.finditer(p.read_text())})


def test_recorded_commands_run_from_the_repository_root():
    """Every recorded command names a script under bench/ whose --help, run from the root, knows its flags."""
    assert len(RECORDED) >= 10
    scripts = sorted({script for script, _ in RECORDED})
    procs = {s: subprocess.Popen([sys.executable, s, "--help"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for s in scripts}
    helps = {s: p.communicate(timeout=120)[0] for s, p in procs.items()}
    for script, command in RECORDED:
        assert procs[script].returncode == 0, f"{command}: {helps[script]}"
        for flag in re.findall(r"(?<!\S)--[\w-]+", command):
            assert flag in helps[script], f"{command}: {script} has no {flag}"


# -- doctests of the package -----------------------------------------------------------------------------

def test_doctests_of_every_module(monkeypatch):
    monkeypatch.setenv("LAE_FAST_NUM_THREADS", "1")
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for info in pkgutil.walk_packages(lae_fast.__path__, "lae_fast."):
        module = importlib.import_module(info.name)
        for test in finder.find(module):
            runner.run(test, out=out.write)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, out.getvalue()
    assert results.attempted >= 67, results
