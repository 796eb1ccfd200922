"""Float64 proofs that a symmetric matrix is positive semidefinite: the check behind every certified upper bound.

A Cholesky factorisation that succeeds in floating point on a - c I, with c above its proved backward error,
proves a >= 0 (Rump 2006). ``_psd_certified`` does it on a dense matrix, ``_psd_certified_blocks`` on a
symmetric block-tridiagonal one (LipSDP's), block by block; ``spectral_norm_upper`` proves a bound on ||w||_2.
"""

from __future__ import annotations

import math

import numpy as np

from lawrob.lipschitz._network import _gamma


def _psd_certified(a: np.ndarray, shift: float = 0.0) -> bool:
    """True only if a - shift I is positive semidefinite (a symmetric, in float64).

    Rump's test (Verification of positive definiteness, BIT 46, 2006; INTLAB's isspd): a floating-point
    Cholesky factorisation that succeeds on b = a - c I computes R^T R = b + E with |E_ij| <= gamma_{n+1} /
    (1 - gamma_{n+1}) sqrt(b_ii b_jj) (Demmel 1989), so ||E||_2 <= gamma_{n+1} / (1 - gamma_{n+1}) tr(a) and
    a >= (c - ||E||_2) I >= 0 once c exceeds that. c is doubled to absorb the rounding of forming a - c I, plus a
    tiny term for underflow, and the extra ``shift`` is added to it.
    """
    n = a.shape[0]
    trace = float(np.trace(a))
    if not np.all(np.isfinite(a)) or trace <= 0:
        return False
    c = 2 * (_gamma(n + 1) / (1 - _gamma(n + 1)) * trace + shift + 1e-290 * n)
    try:
        np.linalg.cholesky(a - c * np.eye(n))
    except np.linalg.LinAlgError:
        return False
    return True




def _psd_certified_blocks(diag: list[np.ndarray], sub: list[np.ndarray], shift: float = 0.0) -> bool:
    """``_psd_certified`` for the symmetric block-tridiagonal matrix with these diagonal and subdiagonal blocks.

    The factorisation is the Cholesky factorisation of the whole matrix, done block by block (L_kk L_kk^T =
    A_kk - c I - L_k,k-1 L_k,k-1^T, L_k,k-1 = A_k,k-1 L_k-1,k-1^-T: the blocks off the band of L are exact zeros),
    so Demmel's bound on its backward error, which holds for every order of evaluating the inner products, and
    hence Rump's shift c are those of the dense test with n = the total size and tr(a) = the total trace.
    """
    from scipy import linalg as scipy_linalg

    n = sum(block.shape[0] for block in diag)
    trace = sum(float(np.trace(block)) for block in diag)
    if not all(np.all(np.isfinite(block)) for block in diag + sub) or trace <= 0:
        return False
    c = 2 * (_gamma(n + 1) / (1 - _gamma(n + 1)) * trace + shift + 1e-290 * n)
    try:
        factor = np.linalg.cholesky(diag[0] - c * np.eye(diag[0].shape[0]))
        for block, coupling in zip(diag[1:], sub):
            off = scipy_linalg.solve_triangular(factor, coupling.T, lower=True, check_finite=False).T
            factor = np.linalg.cholesky(block - c * np.eye(block.shape[0]) - off @ off.T)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.isfinite(factor)))


def spectral_norm_upper(w: np.ndarray, iterations: int = 100) -> float:
    """A certified upper bound s >= ||w||_2.

    Power iteration on the smaller Gram matrix G = w^T w (or w w^T) gives an estimate sigma of ||w||_2 from
    below; s = sigma (1 + delta) + delta ||w||_F is accepted once s^2 I - G is proved positive semidefinite
    (``_psd_certified``), with delta = 1e-12, 1e-10, ..., 1e26 (s then exceeds ||w||_F >= ||w||_2 by far, so this
    certifies unless w^T w overflowed, which raises a FloatingPointError; ``prepare`` rejects such weights first).
    The rounding in forming G, |fl(G) - G| <= gamma_m |w|^T |w| (Higham, Thm 3.5), is covered by shifting the
    test by gamma_m ||w||_F^2 >= ||fl(G) - G||_2.
    """
    gram = w.T @ w if w.shape[1] <= w.shape[0] else w @ w.T
    if not gram.any():
        return 0.0
    frobenius_sq = float(np.sum(w * w))
    vector = np.random.default_rng(0).standard_normal(gram.shape[0])
    for _ in range(iterations):
        vector = gram @ vector
        vector /= np.max(np.abs(vector))  # first to the largest entry: the norm of a vector of 1e200s overflows
        vector /= np.linalg.norm(vector)
    sigma = float(np.sqrt(max(vector @ gram @ vector, 0.0)))
    sigma = sigma if math.isfinite(sigma) else 0.0  # a start vector in the null space: the loop below still ends
    rounding = _gamma(max(w.shape)) * frobenius_sq
    for tries in range(20):  # delta up to 1e26: s > ||w||_F certifies unless G overflowed
        delta = 1e-12 * 100.0**tries
        s = sigma * (1 + delta) + delta * math.sqrt(frobenius_sq)
        if _psd_certified(s * s * np.eye(gram.shape[0]) - gram, rounding):
            return s
    raise FloatingPointError(f"spectral_norm_upper: no certified bound for a matrix with ||w||_F^2 = {frobenius_sq:.3g} "
                             "(overflow in float64?); rescale it")
