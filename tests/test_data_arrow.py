"""The Arrow reading path: delimited text (fast path vs the line-by-line reference), Parquet with the same
options, DataFrames and pairs, the CSR assembly, and the CLI's readers and writers."""
import csv

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lae_fast
from lae_fast.cli import main
from lae_fast.data import DataFormatError, Interactions, load_interactions, read_csv, read_parquet, save_npz
from lae_fast.data import delimited_arrow
from lae_fast.data.columns import coo_to_csr
from lae_fast.data.delimited_arrow import NeedsLineReader, read_arrow
from lae_fast.data.delimited_layout import read_layout
from lae_fast.data.delimited_lines import read_lines


def write(path, text):
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(path)


def layout_of(path, **kw):
    opts = {k: kw.get(k) for k in ("sep", "user_col", "item_col", "rating_col", "timestamp_col", "min_rating")}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return read_layout(path, fh, header=kw.get("header", True), binarize=kw.get("binarize", True), **opts)


def by_lines(path, **kw):
    """The reference: the line-by-line reader on the same layout."""
    layout = layout_of(path, **kw)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return read_lines(fh, layout, min_rating=kw.get("min_rating"), binarize=kw.get("binarize", True))


def by_arrow(path, **kw):
    """The fast path alone (raises NeedsLineReader where it would hand over)."""
    return read_arrow(path, layout_of(path, **kw), min_rating=kw.get("min_rating"),
                      binarize=kw.get("binarize", True), num_threads=kw.get("num_threads"))


def assert_same(a, b):
    assert a.shape == b.shape
    assert a.user_ids.dtype == b.user_ids.dtype and a.item_ids.dtype == b.item_ids.dtype
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_array_equal(a.matrix.indptr, b.matrix.indptr)
    np.testing.assert_array_equal(a.matrix.indices, b.matrix.indices)
    np.testing.assert_array_equal(a.matrix.data, b.matrix.data)
    assert (a.timestamps is None) == (b.timestamps is None)
    if a.timestamps is not None:
        np.testing.assert_array_equal(a.timestamps, b.timestamps)


def pairs_of(inter):
    X = inter.matrix.tocoo()
    return {(inter.user_ids[r].item(), inter.item_ids[c].item()): float(v) for r, c, v in zip(X.row, X.col, X.data)}


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 bytes, so a few lines make many blocks (ids switching type between blocks, ...)."""
    monkeypatch.setattr(delimited_arrow, "BLOCK_SIZE", 64)
    monkeypatch.setattr(delimited_arrow, "_SCAN_CHUNK", 16)


# -- delimited text: the fast path takes what it can and agrees with the reference ------------------------

FAST_CASES = [
    ("r.csv", "user,item,rating\n10,100,5\n9,7,3\n10,7,4\n100,100,1\n", {}),
    ("r.csv", "user,item,rating\n10,100,5\n9,7,3\n10,7,4\n100,100,1\n", {"min_rating": 4}),
    ("r.csv", "user,item,rating\n1,1,2.5\n1,2,4\n1,1,1\n2,2,0\n2,1,3\n", {"binarize": False}),
    ("q.csv", 'user,item\n"a,b","x ""y"""\nc,"line\nbreak"\n', {}),
    ("crlf.csv", "\ufeffuser,item,rating\r\n1,a,5\r\n\r\n2,b,4\r\n", {"min_rating": 4}),
    ("ml.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::1\n", {"header": False, "min_rating": 4}),
    ("colons.dat", "user::item::x\na:::b::c\nd::e::f\n", {}),
    ("ws.txt", "user item rating\n  1   a\t 5 \n2 b 3\n", {"min_rating": 4}),
    ("t.tsv", "user\titem\na,b\tc\n", {}),
    ("z.csv", "user,item\n1,007\n1,7\n2,10\n", {}),
    ("z2.csv", "user,item\n1,007\n1,+8\n", {}),
    ("big.csv", "user,item\n18446744073709551615,1\n5,2\n", {}),
    ("neg.csv", "user,item\n-5,-1\n-0,3\n", {}),
    ("pos.csv", "i1,u1,9\ni2,u1,1\ni1,u2,5\n", {"header": False, "user_col": 1, "item_col": 0, "rating_col": 2,
                                                "binarize": False}),
    ("ts.csv", "user,item,rating,ts\n1,a,5,30\n1,a,4,10\n2,b,5,7.5\n1,b,1,3\n", {"timestamp_col": "ts",
                                                                                 "min_rating": 4}),
]


