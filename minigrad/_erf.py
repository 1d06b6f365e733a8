"""The error function erf, which NumPy lacks, for the exact GELU.

`erf` evaluates W. J. Cody's rational approximations (1969), accurate to double precision
and vectorized over NumPy arrays; `erf_plain` is the same function by Python's `math.erf`,
one element at a time (about 50 times slower), the reference the tests compare it with.
"""

from __future__ import annotations

import math

import numpy as np


def erf_plain(x: np.ndarray) -> np.ndarray:
    """erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise, by `math.erf`."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(dtype)


# Cody (1969), "Rational Chebyshev approximations for the error function": near-minimax
# rational functions, accurate to double precision on three intervals of |x|.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)  # fmt: skip
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip


def erf(x: np.ndarray) -> np.ndarray:
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise.

    NumPy has none, so this evaluates Cody's rational approximations: erf directly for
    |x| <= 0.46875, otherwise erfc = 1 - erf as exp(-x^2) times a rational function.
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    y = np.abs(x).ravel()  # in x's own precision: float32 stays float32 (the constants follow)
    result = np.empty_like(y)
    # The positions of each interval as index arrays: gathering and scattering with them is
    # several times faster than with boolean masks. NaN goes to the last interval.
    small = np.flatnonzero(y <= 0.46875)
    middle = np.flatnonzero((y > 0.46875) & (y <= 4.0))
    large = np.flatnonzero(~(y <= 4.0))

    ys = y[small]
    z = ys * ys
    num, den = _ERF_A[4] * z, z.copy()
    for a, b in zip(_ERF_A[:3], _ERF_B[:3]):  # Horner's rule, in place (no temporaries)
        num += a
        num *= z
        den += b
        den *= z
    result[small] = ys * (num + _ERF_A[3]) / (den + _ERF_B[3])

    ym = y[middle]
    num, den = _ERFC_C[8] * ym, ym.copy()
    for c, d in zip(_ERFC_C[:7], _ERFC_D[:7]):
        num += c
        num *= ym
        den += d
        den *= ym
    erfc = (num + _ERFC_C[7]) / (den + _ERFC_D[7])
    result[middle] = 1 - _exp_minus_square(ym) * erfc

    yl = np.minimum(y[large], 30.0)  # erf(30) is 1 to any precision; inf would give inf - inf
    z = 1 / (yl * yl)
    num, den = _ERFC_P[5] * z, z.copy()
    for p, q in zip(_ERFC_P[:4], _ERFC_Q[:4]):
        num += p
        num *= z
        den += q
        den *= z
    erfc = (1 / math.sqrt(math.pi) - z * (num + _ERFC_P[4]) / (den + _ERFC_Q[4])) / yl
    result[large] = 1 - _exp_minus_square(yl) * erfc

    return np.copysign(result.reshape(x.shape), x)


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """exp(-y^2) computed as exp(-r^2) exp(-(y - r)(y + r)) with r = y rounded down to 1/16,
    which keeps the full precision that a direct exp(-y*y) loses in the rounding of y*y."""
    r = np.floor(y * 16) / 16
    return np.exp(-r * r) * np.exp(-(y - r) * (y + r))
