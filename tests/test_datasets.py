"""Readers of the dataset files users have (GroupLens zips and folders, LightGCN splits), on tiny files.

No network: the pinned-wheel loaders are covered by the CLI demo test. Every reader is exercised in its
zip and folder forms, and every malformed case must name the file (``archive.zip:member`` inside a zip)
and the line.
"""
import os
import zipfile

import numpy as np
import pytest

from lae_fast.data import DataFormatError, Interactions
from lae_fast.datasets import (Dataset, cache_dir, dataset_status, detect_format, load_dataset, read_lightgcn,
                               read_movielens_100k, read_movielens_csv, read_movielens_dat)
from lae_fast.evaluation import Split, evaluate

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western"]


def flags(*names):
    return "|".join("1" if g in names else "0" for g in GENRES)


# user item rating timestamp; positives (>= 4): u1: 1, 2; u2: 2, 3; u3: 1
U_DATA = "1\t1\t5\t881250949\n1\t2\t4\t881250950\n2\t2\t4\t881250951\n2\t3\t5\t881250952\n" \
         "3\t1\t4\t881250953\n3\t2\t2\t881250954\n1\t3\t3\t881250955\n"
TOY_FLAGS = flags("Animation", "Children's", "Comedy")
U_ITEM = (f"1|Toy Story (1995)|01-Jan-1995||http://x/1|{TOY_FLAGS}\n"
          f"2|Café Society (1995)|01-Jan-1995||http://x/2|{flags('Drama')}\n"
          f"3|unknown||||{flags('unknown')}\n")
U_GENRE = "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n"

RATINGS_DAT = "1::10::5::978300760\n1::20::3::978302109\n2::20::4::978301968\n2::30::4.5::978300275\n"
MOVIES_DAT = "10::Toy Story (1995)::Animation|Children's|Comedy\n20::Amélie (2001)::Comedy|Romance\n" \
             "30::Heat (1995)::Action\n"

RATINGS_CSV = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n" \
              "2,3,4.5,964982224\n2,6,5.0,964983815\n3,1,4.0,964982931\n"
MOVIES_CSV = 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n' \
             '3,"American President, The (1995)",Comedy|Drama|Romance\n' \
             '6,"Movie with ""quotes"" (2000)",(no genres listed)\n'


def write(folder, files, encoding="utf-8"):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode(encoding))
    return folder


def zip_of(path, files, encoding="utf-8", prefix=""):
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(prefix + name, text.encode(encoding))
    return path


def ml100k_files():
    return {"u.data": U_DATA, "u.item": U_ITEM, "u.genre": U_GENRE}


def pairs(inter):
    X = inter.matrix.tocoo()
    return sorted((int(inter.user_ids[r]), inter.item_ids[c].item()) for r, c in zip(X.row, X.col))


# -- MovieLens-100K --------------------------------------------------------------------------------

def check_ml100k(inter, texts):
    assert isinstance(inter, Interactions)
    assert pairs(inter) == [(1, 1), (1, 2), (2, 2), (2, 3), (3, 1)]
    assert inter.user_ids.dtype == np.int64 and inter.item_ids.tolist() == [1, 2, 3]
    assert texts == {1: "Toy Story (1995). Genres: Animation, Children's, Comedy",
                     2: "Café Society (1995). Genres: Drama", 3: "unknown. Genres: unknown"}


def test_ml100k_zip_folder_and_file(tmp_path):
    archive = zip_of(tmp_path / "ml-100k.zip", ml100k_files(), "latin-1", prefix="ml-100k/")
    check_ml100k(*read_movielens_100k(archive))
    folder = write(tmp_path / "ml-100k", ml100k_files(), "latin-1")
    check_ml100k(*read_movielens_100k(folder))
    check_ml100k(*read_movielens_100k(folder / "u.data"))
    inter, _ = read_movielens_100k(folder, min_rating=None)
    assert inter.nnz == 7


def test_ml100k_without_u_genre_uses_standard_genres(tmp_path):
    files = ml100k_files()
    del files["u.genre"]
    check_ml100k(*read_movielens_100k(write(tmp_path / "d", files, "latin-1")))


