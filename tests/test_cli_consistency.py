"""The command line speaks its own words: flags in every error, --json and examples everywhere, global options
after the subcommand, usage errors that start with the ``Error:`` line (issue 17, items 3 and 4)."""
import json

import click
import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import lae_fast
from lae_fast._cli_common import _VALUE_FLAGS, KEYWORD_FLAGS, cli_words
from lae_fast.cli import main

from conftest import cli_commands

COMMANDS = dict(cli_commands())
LEAVES = {path: cmd for path, cmd in COMMANDS.items() if not isinstance(cmd, click.Group)}
#: commands that read an interactions file, and so can relay a reader's advice
READERS = ("lae-fast fit", "lae-fast evaluate", "lae-fast recommend", "lae-fast bench fit", "lae-fast tune")
READER_FLAGS = ("--user-col", "--item-col", "--rating-col", "--sep", "--header", "--no-header", "--min-rating")


def flags_of(cmd):
    return {opt for p in cmd.params for opt in getattr(p, "opts", ()) + getattr(p, "secondary_opts", ())}


def run(args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, prog_name="lae-fast", **kwargs)


def error_line(result):
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# -- every command: examples, --json, the global options -------------------------------------------

@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_has_examples(path):
    with click.Context(COMMANDS[path], info_name=path) as ctx:
        text = COMMANDS[path].get_help(ctx)
    assert "Examples:" in text and "\n    lae-fast " in text.split("Examples:")[1], text


@pytest.mark.parametrize("path", sorted(LEAVES))
def test_every_command_has_json_and_the_global_options(path):
    assert {"--json", "--num-threads", "-q", "--quiet"} <= flags_of(LEAVES[path])


def test_global_options_work_after_the_subcommand(tmp_path):
    out = run(["show-versions", "--json", "--num-threads", "3"])
    assert out.exit_code == 0 and json.loads(out.output)["num_threads"] == 3
    before = run(["--num-threads", "3", "show-versions", "--json"])
    assert json.loads(before.output)["num_threads"] == 3

    X = sp.random(80, 12, density=0.3, format="csr", random_state=0)
    sp.save_npz(tmp_path / "d.npz", X)
    loud = run(["fit", tmp_path / "d.npz", "-o", tmp_path / "a.lae"])
    quiet = run(["fit", tmp_path / "d.npz", "-o", tmp_path / "b.lae", "-q", "--num-threads", "1"])
    assert loud.exit_code == quiet.exit_code == 0
    assert "fitting" in loud.stderr and quiet.stderr == ""
    quiet_bench = run(["bench", "solvers", "64", "--route", "lapack-f32", "--repeat", "1", "--no-memory", "-q"])
    assert quiet_bench.exit_code == 0 and quiet_bench.stderr == ""

    bad = run(["fit", tmp_path / "d.npz", "-o", tmp_path / "c.lae", "--num-threads", "0"])
    assert bad.exit_code == 2 and error_line(bad).startswith("Error: Invalid value for '--num-threads'")


@pytest.mark.parametrize("args", [
    ["fit"],                                         # missing argument
    ["evaluate", "x.npz", "--bogus"],                # unknown option (argument checked later)
    ["nosuchcommand"],                               # unknown command
    ["bench", "solvers", "--route", "nope"],         # bad choice, in a subgroup
    ["evaluate", __file__, "--ks", "a,b"],           # bad value raised by the command body
    ["--num-threads", "0", "show-versions"],         # bad global option
])
def test_usage_errors_start_with_the_error_line(args):
    result = run(args)
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith("Error: ") and "Usage:" not in result.output, result.output
    assert lines[1].startswith("Try 'lae-fast") and lines[1].endswith("--help' for help.")


# -- library advice in flags the user can type --------------------------------------------------------

def test_every_flag_the_advice_names_exists():
    every = set().union(*(flags_of(c) for c in LEAVES.values()))
    named = set(KEYWORD_FLAGS.values()) | {text.split()[0] for text in _VALUE_FLAGS.values()}
    assert named <= every, named - every
    for path in READERS:
        assert set(READER_FLAGS) <= flags_of(COMMANDS[path]), path
    for path in ("lae-fast fit", "lae-fast evaluate", "lae-fast embed"):
        assert {"--id-field", "--text-field", "--text-template"} <= flags_of(COMMANDS[path]), path


@pytest.mark.parametrize("message, words", [
    ("first line looks like data: pass header=False if the file has no header", "pass --no-header if"),
    ("could not detect the column separator ...; pass sep=", "pass --sep"),
    ("or pass check_users=False if the ids merely repeat", "pass --no-check-users if"),
    ("needs 3 GiB; use dtype=float32, fewer items", "use --dtype float32,"),
    ("pass text_field= with the right name, or a template=", "pass --text-field with the right name, or a "
                                                            "--text-template"),
    ("lower min_rating (or pass min_rating=None to keep every rating)", "lower --min-rating (or pass "
                                                                        "--min-rating 0 to keep"),
    ("rounded; use dtype=np.float64", "use --dtype float64"),
])
def test_cli_words(message, words):
    assert words in cli_words(message)


