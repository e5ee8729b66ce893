"""Timestamps: numbers kept, dates and ISO-8601 text as seconds since the epoch, alike in every reader.

References are independent of the code under test: ``datetime(..., tzinfo=utc).timestamp()`` for known
answers and Python's own ``datetime.fromisoformat`` (3.11+ reads every form of the grammar) on random strings.
"""
import sys
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lae_fast.data import DataFormatError, Interactions, load_interactions, read_csv, read_npz, save_npz
from lae_fast.data import delimited_arrow
from lae_fast.data.timestamps import arrow_text_seconds, parse_timestamp

from test_data_arrow import assert_same, by_arrow, by_lines, write

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC).timestamp()


KNOWN = [
    ("1970-01-01", 0.0),
    ("1970-01-02T00:00:01", 86401.0),
    ("2024-05-01T12:30:00Z", utc(2024, 5, 1, 12, 30)),
    ("2024-05-01T14:30:00+02:00", utc(2024, 5, 1, 12, 30)),
    ("2024-05-01T10:00-0230", utc(2024, 5, 1, 12, 30)),
    ("2024-05-01T12+00", utc(2024, 5, 1, 12)),
    ("2024-05-01 12:30:00.25", utc(2024, 5, 1, 12, 30) + 0.25),
    ("2000-02-29T23:59:59.123456789", utc(2000, 2, 29, 23, 59, 59) + 0.123456),
    ("1969-12-31T23:59:59.9999999", -1e-6),   # cut to the microsecond, toward the past
    ("20240501", 20240501.0),                  # a number first: not the basic ISO form
    ("1.5e9", 1.5e9),
    ("-7", -7.0),
]


@pytest.mark.parametrize("text, want", KNOWN, ids=[k for k, _ in KNOWN])
def test_known_answers(text, want):
    assert parse_timestamp(text) == want
    fast = arrow_text_seconds(pa.array([text, text]))
    if fast is not None:  # where Arrow reads it, to the same value
        assert fast.tolist() == [want, want]


@pytest.mark.parametrize("text", ["soon", "", "nan", "inf", "2024-02-30", "1900-02-29", "2024-05-01T24:00",
                                  "2024-05-01T12:60", "2024-05-01Z", "2024-5-1", "2024-05-01T12:30:00+24:00",
                                  "2024-05-01T12:30:00+2:00", "2024-05-01t12:30", "2024-05-01T12:30:00.", "0x10",
                                  "2024-05-01T12:30:00.1234567891", "+2024-05-01"])
def test_not_a_timestamp(text):
    with pytest.raises(ValueError, match="is not"):
        parse_timestamp(text)
    assert arrow_text_seconds(pa.array([text])) is None


def _iso(draw_parts):
    y, mo, d, sep, time_parts, frac, zone = draw_parts
    text = f"{y:04d}-{mo:02d}-{d:02d}"
    if time_parts:
        text += sep + ":".join(f"{v:02d}" for v in time_parts)
        if frac and len(time_parts) == 3:
            text += "." + frac
        text += zone
    return text


ISO_STRINGS = st.tuples(st.integers(1, 9999), st.integers(0, 13), st.integers(0, 32), st.sampled_from(["T", " "]),
                        st.lists(st.integers(0, 61), max_size=3), st.text("0123456789", max_size=10),
                        st.sampled_from(["", "Z", "+00", "-05", "+05:30", "-0845", "+23:59", "+24:00", "+01:61"])
                        ).map(_iso)


@settings(max_examples=400, deadline=None)
@given(ISO_STRINGS)
def test_random_iso_strings_agree_with_python_and_arrow(text):
    try:
        got = parse_timestamp(text)
    except ValueError:
        got = None
    fast = arrow_text_seconds(pa.array([text]))
    if got is None:
        assert fast is None
    else:
        assert fast is None or fast[0] == got  # Arrow reads a subset, to the same value
    if sys.version_info >= (3, 11):  # Python's parser reads a superset of this grammar
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            assert got is None
            return
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        try:
            micro = (stamp - EPOCH) // timedelta(microseconds=1)
        except OverflowError:
            return
        if got is not None:
            assert got == float(micro) / 1e6


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False).map(repr) | st.integers(-10 ** 12, 10 ** 12).map(str))
def test_numbers_read_by_arrow_as_by_python(text):
    fast = arrow_text_seconds(pa.array([text]))
    assert fast is None or fast[0] == float(text)


# -- text files: the fast path and the line reader agree -------------------------------------------------

