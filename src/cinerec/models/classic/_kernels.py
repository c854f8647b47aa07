"""Compiled inner loops of the classic models (numba, cached on disk).

Each kernel works on plain numpy arrays so it can be tested against a direct numpy
computation; the model classes own shuffling, seeds and hyper-parameters.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

#: float32 lanes of one AVX2 register. Factor tables whose row length is a multiple
#: of this run the SGD loops without a scalar tail (``pad_factors``).
SIMD_FLOAT32_LANES = 8
_CACHE_LINE_FLOATS = 16
#: How many ratings ahead the SGD kernel prefetches factor rows (2 measured best).
_PREFETCH_AHEAD = 2
#: Cache lines prefetched per factor row (8 x 64 bytes = 128 float32).
_PREFETCH_LINES = 8


def pad_factors(n_factors: int) -> int:
    """Row length of a factor table padded to whole SIMD registers.

    Padding columns start at zero and stay zero under the SGD updates (their
    gradient is ``err * 0 - reg * 0``), so a padded table gives the same model; the
    kernels then need no scalar remainder loop, ~25% faster at 100 factors.
    """
    lanes = SIMD_FLOAT32_LANES
    return -(-n_factors // lanes) * lanes


@intrinsic
def _prefetch(typingctx, array, row, col):
    """Hint the CPU to fetch the cache line holding ``array[row, col]`` (no fault, no value)."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    sig = types.void(array, row, col)

    def codegen(context, builder, signature, args):
        aty, rty, cty = signature.args
        arr = context.make_array(aty)(context, builder, args[0])
        idx = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], (rty, cty), strict=True)]
        ptr = cgutils.get_item_pointer(context, builder, aty, arr, idx, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        # llvmlite mangles the name for its pointer type (p0i8 typed, p0 opaque)
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
        # read access, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always")
def _prefetch_row(array: np.ndarray, row: int) -> None:
    # A fixed, unrolled number of lines (a loop over the row length measured ~20%
    # slower); for longer rows the hardware prefetcher streams the rest. Columns are
    # clamped to the last one, which also covers a row that does not start on a
    # line boundary.
    last = array.shape[1] - 1
    for line in range(_PREFETCH_LINES):
        _prefetch(array, row, min(line * _CACHE_LINE_FLOATS, last))


@njit(cache=True, fastmath=True, nogil=True)
def svd_sgd_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    lo: int,
    hi: int,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: np.ndarray,
    reg: np.ndarray,
    biased: bool,
) -> float:
    """One SGD pass of biased MF over rows ``lo:hi`` in array order (Surprise's rule).

    ``nogil``: the model runs disjoint blocks of rows in threads at the same time.

    The caller passes the rating arrays already in visiting order: reading them
    sequentially (rather than through an index array) lets the CPU run ahead to the
    next factor rows, ~40% faster, and the factor rows of the rating two ahead are
    prefetched (~10%). ``P``/``Q`` are float32 and ``fastmath`` lets the factor
    loops use SIMD: several times faster than a scalar float64 loop; give them rows
    padded with `pad_factors` to skip the scalar tail.
    ``lr`` / ``reg`` hold (bu, bi, pu, qi). Updates arrays in place and returns the
    training sum of squared errors seen during the pass.
    """
    k = P.shape[1]
    lr_bu, lr_bi, lr_pu, lr_qi = lr[0], lr[1], lr[2], lr[3]
    reg_bu, reg_bi, reg_pu, reg_qi = reg[0], reg[1], reg[2], reg[3]
    keep_pu = np.float32(1.0 - lr_pu * reg_pu)
    keep_qi = np.float32(1.0 - lr_qi * reg_qi)
    sse = 0.0
    for n in range(lo, hi):
        if n + _PREFETCH_AHEAD < hi:
            _prefetch_row(Q, items[n + _PREFETCH_AHEAD])
            _prefetch_row(P, users[n + _PREFETCH_AHEAD])
        u = users[n]
        i = items[n]
        pu = P[u]
        qi = Q[i]
        dot = np.float32(0.0)
        for f in range(k):
            dot += pu[f] * qi[f]
        est = dot
        if biased:
            est += mu + bu[u] + bi[i]
        err = ratings[n] - est
        sse += err * err
        if biased:
            bu[u] += lr_bu * (err - reg_bu * bu[u])
            bi[i] += lr_bi * (err - reg_bi * bi[i])
        # p += lr_p (e q - reg_p p)  ==  (1 - lr_p reg_p) p + (lr_p e) q : two vector
        # operations per side instead of three
        e32 = np.float32(err)
        step_pu = np.float32(lr_pu) * e32
        step_qi = np.float32(lr_qi) * e32
        for f in range(k):
            puf = pu[f]
            qif = qi[f]
            pu[f] = keep_pu * puf + step_pu * qif
            qi[f] = keep_qi * qif + step_qi * puf
    return sse


