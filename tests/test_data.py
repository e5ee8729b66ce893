"""Tests for lae_fast.data: the Interactions container, npz/CSV readers, save_npz, the dispatcher."""
import os
import re

import numpy as np
import pytest
import scipy.sparse as sp

from lae_fast.data import (DataFormatError, Interactions, align_items, load_interactions, read_csv, read_npz,
                           save_npz)


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def dense(inter):
    return inter.matrix.toarray()


def assert_canonical(inter):
    X = inter.matrix
    assert isinstance(X, sp.csr_matrix)
    assert X.dtype == np.float32
    assert X.has_canonical_format
    assert X.has_sorted_indices
    assert (X.data != 0).all()
    assert inter.user_ids.shape == (X.shape[0],)
    assert inter.item_ids.shape == (X.shape[1],)
    assert inter.user_ids.dtype.kind in "iU" and inter.item_ids.dtype.kind in "iU"


def assert_same(a, b):
    assert a.shape == b.shape
    np.testing.assert_array_equal(dense(a), dense(b))
    assert a.user_ids.dtype == b.user_ids.dtype and a.item_ids.dtype == b.item_ids.dtype
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)


M = np.array([[0, 2, 0, 1],
              [3, 0, 0, 0],
              [0, 0, 5, 1]], dtype=np.float64)
B = (M > 0).astype(np.float32)


# -- Interactions -----------------------------------------------------------------------------

class TestInteractions:
    def test_from_dense_binarizes_and_sets_default_ids(self):
        X = Interactions.from_matrix(M)
        assert_canonical(X)
        np.testing.assert_array_equal(dense(X), B)
        assert X.user_ids.dtype == np.int64 and X.item_ids.dtype == np.int64
        np.testing.assert_array_equal(X.user_ids, [0, 1, 2])
        np.testing.assert_array_equal(X.item_ids, [0, 1, 2, 3])
        assert (X.shape, X.n_users, X.n_items, X.nnz) == ((3, 4), 3, 4, 5)
        assert isinstance(X.nnz, int)

    def test_binarize_false_keeps_values_and_sums_duplicates(self):
        coo = sp.coo_matrix(([2.0, 3.0, 1.0], ([0, 0, 1], [1, 1, 0])), shape=(2, 2))
        X = Interactions.from_matrix(coo, binarize=False)
        assert_canonical(X)
        np.testing.assert_array_equal(dense(X), [[0, 5], [1, 0]])
        Xb = Interactions.from_matrix(coo)
        np.testing.assert_array_equal(dense(Xb), [[0, 1], [1, 0]])

    def test_unsorted_csr_becomes_canonical(self):
        X = sp.csr_matrix((np.array([1.0, 1.0, 0.0]), np.array([2, 0, 1]), np.array([0, 3])), shape=(1, 3))
        assert not X.has_sorted_indices
        inter = Interactions.from_matrix(X)
        assert_canonical(inter)
        np.testing.assert_array_equal(inter.matrix.indices, [0, 2])  # stored zero dropped

    def test_string_ids_are_unicode_never_object(self):
        X = Interactions.from_matrix(M, user_ids=np.array(["a", "b", "c"], dtype=object),
                                     item_ids=[b"w", b"x", b"y", b"z"])
        assert X.user_ids.dtype.kind == "U" and X.item_ids.dtype.kind == "U"
        assert X.item_ids.tolist() == ["w", "x", "y", "z"]
        assert X.user_ids.tolist() == ["a", "b", "c"]

    def test_integer_ids_become_int64(self):
        X = Interactions.from_matrix(M, user_ids=np.array([7, 8, 9], dtype=np.uint16),
                                     item_ids=np.array([1.0, 2.0, 3.0, 40.0]))
        assert X.user_ids.dtype == np.int64 and X.item_ids.dtype == np.int64
        assert X.item_ids.tolist() == [1, 2, 3, 40]

    def test_repr(self):
        X = Interactions.from_matrix(M, item_ids=["ab", "c", "d", "e"])
        assert repr(X) == "Interactions(n_users=3, n_items=4, nnz=5, user_ids=int64, item_ids=<U2)"

    @pytest.mark.parametrize("kwargs, word", [
        ({"item_ids": [1, 2, 3]}, "item_ids"),
        ({"user_ids": [1, 2, 3, 4]}, "user_ids"),
        ({"item_ids": [1, 2, 2, 3]}, "duplicated"),
        ({"user_ids": ["a", "b", "a"]}, "duplicated"),
    ])
    def test_bad_ids(self, kwargs, word):
        with pytest.raises(ValueError, match=word):
            Interactions.from_matrix(M, **kwargs)

    def test_non_integral_float_ids_rejected(self):
        with pytest.raises(TypeError, match="integers or strings"):
            Interactions.from_matrix(M, user_ids=[0.5, 1.0, 2.0])

    def test_negative_values_rejected(self):
        with pytest.raises(ValueError, match="negative"):
            Interactions.from_matrix(-M)

    def test_model_reads_matrix_and_item_ids(self):
        from lae_fast import EASE

        inter = Interactions.from_matrix(np.eye(4) + np.eye(4, k=1), item_ids=["a", "b", "c", "d"])
        model = EASE(l2=1.0).fit(inter)
        assert model.item_ids_.tolist() == ["a", "b", "c", "d"]
        assert model.B_.shape == (4, 4)


# -- save_npz / read_npz ----------------------------------------------------------------------