def write(path, text):
    path.write_text(text)
    return path


def test_headerless_csv_advice_is_a_flag_that_works(tmp_path):
    rows = [(u, i) for u in range(30) for i in range(12) if (u * 7 + i * 3) % 4 == 0]
    plain = write(tmp_path / "plain.csv", "".join(f"{u},{i},5\n" for u, i in rows))
    named = write(tmp_path / "named.csv", "user,item,rating\n" + plain.read_text())
    line = error_line(run(["fit", plain, "-o", tmp_path / "m.lae"]))
    assert "--no-header" in line and "header=" not in line and "user_col=" not in line
    distinct = write(tmp_path / "distinct.csv", "".join(f"{u + 100},{i},5\n" for u, i in rows))
    line = error_line(run(["fit", distinct, "-o", tmp_path / "m.lae"]))  # no repeated "column" this time
    assert "--no-header" in line and "header=" not in line and "user_col=" not in line
    # --user-col 0 used to be a column *name* "0", refused without a header
    ok = run(["fit", plain, "--no-header", "--user-col", "0", "--item-col", "1", "--min-rating", "4",
              "--rating-col", "2", "-o", tmp_path / "m.lae", "-q"])
    assert ok.exit_code == 0, ok.output
    ref = lae_fast.EASE().fit(lae_fast.load_interactions(named))
    np.testing.assert_array_equal(lae_fast.load_model(tmp_path / "m.lae").B, ref.B)
    hist = write(tmp_path / "hist.csv", "7,0\n7,3\n")
    recs = run(["recommend", tmp_path / "m.lae", hist, "--no-header", "--user-col", "0", "--item-col", "1", "-q",
                "--format", "json"])
    assert recs.exit_code == 0 and list(json.loads(recs.output)) == ["7"], recs.output


def test_separator_advice_is_a_flag_that_works(tmp_path):
    data = write(tmp_path / "pipes.csv", "user|item\n" + "".join(f"u{u}|i{u % 5}\n" for u in range(20)))
    line = error_line(run(["fit", data, "-o", tmp_path / "m.lae"]))
    assert "--sep" in line and "sep=" not in line
    assert run(["fit", data, "--sep", "|", "-o", tmp_path / "m.lae", "-q"]).exit_code == 0


def test_shard_user_advice_is_a_flag_that_works(tmp_path):
    pytest.importorskip("dask.distributed")
    from lae_fast.data import Interactions, save_npz

    X = sp.random(40, 10, density=0.3, format="csr", random_state=1)
    (tmp_path / "shards").mkdir()
    for k in range(2):  # the same 40 user ids in both shards
        save_npz(tmp_path / "shards" / f"part-{k}.npz", Interactions.from_matrix(X))
    line = error_line(run(["fit", tmp_path / "shards", "-o", tmp_path / "m.lae"]))
    assert "--no-check-users" in line and "check_users" not in line
    ok = run(["fit", tmp_path / "shards", "--no-check-users", "-o", tmp_path / "m.lae", "-q"])
    assert ok.exit_code == 0, ok.output


def test_memory_advice_names_the_dtype_flag(tmp_path, monkeypatch):
    X = sp.random(50, 30, density=0.3, format="csr", random_state=2)
    sp.save_npz(tmp_path / "d.npz", X)
    monkeypatch.setattr("lae_fast._memory.available_memory", lambda: 1000)
    line = error_line(run(["fit", tmp_path / "d.npz", "--dtype", "float64", "-o", tmp_path / "m.lae"]))
    assert "--dtype float32" in line and "dtype=" not in line


def test_item_text_advice_names_the_text_flags(tmp_path):
    items = write(tmp_path / "items.jsonl", '{"item": 1, "title": "A"}\n{"item": 2, "title": "B"}\n')
    line = error_line(run(["embed", items, "-o", tmp_path / "e.npz"]))
    assert "--text-field" in line and "--text-template" in line and "text_field=" not in line


def test_library_warnings_are_one_line_in_flags(tmp_path, monkeypatch):
    """A warning from the library (here: the dense n×n does not fit, so the fit takes neighbourhoods) is one
    ``warning:`` line naming the flag, not a Python warning with a file path."""
    X = sp.random(120, 40, density=0.2, format="csr", random_state=3)
    sp.save_npz(tmp_path / "d.npz", X)
    monkeypatch.setattr("lae_fast.models.base.available_memory", lambda: 1000)
    result = run(["fit", tmp_path / "d.npz", "-o", tmp_path / "m.lae", "-q"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warned) == 1 and warned[0].startswith("warning: "), result.stderr
    assert "--neighbors m" in warned[0] and "neighbors=" not in warned[0] and ".py:" not in warned[0]