@pytest.mark.parametrize("name, text, kw", FAST_CASES, ids=[c[0] + str(i) for i, c in enumerate(FAST_CASES)])
def test_fast_path_reads_well_formed_files_as_the_reference_does(tmp_path, name, text, kw):
    path = write(tmp_path / name, text)
    fast = by_arrow(path, **kw)  # not handed over: the fast path itself took the file
    assert_same(fast, by_lines(path, **kw))
    assert_same(read_csv(path, **kw), fast)


def test_known_answers(tmp_path):
    inter = read_csv(write(tmp_path / "q.csv", 'user,item\n"a,b","x ""y"""\nc,"line\nbreak"\n'))
    assert inter.user_ids.tolist() == ["a,b", "c"] and inter.item_ids.tolist() == ["line\nbreak", 'x "y"']
    big = read_csv(write(tmp_path / "b.csv", "user,item\n18446744073709551615,1\n5,2\n"))
    assert big.user_ids.dtype == np.uint64 and big.user_ids.tolist() == [5, 2 ** 64 - 1]
    colons = read_csv(write(tmp_path / "c.dat", "user::item::x\na:::b::c\nd::e::f\n"))
    # 'a:::b::c' is a, ':b', c (left to right, as str.replace does): only two columns are read
    assert colons.user_ids.tolist() == ["a", "d"] and colons.item_ids.tolist() == [":b", "e"]


def test_timestamps_keep_the_earliest_and_align_with_the_matrix(tmp_path):
    path = write(tmp_path / "ts.csv", "user,item,rating,ts\n1,a,5,30\n1,a,4,10\n2,b,5,7.5\n1,b,1,3\n2,a,4,99\n")
    inter = read_csv(path, timestamp_col="ts", min_rating=4)
    X = inter.matrix.tocoo()
    got = {(inter.user_ids[r], inter.item_ids[c]): t for r, c, t in zip(X.row, X.col, inter.timestamps)}
    assert got == {(1, "a"): 10.0, (2, "a"): 99.0, (2, "b"): 7.5}  # (1, b) is below min_rating
    with pytest.raises(DataFormatError, match=r"ts\.csv: line 3: timestamp 'soon' is not a number"):
        read_csv(write(tmp_path / "ts.csv", "user,item,ts\n1,a,3\n1,b,soon\n"), timestamp_col=2)


HANDED_OVER = [
    ("unterminated quote", 'user,item\n1,2\n3,"4\n'),
    ("ragged, extra fields", "user,item\n1,2\n3,4,5\n"),
    ("whitespace-only line", "user,item\n1,2\n   \n3,4\n"),
    ("quote after a blank", 'user,item\n1, "a,b"\n2, "c"\n'),
    ("stray quote in an id", 'user,item\n1,a"b\n2,c\n'),
    ("not UTF-8", "user,item\nJosé,1\n".encode("latin-1")),
    ("NUL character", "user,item\n1,2\x00\n"),
    ("a rating that is not a number", "user,item,rating\n1,1,4\n2,2,abc\n"),
    ("a rating Python reads but Arrow does not", "user,item,rating\n1,1,4\n2,2,1_0\n"),
    ("infinite rating", "user,item,rating\n1,1,4\n2,2,inf\n"),
    ("empty id", "user,item,rating\n1,1,4\n,2,5\n"),
    ("blank row of separators", "user,item,rating\n1,1,4\n , ,\n2,2,5\n"),
]


