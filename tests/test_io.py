"""Model files: round trips, corruption, foreign files, versions and atomic writes."""
import io
import json
import os
import pickle
import struct

import numpy as np
import pytest

import lae_fast
import lae_fast.io as model_io
from lae_fast import DLAE, EASE, EDLAE, LAE, RDLAE, RLAE, LinearAutoencoder, ModelFileError
from lae_fast.models import ItemItemModel, get_model_class, model_names


@pytest.fixture
def fitted(X_small):
    return RDLAE(2.0, dropout=0.2, xi=0.5).fit(X_small)


@pytest.fixture
def model_bytes(fitted):
    buf = io.BytesIO()
    fitted.save(buf)
    return buf.getvalue()


def payload_start(raw):
    """Offset of the first array's bytes (B), read from the header."""
    prefix = lae_fast.io._PREFIX
    hlen = prefix.unpack(raw[:prefix.size])[2]
    header = json.loads(raw[prefix.size:prefix.size + hlen].decode())
    return min(e["offset"] for e in header["arrays"].values()), prefix.size + hlen, header


def assert_same_model(a, b, X):
    assert type(a) is type(b)
    assert a.get_params() == b.get_params()
    np.testing.assert_array_equal(a.B_, b.B_)
    assert a.B_.dtype == b.B_.dtype
    np.testing.assert_array_equal(a.item_ids_, b.item_ids_)
    assert a.item_ids_.dtype == b.item_ids_.dtype
    ra, rb = a.recommend(X, N=5), b.recommend(X, N=5)
    np.testing.assert_array_equal(ra[0], rb[0])
    np.testing.assert_array_equal(ra[1], rb[1])


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("ids", ["int", "str"])
def test_round_trip_path(tmp_path, X_small, interactions_like, dtype, mmap, ids):
    item_ids = (np.arange(100, 112) if ids == "int"
                else np.array(["alpha", "b", "c", "δ-unicode", "e", "f", "g", "h", "i", "j", "k", "l"]))
    model = RLAE(3.0, xi=0.4, dtype=dtype).fit(interactions_like(X_small, item_ids))
    path = tmp_path / "model.laef"
    model.save(path)
    loaded = RLAE.load(path, mmap=mmap)
    assert_same_model(model, loaded, X_small)
    assert loaded.get_params()["dtype"] == np.dtype(dtype)
    if mmap:
        assert not loaded.B_.flags.writeable  # a shared read-only map
    # str paths work too, and the generic loaders find the class
    again = lae_fast.load_model(str(path))
    assert type(again) is RLAE
    assert type(ItemItemModel.load(path)) is RLAE


@pytest.mark.parametrize("name", model_names(base=LinearAutoencoder))
def test_round_trip_file_object_every_model(X_small, name):
    model = get_model_class(name)(2.0).fit(X_small)
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    loaded = lae_fast.load_model(buf)
    assert_same_model(model, loaded, X_small)


def test_round_trip_real_file_object(tmp_path, fitted, X_small):
    path = tmp_path / "m.laef"
    with open(path, "wb") as fh:
        fitted.save(fh)
    with open(path, "rb") as fh:
        loaded = RDLAE.load(fh)
    assert_same_model(fitted, loaded, X_small)


def test_arrays_are_64_byte_aligned(model_bytes):
    _, _, header = payload_start(model_bytes)
    for e in header["arrays"].values():
        assert e["offset"] % 64 == 0
    assert header["meta"]["model"] == "rdlae" and header["meta"]["n_items"] == 12


def test_save_overwrites_existing_file(tmp_path, X_small):
    path = tmp_path / "m.laef"
    EASE(1.0).fit(X_small).save(path)
    second = EASE(50.0).fit(X_small)
    second.save(path)
    np.testing.assert_array_equal(EASE.load(path).B_, second.B_)
    assert sorted(os.listdir(tmp_path)) == ["m.laef"]


# ---------------------------------------------------------------------------------------------
# corrupt, truncated and foreign files
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["empty", "magic", "prefix", "header", "before-payload", "payload",
                                   "last-byte"])