class TestNpz:
    @pytest.mark.parametrize("compressed", [True, False])
    def test_round_trip_int_ids(self, tmp_path, compressed):
        X = Interactions.from_matrix(M, user_ids=[10, 20, 30], item_ids=[5, 6, 7, 800], binarize=False)
        path = tmp_path / "x.npz"
        save_npz(path, X, compressed=compressed)
        with np.load(path, allow_pickle=False) as npz:
            assert sorted(npz.files) == ["data", "indices", "indptr", "item_ids", "shape", "user_ids"]
        Y = read_npz(path, binarize=False)
        assert_canonical(Y)
        assert_same(X, Y)
        np.testing.assert_array_equal(dense(Y), M)
        np.testing.assert_array_equal(dense(read_npz(path)), B)

    def test_round_trip_string_ids(self, tmp_path):
        X = Interactions.from_matrix(M, user_ids=["ann", "bob", "cy"], item_ids=["007", "a", "b", "é"])
        path = tmp_path / "s.npz"
        save_npz(str(path), X)
        Y = read_npz(str(path))
        assert_same(X, Y)
        assert Y.item_ids.tolist() == ["007", "a", "b", "é"]  # stored str ids are not re-parsed

    def test_save_keeps_exact_name_and_leaves_no_temp_files(self, tmp_path):
        path = tmp_path / "interactions.bin"
        save_npz(path, Interactions.from_matrix(M))
        assert os.listdir(tmp_path) == ["interactions.bin"]
        np.testing.assert_array_equal(dense(read_npz(path)), B)

    def test_save_rejects_plain_matrix(self, tmp_path):
        with pytest.raises(TypeError, match="from_matrix"):
            save_npz(tmp_path / "x.npz", sp.csr_matrix(M))

    @pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia"])
    @pytest.mark.parametrize("array_api", [False, True])
    def test_scipy_save_npz_formats(self, tmp_path, fmt, array_api):
        X = (sp.csr_array if array_api else sp.csr_matrix)(M).asformat(fmt)
        path = tmp_path / f"{fmt}.npz"
        sp.save_npz(path, X)
        inter = read_npz(path)
        assert_canonical(inter)
        np.testing.assert_array_equal(dense(inter), B)
        np.testing.assert_array_equal(inter.item_ids, np.arange(4))
        np.testing.assert_array_equal(dense(read_npz(path, binarize=False)), M)

    def test_plain_savez_int64_unsorted_duplicates(self, tmp_path):
        # row 0: columns 3, 1, 1 (duplicate, unsorted); row 1: column 0; row 2 empty
        path = tmp_path / "plain.npz"
        np.savez(path, indptr=np.array([0, 3, 4, 4], dtype=np.int64),
                 indices=np.array([3, 1, 1, 0], dtype=np.int64), data=np.array([1.0, 2.0, 0.5, 4.0]),
                 shape=np.array([3, 4], dtype=np.int64), item_ids=np.array(["a", "b", "c", "d"]),
                 user_ids=np.array([100, 200, 300], dtype=np.int32))
        inter = read_npz(path, binarize=False)
        assert_canonical(inter)
        np.testing.assert_array_equal(dense(inter), [[0, 2.5, 0, 1], [4, 0, 0, 0], [0, 0, 0, 0]])
        np.testing.assert_array_equal(inter.matrix.indices, [1, 3, 0])
        np.testing.assert_array_equal(inter.matrix.indptr, [0, 2, 3, 3])
        assert inter.user_ids.dtype == np.int64 and inter.user_ids.tolist() == [100, 200, 300]
        assert inter.item_ids.dtype.kind == "U" and inter.item_ids.tolist() == ["a", "b", "c", "d"]
        np.testing.assert_array_equal(dense(read_npz(path)), [[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]])

    @pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint64])
    def test_index_dtypes(self, tmp_path, dtype):
        path = tmp_path / "idx.npz"
        np.savez(path, indptr=np.array([0, 2, 3], dtype=dtype), indices=np.array([4, 0, 2], dtype=dtype),
                 data=np.ones(3, dtype=np.float32), shape=np.array([2, 5], dtype=dtype))
        inter = read_npz(path)
        np.testing.assert_array_equal(dense(inter), [[1, 0, 0, 0, 1], [0, 0, 1, 0, 0]])
        assert inter.matrix.indices.tolist() == [0, 4, 2]

    def test_bytes_ids_are_decoded(self, tmp_path):
        path = tmp_path / "b.npz"
        np.savez(path, indptr=np.array([0, 1]), indices=np.array([0]), data=np.ones(1),
                 shape=np.array([1, 1]), item_ids=np.array([b"x"]))
        assert read_npz(path).item_ids.dtype.kind == "U"

    def test_missing_file(self, tmp_path):
        path = tmp_path / "nope.npz"
        with pytest.raises(FileNotFoundError, match="nope.npz"):
            read_npz(path)

    def test_directory(self, tmp_path):
        (tmp_path / "d.npz").mkdir()
        with pytest.raises(DataFormatError, match="directory"):
            read_npz(tmp_path / "d.npz")


def _csr_arrays(**override):
    arrays = dict(indptr=np.array([0, 2, 3, 5]), indices=np.array([1, 3, 0, 2, 3]),
                  data=np.array([2.0, 1.0, 3.0, 5.0, 1.0]), shape=np.array([3, 4]))
    arrays.update(override)
    return {k: v for k, v in arrays.items() if v is not None}


