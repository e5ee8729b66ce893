"""Atomic replacement of output files (lae_fast/_atomic.py) and every writer that goes through it.

The target of a write is a regular file or a new name; devices, FIFOs, sockets and directories
are refused before anything is written; temporary files are recognisable, removed on errors and
on SIGTERM, and a killed writer's leftovers are removed by the next write of the same target.
"""
import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
from lae_fast import EASE, Recommender
from lae_fast._atomic import temp_name_pattern
from lae_fast.io import atomic_path, atomic_write, check_target

from conftest import make_fifo


def temps(folder):
    return sorted(n for n in os.listdir(folder) if ".lae-fast-" in n)


def hostile_targets(tmp_path):
    """Existing non-regular files a write must refuse: name -> path."""
    out = {"a directory": tmp_path / "adir", "a FIFO": tmp_path / "a.fifo"}
    out["a directory"].mkdir()
    make_fifo(out["a FIFO"])
    try:  # a character device like /dev/null, made inside tmp_path so a failure harms nothing
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        out["a character device"] = tmp_path / "null"
    except (PermissionError, OSError):
        pass  # not root: the FIFO and directory cases still run
    return out


def kind_of(path):
    return stat.S_IFMT(os.lstat(path).st_mode)


# ---------------------------------------------------------------------------------------------
# the mechanism
# ---------------------------------------------------------------------------------------------
def test_refuses_non_regular_targets_and_leaves_them_alone(tmp_path):
    for kind, path in hostile_targets(tmp_path).items():
        before = kind_of(path)
        with pytest.raises((IsADirectoryError, FileExistsError), match=f"is {kind}.*not a regular file"):
            with atomic_write(path) as fh:
                fh.write(b"x")
        with pytest.raises(OSError, match="not a regular file"):
            with atomic_path(path):
                pass
        assert kind_of(path) == before, kind
    assert temps(tmp_path) == []


