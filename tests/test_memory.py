"""The memory preflight (lae_fast._memory): refuse before allocating, with the estimate and a fix."""
import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
from lae_fast import _memory
from lae_fast._memory import check_fits_in_memory, empty_checked, format_bytes, zeros_checked


def test_absurd_request_is_refused_with_the_estimate(monkeypatch):
    monkeypatch.delenv("LAE_FAST_SKIP_MEMORY_CHECK", raising=False)
    if _memory.available_memory() is None:
        pytest.skip("no memory information on this platform")
    with pytest.raises(MemoryError, match="909.5 TiB") as info:
        check_fits_in_memory(10 ** 15, what="the test buffer")
    msg = str(info.value)
    assert "the test buffer" in msg and "available" in msg and "LAE_FAST_SKIP_MEMORY_CHECK" in msg


def test_preflight_with_pretend_memory(monkeypatch):
    monkeypatch.delenv("LAE_FAST_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr(_memory, "available_memory", lambda: 8 * 2 ** 30)
    check_fits_in_memory(7 * 2 ** 30, what="fits")          # under 90 % of 8 GiB
    with pytest.raises(MemoryError, match=r"needs 7\.5 GiB but only 8\.0 GiB"):
        check_fits_in_memory(int(7.5 * 2 ** 30), what="too much")
    monkeypatch.setattr(_memory, "available_memory", lambda: None)  # unknown: allowed
    check_fits_in_memory(10 ** 18, what="unknown")


def test_skip_env_var(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda: 1024)
    monkeypatch.setenv("LAE_FAST_SKIP_MEMORY_CHECK", "1")
    check_fits_in_memory(10 ** 15, what="skipped")
    monkeypatch.setenv("LAE_FAST_SKIP_MEMORY_CHECK", "0")
    with pytest.raises(MemoryError):
        check_fits_in_memory(10 ** 15, what="not skipped")


def test_gram_refuses_absurd_size(monkeypatch):
    monkeypatch.delenv("LAE_FAST_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr(_memory, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match="40x40 float32 Gram"):
        lae_fast.gram(sp.csr_matrix((3, 40), dtype=np.float32))


def test_available_memory_is_plausible():
    avail = _memory.available_memory()
    assert avail is None or avail > 0


def test_checked_allocations(monkeypatch):
    monkeypatch.delenv("LAE_FAST_SKIP_MEMORY_CHECK", raising=False)
    a = zeros_checked((3, 4), np.float32, what="small")
    assert a.shape == (3, 4) and a.dtype == np.float32 and not a.any()
    assert empty_checked(5, np.float64, what="small").shape == (5,)
    monkeypatch.setattr(_memory, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match=r"the big one needs 3\.7 GiB"):
        empty_checked((1000, 1000, 1000), np.float32, what="the big one")


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1536, 3 * 2 ** 30)] == ["0 B", "1.5 KiB", "3.0 GiB"]
