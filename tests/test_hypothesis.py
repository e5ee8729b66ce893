"""Property-based hardening: random, garbled, huge, NaN/inf, negative, wrongly typed and truncated input.

Every entry point a user hands data to either answers correctly (checked against a
plain reference) or raises one of the documented exceptions with a message:
ValueError (DataFormatError and ModelFileError are ValueErrors), TypeError,
numpy.linalg.LinAlgError, MemoryError, FileNotFoundError. The CLI exits 0, or 1
with exactly one ``Error:`` line, or 2 (usage), never with a traceback.

Kept under a minute: examples per test are bounded and there is no deadline
(the machines are shared and noisy).
"""
import io
import json
import os
import tempfile
import zipfile
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lae_fast
from lae_fast import EASE, DataFormatError, ModelFileError, Recommender
from lae_fast._validation import check_interactions
from lae_fast.cli import main
from lae_fast.data import read_csv, read_npz
from conftest import ref_topk  # the numpy reference shared with the other ranking tests

DOCUMENTED = (ValueError, TypeError, np.linalg.LinAlgError, MemoryError, FileNotFoundError)
#: LAE_FAST_HYPOTHESIS_SCALE=20 runs 20x the examples (a thorough local hunt; CI uses 1)
_SCALE = max(1, int(os.environ.get("LAE_FAST_HYPOTHESIS_SCALE", "1")))
FAST = settings(max_examples=60 * _SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25 * _SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_message(exc):
    assert str(exc).strip(), f"{type(exc).__name__} without a message"


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------
_SPECIAL_TOKENS = ["", " ", '"', '""', '"a,b"', "nan", "NaN", "inf", "-inf", "1e999", "-0", "0", "0.0",
                   "007", "+7", "7", "-1", "9" * 30, "-" + "9" * 25, "0x1F", "1_000", "\u00e9", "\u200b",
                   "user", "item", "rating", "user_id:token", "item_id:token", "::", ";", ",", "\t"]
token = st.one_of(
    st.sampled_from(_SPECIAL_TOKENS),
    st.integers(-(10 ** 25), 10 ** 25).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=5),
)
separator = st.sampled_from([",", "\t", ";", "::", " ", "|"])


@st.composite
def garbled_text_file(draw):
    """Bytes of a delimited file: random tokens, random separators, random damage."""
    sep = draw(separator)
    lines = draw(st.lists(st.lists(token, max_size=5).map(sep.join), max_size=12))
    if draw(st.booleans()):
        lines.insert(0, sep.join(draw(st.permutations(["user", "item", "rating"]))))
    raw = "\n".join(lines).encode("utf-8")
    damage = draw(st.sampled_from(["none", "truncate", "garbage", "latin1", "bom", "crlf"]))
    if damage == "truncate" and raw:
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif damage == "garbage":
        raw += draw(st.binary(max_size=30))
    elif damage == "latin1":
        raw = "\n".join(lines + ["caf\u00e9,1"]).encode("latin-1", "replace")
    elif damage == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif damage == "crlf":
        raw = raw.replace(b"\n", b"\r\n")
    return raw


@st.composite
def valid_interactions(draw):
    """Well-formed (user, item) rows with int or text ids, and the pairs they mean."""
    int_ids = draw(st.booleans())
    ids = (st.integers(-(10 ** 12), 10 ** 12).map(str) if int_ids
           else st.text("abcxyz_-", min_size=1, max_size=4).map(lambda s: "u" + s))
    pairs = draw(st.lists(st.tuples(ids, ids), min_size=1, max_size=30))
    return pairs