def test_a_symlink_is_followed(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with atomic_write(link) as fh:
        fh.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    fifo = tmp_path / "f"
    make_fifo(fifo)
    (tmp_path / "to-fifo").symlink_to(fifo)
    with pytest.raises(FileExistsError, match=r"to-fifo \(-> .*f\): is a FIFO"):
        check_target(tmp_path / "to-fifo")


def test_missing_folder_and_empty_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder of this output path does not exist"):
        check_target(tmp_path / "nope" / "m.laef")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        check_target(tmp_path / "file" / "m.laef")
    with pytest.raises(ValueError, match="non-empty"):
        check_target("")


def test_temp_file_is_recognisable_and_removed_on_error(tmp_path):
    target = tmp_path / "model.laef"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as fh:
            fh.write(b"partial")
            names = temps(tmp_path)
            assert len(names) == 1 and temp_name_pattern(target).match(names[0])
            assert names == [".model.laef.lae-fast-00.tmp"]
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old" and temps(tmp_path) == []


def test_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "recs.csv"
    target.write_bytes(b"user,rank,item,score\n")

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(OSError, match="No space left"):
        with atomic_write(target) as fh:
            fh.write(b"1,1,2,0.5\n" * 1000)
    assert target.read_bytes() == b"user,rank,item,score\n" and temps(tmp_path) == []


def test_permissions_of_a_replaced_file_are_kept(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with atomic_write(target) as fh:
        fh.write(b"new")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    fresh = tmp_path / "fresh.bin"
    umask = os.umask(0o022)
    try:
        with atomic_write(fresh) as fh:
            fh.write(b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o644  # as a plain open() under umask 022


def test_atomic_path_for_tools_that_write_by_name(tmp_path):
    target = tmp_path / "fig.png"
    with atomic_path(target) as tmp:
        assert temp_name_pattern(target).match(os.path.basename(tmp))
        with open(tmp, "wb") as fh:  # a tool that truncates or recreates the file by name
            fh.write(b"png")
        assert not target.exists()
    assert target.read_bytes() == b"png" and temps(tmp_path) == []


def test_concurrent_writers_of_one_target(tmp_path):
    """More threads racing on one target than there are temporary slots (16): every write lands whole,
    the surplus writers wait for a free slot, no temporary file survives."""
    import time

    target = tmp_path / "m.bin"
    errors = []

    def writer(k):
        try:
            for i in range(3):
                with atomic_write(target) as fh:
                    fh.write(bytes([k]) * 4096)
                    time.sleep(0.02)  # hold the slot while the others arrive
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = target.read_bytes()
    assert len(data) == 4096 and len(set(data)) == 1 and temps(tmp_path) == []


_WRITER = textwrap.dedent("""
    import sys, time
    from lae_fast.io import atomic_write
    with atomic_write(sys.argv[1]) as fh:
        fh.write(b"partial")
        fh.flush()
        print("writing", flush=True)
        time.sleep(60)
""")


def _start_writer(target):
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def test_sigterm_removes_the_temp_file_and_still_ends_the_process(tmp_path):
    target = tmp_path / "m.laef"
    target.write_bytes(b"old")
    proc = _start_writer(target)
    assert len(temps(tmp_path)) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # died of the signal, as without lae-fast
    assert target.read_bytes() == b"old" and temps(tmp_path) == []


def test_a_killed_writers_temp_file_is_removed_by_the_next_write_only(tmp_path):
    target = tmp_path / "m.laef"
    other = tmp_path / "other.laef"
    killed = _start_writer(target)
    killed.kill()
    killed.wait(timeout=30)
    live = _start_writer(other)  # a live writer of another target in the same folder
    try:
        leftovers = temps(tmp_path)
        assert len(leftovers) == 2
        with atomic_write(other) as fh:  # another target: the SIGKILL leftover of m.laef stays...
            fh.write(b"o")
        assert len(temps(tmp_path)) == 2  # ...and so does the live writer's file
        EASE(1.0).fit(sp.eye(4, format="csr")).save(target)  # the next write of m.laef removes it
        remaining = temps(tmp_path)
        assert len(remaining) == 1 and remaining[0].startswith(".other.laef.lae-fast-")
        lae_fast.load_model(target)
    finally:
        live.kill()
        live.wait(timeout=30)


def test_a_live_writer_in_another_process_is_never_swept(tmp_path):
    target = tmp_path / "m.bin"
    proc = _start_writer(target)
    try:
        [theirs] = temps(tmp_path)
        with atomic_write(target) as fh:
            fh.write(b"mine")
        assert theirs in temps(tmp_path) and target.read_bytes() == b"mine"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert temps(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# every writer goes through it
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def writers():
    """Every library function that writes a file: name -> write(path)."""
    from conftest import power_law
    from lae_fast.data import save_npz
    from lae_fast.data.parquet import write_parquet
    from lae_fast.plots import plot_tuning
    from lae_fast.text import save_embeddings
    from lae_fast.tuning import tune

    X = power_law(200, 30, mean_len=8, seed=3)
    inter = lae_fast.Interactions.from_matrix(X)
    model = EASE(1.0).fit(inter)
    result = tune(X, "ease", {"l2": [10.0, 100.0]}, protocol="weak", random_state=1, num_threads=1, refit=False)
    return {
        "model.save": model.save,
        "Recommender.save": lambda p: Recommender(model).prune(2).save(p),
        "save_npz": lambda p: save_npz(p, inter),
        "save_embeddings": lambda p: save_embeddings(p, np.arange(3), np.ones((3, 2), np.float32)),
        "write_parquet": lambda p: write_parquet(p, {"user": np.array([1]), "item": np.array([2])}),
        "TuneResult.write csv": lambda p: result.write(str(p) + ".csv"),
        "plot_tuning": lambda p: plot_tuning(result, str(p) + ".png"),
    }


def test_every_library_writer_refuses_a_fifo_and_writes_atomically(tmp_path, writers):
    for name, write in writers.items():
        fifo = tmp_path / f"fifo-{len(os.listdir(tmp_path))}"
        suffix = {"TuneResult.write csv": ".csv", "plot_tuning": ".png"}.get(name, "")
        make_fifo(str(fifo) + suffix)  # these writers append their extension: the FIFO carries it
        with pytest.raises(FileExistsError, match="FIFO"):
            write(fifo)
        assert stat.S_ISFIFO(os.lstat(str(fifo) + suffix).st_mode), name
        good = tmp_path / f"{name.replace(' ', '-')}.out"
        write(good)
        first = (str(good) + suffix)
        write(good)  # replacing an existing file
        assert os.path.getsize(first) > 0, name
    assert temps(tmp_path) == []


def test_encoder_quantisation_refuses_a_bad_target_before_any_work(tmp_path):
    pytest.importorskip("onnx")  # guard only: .[test] installs it
    from lae_fast.text.export import quantize_encoder

    src = tmp_path / "model.onnx"
    src.write_bytes(b"not even loaded: the target is checked first")
    make_fifo(tmp_path / "out.onnx")
    with pytest.raises(FileExistsError, match="is a FIFO"):
        quantize_encoder(src, tmp_path / "out.onnx")
    with pytest.raises(FileNotFoundError, match="folder of this output path does not exist"):
        quantize_encoder(src, tmp_path / "missing" / "out.onnx")
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "out.onnx"]  # no quantisation work folder left