@pytest.mark.parametrize("case, text", HANDED_OVER, ids=[c[0] for c in HANDED_OVER])
def test_what_the_fast_path_cannot_vouch_for_goes_line_by_line(tmp_path, case, text):
    path = write(tmp_path / "h.csv", text)
    kw = {"min_rating": 1} if "rating" in str(text[:20]) else {}
    try:
        layout_of(path, **kw)
    except (DataFormatError, UnicodeDecodeError):
        with pytest.raises(DataFormatError):
            read_csv(path, **kw)
        return
    with pytest.raises(NeedsLineReader):
        by_arrow(path, **kw)
    try:
        want = by_lines(path, **kw)
    except UnicodeDecodeError:
        with pytest.raises(DataFormatError, match="is not UTF-8 text"):
            read_csv(path, **kw)
        return
    except DataFormatError as exc:
        with pytest.raises(DataFormatError) as info:
            read_csv(path, **kw)
        assert str(info.value) == str(exc)
        return
    assert_same(read_csv(path, **kw), want)


def test_errors_name_the_line_across_blocks(tmp_path, small_blocks):
    rows = [f"{u},{u % 7},{u % 5 + 1}" for u in range(200)]
    rows[150] = "150,3,oops"
    path = write(tmp_path / "many.csv", "user,item,rating\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match=r"many\.csv: line 152: rating 'oops' is not a number"):
        read_csv(path, min_rating=2)


def test_repeated_header_column_is_refused(tmp_path):
    path = write(tmp_path / "dup.csv", "user,item,User\n1,2,3\n")
    with pytest.raises(DataFormatError, match=r"dup\.csv: line 1: the header names column 'User' twice"):
        read_csv(path)


@pytest.mark.parametrize("later", ["x", "007", "-0", "18446744073709551615"])
def test_ids_change_kind_in_a_later_block(tmp_path, small_blocks, later):
    rows = [f"{u},{u % 11}" for u in range(1, 120)] + [f"{later},5", "7,5"]
    path = write(tmp_path / "k.csv", "user,item\n" + "\n".join(rows) + "\n")
    fast = by_arrow(path)
    assert_same(fast, by_lines(path))


def test_many_blocks_with_filter_and_values_equal_the_reference(tmp_path, small_blocks):
    rng = np.random.default_rng(0)
    users = rng.choice(["a", "b", "c", "d", "10", "20"], 300)
    rows = [f"{u},{i},{r}" for u, i, r in zip(users, rng.integers(0, 40, 300), rng.integers(0, 6, 300))]
    path = write(tmp_path / "v.csv", "user,item,rating\n" + "\n".join(rows) + "\n")
    for kw in ({}, {"min_rating": 3}, {"binarize": False}, {"min_rating": 2, "binarize": False}):
        assert_same(by_arrow(path, **kw), by_lines(path, **kw))


def test_no_rows_left_message_is_the_reference_one(tmp_path):
    path = write(tmp_path / "low.csv", "user,item,rating\n1,1,1\n2,2,2\n")
    with pytest.raises(DataFormatError) as fast:
        by_arrow(path, min_rating=3)
    with pytest.raises(DataFormatError) as ref:
        by_lines(path, min_rating=3)
    assert str(fast.value) == str(ref.value)


def test_num_threads_sets_and_restores_arrows_pool(tmp_path):
    path = write(tmp_path / "r.csv", "user,item\n1,2\n3,4\n")
    before = pa.cpu_count()
    assert_same(read_csv(path, num_threads=1), read_csv(path))
    assert pa.cpu_count() == before


def test_integer_ids_mode_on_both_paths(tmp_path):
    """integer_ids (the GroupLens readers' rule): the fast path and the line reader agree, on every row."""
    from lae_fast.data.delimited import read_delimited
    from lae_fast.data.sources import TextSource

    path = write(tmp_path / "i.csv", "user,item,rating\n+7,007,5\n 12 ,3,4\n-4,3,1\n")
    layout = layout_of(path, min_rating=4)
    fast = read_arrow(path, layout, min_rating=4, binarize=True, num_threads=None, integer_ids=True)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        ref = read_lines(fh, layout, min_rating=4, binarize=True, integer_ids=True)
    assert_same(fast, ref)
    assert fast.user_ids.tolist() == [7, 12] and fast.item_ids.tolist() == [3, 7]
    bad = write(tmp_path / "b.csv", "user,item,rating\n1,2,5\n3,x4,1\n")  # below min_rating, still refused
    layout = layout_of(bad, min_rating=4)
    with pytest.raises(NeedsLineReader):
        read_arrow(bad, layout, min_rating=4, binarize=True, num_threads=None, integer_ids=True)
    assert read_csv(bad, min_rating=4).item_ids.tolist() == [2]  # read_csv itself takes any id
    with pytest.raises(DataFormatError, match=r"b\.csv: line 3: item id 'x4' is not an integer"):
        read_delimited(TextSource.file(bad), min_rating=4, integer_ids=True)


def test_no_rows_errors_are_typed(tmp_path):
    from lae_fast.data.interactions import NoRowsError, NoRowsLeftError

    with pytest.raises(NoRowsError, match="no data rows"):
        read_csv(write(tmp_path / "h.csv", "user,item\n"))
    with pytest.raises(NoRowsLeftError) as info:
        read_csv(write(tmp_path / "l.csv", "user,item,rating\n1,1,1\n2,2,2\n"), min_rating=3)
    assert info.value.n_below == 2
    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0]}), path)
    with pytest.raises(NoRowsLeftError, match=r"l\.parquet: no rows left after min_rating=3 \(all 2 ratings"):
        read_parquet(path, min_rating=3)
    with pytest.raises(NoRowsError, match="has no rows") as info:
        Interactions.from_frame(pd.DataFrame({"user": [], "item": []}))
    assert not isinstance(info.value, NoRowsLeftError)