@njit(cache=True)
def svdpp_sgd_epoch(
    indptr: np.ndarray,
    indices: np.ndarray,
    ratings: np.ndarray,
    user_order: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    Y: np.ndarray,
    lr: np.ndarray,
    reg: np.ndarray,
) -> float:
    """One SGD pass of SVD++ visiting users in ``user_order``, ratings grouped by user.

    The implicit term ``|N(u)|^-1/2 sum_j y_j`` is computed once per user and the y
    gradient accumulated over the user's ratings, then applied once: the usual fast
    SVD++ schedule (Surprise recomputes the sum per rating, O(|N(u)|) each). The y weight
    decay is that of the |N(u)| per-rating steps, so it stays stable for users with
    thousands of ratings.
    ``lr`` / ``reg`` hold (bu, bi, pu, qi, yj).
    """
    k = P.shape[1]
    sse = 0.0
    imp = np.zeros(k)
    gy = np.zeros(k)
    for t in range(user_order.shape[0]):
        u = user_order[t]
        a, b = indptr[u], indptr[u + 1]
        if b == a:
            continue
        norm = 1.0 / np.sqrt(b - a)
        for f in range(k):
            imp[f] = 0.0
            gy[f] = 0.0
        for n in range(a, b):
            j = indices[n]
            for f in range(k):
                imp[f] += Y[j, f]
        for f in range(k):
            imp[f] *= norm
        for n in range(a, b):
            i = indices[n]
            dot = 0.0
            for f in range(k):
                dot += (P[u, f] + imp[f]) * Q[i, f]
            err = ratings[n] - (mu + bu[u] + bi[i] + dot)
            sse += err * err
            bu[u] += lr[0] * (err - reg[0] * bu[u])
            bi[i] += lr[1] * (err - reg[1] * bi[i])
            for f in range(k):
                puf = P[u, f]
                qif = Q[i, f]
                P[u, f] += lr[2] * (err * qif - reg[2] * puf)
                Q[i, f] += lr[3] * (err * (puf + imp[f]) - reg[3] * qif)
                gy[f] += err * norm * qif
        # the y decay of |N(u)| per-rating steps, (1 - lr reg)^|N(u)|, applied at once:
        # the summed form 1 - |N(u)| lr reg goes below -1 for heavy users and diverges
        decay = (1.0 - lr[4] * reg[4]) ** (b - a)
        for n in range(a, b):
            j = indices[n]
            for f in range(k):
                Y[j, f] = decay * Y[j, f] + lr[4] * gy[f]
    return sse


@njit(cache=True)
def als_biased_half(
    indptr: np.ndarray,
    indices: np.ndarray,
    target: np.ndarray,
    other: np.ndarray,
    other_bias: np.ndarray,
    reg: float,
    out: np.ndarray,
    out_bias: np.ndarray,
) -> None:
    """Explicit biased ALS half-step: for each row solve for ``[x, b]`` exactly.

    Row r's ratings are ``target[indptr[r]:indptr[r+1]]`` (already minus mu) on the
    columns ``indices``; the model is ``target ~ x . y_c + b + b_c``. The ridge
    penalty is ``reg * n_r`` (weighted-lambda ALS, Zhou et al. 2008).
    """
    k = other.shape[1]
    A = np.empty((k + 1, k + 1))
    rhs = np.empty(k + 1)
    z = np.empty(k + 1)
    for r in range(indptr.shape[0] - 1):
        a, b = indptr[r], indptr[r + 1]
        if b == a:
            continue
        A[:, :] = 0.0
        rhs[:] = 0.0
        for n in range(a, b):
            c = indices[n]
            for f in range(k):
                z[f] = other[c, f]
            z[k] = 1.0
            y = target[n] - other_bias[c]
            for f in range(k + 1):
                rhs[f] += y * z[f]
                for g in range(k + 1):
                    A[f, g] += z[f] * z[g]
        lam = reg * (b - a)
        for f in range(k + 1):
            A[f, f] += lam
        sol = np.linalg.solve(A, rhs)
        for f in range(k):
            out[r, f] = sol[f]
        out_bias[r] = sol[k]