_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def npz_payload(draw):
    """Arrays for np.savez: sometimes a valid matrix, often subtly or grossly broken."""
    n_users = draw(st.one_of(st.integers(-1, 6), st.sampled_from([2 ** 31, 2 ** 40, 2 ** 62])))
    n_items = draw(st.one_of(st.integers(-1, 6), st.sampled_from([2 ** 31, 2 ** 40, 2 ** 62])))
    nnz = draw(st.integers(0, 12))
    fmt = draw(st.sampled_from(["csr", "csr", "coo", "csc", None, "dia", "weird", b"csr"]))
    index_dtype = draw(st.sampled_from([np.int32, np.int64, np.uint8, np.int8, np.float64, np.bool_]))
    value = st.one_of(_FLOATS, st.integers(-3, 300).map(float), st.just(1.0))
    data_dtype = draw(st.sampled_from([np.float32, np.float64, np.int8, np.uint8, np.int64, np.bool_,
                                       np.complex64, "U3"]))
    data = np.array(draw(st.lists(value, min_size=nnz, max_size=nnz)))
    with np.errstate(all="ignore"):
        data = np.nan_to_num(data, nan=-1.0) if np.dtype(data_dtype).kind in "iub" else data
        data = data.astype(data_dtype)
    span = max(1, min(max(n_users, n_items, 1), 8))
    cols = np.array(draw(st.lists(st.integers(-2, span + 1), min_size=nnz, max_size=nnz)), dtype=np.int64)
    rows = np.array(draw(st.lists(st.integers(-2, span + 1), min_size=nnz, max_size=nnz)), dtype=np.int64)
    shape_dtype = draw(st.sampled_from([np.int64, np.float64, np.int32]))
    arrays = {"data": data, "shape": np.array([n_users, n_items], dtype=np.int64).astype(shape_dtype)}
    if draw(st.booleans()):
        arrays["shape"] = arrays["shape"][:draw(st.integers(0, 1))]
    if fmt in ("coo",):
        arrays["row"], arrays["col"] = rows.astype(index_dtype), cols.astype(index_dtype)
    else:
        major = n_users if fmt != "csc" else n_items
        if draw(st.booleans()) and 0 <= major <= 50:  # a monotone indptr of the right length
            cuts = np.sort(np.array(draw(st.lists(st.integers(0, nnz), min_size=max(major - 1, 0),
                                                  max_size=max(major - 1, 0))), dtype=np.int64))
            indptr = np.concatenate([[0], cuts, [nnz]]) if major >= 1 else np.array([0])
        else:
            indptr = np.array(draw(st.lists(st.integers(-2, nnz + 2), max_size=8)), dtype=np.int64)
        arrays["indptr"], arrays["indices"] = indptr.astype(index_dtype), cols.astype(index_dtype)
    if fmt is not None:
        arrays["format"] = np.array(fmt)
    if draw(st.booleans()):  # ints, huge ints (uint64 or pickled object arrays), text, floats
        ids = draw(st.lists(st.one_of(st.integers(-5, 5), st.integers(-(2 ** 63), 2 ** 64 - 1),
                                      st.text(max_size=2), st.floats(allow_nan=True)), max_size=8))
        try:
            arrays["item_ids"] = np.array(ids)
        except OverflowError:
            arrays["item_ids"] = np.array(ids, dtype=object)
    for key in draw(st.sets(st.sampled_from(sorted(arrays)), max_size=1)):
        del arrays[key]
    return arrays


def small_matrix(dtypes=(np.float32, np.float64, np.int8, np.uint8, np.int64, np.bool_)):
    return st.tuples(st.integers(0, 7), st.integers(0, 7), st.sampled_from(dtypes), st.integers(0, 2 ** 32 - 1))


def make_matrix(spec, *, special=0.0):
    m, n, dtype, seed = spec
    rng = np.random.default_rng(seed)
    dense = (rng.random((m, n)) < 0.4) * rng.integers(1, 4, size=(m, n))
    dense = dense.astype(np.float64)
    if special and m and n:
        pick = rng.random((m, n)) < special
        dense[pick] = rng.choice([np.nan, np.inf, -1.0, 1e300], size=int(pick.sum()))
    with np.errstate(all="ignore"):
        return dense.astype(dtype)


# ---------------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------------
def check_interactions_invariants(inter, binarize=True):
    X = inter.matrix
    assert isinstance(X, sp.csr_matrix) and X.dtype == np.float32 and X.has_canonical_format
    assert X.shape == (inter.user_ids.size, inter.item_ids.size)
    assert X.nnz > 0 and np.isfinite(X.data).all() and (X.data > 0).all()
    if binarize:
        assert (X.data == 1).all()
    for ids in (inter.user_ids, inter.item_ids):
        assert np.unique(ids).size == ids.size


@FAST
@given(raw=garbled_text_file(), ext=st.sampled_from([".csv", ".tsv", ".dat", ".txt", ".inter"]),
       kwargs=st.sampled_from([{}, {"header": False}, {"binarize": False}, {"min_rating": 3.0},
                               {"rating_col": 2}, {"sep": ","}, {"user_col": "user", "item_col": "item"}]))