def test_ml100k_missing_member_names_zip_and_fix(tmp_path):
    files = ml100k_files()
    del files["u.item"]
    archive = zip_of(tmp_path / "ml-100k.zip", files, "latin-1", prefix="ml-100k/")
    with pytest.raises(DataFormatError, match=r"ml-100k\.zip: has no u\.item inside \(found: ml-100k/u\.data"):
        read_movielens_100k(archive)
    folder = write(tmp_path / "f", files, "latin-1")
    with pytest.raises(DataFormatError, match=r"f/u\.item: not found; the GroupLens ml-100k\.zip"):
        read_movielens_100k(folder)


@pytest.mark.parametrize("member, text, match", [
    ("u.data", U_DATA.replace("2\t3\t5", "2,3,5"), r"ml-100k/u\.data: line 4 has 2 tab-separated fields, "
                                                   r"expected 4 .*looks ','-separated"),
    ("u.data", U_DATA + "4\tx\t5\t1\n", r"u\.data: line 8: item 'x' is not an integer id"),
    ("u.data", U_DATA + "4\t5\tnan\t1\n", r"u\.data: line 8: rating 'nan' is not a finite number"),
    ("u.data", U_DATA + "\n4\t5\n", r"u\.data: line 9 has 2 tab-separated fields, expected 4"),
    ("u.item", U_ITEM + "4|Short line|x\n", r"ml-100k/u\.item: line 4 has 3 '\|'-separated fields, expected 24"),
    ("u.item", U_ITEM.replace("1|Toy", "one|Toy"), r"u\.item: line 1: movie id 'one' is not an integer"),
    ("u.genre", "Action|zero\n", r"u\.genre: line 1: genre index 'zero' is not an integer"),
])
def test_ml100k_malformed_lines(tmp_path, member, text, match):
    files = ml100k_files()
    files[member] = text
    archive = zip_of(tmp_path / "ml-100k.zip", files, "latin-1", prefix="ml-100k/")
    with pytest.raises(DataFormatError, match=match):
        read_movielens_100k(archive)


def test_ml100k_min_rating_leaves_nothing(tmp_path):
    folder = write(tmp_path / "d", ml100k_files(), "latin-1")
    with pytest.raises(DataFormatError, match=r"u\.data: none of its 7 ratings is >= min_rating=6"):
        read_movielens_100k(folder, min_rating=6)
    with pytest.raises(TypeError, match="min_rating"):
        read_movielens_100k(folder, min_rating="4")


def test_corrupt_member_is_named(tmp_path):
    archive = zip_of(tmp_path / "ml-100k.zip", {**ml100k_files(), "u.data": U_DATA * 300}, "latin-1",
                     prefix="ml-100k/")
    raw = bytearray(archive.read_bytes())
    at = raw.find(b"ml-100k/u.data") + len("ml-100k/u.data") + 10
    raw[at:at + 20] = b"\0" * 20  # damage the stored bytes of u.data
    archive.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=r"ml-100k\.zip: is corrupt or truncated .*download it again"):
        read_movielens_100k(archive)