BAD_NPZ = {
    "missing_key": (_csr_arrays(data=None), ["missing", "data", "found: indices, indptr, shape"]),
    "indptr_length": (_csr_arrays(indptr=np.array([0, 2, 5])), ["indptr", "disagree", "need 4"]),
    "indices_vs_data": (_csr_arrays(indices=np.array([1, 3, 0, 2])), ["indices has 4", "data has 5"]),
    "indptr_not_monotone": (_csr_arrays(indptr=np.array([0, 3, 2, 5])), ["monotone"]),
    "indptr_start": (_csr_arrays(indptr=np.array([1, 2, 3, 5])), ["start at 0"]),
    "indptr_last": (_csr_arrays(indptr=np.array([0, 2, 3, 4])), ["indptr[-1] = 4", "nnz = 5"]),
    "index_too_big": (_csr_arrays(indices=np.array([1, 3, 0, 2, 4])), ["out of range", "e.g. 4"]),
    "index_negative": (_csr_arrays(indices=np.array([1, -1, 0, 2, 3])), ["out of range", "e.g. -1"]),
    "float_indices": (_csr_arrays(indices=np.array([1.0, 3, 0, 2, 3])), ["indices", "integer"]),
    "negative_value": (_csr_arrays(data=np.array([2.0, -1.0, 3.0, 5.0, 1.0])), ["1 negative"]),
    "nan_value": (_csr_arrays(data=np.array([2.0, np.nan, 3.0, np.inf, 1.0])), ["2 NaN or infinite"]),
    "string_data": (_csr_arrays(data=np.array(["a", "b", "c", "d", "e"])), ["not numeric"]),
    "complex_data": (_csr_arrays(data=np.ones(5, dtype=complex)), ["not numeric"]),
    "no_users": (_csr_arrays(indptr=np.array([0]), indices=np.array([], dtype=int), data=np.array([]),
                             shape=np.array([0, 4])), ["empty", "0 users"]),
    "no_items": (_csr_arrays(shape=np.array([3, 0])), ["empty", "0 items"]),
    "no_interactions": (_csr_arrays(indptr=np.zeros(4, dtype=int), indices=np.array([], dtype=int),
                                    data=np.array([])), ["no interactions"]),
    "all_zero": (_csr_arrays(data=np.zeros(5)), ["no interactions"]),
    "bad_shape": (_csr_arrays(shape=np.array([3, 4, 1])), ["shape must be two"]),
    "item_ids_length": (_csr_arrays(item_ids=np.array([1, 2, 3])), ["item_ids", "4 columns"]),
    "user_ids_length": (_csr_arrays(user_ids=np.array(["a", "b"])), ["user_ids", "3 rows"]),
    "duplicate_item_ids": (_csr_arrays(item_ids=np.array([1, 2, 2, 3])), ["item_ids", "duplicated"]),
    "unknown_format": (_csr_arrays(format=np.array(b"lil")), ["unknown sparse format"]),
    "coo_out_of_range": ({"format": np.array(b"coo"), "row": np.array([0, 3]), "col": np.array([0, 1]),
                          "data": np.ones(2), "shape": np.array([3, 4])}, ["row", "out of range"]),
    "coo_lengths": ({"format": np.array(b"coo"), "row": np.array([0, 1]), "col": np.array([0]),
                     "data": np.ones(2), "shape": np.array([3, 4])}, ["row has 2", "col has 1"]),
    "csc_indptr": (_csr_arrays(format=np.array(b"csc")), ["indptr", "4 items need 5"]),
    "object_array": (_csr_arrays(item_ids=np.array([1, "a", None, 2.5], dtype=object)), ["Python objects"]),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_malformed_npz(tmp_path, case):
    arrays, words = BAD_NPZ[case]
    path = tmp_path / f"bad_{case}.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError) as info:
        read_npz(path)
    msg = str(info.value)
    assert f"bad_{case}.npz" in msg
    for word in words:
        assert word in msg
    assert re.search(r"re-create it|drop or fill|threshold explicit|store interaction values|needs at least one|"
                     r"store numbers", msg), msg  # says how to fix it


class TestNpzFiles:
    def test_not_a_zip(self, tmp_path):
        path = write(tmp_path / "text.npz", "user,item\n1,2\n")
        with pytest.raises(DataFormatError, match=r"text\.npz.*not an npz"):
            read_npz(path)

    def test_npy_file(self, tmp_path):
        path = tmp_path / "arr.npz"
        with open(path, "wb") as fh:
            np.save(fh, np.ones(3))
        with pytest.raises(DataFormatError, match=r"arr\.npz.*not an npz"):
            read_npz(path)

    def test_truncated(self, tmp_path):
        good = tmp_path / "good.npz"
        save_npz(good, Interactions.from_matrix(M))
        path = tmp_path / "cut.npz"
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        with pytest.raises(DataFormatError, match=r"cut\.npz.*truncated"):
            read_npz(path)

    @pytest.mark.parametrize("compressed", [True, False])
    def test_corrupt_payload(self, tmp_path, compressed):
        good = tmp_path / "good.npz"
        rng = np.random.default_rng(0)
        X = sp.random(200, 300, density=0.2, format="csr", random_state=rng, dtype=np.float64)
        save_npz(good, Interactions.from_matrix(X), compressed=compressed)
        raw = bytearray(good.read_bytes())
        mid = len(raw) // 2
        raw[mid:mid + 16] = bytes(16) if any(raw[mid:mid + 16]) else b"\xff" * 16
        path = tmp_path / "flipped.npz"
        path.write_bytes(bytes(raw))
        with pytest.raises(DataFormatError, match=r"flipped\.npz.*corrupt"):
            read_npz(path)

    def test_empty_zip(self, tmp_path):
        import zipfile

        path = tmp_path / "empty.npz"
        zipfile.ZipFile(path, "w").close()
        with pytest.raises(DataFormatError, match=r"empty\.npz.*missing.*found: none"):
            read_npz(path)


# -- read_csv ---------------------------------------------------------------------------------

class TestReadCsv:
    def test_basic_header_exact_matrix(self, tmp_path):
        path = write(tmp_path / "r.csv", "user,item,rating\n10,100,5\n9,7,3\n10,7,4\n100,100,1\n")
        inter = read_csv(path)
        assert_canonical(inter)
        # ids sorted numerically, not as text
        assert inter.user_ids.dtype == np.int64 and inter.user_ids.tolist() == [9, 10, 100]
        assert inter.item_ids.dtype == np.int64 and inter.item_ids.tolist() == [7, 100]
        np.testing.assert_array_equal(dense(inter), [[1, 0], [1, 1], [0, 1]])
        assert inter.matrix.indices.tolist() == [0, 0, 1, 1]

    def test_binarize_false_values_and_summed_duplicates(self, tmp_path):
        path = write(tmp_path / "r.csv", "user,item,rating\n1,1,2.5\n1,2,4\n1,1,1\n2,2,0\n2,1,3\n")
        inter = read_csv(path, binarize=False)
        assert_canonical(inter)
        np.testing.assert_array_equal(dense(inter), [[3.5, 4], [3, 0]])  # rating 0 stores nothing
        assert inter.nnz == 3
        bin_ = read_csv(path)
        np.testing.assert_array_equal(dense(bin_), [[1, 1], [1, 1]])  # every row is a positive

    def test_duplicates_collapse_to_one(self, tmp_path):
        path = write(tmp_path / "d.csv", "user,item\na,x\na,x\na,x\nb,x\n")
        inter = read_csv(path)
        assert inter.nnz == 2
        assert inter.matrix.data.tolist() == [1.0, 1.0]
        counts = read_csv(path, binarize=False)  # no rating column: repeats are counted
        np.testing.assert_array_equal(dense(counts), [[3], [1]])

    def test_string_ids_sorted(self, tmp_path):
        path = write(tmp_path / "s.csv", "userId,movieId\nzoe,m10\nadam,m2\nzoe,m2\n")
        inter = read_csv(path)
        assert inter.user_ids.dtype.kind == "U" and inter.item_ids.dtype.kind == "U"
        assert inter.user_ids.tolist() == ["adam", "zoe"]
        assert inter.item_ids.tolist() == ["m10", "m2"]
        np.testing.assert_array_equal(dense(inter), [[0, 1], [1, 1]])

    def test_mixed_ids_are_strings(self, tmp_path):
        path = write(tmp_path / "m.csv", "user,item\n1,2\nx,3\n")
        inter = read_csv(path)
        assert inter.user_ids.dtype.kind == "U" and inter.user_ids.tolist() == ["1", "x"]
        assert inter.item_ids.dtype == np.int64

    def test_zero_padded_ids_are_not_merged(self, tmp_path):
        path = write(tmp_path / "z.csv", "user,item\n1,007\n1,7\n2,10\n")
        inter = read_csv(path)
        assert inter.item_ids.dtype.kind == "U" and inter.item_ids.tolist() == ["007", "10", "7"]
        assert inter.nnz == 3
        lone = read_csv(write(tmp_path / "z2.csv", "user,item\n1,007\n1,+8\n"))
        assert lone.item_ids.dtype == np.int64 and lone.item_ids.tolist() == [7, 8]

    def test_huge_integers_stay_strings(self, tmp_path):
        path = write(tmp_path / "h.csv", "user,item\n1,99999999999999999999\n")
        assert read_csv(path).item_ids.tolist() == ["99999999999999999999"]

    def test_recbole_inter_header(self, tmp_path):
        path = write(tmp_path / "ml.inter",
                     "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                     "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
                     "196\t377\t4\t881250950\n")
        inter = read_csv(path, min_rating=3)
        assert inter.user_ids.tolist() == [186, 196]
        assert inter.item_ids.tolist() == [242, 302, 377]
        np.testing.assert_array_equal(dense(inter), [[0, 1, 0], [1, 0, 1]])
        named = read_csv(path, user_col="user_id:token", item_col="item_id", rating_col="rating",
                         timestamp_col="timestamp", sep="\t", min_rating=3)
        assert_same(inter, named)

    def test_min_rating_threshold_is_inclusive(self, tmp_path):
        path = write(tmp_path / "t.csv", "user,item,rating\n1,1,3.5\n1,2,3.49\n2,1,5\n2,2,1\n3,3,4\n")
        inter = read_csv(path, min_rating=3.5)
        assert inter.user_ids.tolist() == [1, 2, 3]
        assert inter.item_ids.tolist() == [1, 3]  # item 2 only had low ratings
        np.testing.assert_array_equal(dense(inter), [[1, 0], [1, 0], [0, 1]])
        kept = read_csv(path, min_rating=3.5, binarize=False)
        np.testing.assert_array_equal(dense(kept), [[3.5, 0], [5, 0], [0, 4]])

    def test_min_rating_drops_all(self, tmp_path):
        path = write(tmp_path / "low.csv", "user,item,rating\n1,1,1\n2,2,2\n")
        with pytest.raises(DataFormatError, match=r"low\.csv.*no rows left.*min_rating=3.*2 ratings"):
            read_csv(path, min_rating=3)

    def test_min_rating_without_rating_column(self, tmp_path):
        path = write(tmp_path / "nr.csv", "user,item\n1,1\n")
        with pytest.raises(DataFormatError, match=r"nr\.csv.*needs a rating column.*rating_col="):
            read_csv(path, min_rating=4)

    def test_min_rating_must_be_a_number(self, tmp_path):
        path = write(tmp_path / "r.csv", "user,item,rating\n1,1,1\n")
        with pytest.raises(TypeError, match="min_rating"):
            read_csv(path, min_rating="4")

    @pytest.mark.parametrize("value, word", [("abc", "not a number"), ("nan", "not a finite"),
                                             ("inf", "not a finite"), ("", "not a number")])
    def test_bad_rating_names_line(self, tmp_path, value, word):
        path = write(tmp_path / "bad.csv", f"user,item,rating\n1,1,4\n\n2,2,{value}\n3,3,5\n")
        with pytest.raises(DataFormatError, match=rf"bad\.csv: line 4: rating .*{word}"):
            read_csv(path, min_rating=1)

    def test_unused_rating_column_is_not_parsed(self, tmp_path):
        path = write(tmp_path / "tag.csv", "user,item,rating\n1,1,great\n")
        assert read_csv(path).nnz == 1  # binarised, no threshold: the rating is never read
        with pytest.raises(DataFormatError, match="line 2"):
            read_csv(path, rating_col="rating")  # asked for explicitly: checked

    def test_negative_rating_without_binarize(self, tmp_path):
        path = write(tmp_path / "neg.csv", "user,item,rating\n1,1,-2\n")
        with pytest.raises(DataFormatError, match=r"neg\.csv: line 2.*negative"):
            read_csv(path, binarize=False)
        assert read_csv(path).nnz == 1

    @pytest.mark.parametrize("sep", [",", ";", "\t", "::", "  "])
    def test_separator_detection(self, tmp_path, sep):
        lines = ["user", "item", "rating"], ["1", "a", "5"], ["2", "b", "3"], ["1", "b", "1"]
        path = write(tmp_path / "x.txt", "\n".join(sep.join(r) for r in lines) + "\n")
        inter = read_csv(path, min_rating=2)
        assert inter.user_ids.tolist() == [1, 2] and inter.item_ids.tolist() == ["a", "b"]
        np.testing.assert_array_equal(dense(inter), [[1, 0], [0, 1]])

    def test_explicit_separators(self, tmp_path):
        path = write(tmp_path / "x.csv", "user|item\n1|2\n")
        assert read_csv(path, sep="|").item_ids.tolist() == [2]
        tab = write(tmp_path / "t.csv", "user\titem\n1\t2\n")
        assert read_csv(tab, sep="\\t").item_ids.tolist() == [2]
        ws = write(tmp_path / "w.csv", "user item\n1 \t 2\n")
        assert read_csv(ws, sep=" ").item_ids.tolist() == [2]
        with pytest.raises(ValueError, match="sep"):
            read_csv(path, sep="")

    def test_tsv_extension_means_tab(self, tmp_path):
        path = write(tmp_path / "x.tsv", "user\titem\na,b\tc\n")
        inter = read_csv(path)
        assert inter.user_ids.tolist() == ["a,b"] and inter.item_ids.tolist() == ["c"]

    def test_movielens_dat_without_header(self, tmp_path):
        path = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::1\n")
        with pytest.raises(DataFormatError, match=r"ratings\.dat.*header=False"):
            read_csv(path)
        inter = read_csv(path, header=False, min_rating=4)
        assert inter.user_ids.tolist() == [1, 2] and inter.item_ids.tolist() == [1193]
        np.testing.assert_array_equal(dense(inter), [[1], [1]])

    def test_header_false_positions(self, tmp_path):
        path = write(tmp_path / "p.csv", "i1,u1,9\ni2,u1,1\ni1,u2,5\n")
        inter = read_csv(path, header=False, user_col=1, item_col=0, rating_col=2, binarize=False)
        assert inter.user_ids.tolist() == ["u1", "u2"] and inter.item_ids.tolist() == ["i1", "i2"]
        np.testing.assert_array_equal(dense(inter), [[9, 1], [5, 0]])
        with pytest.raises(ValueError, match="header=False"):
            read_csv(path, header=False, user_col="user")
        with pytest.raises(DataFormatError, match=r"p\.csv.*user_col=5.*3 columns"):
            read_csv(path, header=False, user_col=5)

    def test_header_false_default_rating_position_yields_to_ids(self, tmp_path):
        path = write(tmp_path / "q.csv", "5,x,a\n6,y,a\n")
        inter = read_csv(path, header=False, user_col=2, item_col=1, binarize=False)
        assert inter.user_ids.tolist() == ["a"] and inter.item_ids.tolist() == ["x", "y"]
        np.testing.assert_array_equal(dense(inter), [[1, 1]])  # column 2 is the user, so no ratings
        with pytest.raises(DataFormatError, match=r"q\.csv.*distinct rating_col"):
            read_csv(path, header=False, user_col=2, item_col=1, rating_col=2)

    def test_header_true_with_positions(self, tmp_path):
        path = write(tmp_path / "p.csv", "a,b\nx,1\n")
        inter = read_csv(path, user_col=0, item_col=1)
        assert inter.user_ids.tolist() == ["x"] and inter.item_ids.tolist() == [1]

    def test_column_names_case_insensitive_and_custom(self, tmp_path):
        path = write(tmp_path / "c.csv", "Customer,Product,Stars\nc1,p1,5\nc2,p1,2\n")
        inter = read_csv(path, user_col="customer", item_col="PRODUCT", rating_col="Stars", min_rating=3)
        assert inter.user_ids.tolist() == ["c1"]

    def test_missing_column_lists_available(self, tmp_path):
        path = write(tmp_path / "mc.csv", "user_id:token,item_id:token,rating:float\n1,2,3\n")
        with pytest.raises(DataFormatError) as info:
            read_csv(path, item_col="product")
        msg = str(info.value)
        assert "mc.csv" in msg and "'product'" in msg and "['user_id', 'item_id', 'rating']" in msg
        assert "item_col=" in msg
        with pytest.raises(DataFormatError, match=r"mc\.csv.*timestamp"):
            read_csv(path, timestamp_col="timestamp")

    def test_no_detectable_user_column(self, tmp_path):
        path = write(tmp_path / "nu.csv", "who,item\n1,2\n")
        with pytest.raises(DataFormatError, match=r"nu\.csv: no user column.*\['who', 'item'\].*user_col="):
            read_csv(path)

    def test_same_column_twice(self, tmp_path):
        path = write(tmp_path / "s.csv", "user,item\n1,2\n")
        with pytest.raises(DataFormatError, match="distinct"):
            read_csv(path, user_col="user", item_col="user")

    @pytest.mark.parametrize("text, word", [
        ("", "is empty"),
        ("\n\n  \n", "is empty"),
        ("user,item\n", "no data rows"),
        ("user,item\n\n", "no data rows"),
        ("user,item\n1,2\n3\n", "line 3 has 1 fields, too few"),
        ("user,item\n1,2\n,5\n", "line 3 has an empty user id"),
        ("user,item\n1,2\n5,  \n", "line 3 has an empty item id"),
        ("justonecolumn\n1\n", "separator"),
    ])
    def test_malformed_csv(self, tmp_path, text, word):
        path = write(tmp_path / "broken.csv", text)
        with pytest.raises(DataFormatError) as info:
            read_csv(path)
        assert "broken.csv" in str(info.value)
        assert word in str(info.value)

    def test_single_column_with_explicit_sep(self, tmp_path):
        path = write(tmp_path / "one.csv", "user\n1\n")
        with pytest.raises(DataFormatError, match=r"one\.csv: line 1 has a single column"):
            read_csv(path, sep=",")

    def test_whitespace_bom_crlf_quotes_blank_lines(self, tmp_path):
        text = '\ufeffuser , item , rating\r\n 1 , "a,b" , 5 \r\n\r\n2,  c ,4\r\n'
        inter = read_csv(write(tmp_path / "w.csv", text), min_rating=4)
        assert inter.user_ids.tolist() == [1, 2]
        assert inter.item_ids.tolist() == ["a,b", "c"]
        np.testing.assert_array_equal(dense(inter), [[1, 0], [0, 1]])

    def test_not_utf8(self, tmp_path):
        path = tmp_path / "latin.csv"
        path.write_bytes("user,item\nJosé,1\n".encode("latin-1"))
        with pytest.raises(DataFormatError, match=r"latin\.csv.*UTF-8"):
            read_csv(path)

    def test_csv_error_names_line(self, tmp_path):
        path = write(tmp_path / "huge.csv", "user,item\n1,2\n3," + "x" * 200_000 + "\n")
        with pytest.raises(DataFormatError, match=r"huge\.csv: line 3 cannot be parsed.*field"):
            read_csv(path)

    def test_csv_round_trips_through_npz(self, tmp_path):
        path = write(tmp_path / "r.csv", "user,item,rating\nu2,i9,1\nu1,i3,2\nu1,i9,4\n")
        inter = read_csv(path, binarize=False)
        save_npz(tmp_path / "r.npz", inter)
        assert_same(inter, read_npz(tmp_path / "r.npz", binarize=False))

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="gone.csv"):
            read_csv(tmp_path / "gone.csv")