def test_read_csv_garbled(raw, ext, kwargs):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data" + ext)
        with open(path, "wb") as fh:
            fh.write(raw)
        try:
            inter = read_csv(path, **kwargs)
        except DataFormatError as exc:
            assert_message(exc)
            assert path in str(exc) or "header=False" in str(exc)
            return
        except ValueError as exc:  # only parameter errors may be plain ValueErrors
            assert "header=False" in str(exc) and "user_col" in kwargs, exc
            return
    check_interactions_invariants(inter, binarize=kwargs.get("binarize", True))


@FAST
@given(pairs=valid_interactions(), sep=st.sampled_from([",", "\t", ";", "::"]), header=st.booleans(),
       shuffle=st.randoms(use_true_random=False))
def test_read_csv_well_formed_gives_exactly_the_pairs(pairs, sep, header, shuffle):
    lines = [f"{u}{sep}{i}" for u, i in pairs]
    shuffle.shuffle(lines)
    text = ("user" + sep + "item\n" if header else "") + "\n".join(lines) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.csv")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        inter = read_csv(path, header=header, sep=sep)
    check_interactions_invariants(inter)
    X = inter.matrix.tocoo()
    got = {(str(inter.user_ids[r]), str(inter.item_ids[c])) for r, c in zip(X.row, X.col)}
    # canonical spelling: ids read as int64 when all are integers ("-0" == "0")
    want = {(str(int(u)), str(int(i))) if inter.user_ids.dtype.kind == "i" and inter.item_ids.dtype.kind == "i"
            else (u, i) for u, i in pairs}
    assert got == want


@FAST
@given(pairs=valid_interactions(), sep=st.sampled_from([",", "\t", ";", "::"]), at=st.integers(0, 10 ** 6),
       closed_later=st.booleans())
def test_read_csv_an_open_quote_is_refused_naming_its_line(pairs, sep, at, closed_later):
    """A quote left open on a line is an error naming that line, never the rest of the file read as one
    id; one closed on a later line is a quoted line break, read as Python's csv reads it."""
    import csv as pycsv

    lines = [f"{u}{sep}{i}" for u, i in pairs]
    row = at % len(lines)
    lines[row] = lines[row] + sep + '"oops'
    closed = closed_later and row + 1 < len(lines)
    if closed:
        lines[-1] = lines[-1] + sep + 'closed"'
    text = "user" + sep + "item\n" + "\n".join(lines) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.csv")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        if row == len(lines) - 1 or closed:
            # open on the very last line (it swallows only its own line break), or closed later: every
            # row Python's csv module sees is read
            inter = read_csv(path, sep=sep)
            delim = "\x1f" if sep == "::" else sep
            rows = [r for r in pycsv.reader(io.StringIO(text.replace("::", "\x1f"), newline=""), delimiter=delim,
                                            skipinitialspace=True)][1:]
            assert inter.nnz == len({(r[0].strip(), r[1].strip()) for r in rows if r})
            return
        with pytest.raises(DataFormatError, match=rf"data\.csv: line {row + 2}: a quote opened on this line is never "
                                                  "closed"):
            read_csv(path, sep=sep)


@given(arrays=st.lists(st.one_of(
    st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), max_size=5).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(st.integers(0, 2 ** 64 - 1), max_size=5).map(lambda v: np.array(v, dtype=np.uint64)),
    st.lists(st.integers(-2 ** 63, 2 ** 64 - 1), max_size=5)), min_size=1, max_size=4))
@FAST
def test_union_ids_never_merges_two_ids(arrays):
    """Several id spaces (shards) -> one: exactly the set of ids, or refused when -1 and 2**64 - 1 meet."""
    from lae_fast.ids import union_ids

    values = [int(v) for a in arrays for v in (a.tolist() if isinstance(a, np.ndarray) else a)]
    try:
        out = union_ids(arrays, names=[f"shard{k}" for k in range(len(arrays))])
    except (ValueError, TypeError) as exc:
        assert_message(exc)
        assert values and min(values) < 0 and max(values) > 2 ** 63 - 1
        return
    assert [int(v) for v in out.tolist()] == sorted(set(values))


