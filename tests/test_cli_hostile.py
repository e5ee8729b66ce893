"""Every ``lae-fast`` command, driven with bad input: one ``Error:`` line, never a Python traceback.

The commands are read from ``lae_fast.cli.main`` (recursively into groups), so a new command
is covered as soon as it is registered: each positional argument gets each hostile value in
turn, each option that takes a value gets a value of the wrong kind, and every command meets
absurd thread counts. Nothing may be written by a failed command.
"""
import io
import os
import stat

import click
import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import lae_fast
from lae_fast.cli import main

from conftest import cli_commands, craft_model_file, make_fifo


#: (path without "lae-fast", command) of every command that runs (groups only dispatch)
LEAVES = [(tuple(path.split()[1:]), cmd) for path, cmd in cli_commands() if not isinstance(cmd, click.Group)]
IDS = [" ".join(path) for path, _ in LEAVES]
WITH_ARGUMENTS = [(path, cmd) for path, cmd in LEAVES if any(isinstance(p, click.Argument) for p in cmd.params)]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Bad values for a positional argument: name -> value."""
    root = tmp_path_factory.mktemp("hostile")
    good = io.BytesIO()
    X = sp.csr_matrix((np.random.default_rng(0).random((30, 8)) < 0.4).astype(np.float32))
    model = lae_fast.EASE(2.0).fit(X)
    model.save(good)
    good = good.getvalue()
    (root / "adir").mkdir()
    (root / "garbage.csv").write_bytes(b'user,item\n1,"2\n\x00\xff\xfe,,,\n' + bytes(range(256)))
    (root / "empty.npz").write_bytes(b"")
    (root / "truncated.laef").write_bytes(good[:len(good) // 2])
    craft_model_file(root / "crafted.laef", good, edit=lambda h: h.update(arrays=[]))
    craft_model_file(root / "huge-n.laef", good, raw_header=b'{"meta": {"n_items": 1e400}, "arrays": {}}')
    model.B_ = model.B_.copy()
    model.B_[0, 1] = np.nan
    model.save(root / "nan.laef")
    np.savez(root / "wide.npz", indptr=np.array([0, 1, 2]), indices=np.array([0, 5]),
             data=np.ones(2, np.float32), shape=np.array([2, 10 ** 9]))
    (root / "bad-quote.csv").write_text('user,item\n1,2\n1,"3\n2,4\n')
    (root / "dup-header.csv").write_text("user,item,item\n1,2,3\n")
    (root / "template.jsonl").write_text('{"item": [1], "text": "x"}\n')
    values = {"missing": root / "does-not-exist.csv", "directory": root / "adir", "-1": "-1", "text": "abc"}
    for name in ("garbage.csv", "empty.npz", "truncated.laef", "crafted.laef", "huge-n.laef", "nan.laef",
                 "wide.npz", "bad-quote.csv", "dup-header.csv", "template.jsonl"):
        values[name] = root / name
    return {k: str(v) for k, v in values.items()}


def assert_one_error_line(result, args):
    shown = f"lae-fast {' '.join(args)}\n{result.output}"
    assert "Traceback" not in result.output, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), (shown, repr(result.exception))
    assert result.exit_code in (1, 2), shown
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, shown


def _skeleton(cmd, value, out_dir):
    """Arguments for ``cmd``: every positional argument set to ``value``, required options filled in
    (a count with 1, anything else with a path under ``out_dir``)."""
    args = []
    for param in cmd.params:
        if isinstance(param, click.Argument):
            args.append(value)
        elif isinstance(param, click.Option) and param.required:
            count = isinstance(param.type, click.types.IntParamType)
            args += [param.opts[0], "1" if count else os.path.join(out_dir, f"out-{param.name}")]
    return args


def _invoke(path, args, **kwargs):
    full = ["-q", *path, *args]
    return full, CliRunner().invoke(main, full, **kwargs)


def _nothing_written(out_dir):
    assert os.listdir(out_dir) == [], os.listdir(out_dir)


def test_every_command_is_reached():
    names = set(IDS)
    assert {"fit", "recommend", "info", "embed", "tune", "recommend-all", "bench fit"} <= names


@pytest.mark.parametrize("path, cmd", WITH_ARGUMENTS, ids=[" ".join(p) for p, _ in WITH_ARGUMENTS])
def test_hostile_positional_arguments(path, cmd, hostile, tmp_path):
    for name, value in hostile.items():
        full, result = _invoke(path, _skeleton(cmd, value, str(tmp_path)))
        assert_one_error_line(result, full)
        _nothing_written(tmp_path)


@pytest.mark.parametrize("path, cmd", LEAVES, ids=IDS)
def test_options_given_values_of_the_wrong_kind(path, cmd, hostile, tmp_path):
    base = _skeleton(cmd, hostile["garbage.csv"], str(tmp_path))
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.is_flag or param.name in ("help",):
            continue
        for value in ("", "nan", "-99999999999999999999", "{title.__class__}", hostile["directory"]):
            full, result = _invoke(path, base + [param.opts[0], value])
            if result.exit_code == 0 and not any(isinstance(p, click.Argument) for p in cmd.params):
                continue  # e.g. `datasets --json`: a command without input may accept an odd option value
            assert_one_error_line(result, full)
            _nothing_written(tmp_path)


@pytest.mark.parametrize("path, cmd", LEAVES, ids=IDS)
def test_absurd_thread_counts_for_every_command(path, cmd, hostile, tmp_path):
    args = _skeleton(cmd, hostile["garbage.csv"], str(tmp_path))
    for value in ("100000", "50000", "0"):
        for full in (["--num-threads", value, *path, *args], [*path, *args, "--num-threads", value]):
            result = CliRunner().invoke(main, full)  # before the subcommand, and after it
            assert_one_error_line(result, full)
            assert result.exit_code == 2 and "--num-threads" in result.output
        full, result = _invoke(path, args, env={"LAE_FAST_NUM_THREADS": value})
        assert_one_error_line(result, full)
        assert "LAE_FAST_NUM_THREADS" in result.output
    _nothing_written(tmp_path)


# ---------------------------------------------------------------------------------------------
# outputs that are not regular files, with good inputs: refused before any work, nothing replaced
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    X = sp.csr_matrix((np.random.default_rng(1).random((40, 8)) < 0.4).astype(np.float32))
    sp.save_npz(root / "data.npz", X)
    lae_fast.EASE(2.0).fit(X).save(root / "m.laef")
    (root / "hist.csv").write_text("user,item\n1,0\n1,3\n2,5\n")
    return {k: str(root / v) for k, v in (("data", "data.npz"), ("model", "m.laef"), ("hist", "hist.csv"))}


def _non_regular_outputs(tmp_path, suffix):
    fifo = tmp_path / ("out.fifo" + suffix)
    make_fifo(fifo)
    outs = [str(fifo)]
    try:
        os.mknod(tmp_path / ("null" + suffix), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        outs.append(str(tmp_path / ("null" + suffix)))
    except OSError:
        pass  # not root: the FIFO case still runs
    return outs


@pytest.mark.parametrize("command", ["fit", "recommend", "bench fit", "tune -o", "tune --plot", "embed", "compress"])
def test_outputs_that_are_devices_or_fifos(command, good_inputs, tmp_path):
    suffix = {"tune -o": ".csv", "tune --plot": ".png"}.get(command, "")
    for out in _non_regular_outputs(tmp_path, suffix):
        args = {"fit": ["fit", good_inputs["data"], "-o", out],
                "recommend": ["recommend", good_inputs["model"], good_inputs["hist"], "-o", out],
                "bench fit": ["bench", "fit", good_inputs["data"], "-o", out],
                "tune -o": ["tune", good_inputs["data"], "-o", out],
                "tune --plot": ["tune", good_inputs["data"], "--plot", out],
                "embed": ["embed", good_inputs["hist"], "-o", out],
                "compress": ["compress", good_inputs["model"], "-o", out]}[command]
        before = stat.S_IFMT(os.lstat(out).st_mode)
        full, result = _invoke((), args)
        assert_one_error_line(result, full)
        assert "not a regular file" in result.output
        assert stat.S_IFMT(os.lstat(out).st_mode) == before  # still the FIFO / device
    assert not [n for n in os.listdir(tmp_path) if ".lae-fast-" in n]


def test_recommend_output_on_a_full_disk_keeps_the_old_file(good_inputs, tmp_path, monkeypatch):
    import errno

    out = tmp_path / "recs.csv"
    out.write_text("previous results\n")

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", enospc)
    full, result = _invoke((), ["recommend", good_inputs["model"], good_inputs["hist"], "-o", str(out)])
    assert_one_error_line(result, full)
    assert "No space left" in result.output
    assert out.read_text() == "previous results\n" and sorted(os.listdir(tmp_path)) == ["recs.csv"]


@pytest.mark.parametrize("name", ["crafted.laef", "huge-n.laef", "nan.laef", "truncated.laef"])
def test_info_and_recommend_on_files_that_lie(name, hostile, good_inputs):
    for args in (["info", hostile[name]], ["recommend", hostile[name], good_inputs["hist"]]):
        full, result = _invoke((), args)
        assert_one_error_line(result, full)
        assert result.exit_code == 1 and hostile[name] in result.output
        assert "checksum: ok" not in result.output
    _, result = _invoke((), ["info", "--no-verify", hostile["nan.laef"]])
    assert result.exit_code == 0 and "checksum: skipped" in result.output  # documented: nothing read, nothing vouched


def test_recommend_k_beyond_the_items(good_inputs):
    _, result = _invoke((), ["recommend", good_inputs["model"], good_inputs["hist"], "-k", str(2 ** 31 - 1)])
    assert result.exit_code == 0, result.output
    rows = result.output.strip().splitlines()[1:]
    per_user = {u: sum(1 for r in rows if r.startswith(u + ",")) for u in ("1", "2")}
    assert per_user == {"1": 6, "2": 7}  # 8 items minus each user's own
