# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-pixel rejection kernels in C: stacking (Siril's sigma and winsorized clipping) and
calibration masters (sigma clipping around the mean or the median).

Both work on a stack of frames laid out ``values[frame, pixel]`` (float32, each frame's
pixels contiguous, NaN where a frame has no data) and fill the pixels ``c0:c1`` of their output arrays, so a
caller's threads can share one stack and one set of outputs by pixel ranges: the kernels
run without the GIL. Pixels are taken in blocks of ``BLOCK``; a block's values are copied
to a small scratch array (frames x BLOCK, resident in cache), blanks become +inf, and every
column is sorted by a sorting network whose comparators run along the block, which the C
compiler turns into vector min/max. A clip around a centre then keeps a contiguous window
``[lo, hi)`` of each pixel's sorted values, so an iteration costs a median lookup and one
pass over the window. Sums are accumulated in double precision.
"""
from functools import lru_cache

import numpy as np

from libc.math cimport INFINITY, NAN, fabs, sqrt
from libc.stdlib cimport free, malloc


cdef extern from "kernels_network.h":
    void datas_compare_swap(float *low, float *high, Py_ssize_t n) noexcept nogil

# Pixels per block: 256 x 25 frames x 4 bytes = 25 kB of scratch.
cdef enum:
    _BLOCK = 256
BLOCK = _BLOCK
# Siril stops rejecting when four values would remain.
cdef enum:
    _MIN_KEPT = 4
MIN_KEPT = _MIN_KEPT


@lru_cache(maxsize=64)
def sorting_network(n: int) -> tuple:
    """Batcher's odd-even merge sort comparators for ``n`` inputs (any n)."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def network_array(n: int) -> np.ndarray:
    """The comparators of :func:`sorting_network` as an (m, 2) int64 array for the kernels."""
    return np.array(sorting_network(n) or [(0, 0)], dtype=np.int64).reshape(-1, 2)


cdef struct Scratch:
    float *block      # (frames, BLOCK), row-major: block[i * BLOCK + q]
    Py_ssize_t *n_valid


cdef void _free(Scratch *s) noexcept nogil:
    free(s.block)
    free(s.n_valid)


cdef int _alloc(Scratch *s, Py_ssize_t n) except -1 nogil:
    """The scratch block of ``n`` frames (freed again and MemoryError raised when it cannot be had)."""
    s.block = <float *> malloc(n * _BLOCK * sizeof(float))
    s.n_valid = <Py_ssize_t *> malloc(_BLOCK * sizeof(Py_ssize_t))
    if s.block == NULL or s.n_valid == NULL:
        _free(s)
        with gil:
            raise MemoryError()
    return 0


cdef void _load_sorted(const float[:, :] values, Py_ssize_t start, Py_ssize_t width,
                       const long long[:, ::1] pairs, Scratch *s) noexcept nogil:
    """Copy ``values[:, start:start + width]`` into the scratch block (NaN as +inf), count
    each column's finite values and sort every column ascending."""
    cdef Py_ssize_t n = values.shape[0], i, q, c
    cdef float v
    cdef float *row
    cdef const float *src
    for q in range(width):
        s.n_valid[q] = 0
    for i in range(n):
        row = s.block + i * _BLOCK
        src = &values[i, start]
        for q in range(width):
            v = src[q]
            if v == v:
                s.n_valid[q] += 1
            else:
                v = INFINITY
            row[q] = v
    if n < 2:
        return
    for c in range(pairs.shape[0]):
        datas_compare_swap(s.block + pairs[c, 0] * _BLOCK, s.block + pairs[c, 1] * _BLOCK, width)


cdef inline float _at(Scratch *s, Py_ssize_t i, Py_ssize_t q) noexcept nogil:
    return s.block[i * _BLOCK + q]