# a garbled or well-formed file: whatever read_csv answers, the line-by-line reference answers the same
_CELLS = st.sampled_from(["1", "2", "10", "007", "-0", "a", "b c", ' "q"', '"x,y"', '"u""v"', "", " ", "4.5",
                          "nan", "1e3", "+3", "é", '"line\nbreak"', "x\ty"])


@st.composite
def text_files(draw):
    sep = draw(st.sampled_from([",", "\t", ";", "::"]))
    rows = draw(st.lists(st.lists(_CELLS, min_size=1, max_size=4), min_size=1, max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    head = draw(st.sampled_from(["user{0}item{0}rating".format(sep), "", "user{0}item".format(sep)]))
    lines = ([head] if head else []) + [sep.join(r) for r in rows]
    return sep, head != "", eol.join(lines) + draw(st.sampled_from([eol, ""]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=text_files(), kw=st.sampled_from([{}, {"min_rating": 2.0}, {"binarize": False}]))
def test_read_csv_equals_the_line_reader(tmp_path, spec, kw):
    sep, header, text = spec
    path = write(tmp_path / "f.csv", text)
    kw = dict(kw, sep=sep, header=header)
    try:
        want = by_lines(path, **kw)
    except (DataFormatError, ValueError) as exc:
        with pytest.raises(type(exc)) as info:
            read_csv(path, **kw)
        assert str(info.value) == str(exc)
        return
    assert_same(read_csv(path, **kw), want)


# -- Parquet: the same options as text --------------------------------------------------------------------

RATINGS = pd.DataFrame({"userId": [10, 10, 9, 100, 9, 10], "movieId": ["m1", "m2", "m1", "m3", "m1", "m1"],
                        "rating": [5.0, 2.0, 4.0, 3.5, 1.0, 4.5], "timestamp": [5, 6, 7, 8, 1, 2]})


@pytest.fixture
def ratings_files(tmp_path):
    pq_path = tmp_path / "ratings.parquet"
    pq.write_table(pa.Table.from_pandas(RATINGS, preserve_index=False), pq_path, row_group_size=2)
    csv_path = tmp_path / "ratings.csv"
    RATINGS.to_csv(csv_path, index=False)
    return str(pq_path), str(csv_path)


@pytest.mark.parametrize("kw", [{}, {"min_rating": 4}, {"binarize": False}, {"min_rating": 3.5, "binarize": False},
                                {"timestamp_col": "timestamp", "min_rating": 4},
                                {"user_col": 0, "item_col": 1, "rating_col": 2, "min_rating": 4}])
def test_parquet_takes_the_csv_options_and_agrees(ratings_files, kw):
    pq_path, csv_path = ratings_files
    a, b = load_interactions(pq_path, **kw), load_interactions(csv_path, **kw)
    assert_same(a, b)
    if kw.get("min_rating") == 4 and not kw.get("binarize", True) is False:
        assert pairs_of(a) == {(10, "m1"): 1.0, (9, "m1"): 1.0}


def test_parquet_keeps_id_types_and_refuses_text_options(tmp_path):
    path = tmp_path / "ids.parquet"
    big = np.array([2 ** 64 - 1, 5, 2 ** 63], dtype=np.uint64)
    pq.write_table(pa.table({"user": pa.array(["7", "007", "x"]),
                             "item": pa.array(big),
                             "cat": pa.array(["a", "b", "a"]).dictionary_encode()}), path)
    inter = read_parquet(path)
    assert inter.user_ids.tolist() == ["007", "7", "x"]  # strings stay strings
    assert inter.item_ids.dtype == np.uint64 and inter.item_ids.tolist() == sorted(big.tolist())
    assert read_parquet(path, item_col="cat").item_ids.tolist() == ["a", "b"]
    with pytest.raises(TypeError, match="sep"):
        load_interactions(path, sep=",")


def test_parquet_errors(tmp_path):
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"user": pa.array([1, None, 3]), "item": [1, 2, 3], "rating": [1.0, float("nan"), 2]}),
                   path)
    with pytest.raises(DataFormatError, match=r"n\.parquet: column 'user' has 1 missing values"):
        read_parquet(path)
    with pytest.raises(DataFormatError, match=r"n\.parquet: no column named 'who'.*user_col="):
        read_parquet(path, user_col="who")
    with pytest.raises(DataFormatError, match=r"n\.parquet: 1 values of column 'rating' are NaN"):
        read_parquet(_without_nulls(tmp_path, path), min_rating=1)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"user": [1], "item": [2]}), plain)
    with pytest.raises(DataFormatError, match=r"plain\.parquet: min_rating=4 needs a rating column"):
        read_parquet(plain, min_rating=4)