ISO_CSV = ("user,item,rating,ts\n1,a,5,2024-05-01T12:30:00Z\n1,a,4,2024-05-01T10:30:00-03:00\n"
           "2,b,5, 2024-05-02T00:00:00.5+00:00 \n1,b,1,1999-01-01T00:00Z\n")


def test_iso_text_is_read_fast_and_as_the_reference(tmp_path):
    path = write(tmp_path / "iso.csv", ISO_CSV)
    fast = by_arrow(path, timestamp_col="ts", min_rating=4)
    assert_same(fast, by_lines(path, timestamp_col="ts", min_rating=4))
    X = fast.matrix.tocoo()
    got = {(fast.user_ids[r], fast.item_ids[c]): t for r, c, t in zip(X.row, X.col, fast.timestamps)}
    assert got == {(1, "a"): utc(2024, 5, 1, 12, 30), (2, "b"): utc(2024, 5, 2) + 0.5}
    assert fast.timestamps.dtype == np.float64


def test_mixed_forms_in_one_block_go_line_by_line(tmp_path):
    path = write(tmp_path / "mix.csv", "user,item,ts\n1,a,100\n2,b,1970-01-01T00:01:00\n")
    with pytest.raises(delimited_arrow.NeedsLineReader):
        by_arrow(path, timestamp_col="ts")
    inter = read_csv(path, timestamp_col="ts")
    assert inter.timestamps.tolist() == [100.0, 60.0]


def test_blocks_of_either_form_stay_on_the_fast_path(tmp_path, monkeypatch):
    """Each block is read in its own form: lines of 32 bytes in blocks of 64, so no block mixes the two."""
    monkeypatch.setattr(delimited_arrow, "BLOCK_SIZE", 64)
    rows = [f"{u},{u % 5},{u * 10}" for u in range(41)] + [f"{u},{u % 5},1970-01-01T00:{u % 60:02d}:00Z"
                                                          for u in range(41, 80)]
    text = "".join(line.ljust(31) + "\n" for line in ["user,item,ts"] + rows)
    path = write(tmp_path / "blocks.csv", text)
    fast = by_arrow(path, timestamp_col="ts")
    assert_same(fast, by_lines(path, timestamp_col="ts"))
    assert sorted(fast.timestamps.tolist()) == sorted([u * 10.0 for u in range(41)] + [60.0 * (u % 60)
                                                                                      for u in range(41, 80)])


def test_bad_timestamp_names_the_line(tmp_path):
    path = write(tmp_path / "bad.csv", "user,item,ts\n1,a,2024-05-01\n2,b,2024-02-30\n")
    with pytest.raises(DataFormatError, match=r"bad\.csv: line 3: timestamp '2024-02-30' is not a number or an "
                                              r"ISO-8601 date/time"):
        read_csv(path, timestamp_col="ts")


# -- typed tables, frames and pairs -------------------------------------------------------------------------

WHEN = pd.to_datetime(["2024-05-01T12:30:00.0", "2024-05-01T10:30:00.0", "2024-05-02T00:00:00.5",
                       "1999-01-01T00:00:00.0"], format="ISO8601")
WANT = [utc(2024, 5, 1, 10, 30), utc(2024, 5, 2) + 0.5]   # (1, a) keeps the earlier of its two; (2, b)


def frame(ts):
    return pd.DataFrame({"user": [1, 1, 2, 1], "item": ["a", "a", "b", "b"], "rating": [5, 4, 5, 1], "ts": ts})


@pytest.mark.parametrize("ts", [
    pa.array(WHEN.values, pa.timestamp("ms")),
    pa.array(WHEN.values, pa.timestamp("ns")).cast(pa.timestamp("ns", tz="UTC")),
    pa.array(WHEN.tz_localize("UTC").tz_convert("Asia/Kolkata")),
    pa.array(WHEN.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"),
], ids=["ms", "ns-utc", "other-zone", "iso-text"])
def test_parquet_dates_are_seconds(tmp_path, ts):
    path = tmp_path / "t.parquet"
    table = pa.table({"user": [1, 1, 2, 1], "item": ["a", "a", "b", "b"], "rating": [5, 4, 5, 1], "ts": ts})
    pq.write_table(table, path, row_group_size=3)
    inter = load_interactions(path, timestamp_col="ts", min_rating=4)
    assert inter.timestamps.dtype == np.float64 and inter.timestamps.tolist() == WANT
    text = write(tmp_path / "t.csv", "user,item,rating,ts\n" + "".join(
        f"{u},{i},{r},{t}\n" for u, i, r, t in zip(table["user"].to_pylist(), table["item"].to_pylist(),
                                                   table["rating"].to_pylist(), WHEN.strftime("%Y-%m-%d %H:%M:%S.%f"))))
    assert_same(inter, load_interactions(text, timestamp_col="ts", min_rating=4))


def test_parquet_dates_integers_and_errors(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [1, 1], "day": pa.array([0, 2], pa.date32()),
                             "n": pa.array([7, 5], pa.int64()), "bad": ["2024-01-01", "later"]}), path)
    assert load_interactions(path, timestamp_col="day").timestamps.tolist() == [0.0, 2 * 86400.0]
    ints = load_interactions(path, timestamp_col="n").timestamps
    assert ints.dtype == np.int64 and ints.tolist() == [7, 5]  # numbers stay as given
    with pytest.raises(DataFormatError, match=r"d\.parquet: column 'bad': row 2: timestamp 'later' is not a number"):
        load_interactions(path, timestamp_col="bad")


