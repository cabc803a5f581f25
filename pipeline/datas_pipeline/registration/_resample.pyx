# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled loops of :mod:`datas_pipeline.registration.resample` and the warp's coverage.

Every image is C-contiguous float32, every index array int64, every weight array float32;
each entry point fills the rows (or columns) ``[r0, r1)`` of its output without the GIL,
so the caller's threads share one output by bands. Taps that reach up to ``taps + 2`` px
past the source's edge see the edge repeated; positions further out give 0.
"""
from libc.stdlib cimport free, malloc
from libc.string cimport memset

ctypedef long long i64

cdef enum:
    COLUMN_STRIP = 128     # columns a steep y-shear turns into rows at a time
    TILE = 16              # rows (or columns) moved at a time by the transposes

COLUMN_STRIP_WIDTH = COLUMN_STRIP


cdef inline Py_ssize_t _clip(Py_ssize_t value, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    return lo if value < lo else (hi if value > hi else value)


cdef inline void _taps_along(float *out, const float *line, const float *weights, Py_ssize_t taps,
                             Py_ssize_t n) noexcept nogil:
    """out[j] = sum_k weights[k] line[j + k] for j < n (all taps inside ``line``)."""
    cdef Py_ssize_t j, k
    cdef float wk = weights[0]
    for j in range(n):
        out[j] = wk * line[j]
    for k in range(1, taps):
        wk = weights[k]
        for j in range(n):
            out[j] += wk * line[j + k]


cdef inline float _clamped_sum(const float *line, Py_ssize_t n_in, Py_ssize_t start, const float *weights,
                               Py_ssize_t stride, Py_ssize_t taps) noexcept nogil:
    """sum_k weights[k * stride] line[start + k], the edge repeated for taps outside ``line``."""
    cdef float acc = weights[0] * line[_clip(start, 0, n_in - 1)]
    cdef Py_ssize_t k
    for k in range(1, taps):
        acc += weights[k * stride] * line[_clip(start + k, 0, n_in - 1)]
    return acc


cdef inline bint _beyond_reach(Py_ssize_t start, Py_ssize_t n_in, Py_ssize_t taps) noexcept nogil:
    """True when tap 0 at ``start`` is so far outside the source that the output is 0."""
    return start < -(taps + 2) or start >= n_in - taps + 1 + taps + 2


cdef void _shift_line(float *out, Py_ssize_t width, const float *line, Py_ssize_t n_in, Py_ssize_t c,
                      const float *weights, Py_ssize_t taps) noexcept nogil:
    """out[j] = sum_k weights[k] line[c + j + k]: one row (or column) of a shear. Zones of j:
    zeros before z0 and from z1, the edge repeated in [z0, lo) and [hi, z1), all taps inside
    the source in [lo, hi)."""
    cdef Py_ssize_t pad = taps + 2, j
    cdef Py_ssize_t z0 = _clip(-pad - c, 0, width)
    cdef Py_ssize_t lo = _clip(-c, z0, width)
    cdef Py_ssize_t hi = _clip(n_in - taps + 1 - c, lo, width)
    cdef Py_ssize_t z1 = _clip(n_in - taps + 1 + pad - c, hi, width)
    if z0 > 0:
        memset(out, 0, z0 * sizeof(float))
    for j in range(z0, lo):
        out[j] = _clamped_sum(line, n_in, c + j, weights, 1, taps)
    if hi > lo:
        _taps_along(out + lo, line + c + lo, weights, taps, hi - lo)
    for j in range(hi, z1):
        out[j] = _clamped_sum(line, n_in, c + j, weights, 1, taps)
    if width > z1:
        memset(out + z1, 0, (width - z1) * sizeof(float))


def shift_rows(const float[:, ::1] src, const i64[::1] first_col, const float[:, ::1] weights,
               float[:, ::1] out, Py_ssize_t r0, Py_ssize_t r1):
    """out[i, j] = sum_k weights[i, k] src[i, first_col[i] + j + k] for rows [r0, r1)."""
    cdef Py_ssize_t i
    _rows_fit(r0, r1, out.shape[0], src.shape[0], first_col.shape[0], weights.shape[0])
    with nogil:
        for i in range(r0, r1):
            _shift_line(&out[i, 0], out.shape[1], &src[i, 0], src.shape[1], first_col[i], &weights[i, 0],
                        weights.shape[1])


def resample_rows(const float[:, ::1] src, const i64[::1] first_row, const float[:, ::1] weights,
                  float[:, ::1] out, Py_ssize_t r0, Py_ssize_t r1):
    """out[i, :] = sum_k weights[i, k] src[first_row[i] + k, :] for output rows [r0, r1)."""
    cdef Py_ssize_t i, j, k, s, n_in = src.shape[0], width = out.shape[1], taps = weights.shape[1]
    cdef float wk
    cdef float *o
    cdef const float *line
    _rows_fit(r0, r1, out.shape[0], out.shape[0], first_row.shape[0], weights.shape[0])
    if width != src.shape[1]:
        raise ValueError("output and source rows differ in width")
    with nogil:
        for i in range(r0, r1):
            s = first_row[i]
            o = &out[i, 0]
            if _beyond_reach(s, n_in, taps):
                memset(o, 0, width * sizeof(float))
                continue
            wk = weights[i, 0]
            line = &src[_clip(s, 0, n_in - 1), 0]
            for j in range(width):
                o[j] = wk * line[j]
            for k in range(1, taps):
                wk = weights[i, k]
                line = &src[_clip(s + k, 0, n_in - 1), 0]
                for j in range(width):
                    o[j] += wk * line[j]


def resample_columns(const float[:, ::1] src, const i64[::1] first_col, const float[:, ::1] weights,
                     const i64[:, ::1] runs, const i64[::1] edge_cols, float[:, ::1] out, Py_ssize_t r0,
                     Py_ssize_t r1):
    """out[i, j] = sum_k weights[k, j] src[i, first_col[j] + k] for rows [r0, r1).

    ``runs`` (n, 2) are column ranges [j0, j1) with all taps inside the source and one offset
    ``first_col[j] - j`` each; ``edge_cols`` are the other columns, done tap by tap with the
    edge repeated (0 beyond reach). ``weights`` is (taps, columns).
    """
    cdef Py_ssize_t i, r, j, j0, n, k, e, s
    cdef Py_ssize_t taps = weights.shape[0], columns = weights.shape[1], n_in = src.shape[1]
    cdef const float *line
    cdef const float *shifted
    cdef const float *w
    cdef float *seg
    _rows_fit(r0, r1, out.shape[0], src.shape[0], out.shape[0], out.shape[0])
    if out.shape[1] != columns or first_col.shape[0] != columns:
        raise ValueError("weights, offsets and output columns differ")
    with nogil:
        for i in range(r0, r1):
            line = &src[i, 0]
            for r in range(runs.shape[0]):
                j0 = runs[r, 0]
                n = runs[r, 1] - j0
                seg = &out[i, j0]
                shifted = line + first_col[j0]
                w = &weights[0, j0]
                for j in range(n):
                    seg[j] = w[j] * shifted[j]
                for k in range(1, taps):
                    w = &weights[k, j0]
                    for j in range(n):
                        seg[j] += w[j] * shifted[j + k]
            for e in range(edge_cols.shape[0]):
                j = edge_cols[e]
                s = first_col[j]
                if _beyond_reach(s, n_in, taps):
                    out[i, j] = 0.0
                else:
                    out[i, j] = _clamped_sum(line, n_in, s, &weights[0, j], columns, taps)


def shift_column_runs(const float[:, ::1] src, const i64[::1] first_row, const float[:, ::1] weights,
                      const i64[:, ::1] runs, float[:, ::1] out, Py_ssize_t r0, Py_ssize_t r1):
    """out[i, j] = sum_k weights[k, j] src[first_row[j] + i + k, j] for output rows [r0, r1).

    For a gentle shear: ``runs`` (n, 2) are the column ranges [j0, j1) sharing one
    ``first_row``, each read as contiguous pieces of source rows. ``weights`` is (taps, columns).
    """
    cdef Py_ssize_t i, r, j, j0, n, k, s, n_in = src.shape[0], taps = weights.shape[0]
    cdef const float *line
    cdef const float *w
    cdef float *seg
    _rows_fit(r0, r1, out.shape[0], out.shape[0], out.shape[0], out.shape[0])
    if out.shape[1] != src.shape[1] or weights.shape[1] != src.shape[1] or first_row.shape[0] != src.shape[1]:
        raise ValueError("weights, offsets and output columns differ")
    with nogil:
        for i in range(r0, r1):
            for r in range(runs.shape[0]):
                j0 = runs[r, 0]
                n = runs[r, 1] - j0
                s = first_row[j0] + i
                seg = &out[i, j0]
                if _beyond_reach(s, n_in, taps):
                    memset(seg, 0, n * sizeof(float))
                    continue
                w = &weights[0, j0]
                line = &src[_clip(s, 0, n_in - 1), j0]
                for j in range(n):
                    seg[j] = w[j] * line[j]
                for k in range(1, taps):
                    w = &weights[k, j0]
                    line = &src[_clip(s + k, 0, n_in - 1), j0]
                    for j in range(n):
                        seg[j] += w[j] * line[j]


def shift_columns(const float[:, ::1] src, const i64[::1] first_row, const float[:, ::1] weights,
                  float[:, ::1] out, Py_ssize_t c0, Py_ssize_t c1):
    """out[i, j] = sum_k weights[j, k] src[first_row[j] + i + k, j] for columns [c0, c1).

    For a steep shear: a strip of ``COLUMN_STRIP`` columns is turned into the rows of a
    buffer, shifted there as :func:`shift_rows` shifts rows, and turned back: contiguous,
    vectorised arithmetic whatever the slope of the shear. The turns move ``TILE`` rows at
    a time, so both sides read and write whole cache lines.
    """
    cdef Py_ssize_t n_in = src.shape[0], height = out.shape[0], taps = weights.shape[1]
    cdef Py_ssize_t s0, m, t0, nt, r, j, i
    cdef float *columns
    cdef float *shifted
    if not 0 <= c0 <= c1 <= src.shape[1] or out.shape[1] != src.shape[1] \
            or first_row.shape[0] != src.shape[1] or weights.shape[0] != src.shape[1]:
        raise ValueError(f"columns {c0}:{c1}, offsets or weights do not fit the image")
    with nogil:
        columns = <float *> malloc(COLUMN_STRIP * n_in * sizeof(float))
        shifted = <float *> malloc(COLUMN_STRIP * height * sizeof(float))
        if columns == NULL or shifted == NULL:
            free(columns)
            free(shifted)
            with gil:
                raise MemoryError()
        s0 = c0
        while s0 < c1:
            m = min(<Py_ssize_t> COLUMN_STRIP, c1 - s0)
            t0 = 0
            while t0 < n_in:
                nt = min(<Py_ssize_t> TILE, n_in - t0)
                for j in range(m):
                    for r in range(nt):
                        columns[j * n_in + t0 + r] = src[t0 + r, s0 + j]
                t0 += TILE
            for j in range(m):
                _shift_line(shifted + j * height, height, columns + j * n_in, n_in, first_row[s0 + j],
                            &weights[s0 + j, 0], taps)
            t0 = 0
            while t0 < height:
                nt = min(<Py_ssize_t> TILE, height - t0)
                for i in range(nt):
                    for j in range(m):
                        out[t0 + i, s0 + j] = shifted[j * height + t0 + i]
                t0 += TILE
            s0 += m
        free(columns)
        free(shifted)


def turn(const float[:, ::1] src, const i64[:, ::1] e, float[:, ::1] out, Py_ssize_t r0, Py_ssize_t r1):
    """out[y, x] = src[e[1] . (x, y, 1), e[0] . (x, y, 1)] for output rows [r0, r1).

    ``e`` is an integer quarter-turn/mirror map (3 x 3). An odd number of quarter turns is a
    transpose: it goes through tiles of ``TILE`` columns by 128 rows, so that both sides move
    whole cache lines.
    """
    cdef i64 a = e[0, 0], b = e[0, 1], c = e[0, 2], d = e[1, 0], f = e[1, 1], g = e[1, 2]
    cdef Py_ssize_t width = out.shape[1], x, y, y0, ny, x0, nx, first
    cdef const float *line
    cdef float *o
    _rows_fit(r0, r1, out.shape[0], out.shape[0], out.shape[0], out.shape[0])
    if (a != 0 and (out.shape[0] != src.shape[0] or width != src.shape[1])) \
            or (a == 0 and (out.shape[0] != src.shape[1] or width != src.shape[0])):
        raise ValueError("the output is not the turned shape of the source")
    with nogil:
        if a != 0:
            for y in range(r0, r1):
                line = &src[f * y + g, 0]
                o = &out[y, 0]
                for x in range(width):
                    o[x] = line[a * x + c]
        else:
            # An odd number of quarter turns: a transpose, through tiles.
            y0 = r0
            while y0 < r1:
                ny = min(<Py_ssize_t> 128, r1 - y0)
                first = min(b * y0 + c, b * (y0 + ny - 1) + c)
                x0 = 0
                while x0 < width:
                    nx = min(<Py_ssize_t> TILE, width - x0)
                    for y in range(ny):
                        o = &out[y0 + y, x0]
                        for x in range(nx):
                            o[x] = src[d * (x0 + x) + g, first + (y if b > 0 else ny - 1 - y)]
                    x0 += TILE
                y0 += ny


def mark_coverage(float[:, :] out, unsigned char[:, ::1] coverage, const i64[::1] first, const i64[::1] last,
                  float fill):
    """Coverage is columns [first[i], last[i]] of row i (clipped to the row); ``fill`` the rest of ``out``."""
    cdef Py_ssize_t i, j, a, b, width = out.shape[1]
    if coverage.shape[0] != out.shape[0] or coverage.shape[1] != width \
            or first.shape[0] != out.shape[0] or last.shape[0] != out.shape[0]:
        raise ValueError("coverage, bounds and output differ in shape")
    with nogil:
        for i in range(out.shape[0]):
            a = _clip(first[i], 0, width)
            b = _clip(last[i] + 1, a, width)
            for j in range(a):
                out[i, j] = fill
            for j in range(b, width):
                out[i, j] = fill
            memset(&coverage[i, 0], 0, a)
            memset(&coverage[i, a], 1, b - a)
            memset(&coverage[i, b], 0, width - b)


cdef _rows_fit(Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t rows, Py_ssize_t source_rows, Py_ssize_t offsets,
               Py_ssize_t weight_rows):
    if not 0 <= r0 <= r1 <= rows or source_rows < rows or offsets < rows or weight_rows < rows:
        raise ValueError(f"rows {r0}:{r1}, the source, offsets or weights do not fit an output of {rows} rows")