@njit(cache=True)
def ials_half(
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    other: np.ndarray,
    gram: np.ndarray,
    reg: float,
    out: np.ndarray,
) -> None:
    """Implicit ALS half-step (Hu, Koren & Volinsky 2008), exact per-row solves.

    ``x_r = (Y^T Y + Y^T (C_r - I) Y + reg I)^-1 Y^T C_r p_r`` with preference 1 on
    observed entries, confidence ``conf`` there and 1 elsewhere; ``gram`` = Y^T Y is
    computed once per half-step so each row costs O(n_r k^2 + k^3).
    """
    k = other.shape[1]
    A = np.empty((k, k))
    rhs = np.empty(k)
    for r in range(indptr.shape[0] - 1):
        a, b = indptr[r], indptr[r + 1]
        if b == a:
            for f in range(k):
                out[r, f] = 0.0
            continue
        A[:, :] = gram
        rhs[:] = 0.0
        for n in range(a, b):
            c = indices[n]
            w = conf[n]
            for f in range(k):
                yf = other[c, f]
                rhs[f] += w * yf
                for g in range(k):
                    A[f, g] += (w - 1.0) * yf * other[c, g]
        for f in range(k):
            A[f, f] += reg
        out[r, :] = np.linalg.solve(A, rhs)


@njit(cache=True)
def knn_predict(
    targets: np.ndarray,
    anchors: np.ndarray,
    s_indptr: np.ndarray,
    s_indices: np.ndarray,
    s_data: np.ndarray,
    z_indptr: np.ndarray,
    z_indices: np.ndarray,
    z_data: np.ndarray,
    k: int,
    min_k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbourhood correction for (target, anchor) pairs.

    For item-KNN a pair is (item i, user u): the neighbours of i (row i of the
    similarity CSR, sorted by decreasing similarity) that u rated, and u's residuals
    ``z_uj`` looked up by binary search in row u of the residual CSR. For user-KNN
    the roles swap (neighbours of u who rated i). Returns the weighted mean of the
    first ``k`` such residuals and the number used (0 when fewer than ``min_k``).
    """
    n = targets.shape[0]
    corr = np.zeros(n)
    used = np.zeros(n, dtype=np.int64)
    for p in range(n):
        t = targets[p]
        a = anchors[p]
        lo, hi = z_indptr[a], z_indptr[a + 1]
        num = 0.0
        den = 0.0
        m = 0
        for q in range(s_indptr[t], s_indptr[t + 1]):
            if m >= k:
                break
            j = s_indices[q]
            pos = lo + np.searchsorted(z_indices[lo:hi], j)
            if pos < hi and z_indices[pos] == j:
                s = s_data[q]
                num += s * z_data[pos]
                den += abs(s)
                m += 1
        if m >= min_k and den > 0.0:
            corr[p] = num / den
            used[p] = m
    return corr, used


#: Columns of the dense operand per block in `csr_dense_matmul`: one block of EASE's
#: 9,724 x 512 float32 matrix (20 MB) stays in the shared L3 while every user row of
#: the batch reads it (measured: 128-1024 within 25% of each other; 512 best).
CSR_DENSE_BLOCK = 512


@njit(cache=True, parallel=True)  # no fastmath: same sums, bit for bit, as scipy's product
def csr_dense_matmul(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, dense: np.ndarray, block: int
) -> np.ndarray:
    """``X @ dense`` for a CSR ``X`` (float32 out), blocked by columns of ``dense``.

    scipy's product streams the whole dense row of every non-zero through memory; for
    a batch of users of an item-item model that reads the matrix once per user. Here
    each block of columns is read once per batch and reused from cache by every row
    (blocks run in parallel), ~3x faster for 1,000 EASE users; for one row there is no
    reuse and scipy is as fast.
    """
    m = indptr.shape[0] - 1
    n = dense.shape[1]
    out = np.zeros((m, n), dtype=np.float32)
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        c0 = b * block
        c1 = min(n, c0 + block)
        w = c1 - c0
        for u in range(m):
            orow = out[u, c0:c1]
            for q in range(indptr[u], indptr[u + 1]):
                drow = dense[indices[q], c0:c1]
                x = np.float32(data[q])
                for c in range(w):
                    orow[c] += x * drow[c]
    return out
