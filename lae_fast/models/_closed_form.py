"""The closed-form steps the models share, written once (see docs/MODELS.md).

EASE family (§1): γ_j = λ + p/(1−p)·G_jj, P = (G + diag γ)⁻¹,
B = I − P·diag(max(γ_j, (1−ξ)/P_jj)).
L3AE (§2): phase 1 in low rank through M = (EᵀE + λ_F I_d)⁻¹; phase 2 from
P = (G + (λ_X+λ_E) I)⁻¹ plus two n×n×d products.

Used by the model classes (dense route), the tuner (one inverse, many ξ) and
the benchmarks. Every function works in the caller's buffer: a fit needs one
n×n matrix.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import scipy.linalg
from scipy.linalg import blas as scipy_blas

from .._validation import check_scalar
from ..linalg import spd_inverse_inplace

__all__ = ["check_family_params", "check_l3ae_params", "ridge_diagonal", "invert_regularised", "lae_family_inplace", "text_factors", "add_low_rank_inplace",
           "l3ae_inplace"]

#: rows per block when the rank-d update falls back to a blocked loop
_ROW_CHUNK = 512


def check_family_params(l2: float, dropout: float, xi: float) -> Dict[str, float]:
    """λ >= 0, p in [0, 1), ξ >= 0 as floats (the EASE family's hyper-parameters, §1)."""
    return {"l2": check_scalar(l2, name="l2", low=0.0),
            "dropout": check_scalar(dropout, name="dropout", low=0.0, high=1.0, high_inclusive=False),
            "xi": check_scalar(xi, name="xi", low=0.0)}


def check_l3ae_params(l2_x: float, l2_e: float, l2_f: float) -> Dict[str, float]:
    """λ_X real, λ_E >= 0, λ_F > 0 and λ_X + λ_E > 0 (the ridge of the item-item inverse, §2)."""
    l2_x = check_scalar(l2_x, name="l2_x")
    l2_e = check_scalar(l2_e, name="l2_e", low=0.0)
    l2_f = check_scalar(l2_f, name="l2_f", low=0.0, low_inclusive=False)
    if not l2_x + l2_e > 0:
        raise ValueError(
            f"l2_x + l2_e must be > 0 (it is the ridge of the item-item inverse), got "
            f"l2_x={l2_x} + l2_e={l2_e} = {l2_x + l2_e}; a negative l2_x needs l2_e > -l2_x"
        )
    return {"l2_x": l2_x, "l2_e": l2_e, "l2_f": l2_f}


def ridge_diagonal(l2: float, dropout: float, counts: np.ndarray) -> np.ndarray:
    """γ_j = λ + p/(1−p)·G_jj: the L2 ridge plus the dropout penalty (docs/MODELS.md §1), float64."""
    return l2 + (dropout / (1.0 - dropout)) * counts


def invert_regularised(A: np.ndarray, gamma: np.ndarray, *, num_threads: int, hint: str) -> np.ndarray:
    """Overwrite A (upper triangle of G) with P = (G + diag γ)⁻¹, full and symmetric."""
    A[np.diag_indices_from(A)] += gamma.astype(A.dtype)
    try:
        return spd_inverse_inplace(A, num_threads=num_threads)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(f"{exc}: G + regularisation is not positive definite; {hint}") from None


def lae_family_inplace(A: np.ndarray, gamma: np.ndarray, xi: float) -> np.ndarray:
    """Turn P (in A) into B = I − P·diag(max(γ_j, (1−ξ)/P_jj)) in place."""
    p_diag = A.diagonal().astype(np.float64)
    bound = (1.0 - xi) / p_diag
    scale = np.maximum(gamma, bound)
    np.multiply(A, (-scale).astype(A.dtype)[None, :], out=A)
    A[np.diag_indices_from(A)] += 1
    # where the bound is active diag(B) is ξ by construction: store it exactly (1 − P_jj·s_j
    # would leave a rounding residue, e.g. EASE diagonals of ±6e-8 in float32). An unused
    # item sits on the boundary (P_jj = 1/γ_j), hence the few-ulp tolerance.
    active = np.flatnonzero(bound >= gamma * (1.0 - 4 * np.finfo(A.dtype).eps))
    A[active, active] = xi
    return A


def text_factors(E: np.ndarray, l2_f: float) -> Tuple[np.ndarray, np.ndarray]:
    """The low-rank pieces of phase 1: ``W = Fᵀ M`` (n×d) and ``D = 1/(1 − q)`` (n,), float64.

    M = (F Fᵀ + λ_F I_d)⁻¹ = (EᵀE + λ_F I_d)⁻¹ via Cholesky, q_j = f_jᵀ M f_j.
    Then P_F = (I − W F)/λ_F, diag P_F = (1 − q)/λ_F and S = I − D + W·F·D.
    """
    d = E.shape[1]
    K = E.T @ E
    K[np.diag_indices(d)] += l2_f
    try:
        factor = scipy.linalg.cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            f"EᵀE + l2_f·I ({d}x{d}) is not numerically positive definite; raise l2_f (now {l2_f})"
        ) from None
    W = scipy.linalg.cho_solve(factor, E.T, check_finite=False).T  # E M  (M symmetric)
    one_minus_q = 1.0 - np.einsum("ij,ij->i", W, E)
    if not np.all(one_minus_q > 0):
        raise np.linalg.LinAlgError(
            f"the embedding ridge is too weak for float64 (1 - q_j <= 0 for "
            f"{int(np.sum(~(one_minus_q > 0)))} items); raise l2_f (now {l2_f})"
        )
    return np.ascontiguousarray(W), 1.0 / one_minus_q