def _without_nulls(tmp_path, path):
    out = tmp_path / "n.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(0, "user", pa.array([1, 2, 3])), out)
    return out


# -- DataFrames and pairs ---------------------------------------------------------------------------------

def test_every_frame_kind_gives_the_same_interactions():
    want = Interactions.from_pairs(RATINGS.userId.to_numpy(), RATINGS.movieId.to_numpy().astype(str))
    frames = [RATINGS, pa.Table.from_pandas(RATINGS), RATINGS.astype({"movieId": "category"})]
    polars = pytest.importorskip("polars")
    frames.append(polars.from_pandas(RATINGS))
    dd = pytest.importorskip("dask.dataframe")
    frames.append(dd.from_pandas(RATINGS, npartitions=3))
    for frame in frames:
        assert_same(Interactions.from_frame(frame), want)
    thresholded = Interactions.from_frame(RATINGS, min_rating=4, binarize=False)
    assert pairs_of(thresholded) == {(10, "m1"): 9.5, (9, "m1"): 4.0}  # repeated pairs summed


def test_from_frame_errors():
    with pytest.raises(DataFormatError, match=r"no column named 'who'.*pass user="):
        Interactions.from_frame(RATINGS, user="who")
    with pytest.raises(DataFormatError, match="column 'userId' has 1 missing values"):
        Interactions.from_frame(RATINGS.assign(userId=[1.0, None, 3, 4, 5, 6]))
    with pytest.raises(DataFormatError, match="ids must be integers or strings"):
        Interactions.from_frame(RATINGS.assign(userId=[1.5, 2, 3, 4, 5, 6]))
    with pytest.raises(DataFormatError, match="NaN or infinite"):
        Interactions.from_frame(RATINGS.assign(rating=[1.0, np.inf, 3, 4, 5, 6]), min_rating=2)
    with pytest.raises(TypeError, match="pandas, polars or dask DataFrame"):
        Interactions.from_frame({"user": [1]})