# -- load_interactions ------------------------------------------------------------------------

class TestLoadInteractions:
    @pytest.mark.parametrize("ext", [".csv", ".tsv", ".txt", ".dat", ".inter", ".CSV"])
    def test_text_extensions(self, tmp_path, ext):
        sep = "\t" if ext in (".tsv", ".inter") else ","
        path = write(tmp_path / f"data{ext}", f"user{sep}item{sep}rating\n1{sep}2{sep}5\n1{sep}3{sep}1\n")
        inter = load_interactions(path, min_rating=4)
        assert inter.item_ids.tolist() == [2]

    def test_npz(self, tmp_path):
        X = Interactions.from_matrix(M, item_ids=["a", "b", "c", "d"])
        save_npz(tmp_path / "x.npz", X)
        assert_same(X, load_interactions(tmp_path / "x.npz"))
        assert_same(X, load_interactions(str(tmp_path / "x.npz"), binarize=True, user_col=None))
        np.testing.assert_array_equal(dense(load_interactions(tmp_path / "x.npz", binarize=False)), B)

    def test_npz_rejects_csv_options(self, tmp_path):
        save_npz(tmp_path / "x.npz", Interactions.from_matrix(M))
        with pytest.raises(TypeError, match="min_rating"):
            load_interactions(tmp_path / "x.npz", min_rating=4)

    @pytest.mark.parametrize("name", ["data.xlsx", "data.json", "data"])
    def test_unsupported_extension(self, tmp_path, name):
        path = write(tmp_path / name, "user,item\n1,2\n")
        with pytest.raises(DataFormatError) as info:
            load_interactions(path)
        msg = str(info.value)
        assert name in msg and "unsupported extension" in msg and ".npz" in msg and ".csv" in msg

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError) as info:
            load_interactions(tmp_path / "absent.csv")
        assert "absent.csv" in str(info.value)

    def test_data_format_error_is_value_error(self):
        assert issubclass(DataFormatError, ValueError)