def test_missing_path_and_corrupt_zip(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_movielens_100k(tmp_path / "absent.zip")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises((DataFormatError, FileNotFoundError)):
        read_movielens_100k(bad)


# -- MovieLens-1M ------------------------------------------------------------------------------------

def check_ml1m(inter, texts):
    assert pairs(inter) == [(1, 10), (2, 20), (2, 30)]
    assert texts == {10: "Toy Story (1995). Genres: Animation, Children's, Comedy",
                     20: "Amélie (2001). Genres: Comedy, Romance", 30: "Heat (1995). Genres: Action"}


def test_ml1m_zip_and_folder_latin1(tmp_path):
    files = {"ratings.dat": RATINGS_DAT, "movies.dat": MOVIES_DAT, "users.dat": "1::F::1::10::48067\n"}
    check_ml1m(*read_movielens_dat(zip_of(tmp_path / "ml-1m.zip", files, "latin-1", prefix="ml-1m/")))
    folder = write(tmp_path / "ml-1m", files, "latin-1")
    check_ml1m(*read_movielens_dat(folder))
    check_ml1m(*read_movielens_dat(folder / "ratings.dat"))
    renamed = folder / "my_ratings.dat"
    renamed.write_bytes(RATINGS_DAT.encode())
    check_ml1m(*read_movielens_dat(renamed))  # a renamed ratings file; movies.dat found next to it


@pytest.mark.parametrize("member, text, match", [
    ("ratings.dat", RATINGS_DAT.replace("::", ","), r"ml-1m/ratings\.dat: line 1 has 1 '::'-separated field, "
                                                   r"expected 4 \(UserID::MovieID::Rating::Timestamp\).*','"),
    ("ratings.dat", RATINGS_DAT + "3::40\n", r"ratings\.dat: line 5 has 2 '::'-separated fields"),
    ("ratings.dat", RATINGS_DAT + "3::4.5::5::1\n", r"ratings\.dat: line 5: MovieID '4\.5' is not an integer id"),
    ("movies.dat", MOVIES_DAT + "40|Bad (1999)|Drama\n", r"ml-1m/movies\.dat: line 4 has 1 '::'-separated "
                                                         r"fields, expected 3 .*'\|'-separated"),
    ("movies.dat", "x::T::Drama\n", r"movies\.dat: line 1: MovieID 'x' is not an integer"),
])
def test_ml1m_malformed(tmp_path, member, text, match):
    files = {"ratings.dat": RATINGS_DAT, "movies.dat": MOVIES_DAT}
    files[member] = text
    with pytest.raises(DataFormatError, match=match):
        read_movielens_dat(zip_of(tmp_path / "ml-1m.zip", files, "latin-1", prefix="ml-1m/"))


def test_ml1m_missing_movies_in_zip(tmp_path):
    archive = zip_of(tmp_path / "ml-1m.zip", {"ratings.dat": RATINGS_DAT}, prefix="ml-1m/")
    with pytest.raises(DataFormatError, match=r"ml-1m\.zip: has no movies\.dat inside .*GroupLens ml-1m\.zip"):
        read_movielens_dat(archive)


# -- MovieLens-20M / 25M / latest (csv) --------------------------------------------------------------

def check_csv(inter, texts):
    assert pairs(inter) == [(1, 1), (2, 3), (2, 6), (3, 1)]
    assert texts == {1: "Toy Story (1995). Genres: Adventure, Animation",
                     3: "American President, The (1995). Genres: Comedy, Drama, Romance",
                     6: 'Movie with "quotes" (2000).'}


def test_csv_zip_folder_and_quotes(tmp_path):
    files = {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV, "tags.csv": "userId,movieId,tag\n"}
    check_csv(*read_movielens_csv(zip_of(tmp_path / "ml-latest-small.zip", files, prefix="ml-latest-small/")))
    folder = write(tmp_path / "ml-25m", files)
    check_csv(*read_movielens_csv(folder))
    inter, _ = read_movielens_csv(folder / "ratings.csv", min_rating=None)
    assert inter.nnz == 5


def test_csv_columns_found_by_header_name(tmp_path):
    shuffled = "timestamp,rating,movieId,userId\n1,4.0,1,1\n1,5.0,6,2\n"
    folder = write(tmp_path / "d", {"ratings.csv": shuffled, "movies.csv": MOVIES_CSV})
    inter, _ = read_movielens_csv(folder)
    assert pairs(inter) == [(1, 1), (2, 6)]


@pytest.mark.parametrize("member, text, match", [
    ("ratings.csv", RATINGS_CSV.replace(",", ";"), r"ratings\.csv: no userId column in the header"),
    ("ratings.csv", RATINGS_CSV + "4,7\n", r"ml-25m/ratings\.csv: line 7 has 2 ','-separated fields, expected 4 "
                                            r"\(userId,movieId,rating,timestamp\)"),
    ("ratings.csv", RATINGS_CSV + "4,7,four,1\n", r"ratings\.csv: line 7: rating 'four' is not a finite number"),
    ("ratings.csv", "", r"ratings\.csv: is empty"),
    ("movies.csv", MOVIES_CSV + "7\n", r"ml-25m/movies\.csv: line 5 has 1 fields, expected 3 .*quote titles"),
    ("movies.csv", MOVIES_CSV + "x7,T,Drama\n", r"movies\.csv: line 5: movieId 'x7' is not an integer"),
    ("movies.csv", "id,name\n1,A\n", r"movies\.csv: no movieId column"),
])
def test_csv_malformed(tmp_path, member, text, match):
    files = {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV}
    files[member] = text
    with pytest.raises(DataFormatError, match=match):
        read_movielens_csv(zip_of(tmp_path / "ml-25m.zip", files, prefix="ml-25m/"))


def test_csv_latin1_movies_are_tolerated(tmp_path):
    folder = write(tmp_path / "d", {"ratings.csv": RATINGS_CSV})
    (folder / "movies.csv").write_bytes('movieId,title,genres\n1,Café (1999),Drama\n'.encode("latin-1"))
    _, texts = read_movielens_csv(folder)
    assert texts == {1: "Café (1999). Genres: Drama"}


@pytest.mark.parametrize("layout", ["csv", "dat", "u.data"])
def test_block_wise_parsing_matches_in_zip_and_folder(tmp_path, monkeypatch, layout):
    """Arrow's blocks (here of 64 bytes: many per file) give the pairs a plain Python reading gives."""
    from lae_fast.data import delimited_arrow

    rng = np.random.default_rng(0)
    rows = [(int(u), int(i), float(r)) for u, i, r in zip(rng.integers(1, 40, 500), rng.integers(1, 60, 500),
                                                             rng.integers(1, 11, 500) / 2)]
    if layout == "csv":
        files = {"ratings.csv": "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},0\n" for u, i, r in rows),
                 "movies.csv": "movieId,title,genres\n"}
        reader, encoding = read_movielens_csv, "utf-8"
    elif layout == "dat":
        files = {"ratings.dat": "".join(f"{u}::{i}::{r:g}::0\n" for u, i, r in rows), "movies.dat": ""}
        reader, encoding = read_movielens_dat, "latin-1"
    else:
        files = {"u.data": "".join(f"{u}\t{i}\t{r:g}\t0\n" for u, i, r in rows), "u.item": ""}
        reader, encoding = read_movielens_100k, "latin-1"
    want = sorted({(u, i) for u, i, r in rows if r >= 4})
    whole, _ = reader(write(tmp_path / "d", files, encoding))
    monkeypatch.setattr(delimited_arrow, "BLOCK_SIZE", 64)
    blocks, _ = reader(zip_of(tmp_path / "a.zip", files, encoding, prefix="x/"))
    assert pairs(whole) == pairs(blocks) == want