def test_from_pairs_values_timestamps_and_errors():
    inter = Interactions.from_pairs([3, 1, 3, 3], ["b", "a", "b", "a"], [1.0, 2.0, 0.5, 4.0],
                                    timestamps=[9, 8, 7, 6], binarize=False)
    assert pairs_of(inter) == {(1, "a"): 2.0, (3, "a"): 4.0, (3, "b"): 1.5}
    X = inter.matrix.tocoo()
    assert dict(zip(zip(X.row.tolist(), X.col.tolist()), inter.timestamps.tolist())) == \
        {(0, 0): 8, (1, 0): 6, (1, 1): 7}
    with pytest.raises(DataFormatError, match="one length"):
        Interactions.from_pairs([1, 2], [1])
    with pytest.raises(DataFormatError, match="negative"):
        Interactions.from_pairs([1], [1], [-1.0], binarize=False)


def test_fit_takes_a_frame_and_recommends_as_the_npz_path(tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    df = pd.DataFrame({"user": rng.integers(0, 200, n), "item": np.char.add("i", rng.integers(0, 60, n).astype(str)),
                       "rating": rng.integers(1, 6, n).astype(float)})
    save_npz(tmp_path / "x.npz", Interactions.from_frame(df, min_rating=3))
    from_npz = lae_fast.EASE(l2=10.0).fit(load_interactions(tmp_path / "x.npz"))
    from_frame = lae_fast.EASE(l2=10.0).fit(Interactions.from_frame(df, min_rating=3))
    direct = lae_fast.EASE(l2=10.0).fit(df[df.rating >= 3])  # a frame straight into fit
    for model in (from_frame, direct):
        np.testing.assert_array_equal(model.item_ids_, from_npz.item_ids_)
        np.testing.assert_allclose(model.B_, from_npz.B_, rtol=0, atol=0)
    hist = Interactions.from_frame(df[df.user < 20], min_rating=3)
    ids_a, _ = from_npz.recommend(lae_fast.data.align_items(hist, from_npz.item_ids_)[0], 10)
    ids_b, _ = direct.recommend(lae_fast.data.align_items(hist, direct.item_ids_)[0], 10)
    np.testing.assert_array_equal(ids_a, ids_b)


# -- the CSR assembly --------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(0, 60), in_order=st.booleans(), with_values=st.booleans(),
       with_ts=st.booleans())
def test_coo_to_csr_against_a_dictionary(seed, n, in_order, with_values, with_ts):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, 5, n).astype(np.int32), rng.integers(0, 4, n).astype(np.int32)
    if in_order:
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
    values = rng.integers(0, 3, n).astype(np.float64) if with_values else None
    ts = rng.integers(0, 100, n).astype(np.int64) if with_ts else None
    X, got_ts = coo_to_csr(rows, cols, (5, 4), values=values, timestamps=ts)
    ref_v, ref_t = {}, {}
    for k in range(n):
        key = (rows[k], cols[k])
        ref_v[key] = ref_v.get(key, 0.0) + (values[k] if with_values else 1.0)
        if with_ts:
            ref_t[key] = min(ref_t.get(key, np.inf), ts[k])
    ref_v = {k: v for k, v in ref_v.items() if v != 0}
    assert X.has_canonical_format and X.shape == (5, 4)
    coo = X.tocoo()
    assert dict(zip(zip(coo.row.tolist(), coo.col.tolist()), coo.data.tolist())) == ref_v
    if with_ts:
        assert dict(zip(zip(coo.row.tolist(), coo.col.tolist()), got_ts.tolist())) == {k: ref_t[k] for k in ref_v}
    assert np.all(np.diff(X.indices[X.indptr[0]:X.indptr[1]]) > 0)