# -- align_items ------------------------------------------------------------------------------

class TestAlignItems:
    def test_maps_into_target_space_and_counts_unknown(self):
        inter = Interactions.from_matrix(M, item_ids=[10, 20, 30, 40])
        X, n_unknown = align_items(inter, np.array([40, 99, 10]))
        assert X.dtype == np.float32 and X.has_canonical_format
        np.testing.assert_array_equal(X.toarray(), [[1, 0, 0], [0, 0, 1], [1, 0, 0]])
        assert n_unknown == 2  # items 20 and 30

    def test_int_history_against_string_model_ids(self):
        inter = Interactions.from_matrix(M, item_ids=[10, 20, 30, 40])
        X, n_unknown = align_items(inter, np.array(["20", "x"]))
        np.testing.assert_array_equal(X.toarray(), [[1, 0], [0, 0], [0, 0]])
        assert n_unknown == 4


class TestSilentLossIsRefused:
    """Readers never swallow rows, guess between duplicated columns or merge distinct ids."""

    @pytest.mark.parametrize("sep", [",", "\t", ";", "::"])
    def test_unterminated_quote_names_its_line(self, tmp_path, sep):
        rows = ["user", "item"], ["1", "2"], ["1", '"3'], ["2", "4"], ["2", "5"]
        path = write(tmp_path / "q.csv", "\n".join(sep.join(r) for r in rows) + "\n")
        with pytest.raises(DataFormatError, match=r"q\.csv: line 3: a quote opened on this line is never closed, "
                                                  r"so lines 3-5 would be read as one field"):
            read_csv(path)

    @pytest.mark.parametrize("text, line", [
        ('user,item\n1,a"b\n1,"3\n2,4\n', 3),            # an even number of quotes: Arrow's path, then the check
        ('user,item,title\n1,2,"Heat\n1,3,Up\n2,4,x\n', 2),  # open in a column that is not read
    ])
    def test_an_open_quote_is_caught_on_every_path(self, tmp_path, text, line):
        with pytest.raises(DataFormatError, match=rf"line {line}: a quote opened on this line is never closed"):
            read_csv(write(tmp_path / "q.csv", text))

    def test_a_quoted_line_break_that_closes_reads_as_pythons_csv_reads_it(self, tmp_path):
        inter = read_csv(write(tmp_path / "q.csv", 'user,item\n1,"a\nb"\n2,3\n'))
        assert inter.item_ids.tolist() == ["3", "a\nb"]
        inter = read_csv(write(tmp_path / "t.csv", 'user,item,title\n1,2,"Heat\n(1995)"\n1,3,Up\n'))
        assert inter.item_ids.tolist() == [2, 3] and inter.nnz == 2

    def test_quotes_that_close_on_their_line_still_read(self, tmp_path):
        inter = read_csv(write(tmp_path / "ok.csv", 'user,item\n1,"a,b"\n2, "c" \n'))
        assert inter.item_ids.tolist() == ["a,b", "c"]

    @pytest.mark.parametrize("header, kwargs, shown", [
        ("user,item,item", {}, "item"),
        ("user,Item,ITEM:token", {}, "ITEM"),
        ("user,user,item", {}, "user"),
        ("uid,x,item,item", {"user_col": "uid", "item_col": "item"}, "item"),
        ("user,item,rating,rating", {"min_rating": 1}, "rating"),
    ])
    def test_duplicated_header_column_is_refused(self, tmp_path, header, kwargs, shown):
        n = len(header.split(","))
        path = write(tmp_path / "dup.csv", header + "\n" + ",".join(["1"] * n) + "\n")
        with pytest.raises(DataFormatError, match=rf"dup\.csv: line 1: the header names column '{shown}' twice "
                                                  r"\(columns \d and \d\)"):
            read_csv(path, **kwargs)

    def test_float_ids_that_cannot_be_exact_are_refused(self):
        from lae_fast.ids import id_column

        assert id_column(np.array([2.0 ** 53, -3.0]), name="ids").tolist() == [2 ** 53, -3]
        for big in (2.0 ** 53 + 2, 1e19, -1e30):
            with pytest.raises(TypeError, match="float ids beyond 2\\*\\*53"):
                id_column(np.array([1.0, big]), name="ids")
        with pytest.raises(TypeError, match="float ids beyond"):  # 2**53 + 1 and + 2 are one float
            Interactions.from_matrix(sp.eye(2, format="csr"), item_ids=np.array([2.0 ** 53 + 2, 1.0]))


