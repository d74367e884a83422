"""Compiled CPU kernels (numba) for the kNN estimators: Chebyshev distances and KSG counts.

They compute exactly what the torch code in :mod:`.ksg` computes (the torch code stays the
path for tensors on a GPU): a maximum of absolute differences, the ``k``-th smallest of
``max(dx, dy)`` and integer counts of strict comparisons involve no rounding that depends
on the order of operations, so both paths give the same bits (``tests/test_estimators.py``).
They are faster because each row of a distance matrix is produced or consumed in one pass
that stays in cache, where torch makes several passes over ``(n, n)`` temporaries.

The kernels are compiled on first use and cached on disk by numba, where numba finds a
writable cache directory (next to this file, else the user's cache folder); elsewhere (a
read-only install with no writable home) they are compiled once per process instead.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def compiled(**options):
    """``numba.njit(cache=True, **options)``, or without the on-disk cache when numba has no
    writable place for it (it refuses ``cache=True`` at decoration with a RuntimeError)."""

    def decorate(function):
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError:
            return njit(**options)(function)

    return decorate


@compiled(fastmath=True, boundscheck=False)
def _chebyshev(x: np.ndarray, out: np.ndarray) -> None:
    """``out[i, j] = out[j, i] = max_f |x[i, f] - x[j, f]|``, each pair once, four ``j`` per
    sweep of ``x[i]`` (the column writes ``out[j, i]`` stay in cache from one ``i`` to the next).

    ``fastmath`` lets the compiler vectorise the max-reduction over features; it cannot
    change a value here (no product or sum is formed, and the inputs hold no NaN or inf).
    """
    n, d = x.shape
    for i in range(n):
        xi = x[i]
        out[i, i] = 0.0
        j = i + 1
        while j + 4 <= n:
            x0, x1, x2, x3 = x[j], x[j + 1], x[j + 2], x[j + 3]
            m0 = m1 = m2 = m3 = 0.0
            for f in range(d):
                a = xi[f]
                m0 = max(m0, abs(a - x0[f]))
                m1 = max(m1, abs(a - x1[f]))
                m2 = max(m2, abs(a - x2[f]))
                m3 = max(m3, abs(a - x3[f]))
            out[i, j], out[i, j + 1], out[i, j + 2], out[i, j + 3] = m0, m1, m2, m3
            out[j, i], out[j + 1, i], out[j + 2, i], out[j + 3, i] = m0, m1, m2, m3
            j += 4
        while j < n:
            m = 0.0
            xj = x[j]
            for f in range(d):
                m = max(m, abs(xi[f] - xj[f]))
            out[i, j] = out[j, i] = m
            j += 1


def chebyshev_distances(x: np.ndarray) -> np.ndarray:
    """The symmetric matrix ``D[i, j] = max_f |x[i, f] - x[j, f]|`` of the rows of ``x`` (n, d)."""
    x = np.ascontiguousarray(x)
    out = np.empty((x.shape[0], x.shape[0]), dtype=x.dtype)
    _chebyshev(x, out)
    return out


@compiled(boundscheck=False)
def _ksg_counts(dx, dy, rows_x, rows_y, k, n_x, n_y) -> None:
    """KSG algorithm 1 neighbour counts for the pairs ``(x[rows_x[a]], y[rows_y[a]])``.

    ``eps_a`` is the ``k``-th smallest ``max(dx, dy)`` over the other positions ``b != a``
    (kept sorted in ``best`` while the row streams by); ``n_x[a]`` counts positions
    ``b != a`` with ``dx < eps_a`` (``n_y`` likewise).
    """
    m = rows_x.shape[0]
    best = np.empty(k)
    row_x = np.empty(m)
    row_y = np.empty(m)
    for a in range(m):
        source_x, source_y = dx[rows_x[a]], dy[rows_y[a]]
        for b in range(m):
            row_x[b] = source_x[rows_x[b]]
            row_y[b] = source_y[rows_y[b]]
        best[:] = math.inf
        for b in range(m):
            joint = max(row_x[b], row_y[b])
            if joint < best[k - 1] and b != a:
                slot = k - 1
                while slot > 0 and best[slot - 1] > joint:
                    best[slot] = best[slot - 1]
                    slot -= 1
                best[slot] = joint
        radius = best[k - 1]
        count_x = count_y = 0
        for b in range(m):
            count_x += row_x[b] < radius
            count_y += row_y[b] < radius
        itself = 1 if radius > 0 else 0  # position a counts itself (distance 0) when radius > 0
        n_x[a] = count_x - itself
        n_y[a] = count_y - itself


def ksg_neighbour_counts(
    dx: np.ndarray, dy: np.ndarray, rows_x: np.ndarray, rows_y: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_x, n_y)`` of KSG algorithm 1 for the samples paired by ``rows_x``, ``rows_y``.

    The pairs are visited in the order of ``rows_x`` (sorted), which keeps the gathers from
    ``dx`` in cache; the counts are those of the pairs as a set, so only the order of the
    returned arrays depends on it.
    """
    order = np.argsort(rows_x, kind="stable")
    rows_x = np.ascontiguousarray(rows_x[order], dtype=np.int64)
    rows_y = np.ascontiguousarray(rows_y[order], dtype=np.int64)
    n_x = np.empty(rows_x.shape[0], dtype=np.int64)
    n_y = np.empty(rows_x.shape[0], dtype=np.int64)
    _ksg_counts(dx, dy, rows_x, rows_y, k, n_x, n_y)
    return n_x, n_y