def test_zip_members_are_streamed_and_latin1_is_transcoded(tmp_path):
    """The text reader of lae_fast.data takes a zip member, latin-1, on its fast path; the line reader agrees."""
    from lae_fast.data.delimited import read_delimited
    from lae_fast.data.delimited_arrow import read_arrow
    from lae_fast.data.delimited_layout import read_layout
    from lae_fast.data.delimited_lines import read_lines
    from lae_fast.datasets._files import _Files

    text = "user::item::rating\nJosé::Amélie (2001)::5\nZoë::Heat (1995)::3\n\xefb::x::4\n"
    archive = zip_of(tmp_path / "t.zip", {"r.dat": text}, "latin-1", prefix="t/")
    with _Files(archive) as files:
        source = files.source("t/r.dat", "latin-1")
        with source.open_text() as fh:
            layout = read_layout(source.name, fh, sep=None, header=True, user_col=None, item_col=None,
                                 rating_col=None, timestamp_col=None, min_rating=4, binarize=True)
        fast = read_arrow(source, layout, min_rating=4, binarize=True, num_threads=None)
        with source.open_text() as fh:
            ref = read_lines(fh, layout, min_rating=4, binarize=True)
        inter = read_delimited(source, min_rating=4)
    for got in (fast, ref, inter):
        assert got.user_ids.tolist() == ["José", "ïb"] and got.item_ids.tolist() == ["Amélie (2001)", "x"]
        assert got.matrix.toarray().tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize("extra, line", [("4\tx\t1\t1\n", 8), ("4\t5\t1\t1\n\t\t\t\n9\t4.0\t2\t1\n", 10)])
def test_every_row_is_checked_even_below_min_rating(tmp_path, extra, line):
    files = {**ml100k_files(), "u.data": U_DATA + extra}
    with pytest.raises(DataFormatError, match=rf"u\.data: line {line}: item '[^']*' is not an integer id"):
        read_movielens_100k(zip_of(tmp_path / "ml-100k.zip", files, "latin-1", prefix="ml-100k/"))