@pytest.mark.parametrize("mmap", [True, False])
def test_truncated_file(tmp_path, model_bytes, where, mmap):
    start, header_end, _ = payload_start(model_bytes)
    cut = {"empty": 0, "magic": 5, "prefix": 15, "header": header_end - 10, "before-payload": start,
           "payload": start + 100, "last-byte": len(model_bytes) - 1}[where]
    path = tmp_path / "cut.laef"
    path.write_bytes(model_bytes[:cut])
    with pytest.raises(ModelFileError, match="truncated|too short"):
        RDLAE.load(path, mmap=mmap)
    with pytest.raises(ModelFileError, match="truncated|too short"):
        RDLAE.load(io.BytesIO(model_bytes[:cut]))


@pytest.mark.parametrize("mmap", [True, False])
def test_flipped_payload_byte(tmp_path, fitted, model_bytes, mmap):
    start, _, _ = payload_start(model_bytes)
    raw = bytearray(model_bytes)
    raw[start + 17] ^= 0x40
    path = tmp_path / "flip.laef"
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum"):
        RDLAE.load(path, mmap=mmap)
    with pytest.raises(ModelFileError, match="checksum"):
        RDLAE.load(io.BytesIO(bytes(raw)))
    loaded = RDLAE.load(path, mmap=mmap, verify=False)  # trusted-file fast path skips the hashes
    diff = loaded.B_ != fitted.B_
    assert diff.sum() == 1


def test_flipped_item_id_byte_is_caught(model_bytes):
    _, _, header = payload_start(model_bytes)
    e = header["arrays"]["item_ids"]
    raw = bytearray(model_bytes)
    raw[e["offset"] + 3] ^= 0x01
    with pytest.raises(ModelFileError, match="item_ids"):
        RDLAE.load(io.BytesIO(bytes(raw)))


def test_every_single_header_byte_flip_is_rejected(model_bytes):
    """The prefix and JSON header are checksummed: any flipped bit there is a ModelFileError."""
    _, header_end, _ = payload_start(model_bytes)
    for pos in range(header_end):
        for bit in (0x01, 0x20):
            raw = bytearray(model_bytes)
            raw[pos] ^= bit
            with pytest.raises(ModelFileError):
                lae_fast.load_model(io.BytesIO(bytes(raw)))


@pytest.mark.parametrize("kind", ["random", "pickle", "pickle-of-model", "npz", "npy", "text", "json"])
def test_foreign_files(tmp_path, fitted, kind):
    path = tmp_path / f"foreign.{kind}"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"B": np.eye(3)}))
    elif kind == "pickle-of-model":
        path.write_bytes(pickle.dumps(fitted))
    elif kind == "npz":
        with open(path, "wb") as fh:
            np.savez(fh, B=fitted.B_, item_ids=fitted.item_ids_)
    elif kind == "npy":
        with open(path, "wb") as fh:
            np.save(fh, fitted.B_)
    elif kind == "text":
        path.write_text("user,item\n1,2\n" * 20)
    else:
        path.write_text(json.dumps({"meta": {}, "arrays": {}}))
    with pytest.raises(ModelFileError, match="not a lae-fast model|too short") as info:
        lae_fast.load_model(path)
    if kind.startswith("pickle"):
        assert "pickle" in str(info.value)


def test_missing_file_and_text_mode(tmp_path, fitted):
    with pytest.raises(FileNotFoundError):
        lae_fast.load_model(tmp_path / "nope.laef")
    path = tmp_path / "m.laef"
    fitted.save(path)
    with open(path, "r", encoding="latin-1") as fh, pytest.raises(TypeError, match="binary"):
        lae_fast.load_model(fh)


@pytest.mark.parametrize("version", [0, 2, 99])
def test_wrong_version(model_bytes, version):
    raw = bytearray(model_bytes)
    raw[8:12] = struct.pack("<I", version)
    with pytest.raises(ModelFileError, match="version") as info:
        lae_fast.load_model(io.BytesIO(bytes(raw)))
    assert str(version) in str(info.value)


def test_implausible_header_length(model_bytes):
    raw = bytearray(model_bytes)
    raw[12:20] = struct.pack("<Q", 2 ** 40)
    with pytest.raises(ModelFileError, match="header length"):
        lae_fast.load_model(io.BytesIO(bytes(raw)))


def _rewrite(fitted, tmp_path, mutate_meta=None, arrays=None):
    meta = {"model": fitted.model_name, "params": {"l2": 2.0, "dropout": 0.2, "xi": 0.5,
                                                   "dtype": "float32", "num_threads": None},
            "dtype": "float32", "n_items": 12}
    if mutate_meta:
        mutate_meta(meta)
    path = tmp_path / "crafted.laef"
    model_io.save_arrays(path, arrays or {"B": fitted.B_, "item_ids": fitted.item_ids_}, meta)
    return path