def _assert_npz_matches(inter, arrays):
    """A successfully read CSR/COO/CSC file holds exactly the positive entries of its arrays."""
    fmt = arrays.get("format")
    fmt = "csr" if fmt is None else (fmt.item().decode() if isinstance(fmt.item(), bytes) else fmt.item())
    shape = tuple(int(s) for s in arrays["shape"])
    data = arrays["data"].astype(np.float64)
    if fmt == "coo":
        ref = sp.coo_matrix((data, (arrays["row"].astype(np.int64), arrays["col"].astype(np.int64))),
                            shape=shape).tocsr()
    elif fmt in ("csr", "csc"):
        cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
        ref = sp.csr_matrix(cls((data, arrays["indices"].astype(np.int64), arrays["indptr"].astype(np.int64)),
                                shape=shape))
    else:
        return
    ref.sum_duplicates()
    ref.eliminate_zeros()
    got = inter.matrix.tocoo()
    want = ref.tocoo()
    assert set(zip(got.row.tolist(), got.col.tolist())) == set(zip(want.row.tolist(), want.col.tolist()))


@FAST
@given(arrays=npz_payload(), compressed=st.booleans())
def test_read_npz_random_arrays(arrays, compressed):
    # as if 2 GiB were free: a declared 2**31 users must be refused here, not allocated (and OOM-killed)
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(lae_fast._memory, "available_memory",
                                                                 return_value=2 ** 31):
        path = os.path.join(tmp, "data.npz")
        with open(path, "wb") as fh:
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)
        try:
            inter = read_npz(path)
        except DataFormatError as exc:
            assert_message(exc)
            assert path in str(exc)
            return
        except MemoryError as exc:  # a huge declared shape: refused with the estimate
            assert "needs" in str(exc), exc
            return
    check_interactions_invariants(inter)
    _assert_npz_matches(inter, arrays)


@FAST
@given(raw=st.binary(max_size=400), cut=st.integers(0, 10 ** 6), flip=st.integers(0, 10 ** 6))
def test_read_npz_garbled_bytes(raw, cut, flip):
    X = sp.random(6, 5, density=0.5, format="csr", random_state=cut % 97)
    X.data[:] = 1
    buf = io.BytesIO()
    sp.save_npz(buf, X, compressed=bool(flip % 2))
    good = buf.getvalue()
    candidates = [raw, good[:cut % (len(good) + 1)]]
    flipped = bytearray(good)
    flipped[flip % len(good)] ^= 1 << (flip % 8)
    candidates.append(bytes(flipped))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        for content in candidates:
            with open(path, "wb") as fh:
                fh.write(content)
            try:
                inter = lae_fast.load_interactions(path)
            except DataFormatError as exc:
                assert_message(exc)
                continue
            check_interactions_invariants(inter)
            if content is not raw:  # damage that still reads must read as the original
                try:
                    zipfile.ZipFile(io.BytesIO(content)).testzip()
                except Exception:  # noqa: BLE001
                    pass
                assert inter.matrix.shape == X.shape


@FAST
@given(key=st.sampled_from(["indptr", "indices", "data", "shape", "user_ids", "item_ids"]),
       shape=st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2 ** 45)), min_size=0, max_size=3),
       payload=st.integers(0, 200))
def test_read_npz_declared_shapes_never_allocate_what_the_file_lacks(key, shape, payload):
    """Any shape a member's header declares: the reader answers (exactly) or refuses, allocating
    no more than the file holds."""
    import tracemalloc
    import zipfile as zf

    good = {"indptr": np.array([0, 1, 2], np.int64), "indices": np.array([0, 2], np.int32),
            "data": np.ones(2, np.float32), "shape": np.array([2, 3], np.int64),
            "user_ids": np.array([7, 8], np.int64), "item_ids": np.array([4, 5, 6], np.int64)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npz")
        with zf.ZipFile(path, "w", zf.ZIP_DEFLATED) as z:
            for name, arr in good.items():
                buf = io.BytesIO()
                if name == key:
                    np.lib.format.write_array_header_1_0(buf, {"descr": arr.dtype.str, "fortran_order": False,
                                                               "shape": tuple(shape)})
                    buf.write(arr.tobytes()[:payload].ljust(payload, b"\0"))
                else:
                    np.lib.format.write_array(buf, arr)
                z.writestr(name + ".npy", buf.getvalue())
        tracemalloc.start()
        try:
            inter = read_npz(path)
        except (DataFormatError, MemoryError) as exc:
            assert_message(exc)
            inter = None
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert peak < 32 << 20  # first calls also trace lazy imports; a declared 2**45 elements would be TBs
    if inter is not None:  # the header happened to describe what the member holds
        np.testing.assert_array_equal(inter.matrix.toarray(), [[1, 0, 0], [0, 0, 1]])


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=False),
              st.text(max_size=4)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=3), children,
                                                                                max_size=3)),
    max_leaves=8)