def test_frames_and_pairs(tmp_path):
    inter = Interactions.from_frame(frame(WHEN), timestamp="ts", min_rating=4)
    assert inter.timestamps.tolist() == WANT
    zoned = Interactions.from_frame(frame(WHEN.tz_localize("America/New_York")), timestamp="ts", min_rating=4)
    assert zoned.timestamps.tolist() == [t + 4 * 3600 for t in WANT]  # EDT is UTC-4 on these days
    pairs = Interactions.from_pairs([1, 2], ["a", "b"], timestamps=np.array(["2024-05-01", "1970-01-01T00:00:01"]))
    assert pairs.timestamps.tolist() == [utc(2024, 5, 1), 1.0]
    dt64 = Interactions.from_pairs([1, 2], ["a", "b"], timestamps=WHEN.values[:2])
    assert dt64.timestamps.tolist() == [utc(2024, 5, 1, 12, 30), utc(2024, 5, 1, 10, 30)]
    with pytest.raises(DataFormatError, match="pairs: timestamps: 1 timestamps are missing"):
        Interactions.from_pairs([1, 2], ["a", "b"], timestamps=np.array(["2024-05-01", "NaT"], "datetime64[s]"))
    with pytest.raises(DataFormatError, match="timestamps must be a number or an ISO-8601"):
        Interactions.from_pairs([1, 2], ["a", "b"], timestamps=[True, False])


# -- npz keeps them -----------------------------------------------------------------------------------------

def test_npz_round_trip_keeps_timestamps(tmp_path):
    inter = read_csv(write(tmp_path / "iso.csv", ISO_CSV), timestamp_col="ts")
    save_npz(tmp_path / "t.npz", inter)
    back = read_npz(tmp_path / "t.npz")
    assert_same(back, inter)
    plain = Interactions.from_matrix(inter.matrix)
    save_npz(tmp_path / "p.npz", plain)
    assert read_npz(tmp_path / "p.npz").timestamps is None


def _csr_npz(path, data, indices, indptr, shape, ts, **extra):
    np.savez(path, data=np.asarray(data, np.float32), indices=np.asarray(indices, np.int32),
             indptr=np.asarray(indptr, np.int64), shape=np.asarray(shape), timestamps=np.asarray(ts), **extra)
    return path


def test_npz_timestamps_follow_the_stored_entries(tmp_path):
    zero = _csr_npz(tmp_path / "z.npz", [1, 0, 2], [0, 1, 2], [0, 2, 3], (2, 3), [10, 20, 30])
    assert read_npz(zero).timestamps.tolist() == [10, 30]  # the entry that is 0 is no interaction
    with pytest.raises(DataFormatError, match=r"timestamps has 2 entries but there are nnz = 3"):
        read_npz(_csr_npz(tmp_path / "n.npz", [1, 1, 1], [0, 1, 2], [0, 2, 3], (2, 3), [1, 2]))
    with pytest.raises(DataFormatError, match="not canonical"):
        read_npz(_csr_npz(tmp_path / "u.npz", [1, 1, 1], [1, 0, 2], [0, 2, 3], (2, 3), [1, 2, 3]))
    with pytest.raises(DataFormatError, match="NaN or infinite"):
        read_npz(_csr_npz(tmp_path / "f.npz", [1, 1, 1], [0, 1, 2], [0, 2, 3], (2, 3), [1, np.nan, 3]))
    coo = sp.coo_matrix(np.eye(2, dtype=np.float32))
    sp.save_npz(tmp_path / "c.npz", coo)
    arrays = dict(np.load(tmp_path / "c.npz"))
    np.savez(tmp_path / "c2.npz", **arrays, timestamps=np.array([1, 2]))
    with pytest.raises(DataFormatError, match="beside a COO matrix"):
        read_npz(tmp_path / "c2.npz")