@pytest.mark.parametrize("mutate, arrays, match", [
    (lambda m: m.update(model="svd++"), None, "unknown model"),
    (lambda m: m["params"].update(l2=-5.0), None, "hyper-parameters"),
    (lambda m: m["params"].update(bogus=1), None, "hyper-parameters"),
    (lambda m: m.update(n_items=13), None, "shapes"),
    (lambda m: m.update(dtype="float64"), None, "dtype"),
    (None, "no-ids", "missing"),
    (None, "int-B", "dtype"),
])
def test_inconsistent_contents(tmp_path, fitted, mutate, arrays, match):
    arr = None
    if arrays == "no-ids":
        arr = {"B": fitted.B_}
    elif arrays == "int-B":
        arr = {"B": fitted.B_.astype(np.int32), "item_ids": fitted.item_ids_}
    path = _rewrite(fitted, tmp_path, mutate, arr)
    with pytest.raises(ModelFileError, match=match):
        lae_fast.load_model(path)


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="object"):
        model_io.save_arrays(tmp_path / "x.laef", {"a": np.array([{"x": 1}], dtype=object)}, {})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("loader, saved", [
    (EASE, RLAE(2.0, xi=0.3)), (RLAE, EASE(2.0)), (LAE, LinearAutoencoder(2.0)),
    (DLAE, EDLAE(2.0)), (EDLAE, RDLAE(2.0)),
])
def test_subclass_mismatch(tmp_path, X_small, loader, saved):
    path = tmp_path / "m.laef"
    saved.fit(X_small).save(path)
    with pytest.raises(ModelFileError, match=f"holds a {type(saved).__name__}, not a {loader.__name__}"):
        loader.load(path)
    # the base classes accept it and restore the right class
    assert type(LinearAutoencoder.load(path)) is type(saved)
    assert type(lae_fast.load_model(path)) is type(saved)


# ---------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------
def _failing_write(real_write):
    def write(fh, arrays, meta):
        fh.write(b"LAEFAST\0partial garbage" * 10)
        raise OSError("disk full (simulated)")
    return write


def test_failed_write_leaves_nothing(tmp_path, fitted, monkeypatch):
    monkeypatch.setattr(model_io, "_write", _failing_write(model_io._write))
    with pytest.raises(OSError, match="disk full"):
        fitted.save(tmp_path / "new.laef")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_existing_good_file(tmp_path, fitted, X_small, monkeypatch):
    path = tmp_path / "good.laef"
    fitted.save(path)
    before = path.read_bytes()
    monkeypatch.setattr(model_io, "_write", _failing_write(model_io._write))
    with pytest.raises(OSError, match="disk full"):
        EASE(9.0).fit(X_small).save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.laef"]
    monkeypatch.undo()
    assert_same_model(fitted, RDLAE.load(path), X_small)


def test_failed_rename_or_interrupt_cleans_up(tmp_path, fitted, monkeypatch):
    path = tmp_path / "good.laef"
    fitted.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_io.os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.laef"]


def test_save_into_missing_directory(tmp_path, fitted):
    with pytest.raises(FileNotFoundError):
        fitted.save(tmp_path / "no-such-dir" / "m.laef")


@pytest.mark.parametrize("old_name, params, cls", [
    ("lae", {"l2": 2.0, "dropout": 0.1, "xi": 0.3}, LinearAutoencoder),   # 0.1.x: 'lae' was the general form
    ("lae-l2", {"l2": 2.0}, LAE),                                          # 0.1.x: 'lae-l2' was LAE
    ("ease", {"l2": 2.0}, EASE),
])
def test_files_of_lae_fast_0_1_load_as_the_same_class(X_small, tmp_path, old_name, params, cls):
    ref = cls(**params).fit(X_small)
    meta = {"model": old_name, "params": {**params, "dtype": "float32", "num_threads": None}, "dtype": "float32",
            "n_items": int(ref.B_.shape[0]), "lae_fast_version": "0.1.0"}
    path = tmp_path / "old.lae"
    model_io.save_arrays(path, {"B": ref.B_, "item_ids": ref.item_ids_}, meta)
    loaded = lae_fast.load_model(path)
    assert type(loaded) is cls and loaded.get_params()["l2"] == 2.0
    np.testing.assert_array_equal(loaded.B, ref.B_)


