"""lae_fast.ids on the reading path: the sort-based helpers give exactly numpy's ``np.unique`` answers.

numpy 2.3+ answers ``np.unique(x)`` (no ``return_inverse``) with a hash table that is very slow on
millions of values, so the library sorts instead; these tests hold that change to numpy's results.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lae_fast.ids import parse_id_strings, sorted_unique, union_ids

INT64 = st.integers(-(2 ** 63), 2 ** 63 - 1)
UINT64_BIG = st.integers(2 ** 63, 2 ** 64 - 1)
TEXT = st.text(alphabet="ab07 -+", max_size=4)


def assert_identical(got, want):
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.lists(INT64, max_size=40), st.lists(st.integers(-3, 3), max_size=40),
                 st.lists(st.one_of(UINT64_BIG, st.integers(0, 5)), max_size=40), st.lists(TEXT, max_size=40)))
def test_sorted_unique_is_np_unique(values):
    dtype = np.uint64 if any(isinstance(v, int) and v >= 2 ** 63 for v in values) else None
    arr = np.array(values, dtype=dtype) if values else np.zeros(0, dtype=np.int64)
    assert_identical(sorted_unique(arr), np.unique(arr))


def test_sorted_unique_large_and_2d():
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 5000, 200_000)
    assert_identical(sorted_unique(arr), np.unique(arr))
    assert_identical(sorted_unique(arr.reshape(400, 500)), np.unique(arr))
    text = arr[:20_000].astype(str)
    assert_identical(sorted_unique(text), np.unique(text))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-50, 50), max_size=15), min_size=1, max_size=4), st.booleans())
def test_union_ids_is_unique_of_the_concatenation(parts, as_text):
    arrays = [np.array(p, dtype=np.int64) for p in parts]
    if as_text:
        arrays = [a.astype(str) for a in arrays]
    want = np.unique(np.concatenate(arrays))
    assert_identical(union_ids(arrays, names=[f"s{i}" for i in range(len(arrays))]), want)


def test_union_ids_unsigned_and_refusals():
    big = np.array([2 ** 64 - 1, 5], dtype=np.uint64)
    got = union_ids([big, np.array([5, 7])], names=["a", "b"])
    assert_identical(got, np.array([5, 7, 2 ** 64 - 1], dtype=np.uint64))
    with pytest.raises(ValueError, match="negative ids"):
        union_ids([big, np.array([-1])], names=["a", "b"])
    with pytest.raises(ValueError, match="integers in b but strings in a"):
        union_ids([np.array(["x"]), np.array([1])], names=["a", "b"])


def _as(arr, dtype):
    try:
        return arr.astype(dtype)
    except (ValueError, OverflowError):
        return None


def reference_parse(values):
    """parse_id_strings' definition, with Python sets for the merge test and np.unique for the codes."""
    arr = np.array(values)
    ints = _as(arr, np.int64)
    ints = _as(arr, np.uint64) if ints is None else ints
    if ints is not None and len(set(ints.tolist())) != len(set(arr.tolist())):
        ints = None  # reading them as integers would merge two spellings
    ids, inverse = np.unique(arr if ints is None else ints, return_inverse=True)
    return ids, inverse.reshape(-1)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["7", "007", "+7", "-0", "0", "12", "x", "18446744073709551615"]),
                          st.integers(-99, 99).map(str)), min_size=1, max_size=30))
def test_parse_id_strings_matches_its_np_unique_definition(values):
    ids, inverse = parse_id_strings(values)
    want_ids, want_inverse = reference_parse(values)
    assert_identical(ids, want_ids)
    np.testing.assert_array_equal(inverse, want_inverse)


def test_parse_id_strings_merging_spellings_stay_text():
    ids, inverse = parse_id_strings(["7", "007", "8"])
    assert ids.tolist() == ["007", "7", "8"] and inverse.tolist() == [1, 0, 2]
    ids, _ = parse_id_strings(["007", "8"])
    assert ids.dtype == np.int64 and ids.tolist() == [7, 8]