# -- the command line: Parquet in, Parquet/CSV out -----------------------------------------------------------

def test_cli_fits_parquet_with_rating_options_and_writes_every_format(tmp_path, ratings_files):
    pq_path, csv_path = ratings_files
    runner = CliRunner()
    for data, name in ((pq_path, "p.lae"), (csv_path, "c.lae")):
        result = runner.invoke(main, ["-q", "fit", data, "--min-rating", "3.5", "--l2", "1", "-o",
                                      str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    a, b = lae_fast.load_model(tmp_path / "p.lae"), lae_fast.load_model(tmp_path / "c.lae")
    np.testing.assert_array_equal(a.B_, b.B_)
    hist = write(tmp_path / "h.csv", 'user,item\n"odd, ""user""\nnew",m1\nplain,m2\n')
    out = {}
    for fmt in ("csv", "parquet", "json"):
        target = str(tmp_path / f"recs.{fmt}")
        result = runner.invoke(main, ["-q", "recommend", str(tmp_path / "p.lae"), hist, "-k", "2", "-o", target])
        assert result.exit_code == 0, result.output
        out[fmt] = target
    table = pq.read_table(out["parquet"]).to_pydict()
    rows = list(csv.DictReader(open(out["csv"], newline="", encoding="utf-8")))
    assert [r["user"] for r in rows] == table["user"]
    assert set(table["user"]) == {'odd, "user"\nnew', "plain"}
    assert [r["item"] for r in rows] == table["item"]
    assert [int(r["rank"]) for r in rows] == table["rank"] and table["rank"][0] == 1
    np.testing.assert_allclose([float(r["score"]) for r in rows], table["score"], rtol=1e-5)
    back = read_csv(out["csv"])  # our reader reads our writer's quoting back
    assert sorted(back.user_ids.tolist()) == sorted({'odd, "user"\nnew', "plain"})
    stdout = runner.invoke(main, ["-q", "recommend", str(tmp_path / "p.lae"), hist, "-k", "2"])
    assert stdout.stdout == open(out["csv"], encoding="utf-8", newline="").read()
    refused = runner.invoke(main, ["-q", "recommend", str(tmp_path / "p.lae"), hist, "--format", "parquet"])
    assert refused.exit_code == 2 and "-o" in refused.output


def test_recommend_all_writes_csv_like_parquet(tmp_path):
    ld = pytest.importorskip("lae_fast.distributed")
    X = sp.random(40, 12, density=0.3, format="csr", random_state=0)
    inter = Interactions.from_matrix(X, user_ids=[f"u,{i}" for i in range(40)], item_ids=np.arange(100, 112))
    model = lae_fast.EASE(2.0).fit(inter)
    shards = ld.save_shards(inter, tmp_path / "shards", 3, format="parquet")
    assert len(shards) == 3
    ld.recommend_all(model, tmp_path / "shards", tmp_path / "p", N=4)
    ld.recommend_all(model, tmp_path / "shards", tmp_path / "c", N=4, format="csv")
    for k in range(3):
        table = pq.read_table(tmp_path / "p" / f"part-{k:05d}.parquet").to_pydict()
        rows = list(csv.DictReader(open(tmp_path / "c" / f"part-{k:05d}.csv", newline="")))
        assert [r["user"] for r in rows] == table["user"]
        assert [int(r["item"]) for r in rows] == table["item"]
    with pytest.raises(FileExistsError, match="earlier run"):
        ld.recommend_all(model, tmp_path / "shards", tmp_path / "c", N=4)