@FAST
@given(template=st.lists(st.sampled_from(["{", "}", "[", "]", ".", "!", ":", "r", "0", "1", "title", "genres",
                                          "__class__", " ", "x"]), max_size=12).map("".join),
       records=st.lists(st.fixed_dictionaries({"item": _json_values, "title": _json_values,
                                               "genres": _json_values}), min_size=1, max_size=3))
def test_item_text_templates_and_ids_only_fail_cleanly(template, records):
    """Any template over any JSON records: texts, or a ValueError (ItemTextError included) with a message."""
    from lae_fast.text import load_item_texts

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "items.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(json.dumps(r) for r in records) + "\n")
        try:
            texts = load_item_texts(path, template=template)
        except (ValueError, TypeError) as exc:
            assert_message(exc)
            return
    assert all(isinstance(k, (int, str)) and isinstance(v, str) for k, v in texts.items())
    import string

    parts = list(string.Formatter().parse(template))  # rendered: so only plain names and indexes were there
    assert all("." not in name and not spec and not conv for _, name, spec, conv in parts if name is not None)


# ---------------------------------------------------------------------------------------------
# model files
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_bytes():
    X = sp.random(40, 9, density=0.3, format="csr", random_state=1)
    model = lae_fast.RDLAE(3.0, dropout=0.1, xi=0.2).fit(X)
    buf = io.BytesIO()
    model.save(buf)
    return model, buf.getvalue()


@FAST
@given(data=st.data())
def test_model_files_damaged(model_bytes, data):
    model, good = model_bytes
    how = data.draw(st.sampled_from(["truncate", "flip", "random", "splice"]))
    raw = bytearray(good)
    if how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(good) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 3))):
            pos = data.draw(st.integers(0, len(good) - 1))
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "random":
        raw = bytearray(data.draw(st.binary(max_size=300)))
    else:
        raw = raw[:8] + bytearray(data.draw(st.binary(min_size=1, max_size=200)))
    raw = bytes(raw)
    for loader in (lae_fast.load_model, Recommender.load):
        try:
            loaded = loader(io.BytesIO(raw))
        except ModelFileError as exc:
            assert_message(exc)
            continue
        # damage only in the unchecked zero padding between header and arrays
        B = loaded.B_ if hasattr(loaded, "B_") else loaded._B
        np.testing.assert_array_equal(B, model.B_)


@FAST
@given(data=st.data())
def test_model_headers_edited_with_checksums_recomputed(model_bytes, data):
    """Any field of the header replaced by any JSON value, checksums recomputed: a ModelFileError naming
    the file, or (a harmless edit) the same model, through every loader and `lae-fast info`."""
    from conftest import craft_model_file

    model, good = model_bytes
    keys = data.draw(st.lists(st.sampled_from(["meta", "arrays", "B", "item_ids", "item_counts_", "dtype", "shape",
                                               "offset", "nbytes", "sha256", "n_items", "model", "params", "l2",
                                               "x"]), min_size=1, max_size=4))
    value = data.draw(_json_values)

    def edit(header):
        target = header
        for key in keys[:-1]:
            if not isinstance(target, dict) or not isinstance(target.get(key), (dict, list)):
                break
            target = target[key] if isinstance(target[key], dict) else target
        if isinstance(target, dict):
            target[keys[-1]] = value

    with tempfile.TemporaryDirectory() as tmp:
        path = craft_model_file(os.path.join(tmp, "edited.laef"), good, edit=edit)
        for loader in (lae_fast.load_model, Recommender.load):
            try:
                loaded = loader(path)
            except ModelFileError as exc:
                assert str(exc).startswith(path), exc
                continue
            B = loaded.B_ if hasattr(loaded, "B_") else loaded._B
            np.testing.assert_array_equal(B, model.B_)
        assert_clean_cli(CliRunner().invoke(main, ["info", path]))


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------
def ease_reference(X, l2):
    X = sp.csr_matrix(X, dtype=np.float64)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.data[:] = 1
    G = (X.T @ X).toarray()
    P = np.linalg.inv(G + l2 * np.eye(G.shape[0]))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0)
    return B