def test_ids_written_two_ways_are_refused(tmp_path):
    files = {**ml100k_files(), "u.data": U_DATA + "4\t007\t5\t1\n4\t7\t5\t1\n"}
    with pytest.raises(DataFormatError, match=r"u\.data: the item ids are integers, but some are written two ways"):
        read_movielens_100k(write(tmp_path / "d", files, "latin-1"))


# -- LightGCN -----------------------------------------------------------------------------------------

TRAIN_TXT = "0 0 1 2\n1 2 3\n2 1\n3\n"
TEST_TXT = "0 3\n1 4\n2 0 2\n"


def test_lightgcn_split_is_usable_by_evaluate(tmp_path):
    folder = write(tmp_path / "gowalla", {"train.txt": TRAIN_TXT, "test.txt": TEST_TXT})
    for path in (folder, folder / "train.txt", folder / "test.txt",
                 zip_of(tmp_path / "g.zip", {"train.txt": TRAIN_TXT, "test.txt": TEST_TXT}, prefix="gowalla/")):
        split = read_lightgcn(path)
        assert isinstance(split, Split) and split.protocol == "weak"
        assert split.train.shape == (4, 5)
        assert split.train.matrix.toarray().tolist() == [[1, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 1, 0, 0, 0],
                                                         [0] * 5]
        assert split.test.targets.matrix.toarray().tolist() == [[0, 0, 0, 1, 0], [0, 0, 0, 0, 1],
                                                                [1, 0, 1, 0, 0], [0] * 5]
        assert split.test.inputs is split.train and split.val.targets.nnz == 0

    class Popular:  # ranks items by index
        def recommend(self, X, N, *, filter_already_liked_items):
            ids = np.tile(np.arange(5), (X.shape[0], 1))
            ids = np.where(X.toarray() > 0, 99, ids)
            return np.sort(ids, axis=1)[:, :N].astype(np.int32), None

    m = evaluate(Popular(), split, ks=(1,))
    # user 0 (inputs 0,1,2) -> top 3 (hit); user 1 (inputs 2,3) -> 0 (miss); user 2 (input 1) -> 0 (hit 1 of 2)
    assert m["n_users"] == 3 and m["recall@1"] == pytest.approx((1 + 0 + 0.5) / 3)


def test_lightgcn_validation_carved_from_train(tmp_path):
    rng = np.random.default_rng(1)
    train = "".join(f"{u} " + " ".join(map(str, sorted(rng.choice(50, 20, replace=False)))) + "\n"
                    for u in range(30))
    test = "".join(f"{u} {u + 50}\n" for u in range(30))
    folder = write(tmp_path / "d", {"train.txt": train, "test.txt": test})
    full = read_lightgcn(folder)
    split = read_lightgcn(folder, val_fraction=0.1, random_state=3)
    assert split.train.nnz == 30 * 18 and split.val.targets.nnz == 30 * 2
    train, val = split.train.matrix, split.val.targets.matrix
    assert (train + val != full.train.matrix).nnz == 0
    assert train.multiply(val).nnz == 0
    assert split.test.inputs is split.train
    again = read_lightgcn(folder, val_fraction=0.1, random_state=3)
    assert (again.val.targets.matrix != val).nnz == 0


@pytest.mark.parametrize("train, test, match", [
    ("0 1 2\n1 x\n", TEST_TXT, r"train\.txt: line 2: 'x' is not an integer id"),
    ("0,1,2\n", TEST_TXT, r"train\.txt: line 1: '0,1,2' is not an integer id.*','-separated"),
    ("0 1\n0 2\n", TEST_TXT, r"train\.txt: line 2: user 0 already has a line \(line 1\)"),
    (TRAIN_TXT, "0 -3\n", r"test\.txt: line 1: negative id -3"),
    (TRAIN_TXT, "\n\n", r"test\.txt: is empty"),
])
def test_lightgcn_malformed(tmp_path, train, test, match):
    folder = write(tmp_path / "d", {"train.txt": train, "test.txt": test})
    with pytest.raises(DataFormatError, match=match):
        read_lightgcn(folder)


def test_lightgcn_missing_test_file(tmp_path):
    folder = write(tmp_path / "d", {"train.txt": TRAIN_TXT})
    with pytest.raises(DataFormatError, match=r"d/test\.txt: not found; LightGCN"):
        read_lightgcn(folder)