def test_new_files_name_the_class_by_its_catalogue_name(X_small, tmp_path):
    for model in (LAE(2.0).fit(X_small), LinearAutoencoder(2.0).fit(X_small)):
        model.save(tmp_path / "m.lae")
        _, meta = model_io.load_arrays(tmp_path / "m.lae")
        assert meta["model"] == model.name and meta["lae_fast_version"] == lae_fast.__version__
        assert type(lae_fast.load_model(tmp_path / "m.lae")) is type(model)


# ---------------------------------------------------------------------------------------------
# files that pass the checksums but are wrong: the header schema and B's values
# ---------------------------------------------------------------------------------------------
from conftest import craft_model_file  # noqa: E402


def _set(*keys, value):
    def edit(header):
        target = header
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


CRAFTED_HEADERS = {
    "arrays is a list": _set("arrays", value=[]),
    "arrays is empty": _set("arrays", value={}),
    "arrays is a string": _set("arrays", value="B"),
    "array entry is a number": _set("arrays", "B", value=5),
    "object dtype": _set("arrays", "B", "dtype", value="|O8"),
    "big-endian dtype": _set("arrays", "B", "dtype", value=">f4"),
    "dtype is a number": _set("arrays", "B", "dtype", value=7),
    "negative shape": _set("arrays", "B", "shape", value=[-12, -12]),
    "float shape": _set("arrays", "B", "shape", value=[12.0, 12]),
    "shape is a string": _set("arrays", "B", "shape", value="12"),
    "40-d shape": _set("arrays", "B", "shape", value=[1] * 40),
    "overflowing shape": _set("arrays", "B", "shape", value=[2 ** 62, 2 ** 62]),
    "negative offset": _set("arrays", "B", "offset", value=-64),
    "offset inside the header": _set("arrays", "B", "offset", value=0),
    "offset is null": _set("arrays", "B", "offset", value=None),
    "nbytes is true": _set("arrays", "B", "nbytes", value=True),
    "no sha256": _set("arrays", "B", "sha256", value=None),
    "meta is a list": _set("meta", value=[]),
    "n_items null": _set("meta", "n_items", value=None),
    "n_items string": _set("meta", "n_items", value="12"),
    "n_items negative": _set("meta", "n_items", value=-1),
    "n_items bool": _set("meta", "n_items", value=True),
    "model is a number": _set("meta", "model", value=5),
    "params is a list": _set("meta", "params", value=[1, 2]),
    "header is a list": lambda header: (header.clear(), header.update({"x": []})),
}
RAW_HEADERS = {
    "n_items 1e400": lambda raw: raw.replace(b'"n_items": 12', b'"n_items": 1e400'),
    "offset 1e400": lambda raw: raw.replace(b'"offset": 65536', b'"offset": 1e400', 1),
    "NaN in meta": lambda raw: raw.replace(b'"n_items": 12', b'"n_items": NaN'),
    "5000-digit integer": lambda raw: raw.replace(b'"n_items": 12', b'"n_items": ' + b"9" * 5000),
    "deep nesting": lambda raw: b'{"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b', "arrays": {}}',
    "nesting below the recursion limit": lambda raw: raw.replace(b'"n_items": 12',
                                                                 b'"n_items": ' + b"[" * 40 + b"]" * 40),
    "not UTF-8": lambda raw: raw.replace(b'"model": "rdlae"', b'"model": "\xff\xfe"'),
}


def _crafted(tmp_path, model_bytes, case):
    path = tmp_path / "crafted.laef"
    if case in CRAFTED_HEADERS:
        return craft_model_file(path, model_bytes, edit=CRAFTED_HEADERS[case])
    craft_model_file(path, model_bytes)  # the same layout: offsets at 65536, ...
    raw = path.read_bytes()
    hlen = model_io._PREFIX.unpack(raw[:model_io._PREFIX.size])[2]
    header = raw[model_io._PREFIX.size:model_io._PREFIX.size + hlen]
    new = RAW_HEADERS[case](header)
    assert new != header, case
    return craft_model_file(path, model_bytes, raw_header=new)


@pytest.mark.parametrize("case", sorted(CRAFTED_HEADERS) + sorted(RAW_HEADERS))
def test_crafted_headers_are_model_file_errors_naming_the_file(tmp_path, model_bytes, case):
    path = _crafted(tmp_path, model_bytes, case)
    for load in (model_io.load_arrays, lae_fast.load_model, lae_fast.Recommender.load,
                 lambda p: lae_fast.load_model(p, verify=False)):
        with pytest.raises(ModelFileError, match=f"^{path}: header is corrupt"):
            load(path)
        with pytest.raises(ModelFileError, match="header is corrupt"):
            load(io.BytesIO(path.read_bytes()))