@FAST
@given(spec=small_matrix(), special=st.sampled_from([0.0, 0.0, 0.1]), l2=st.one_of(
    st.floats(0.5, 1e4), st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e-30]),
    st.sampled_from(["500", None, True])), sparse=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_fit_random_matrices(spec, special, l2, sparse, dtype):
    X = make_matrix(spec, special=special)
    if sparse:
        X = sp.coo_matrix(X)
    try:
        model = EASE(l2=l2, dtype=dtype).fit(X)
    except DOCUMENTED as exc:
        assert_message(exc)
        return
    B = model.B_
    assert B.shape == (spec[1], spec[1]) and B.dtype == dtype and np.isfinite(B).all()
    ref = ease_reference(X, float(l2))
    tol = 2e-3 if dtype == np.float32 else 1e-8
    assert np.abs(B - ref).max() <= tol * max(1.0, np.abs(ref).max())


@FAST
@given(m=st.integers(0, 6), n=st.integers(1, 6), nnz=st.integers(0, 25), seed=st.integers(0, 2 ** 32 - 1),
       dtype=st.sampled_from([np.int8, np.uint8, np.int16, np.uint16, np.float32, np.bool_, np.int64]))
def test_duplicates_in_narrow_dtypes(m, n, nnz, seed, dtype):
    """COO/CSR with many duplicates in small integer types: no wrap-around, no lost interaction."""
    assume(m > 0)
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, m, nnz), rng.integers(0, n, nnz)
    vals = rng.integers(1, 128, nnz)
    with np.errstate(all="ignore"):
        X = sp.coo_matrix((vals.astype(dtype), (rows, cols)), shape=(m, n))
    exact = sp.coo_matrix((vals.astype(np.float64), (rows, cols)), shape=(m, n)).toarray()
    got = check_interactions(X, binarize=False)
    if dtype == np.bool_:
        exact = (exact > 0).astype(float)
    np.testing.assert_allclose(got.toarray(), exact, rtol=1e-6)
    got = check_interactions(X).toarray()
    np.testing.assert_array_equal(got, (exact > 0).astype(np.float32))
    G = lae_fast.gram(X)
    Xb = (exact > 0).astype(np.float64)
    np.testing.assert_array_equal(G, Xb.T @ Xb)


def test_duplicates_that_overflow_float32_are_refused():
    X = sp.coo_matrix((np.array([3e38, 3e38], np.float32), ([0, 0], [1, 1])), shape=(1, 2))
    with pytest.raises(ValueError, match="NaN or infinite|overflow"):
        check_interactions(X, binarize=False)
    X = sp.csr_matrix((np.array([3e38, 3e38], np.float32), [1, 1], [0, 2]), shape=(1, 2))
    with pytest.raises(ValueError, match="overflow"):
        check_interactions(X, binarize=False)


index_list = st.one_of(
    st.none(),
    st.lists(st.integers(-3, 80), max_size=10),
    st.lists(st.one_of(st.floats(-3, 80), st.just(float("nan"))), max_size=4),
    st.sampled_from([[2 ** 63 - 1], [-(2 ** 63)], ["1"], [[1, 2]], [True], 3, 2.5]),
)
N_values = st.one_of(st.integers(0, 90), st.sampled_from([-1, 2 ** 31, 2 ** 40, 1.0, True, "5", None]))


@FAST
@given(n=st.sampled_from([1, 3, 40, 70]), m=st.integers(0, 5), seed=st.integers(0, 2 ** 32 - 1), N=N_values,
       filter_items=index_list, items=index_list)
def test_topk_and_recommender(n, m, seed, N, filter_items, items):
    rng = np.random.default_rng(seed)
    B = (rng.integers(-64, 65, size=(n, n)) / 16.0).astype(np.float32)  # exact sums: exact comparison
    X = sp.csr_matrix((rng.random((m, n)) < 0.2).astype(np.float32))
    try:
        got = lae_fast.topk(X, B, N, filter_items=filter_items, items=items)
    except DOCUMENTED as exc:
        assert_message(exc)
        got = None
    else:
        ref = ref_topk(X, B, N, filter_items=filter_items, items=items)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    rec = Recommender.from_matrix(B)
    for u in range(m):
        try:
            one = rec.recommend_one(X[u].indices, N, filter_items=filter_items, items=items)
        except DOCUMENTED as exc:
            assert got is None, f"topk answered but recommend_one raised {exc!r}"
            continue
        assert got is not None
        if X[u].nnz == 0:  # a cold user, and no popularity given: nothing to recommend
            assert (one[0] == -1).all() and np.isneginf(one[1]).all()
            continue
        np.testing.assert_array_equal(one[0], got[0][u])
        np.testing.assert_array_equal(one[1], got[1][u])