cdef inline double _median(Scratch *s, Py_ssize_t q, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """Median of the sorted window ``[lo, hi)`` (mean of the middle two when even)."""
    cdef Py_ssize_t last = hi - 1
    return 0.5 * (<double> _at(s, (lo + last) // 2, q) + <double> _at(s, (lo + last + 1) // 2, q))


cdef inline void _moments(Scratch *s, Py_ssize_t q, Py_ssize_t lo, Py_ssize_t hi, double centre,
                          double *s1, double *s2) noexcept nogil:
    """Sum and sum of squares of the window's values minus ``centre``."""
    cdef double d, a = 0.0, b = 0.0
    cdef Py_ssize_t i
    for i in range(lo, hi):
        d = <double> _at(s, i, q) - centre
        a += d
        b += d * d
    s1[0] = a
    s2[0] = b


cdef inline double _sample_sigma(Scratch *s, Py_ssize_t q, Py_ssize_t lo, Py_ssize_t hi,
                                 double centre) noexcept nogil:
    cdef double s1, s2, var
    cdef Py_ssize_t n = hi - lo
    _moments(s, q, lo, hi, centre, &s1, &s2)
    var = (s2 - s1 * s1 / (n if n > 1 else 1)) / (n - 1 if n > 2 else 1)
    return sqrt(var) if var > 0 else 0.0


cdef double _winsorized_sigma(Scratch *s, Py_ssize_t q, Py_ssize_t lo, Py_ssize_t hi, double centre,
                              int max_iterations) noexcept nogil:
    """Siril's winsorised sigma: clamp to centre +- 1.5 sigma, sigma = 1.134 std, until it
    changes by at most 5e-4 of itself. The clamp range only narrows (Siril clamps the
    already clamped values)."""
    cdef double sigma = _sample_sigma(s, q, lo, hi, centre)
    cdef double low = -INFINITY, high = INFINITY, s1, s2, d, var, new
    cdef Py_ssize_t n = hi - lo, i, it
    cdef bint settled
    if n <= 1:
        return sigma
    for it in range(max_iterations):
        low = max(low, centre - 1.5 * sigma)
        high = min(high, centre + 1.5 * sigma)
        s1 = 0.0
        s2 = 0.0
        for i in range(lo, hi):
            d = min(max(<double> _at(s, i, q), low), high) - centre
            s1 += d
            s2 += d * d
        var = (s2 - s1 * s1 / n) / (n - 1)
        new = 1.134 * (sqrt(var) if var > 0 else 0.0)
        settled = fabs(new - sigma) <= 5e-4 * sigma
        sigma = new
        if settled:
            break
    return sigma


def siril_clip(const float[:, :] values, Py_ssize_t c0, Py_ssize_t c1, const long long[:, ::1] pairs,
               const double[::1] weights, bint equal_weights, bint winsorized, double k_low, double k_high,
               int max_iterations, float[::1] combined, short[::1] count, short[::1] rejected_low,
               short[::1] rejected_high):
    """Siril's sigma (or winsorized sigma) clipping of pixels ``c0:c1``, then the weighted
    mean of the survivors.

    Each iteration keeps ``median - k_low sigma <= v <= median + k_high sigma`` of the
    current survivors (sigma: their sample standard deviation, or the winsorised one);
    pixels stop when nothing changes or when fewer than ``MIN_KEPT`` values would remain,
    and pixels with ``MIN_KEPT`` values or fewer are not clipped. With unequal ``weights``
    the survivors (values between the kept extremes) are averaged from the unsorted stack.
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t start, width, q, m, lo, hi, new_lo, new_hi, i, p, kept, below
    cdef int it
    cdef double centre, sigma, low, high, total, weight
    cdef float low_value, high_value, v
    cdef Scratch s
    _check(values, c0, c1, pairs, combined.shape[0])
    if weights.shape[0] != n or count.shape[0] != combined.shape[0] \
            or rejected_low.shape[0] != combined.shape[0] or rejected_high.shape[0] != combined.shape[0]:
        raise ValueError("weights or outputs do not match the stack")
    with nogil:
        _alloc(&s, n)
        start = c0
        while start < c1:
            width = min(<Py_ssize_t> _BLOCK, c1 - start)
            _load_sorted(values, start, width, pairs, &s)
            for q in range(width):
                m = s.n_valid[q]
                lo = 0
                hi = m
                if m > _MIN_KEPT:
                    for it in range(max_iterations):
                        centre = _median(&s, q, lo, hi)
                        if winsorized:
                            sigma = _winsorized_sigma(&s, q, lo, hi, centre, 50)
                        else:
                            sigma = _sample_sigma(&s, q, lo, hi, centre)
                        low = centre - k_low * sigma
                        high = centre + k_high * sigma
                        new_lo = lo
                        new_hi = hi
                        while new_lo < new_hi and _at(&s, new_lo, q) < low:
                            new_lo += 1
                        while new_hi > new_lo and _at(&s, new_hi - 1, q) > high:
                            new_hi -= 1
                        if new_hi - new_lo < _MIN_KEPT or (new_lo == lo and new_hi == hi):
                            break
                        lo = new_lo
                        hi = new_hi
                p = start + q
                if hi <= lo:
                    combined[p] = NAN
                    count[p] = 0
                    rejected_low[p] = 0
                    rejected_high[p] = 0
                elif equal_weights:
                    total = 0.0
                    for i in range(lo, hi):
                        total += _at(&s, i, q)
                    combined[p] = <float> (total / (hi - lo))
                    count[p] = <short> (hi - lo)
                    rejected_low[p] = <short> lo
                    rejected_high[p] = <short> (m - hi)
                else:
                    low_value = _at(&s, lo, q)
                    high_value = _at(&s, hi - 1, q)
                    total = 0.0
                    weight = 0.0
                    kept = 0
                    below = 0
                    for i in range(n):
                        v = values[i, p]
                        if v >= low_value and v <= high_value:
                            total += weights[i] * v
                            weight += weights[i]
                            kept += 1
                        elif v < low_value:
                            below += 1
                    combined[p] = <float> (total / weight) if weight > 0 else NAN
                    count[p] = <short> kept
                    rejected_low[p] = <short> below
                    rejected_high[p] = <short> (m - kept - below)
            start += width
        _free(&s)


cdef double _median_deviation(Scratch *s, Py_ssize_t q, Py_ssize_t lo, Py_ssize_t hi,
                              double centre) noexcept nogil:
    """Median of ``|v - centre|`` over the sorted window: the deviations on either side of
    ``centre`` are already sorted, so the two runs are merged from the centre outwards."""
    cdef Py_ssize_t n = hi - lo, right = lo, left, k
    cdef Py_ssize_t first = (n - 1) // 2, second = n // 2
    cdef double a = 0.0, b = 0.0, d, dl, dr
    while right < hi and _at(s, right, q) < centre:
        right += 1
    left = right - 1
    for k in range(second + 1):
        if left < lo:
            d = <double> _at(s, right, q) - centre
            right += 1
        elif right >= hi:
            d = centre - <double> _at(s, left, q)
            left -= 1
        else:
            dl = centre - <double> _at(s, left, q)
            dr = <double> _at(s, right, q) - centre
            if dl <= dr:
                d = dl
                left -= 1
            else:
                d = dr
                right += 1
        if k == first:
            a = d
        if k == second:
            b = d
    return 0.5 * (a + b)


def master_clip(const float[:, :] values, Py_ssize_t c0, Py_ssize_t c1, const long long[:, ::1] pairs,
                bint median_centre, bint mad_spread, bint clip_low, double k_low, bint clip_high, double k_high,
                int iterations, bint median_result, double mad_to_sigma, float[::1] combined):
    """Sigma clipping of pixels ``c0:c1`` for a calibration master; returns the number of
    values rejected.

    Each of up to ``iterations`` passes computes the centre (median, or mean) and spread
    (``mad_to_sigma`` x the median absolute deviation, or the standard deviation) of the
    current survivors and rejects values more than ``k_low`` spreads below or ``k_high``
    above the centre (only on the sides asked for); a pixel stops when nothing is
    rejected. Its result is the survivors' median or mean, or the median of all its
    values if none survived (NaN when it has none).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t start, width, q, m, lo, hi, new_lo, new_hi, p
    cdef long long rejected = 0
    cdef int it
    cdef double centre, spread, s1, s2
    cdef bint median
    cdef Scratch s
    _check(values, c0, c1, pairs, combined.shape[0])
    with nogil:
        _alloc(&s, n)
        start = c0
        while start < c1:
            width = min(<Py_ssize_t> _BLOCK, c1 - start)
            _load_sorted(values, start, width, pairs, &s)
            for q in range(width):
                m = s.n_valid[q]
                lo = 0
                hi = m
                for it in range(iterations):
                    if hi <= lo:
                        break
                    if median_centre:
                        centre = _median(&s, q, lo, hi)
                    else:
                        _moments(&s, q, lo, hi, 0.0, &s1, &s2)
                        centre = s1 / (hi - lo)
                    if mad_spread:
                        spread = mad_to_sigma * _median_deviation(&s, q, lo, hi, centre)
                    else:
                        _moments(&s, q, lo, hi, centre, &s1, &s2)
                        spread = s2 / (hi - lo) - (s1 / (hi - lo)) * (s1 / (hi - lo))
                        spread = sqrt(spread) if spread > 0 else 0.0
                    new_lo = lo
                    new_hi = hi
                    if clip_low:
                        while new_lo < new_hi and <double> _at(&s, new_lo, q) - centre < -k_low * spread:
                            new_lo += 1
                    if clip_high:
                        while new_hi > new_lo and <double> _at(&s, new_hi - 1, q) - centre > k_high * spread:
                            new_hi -= 1
                    if new_lo == lo and new_hi == hi:
                        break
                    lo = new_lo
                    hi = new_hi
                rejected += m - (hi - lo)
                median = median_result
                if hi <= lo:
                    lo = 0
                    hi = m
                    median = True
                p = start + q
                if hi <= lo:
                    combined[p] = NAN
                elif median:
                    combined[p] = <float> _median(&s, q, lo, hi)
                else:
                    _moments(&s, q, lo, hi, 0.0, &s1, &s2)
                    combined[p] = <float> (s1 / (hi - lo))
            start += width
        _free(&s)
    return rejected


cdef _check(const float[:, :] values, Py_ssize_t c0, Py_ssize_t c1, const long long[:, ::1] pairs,
            Py_ssize_t outputs):
    if values.shape[1] > 1 and values.strides[1] != sizeof(float):
        raise ValueError("the stack's rows must be contiguous (frames may be any distance apart)")
    if not 0 <= c0 <= c1 <= values.shape[1] or outputs != values.shape[1]:
        raise ValueError(f"pixels {c0}:{c1} or outputs of {outputs} do not fit a stack of {values.shape[1]} pixels")
    if pairs.shape[1] != 2 or (pairs.shape[0] and (np.asarray(pairs).max() >= max(values.shape[0], 1)
                                                   or np.asarray(pairs).min() < 0)):
        raise ValueError("comparators outside the stack's frames")