def test_the_crafting_itself_gives_a_loadable_file(tmp_path, model_bytes, fitted, X_small):
    """Guard for the test above: without an edit the crafted file is a good model."""
    path = craft_model_file(tmp_path / "same.laef", model_bytes)
    assert_same_model(fitted, lae_fast.load_model(path), X_small)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_or_inf_in_B_is_refused_on_load(tmp_path, X_small, bad, dtype):
    model = EASE(2.0, dtype=dtype).fit(X_small)
    model.B_ = model.B_.copy()
    model.B_[3, 7] = bad
    path = tmp_path / "bad.laef"
    model.save(path)  # the writer computes valid checksums over the bad values
    at = 3 * model.B_.shape[1] + 7
    for load in (lae_fast.load_model, EASE.load, lae_fast.Recommender.load):
        with pytest.raises(ModelFileError, match=rf"^{path}: array 'B' holds NaN or infinite values \(the first "
                                                 rf"at flat position {at}\)"):
            load(path)
    serving = tmp_path / "serving.laef"
    lae_fast.Recommender.from_matrix(model.B_).save(serving)  # a dense serving file
    with pytest.raises(ModelFileError, match="holds NaN or infinite"):
        lae_fast.Recommender.load(serving)
    # verify=False is the documented way to skip every read of the whole file
    assert not np.isfinite(lae_fast.load_model(path, verify=False).B_).all()


def test_check_finite_reads_in_chunks(monkeypatch):
    monkeypatch.setattr(model_io, "_CHUNK", 64)  # 16 float32 per chunk
    B = np.zeros((10, 10), np.float32)
    model_io.check_finite(B, source="f", key="B")
    B[9, 9] = np.nan  # in the last chunk
    with pytest.raises(ModelFileError, match="first at flat position 99"):
        model_io.check_finite(B, source="f", key="B")
    model_io.check_finite(np.array([1, 2], np.int64), source="f", key="ids")  # not floats: nothing to check


def test_sparse_B_files_are_checked_like_dense_ones(tmp_path, X_small):
    """A model fitted on the neighbourhood route stores B as CSR arrays: same schema and value checks."""
    model = EASE(2.0, neighbors=4).fit(X_small)
    path = tmp_path / "sparse.laef"
    model.save(path)
    assert model_io.load_arrays(path)[1]["B_format"] == "csr"
    good = path.read_bytes()
    craft_model_file(tmp_path / "fmt.laef", good, edit=_set("meta", "B_format", value=7))
    with pytest.raises(ModelFileError, match="meta field 'B_format' is 7, not a string"):
        lae_fast.load_model(tmp_path / "fmt.laef")
    arrays, meta = model_io.load_arrays(path)
    data = np.array(arrays["B_data"])
    data[0] = np.inf
    model_io.save_arrays(tmp_path / "inf.laef", {**arrays, "B_data": data}, meta)
    with pytest.raises(ModelFileError, match=r"array 'B_data' holds NaN or infinite values \(the first at flat "
                                             r"position 0\)"):
        lae_fast.load_model(tmp_path / "inf.laef")
    assert lae_fast.load_model(tmp_path / "inf.laef", verify=False).B_.nnz == model.B_.nnz  # documented skip


def test_compressed_serving_files_with_nan_codes_are_refused(tmp_path, X_small):
    """float16 codes of a compressed B can hold NaN/inf too: refused on load unless verify=False."""
    rec = lae_fast.Recommender(EASE(2.0).fit(X_small)).compress("float16")
    path = tmp_path / "c.laef"
    rec.save(path)
    arrays, meta = model_io.load_arrays(path)
    codes = np.array(arrays["B"])
    codes[2, 3] = np.nan
    model_io.save_arrays(tmp_path / "nan.laef", {**arrays, "B": codes}, meta)
    with pytest.raises(ModelFileError, match=r"nan\.laef: array 'B' holds NaN or infinite values"):
        lae_fast.Recommender.load(tmp_path / "nan.laef")
    assert lae_fast.Recommender.load(tmp_path / "nan.laef", verify=False).n_items == rec.n_items
    lae_fast.Recommender.load(path)  # the untouched file loads