@FAST
@given(n=st.integers(1, 200), seed=st.integers(0, 2 ** 32 - 1), N=st.integers(0, 60),
       history=st.lists(st.integers(0, 199), max_size=50), m=st.integers(1, 210))
def test_recommender_dense_and_pruned_against_reference(n, seed, N, history, m):
    history = [h % n for h in history]
    rng = np.random.default_rng(seed)
    B = (rng.integers(-64, 65, size=(n, n)) / 16.0).astype(np.float32)
    for rec, Bref in ((Recommender.from_matrix(B), B),):
        ref = ref_topk(sp.csr_matrix((np.ones(len(history)), (np.zeros(len(history), int), history)),
                                     shape=(1, n)), Bref, N, popularity=None)
        ids, scores = rec.recommend_one(history, N)
        np.testing.assert_array_equal(ids, ref[0][0])
        np.testing.assert_array_equal(scores, ref[1][0])
    P = lae_fast.serving.prune(B, m)
    assert (np.diff(P.tocsc().indptr) == min(m, n)).all()
    rec = Recommender.from_matrix(P)
    ref = ref_topk(sp.csr_matrix((np.ones(len(history)), (np.zeros(len(history), int), history)),
                               shape=(1, n)), P.toarray(), N, popularity=None)
    ids, scores = rec.recommend_one(np.array(history, dtype=np.int64), N)
    np.testing.assert_array_equal(ids, ref[0][0])
    np.testing.assert_array_equal(scores, ref[1][0])


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.random((60, 40)) < 0.2).astype(np.float32))
    return EASE(l2=3.0).fit(X)


@FAST
@given(spec=st.tuples(st.integers(0, 4), st.sampled_from([40, 40, 39, 41, 0]),
                      st.sampled_from([np.float32, np.float64, np.int8, np.uint8, np.bool_, np.complex64, object]),
                      st.integers(0, 2 ** 32 - 1)),
       special=st.sampled_from([0.0, 0.0, 0.2]), form=st.sampled_from(["csr", "coo", "dense", "1-D", "list"]),
       N=N_values, filter_items=index_list, liked=st.booleans())
def test_model_recommend_random_input(small_model, spec, special, form, N, filter_items, liked):
    X = make_matrix(spec[:3] + (spec[3],), special=special) if spec[2] is not object else \
        np.array([[{"a": 1}] * spec[1]] * spec[0], dtype=object)
    if form == "1-D":
        X = X[0] if X.shape[0] else X.reshape(-1)
    inp = {"csr": sp.csr_matrix, "coo": sp.coo_matrix, "dense": np.asarray, "1-D": np.asarray,
           "list": lambda a: a.tolist()}[form](X) if X.dtype != object or form in ("dense", "1-D", "list") else X
    try:
        ids, scores = small_model.recommend(inp, N, filter_items=filter_items, filter_already_liked_items=liked)
    except DOCUMENTED as exc:
        assert_message(exc)
        return
    Xf = np.atleast_2d(np.asarray(X, dtype=np.float64))
    assert Xf.shape[1] == 40 and np.isfinite(Xf).all() and (Xf >= 0).all()
    ref_ids, ref_scores = ref_topk(sp.csr_matrix(Xf), small_model.B_, N, filter_items=filter_items) if liked else \
        (None, None)
    if form == "1-D":
        assert ids.ndim == 1
        ids, scores = ids[None], scores[None]
    assert ids.shape == (Xf.shape[0], min(N, 40)) and ids.dtype == np.int32 and scores.dtype == np.float32
    if liked:
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)
        # ids may differ only where the reference itself has (near-)ties
        same = ids == ref_ids
        assert same.all() or np.allclose(scores[~same], ref_scores[~same], rtol=1e-5, atol=1e-6)


@FAST
@given(spec=small_matrix(dtypes=(np.float32, np.int8, np.uint8, np.bool_, np.float64)),
       special=st.sampled_from([0.0, 0.2]), weighted=st.booleans(),
       fmt=st.sampled_from(["csr", "csc", "coo", "dense", "list"]))
