/* numpy's pairwise summation, shared by the compiled kernels (harness/metrics/coco/_ckernels.c and
 * harness/metrics/_streamkernels.c) that must reproduce numpy's sums to the bit: np.sum / np.add.reduce over a
 * contiguous 1-D float64 array sums blocks of at most 128 values with eight accumulators and splits longer runs
 * in two at a multiple of eight.  np.mean is this sum divided by the count. */
#ifndef BENCH_NUMPY_SUM_H
#define BENCH_NUMPY_SUM_H

#include <Python.h>

static double numpy_pairwise_sum(const double *a, Py_ssize_t n) {
    if (n < 8) {
        double res = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        Py_ssize_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

#endif