# -- load_dataset / detect_format ----------------------------------------------------------------------

def test_detect_format_and_load_dataset(tmp_path):
    ml100k = zip_of(tmp_path / "ml-100k.zip", ml100k_files(), "latin-1", prefix="ml-100k/")
    ml1m = write(tmp_path / "ml-1m", {"ratings.dat": RATINGS_DAT, "movies.dat": MOVIES_DAT}, "latin-1")
    mlcsv = write(tmp_path / "ml-latest", {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV})
    lgcn = write(tmp_path / "yelp", {"train.txt": TRAIN_TXT, "test.txt": TEST_TXT})
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item,rating\na,x,5\nb,y,1\n")
    assert detect_format(ml100k) == "ml-100k"
    assert detect_format(ml1m) == detect_format(ml1m / "movies.dat") == "ml-dat"
    assert detect_format(mlcsv) == detect_format(mlcsv / "ratings.csv") == "ml-csv"
    assert detect_format(lgcn) == detect_format(lgcn / "test.txt") == "lightgcn"
    assert detect_format(plain) == "interactions"

    ds = load_dataset(ml100k)
    assert isinstance(ds, Dataset) and ds.name == "ml-100k" and ds.format == "ml-100k" and ds.split is None
    check_ml100k(ds.interactions, ds.item_texts)
    check_ml1m(load_dataset(ml1m / "movies.dat").interactions, load_dataset(ml1m).item_texts)
    assert load_dataset(mlcsv, min_rating=None).interactions.nnz == 5
    ds = load_dataset(lgcn, val_fraction=0.0)
    assert ds.split is not None and ds.interactions.nnz == 6 + 4
    assert "split='weak'" in repr(ds)
    # plain files: min_rating applies only when given
    assert load_dataset(plain).interactions.nnz == 2
    assert load_dataset(plain, min_rating=4).interactions.nnz == 1
    assert load_dataset(plain, format="interactions", user_col="user").interactions.nnz == 2
    with pytest.raises(TypeError, match="plain interactions files only"):
        load_dataset(ml1m, user_col="user")


def test_own_ratings_csv_beside_a_movies_csv_is_an_interactions_file(tmp_path):
    """Only GroupLens's ratings.csv (userId,...) is MovieLens-20M; one's own ratings.csv stays a plain file."""
    own = write(tmp_path / "mine", {"ratings.csv": "user,item,rating\na,x,5\nb,y,1\n", "movies.csv": MOVIES_CSV})
    assert detect_format(own / "ratings.csv") == detect_format(own / "movies.csv") == "interactions"
    assert load_dataset(own / "ratings.csv").interactions.nnz == 2
    grouplens = write(tmp_path / "ml-latest", {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV})
    assert detect_format(grouplens / "ratings.csv") == detect_format(grouplens / "movies.csv") == "ml-csv"


def test_load_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match=r"'ml-20m' is neither an existing file or folder nor a known dataset "
                                         r"\(ml-100k, ml-1m\)"):
        load_dataset("ml-20m")
    junk = write(tmp_path / "junk", {"readme.txt": "hello"})
    with pytest.raises(DataFormatError, match=r"junk: holds no dataset lae-fast can read \(found: readme\.txt\)"):
        load_dataset(junk)
    with pytest.raises(ValueError, match="format must be one of"):
        load_dataset(junk, format="parquet")


def test_dataset_status_reports_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAE_FAST_DATA", str(tmp_path))
    assert cache_dir() == tmp_path
    status = {row["name"]: row for row in dataset_status()}
    assert set(status) >= {"ml-100k", "ml-1m"}
    assert not status["ml-1m"]["cached"] and status["ml-1m"]["size_bytes"] == 0
    (tmp_path / "ml-100k").mkdir()
    for name in ("ml-100k.inter", "ml-100k.item"):
        (tmp_path / "ml-100k" / name).write_bytes(b"x" * 10)
    row = {r["name"]: r for r in dataset_status()}["ml-100k"]
    assert row["cached"] and row["size_bytes"] == 20 and row["source"] == "recbole==1.2.1"
    assert os.path.samefile(row["path"], tmp_path / "ml-100k")
