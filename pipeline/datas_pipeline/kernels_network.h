/* The innermost loop of datas_pipeline/kernels.pyx.
 *
 * One comparator of a sorting network applied along two rows of a block: afterwards
 * low[q] <= high[q] for every q. Kept in C so the compiler can turn it into vector min/max:
 * GCC does that only when told that no value is NaN and that the sign of zero does not
 * matter, which holds here (blanks are +inf, NaN never reaches the block), so the
 * permission is given to this function alone. Clang vectorises it as written. */
#ifndef DATAS_KERNELS_NETWORK_H
#define DATAS_KERNELS_NETWORK_H

#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("finite-math-only", "no-signed-zeros")))
#endif
static void datas_compare_swap(float *restrict low, float *restrict high, ptrdiff_t n)
{
    for (ptrdiff_t q = 0; q < n; q++) {
        float a = low[q], b = high[q];
        low[q] = a < b ? a : b;
        high[q] = a < b ? b : a;
    }
}

#endif