# -- tiny files that declare huge arrays --------------------------------------------------------------------
def _npy_bytes(shape, dtype="<f4", payload=b""):
    """An .npy header declaring ``shape`` followed by ``payload`` (which need not match it)."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue() + payload


def _zip(path, members, *, zeros=None):
    """An npz of raw .npy members; ``zeros=(key, shape, dtype)`` streams a member of zeros (deflated)."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, raw in members.items():
            zf.writestr(key + ".npy", raw)
        if zeros is not None:
            key, shape, dtype = zeros
            with zf.open(key + ".npy", "w", force_zip64=True) as fh:
                fh.write(_npy_bytes(shape, dtype))
                left = int(np.prod(shape)) * np.dtype(dtype).itemsize
                chunk = bytes(1 << 22)
                while left > 0:
                    fh.write(chunk[:min(left, len(chunk))])
                    left -= len(chunk)
    return path


def _peak_bytes(call):
    """(peak bytes traced while ``call`` ran, its exception or None): numpy reports to tracemalloc."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        error = None
    except Exception as exc:  # noqa: BLE001
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


def _csr_members(n_users=2, n_items=6):
    return {"indptr": _npy_bytes((3,), "<i8", np.array([0, 1, 2], np.int64).tobytes()),
            "indices": _npy_bytes((2,), "<i4", np.array([0, 5], np.int32).tobytes()),
            "data": _npy_bytes((2,), "<f4", np.ones(2, np.float32).tobytes()),
            "shape": _npy_bytes((2,), "<i8", np.array([n_users, n_items], np.int64).tobytes())}


class TestDeclaredSizes:
    MiB = 1 << 20

    def test_the_crafted_csr_reads(self, tmp_path):
        inter = read_npz(_zip(tmp_path / "ok.npz", _csr_members()))
        np.testing.assert_array_equal(dense(inter), [[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]])

    def test_shape_of_a_billion_items_is_refused_by_the_budget_before_allocating(self, tmp_path, monkeypatch):
        import lae_fast._memory as memory

        path = _zip(tmp_path / "wide.npz", _csr_members(2, 10 ** 9))
        assert path.stat().st_size < 1000
        monkeypatch.setattr(memory, "available_memory", lambda: 4 << 30)
        peak, error = _peak_bytes(lambda: read_npz(path))
        assert isinstance(error, MemoryError) and "2 x 1000000000 interaction matrix" in str(error)
        assert peak < 8 * self.MiB

    def test_the_cli_refuses_a_fit_it_cannot_do_before_reading(self, tmp_path):
        from click.testing import CliRunner

        from lae_fast.cli import main

        path = _zip(tmp_path / "wide.npz", _csr_members(2, 10 ** 9))
        for args in (["-q", "fit", str(path), "-o", str(tmp_path / "m.laef")], ["-q", "evaluate", str(path)]):
            peak, _ = _peak_bytes(lambda: CliRunner().invoke(main, args))
            result = CliRunner().invoke(main, args)
            # the dense n x n, or the neighbourhood route it would fall back to: neither fits
            assert result.exit_code == 1 and re.search(r"Error: (fitting EASE|the neighbourhood route) \(1000000000 "
                                                       "items", result.output), result.output
            assert peak < 32 * self.MiB  # the 8 GB of item ids are never built
        assert not (tmp_path / "m.laef").exists()

    def test_fit_checks_the_n_by_n_buffer_before_touching_X(self, monkeypatch):
        import lae_fast
        import lae_fast._memory as memory

        monkeypatch.setattr(memory, "available_memory", lambda: 1 << 30)
        X = sp.csr_matrix((np.ones(2, np.float32), ([0, 1], [0, 10 ** 6 - 1])), shape=(2, 10 ** 6))
        peak, error = _peak_bytes(lambda: lae_fast.EASE(1.0).fit(Interactions.from_matrix(X)))
        assert isinstance(error, MemoryError) and "(1000000 items" in str(error), error
        assert peak < 64 * self.MiB  # refused before X is checked or its ids are sorted

    def test_a_member_bomb_that_disagrees_is_never_inflated(self, tmp_path):
        members = _csr_members()
        del members["data"]
        path = _zip(tmp_path / "bomb.npz", members, zeros=("data", (64 * self.MiB,), "<f4"))  # 256 MiB
        assert path.stat().st_size < 2 * self.MiB
        peak, error = _peak_bytes(lambda: read_npz(path))
        assert isinstance(error, DataFormatError) and "shapes disagree" in str(error)
        assert "indices has 2, data has 67108864" in str(error)
        assert peak < 8 * self.MiB

    def test_members_the_reader_does_not_need_are_never_inflated(self, tmp_path):
        path = _zip(tmp_path / "extra.npz", _csr_members(), zeros=("row", (64 * self.MiB,), "<i4"))
        peak, error = _peak_bytes(lambda: read_npz(path))
        assert error is None and peak < 8 * self.MiB

    @pytest.mark.parametrize("key, shape", [("data", (10 ** 12,)), ("shape", (10 ** 9,)), ("indptr", (3, 10 ** 10))])
    def test_a_header_that_declares_more_than_the_member_holds(self, tmp_path, key, shape):
        members = _csr_members()
        members[key] = _npy_bytes(shape, "<f4" if key == "data" else "<i8", b"\0" * 64)
        peak, error = _peak_bytes(lambda: read_npz(_zip(tmp_path / "liar.npz", members)))
        assert isinstance(error, DataFormatError), error
        assert re.search(rf"array '{key}' declares shape|its '{key}' entry declares shape", str(error)), str(error)
        assert peak < 8 * self.MiB

    def test_an_empty_shape_entry_of_a_huge_first_axis(self, tmp_path):
        """Found by the property test: (2**34, 0) declares 0 bytes, and its list would be 2**34 lists."""
        members = _csr_members()
        members["shape"] = _npy_bytes((2 ** 34, 0), "<i8")
        peak, error = _peak_bytes(lambda: read_npz(_zip(tmp_path / "s.npz", members)))
        assert isinstance(error, DataFormatError), error
        assert "shape must be two non-negative integers (n_users, n_items), got an array of shape (17179869184, 0)" \
            in str(error)
        assert peak < 8 * self.MiB

    def test_object_members_are_refused_without_unpickling(self, tmp_path):
        members = _csr_members()
        members["item_ids"] = _npy_bytes((6,), "|O", b"\x80\x04junk")
        with pytest.raises(DataFormatError, match="holds Python objects, and lae-fast never loads pickles"):
            read_npz(_zip(tmp_path / "pickle.npz", members))

    def test_shard_item_spaces_read_only_shape_and_ids(self, tmp_path):
        from lae_fast.data.npz import read_npz_item_ids

        members = _csr_members()
        members["item_ids"] = _npy_bytes((6,), "<i8", np.arange(10, 16, dtype=np.int64).tobytes())
        del members["data"]
        path = _zip(tmp_path / "shard.npz", members, zeros=("data", (64 * self.MiB,), "<f4"))
        peak, error = _peak_bytes(lambda: read_npz_item_ids(path))
        assert error is None and peak < 8 * self.MiB
        assert read_npz_item_ids(path).tolist() == list(range(10, 16))

    def test_embedding_files_that_declare_too_much(self, tmp_path):
        from lae_fast.text import ItemTextError, load_embeddings

        npy = tmp_path / "emb.npy"
        npy.write_bytes(_npy_bytes((10 ** 6, 10 ** 6), "<f4", b"\0" * 128))
        peak, error = _peak_bytes(lambda: load_embeddings(npy))
        assert isinstance(error, ItemTextError) and "declares shape (1000000, 1000000)" in str(error)
        assert peak < 8 * self.MiB
        members = {"item_ids": _npy_bytes((2,), "<i8", np.arange(2, dtype=np.int64).tobytes()),
                   "embeddings": _npy_bytes((2, 10 ** 9), "<f4", b"\0" * 64)}
        with pytest.raises(ItemTextError, match=r"array 'embeddings' declares shape \(2, 1000000000\)"):
            load_embeddings(_zip(tmp_path / "emb.npz", members))