def add_low_rank_inplace(A: np.ndarray, U: np.ndarray, V: np.ndarray, alpha: float) -> np.ndarray:
    """``A += alpha · U @ V`` in A's own buffer (A C-contiguous n×n, U n×d, V d×n, same dtype).

    One GEMM with beta=1 on the transposed (Fortran) view of A, so no n×n temporary;
    falls back to a blocked row loop (temporary chunk×n) if BLAS would not write in place.
    """
    gemm = scipy_blas.sgemm if A.dtype == np.float32 else scipy_blas.dgemm
    U = np.ascontiguousarray(U, dtype=A.dtype)
    V = np.ascontiguousarray(V, dtype=A.dtype)
    if A.flags.c_contiguous and A.shape[0] > 0:
        # (A)ᵀ is Fortran-ordered: Aᵀ ← alpha · Vᵀ Uᵀ + Aᵀ, with Vᵀ and Uᵀ Fortran views too
        out = gemm(alpha, V.T, U.T, beta=1.0, c=A.T, overwrite_c=True)
        if np.shares_memory(out, A):
            return A
        # a copy was updated instead (never seen with scipy's BLAS); A itself is untouched
    for start in range(0, A.shape[0], _ROW_CHUNK):
        rows = slice(start, start + _ROW_CHUNK)
        A[rows] += alpha * (U[rows] @ V)
    return A


def l3ae_inplace(A: np.ndarray, E: np.ndarray, W: np.ndarray, D: np.ndarray, l2_e: float) -> np.ndarray:
    """Turn P = (G + (λ_X+λ_E) I)⁻¹ (in A) into L3AE's B in place, without P·S (docs/MODELS.md §2).

    With U = P·W (n×d), V = (E·diag D)ᵀ (d×n): diag(PS)_j = P_jj − P_jj D_jj + (UV)_jj,
    c_j = (1 + λ_E diag(PS)_j)/P_jj and B = P·diag(λ_E − λ_E D_jj − c_j) + λ_E·U V, diag(B) = 0.
    λ_E = 0 gives EASE: B = −P·diag(1/diag P).
    """
    dtype = A.dtype
    p_diag = A.diagonal().astype(np.float64)
    if l2_e > 0:
        U = A @ W.astype(dtype)                                    # P Fᵀ M   (n×d)
        V = np.ascontiguousarray((E * D[:, None]).T, dtype=dtype)  # F D      (d×n)
        uv_diag = np.einsum("jk,kj->j", U.astype(np.float64), V.astype(np.float64))
        ps_diag = p_diag - p_diag * D + uv_diag
        c = (1.0 + l2_e * ps_diag) / p_diag
        scale = l2_e - l2_e * D - c
    else:
        scale = -1.0 / p_diag
    np.multiply(A, scale.astype(dtype)[None, :], out=A)
    if l2_e > 0:
        add_low_rank_inplace(A, U, V, l2_e)
    A[np.diag_indices_from(A)] = 0
    return A