def test_gram_random(spec, special, weighted, fmt):
    X = make_matrix(spec, special=special)
    inp = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "coo": sp.coo_matrix, "dense": np.asarray,
           "list": lambda a: a.tolist()}[fmt](X)
    try:
        G = lae_fast.gram(inp, weighted=weighted)
    except DOCUMENTED as exc:
        assert_message(exc)
        return
    Xf = np.asarray(X, dtype=np.float64)
    assert np.isfinite(Xf).all() and (Xf >= 0).all()
    Xw = Xf if weighted else (Xf > 0).astype(np.float64)
    with np.errstate(over="ignore"):  # weights near 1e300: the float32 Gram overflows like numpy's would
        ref = (Xw.T @ Xw).astype(np.float32)
    np.testing.assert_allclose(G, ref, rtol=1e-5)


@FAST
@given(value=st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3), st.lists(st.integers(), max_size=3),
                       st.sampled_from([np.array([[1, 2]], dtype=object), sp.eye(3).tolil(), np.zeros((2, 2, 2)),
                                        np.zeros((3, 0)), {"a": 1}, b"\x00", np.array([["a", "b"]])])))
def test_fit_wrongly_typed_input(value):
    try:
        EASE(l2=1.0).fit(value)
    except DOCUMENTED as exc:
        assert_message(exc)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def assert_clean_cli(result):
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.exit_code
    if result.exit_code == 1:
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.output


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "m.laef"
    X = sp.random(30, 8, density=0.4, format="csr", random_state=3)
    X.data[:] = 1
    EASE(2.0).fit(lae_fast.Interactions.from_matrix(X, item_ids=np.arange(100, 108))).save(path)
    return str(path)


@SLOW
@given(raw=garbled_text_file(), ext=st.sampled_from([".csv", ".tsv", ".npz", ".lae", ""]),
       command=st.sampled_from(["fit", "evaluate", "recommend", "info"]),
       extra=st.sampled_from([[], ["--l2", "nan"], ["--l2", "-3"], ["--min-rating", "4"], ["--sep", ""],
                              ["--model", "rdlae", "--xi", "0.3"], ["-k", "0"], ["--dtype", "float16"]]))
def test_cli_random_files(cli_model, raw, ext, command, extra):
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "input" + ext)
        with open(path, "wb") as fh:
            fh.write(raw)
        out = os.path.join(tmp, "out.laef")
        args = {"fit": ["-q", "fit", path, "-o", out], "evaluate": ["-q", "evaluate", path, "--heldout", "1"],
                "recommend": ["-q", "recommend", cli_model, path], "info": ["info", path]}[command] + extra
        result = runner.invoke(main, args)
        assert_clean_cli(result)
        if command == "fit" and result.exit_code != 0:
            assert sorted(os.listdir(tmp)) == ["input" + ext]  # nothing half-written


@SLOW
@given(how=st.sampled_from(["truncate", "flip"]), pos=st.integers(0, 10 ** 6))
def test_cli_damaged_model_files(cli_model, how, pos):
    with open(cli_model, "rb") as fh:
        raw = bytearray(fh.read())
    if how == "truncate":
        raw = raw[:pos % len(raw)]
    else:
        raw[pos % len(raw)] ^= 1 << (pos % 8)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.laef")
        hist = os.path.join(tmp, "h.csv")
        with open(path, "wb") as fh:
            fh.write(bytes(raw))
        with open(hist, "w") as fh:
            fh.write("user,item\n1,100\n1,103\n2,999\n")
        runner = CliRunner()
        for args in (["info", path], ["-q", "recommend", path, hist]):
            assert_clean_cli(runner.invoke(main, args))


def test_cli_info_on_a_pruned_serving_file(cli_model, tmp_path):
    path = tmp_path / "serve.laef"
    server = Recommender.load(cli_model).prune(3)
    server.save(path)
    result = CliRunner().invoke(main, ["info", "--json", str(path)])
    assert_clean_cli(result)
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["kind"] == "pruned" and summary["shape"] == [server.n_items, server.n_items]


def test_cli_recommend_reads_a_serving_file(cli_model, tmp_path):
    path = tmp_path / "serve.laef"
    server = Recommender.load(cli_model).prune(3)
    server.save(path)
    hist = tmp_path / "h.csv"
    hist.write_text("user,item\n1,100\n")
    result = CliRunner().invoke(main, ["-q", "recommend", str(path), str(hist), "--format", "json", "-k", "4"])
    assert_clean_cli(result)
    assert result.exit_code == 0
    expect, _, _ = server.recommend_one_ids([100], 4)  # original ids, best first
    assert [r["item"] for r in json.loads(result.output)["1"]] == expect.tolist()
