/* Streaming kernels of the semantic and flow metrics (harness.metrics.stream_kernels wraps them; the numpy
 * paths in semantic.py and flow.py stay as the fallback and give the same numbers).
 *
 * Why C: numpy scores one label map or flow field in many whole-array passes (range checks, boolean-index
 * copies, casts to int64, a bincount; for flow about twenty temporaries), and at 2048x1024 that costs more
 * than decoding the PNGs.  Each kernel reads its inputs once, with the GIL released so a decoding thread can
 * run beside it.
 *
 *   confusion(target, prediction, ...)  one image's (C, C+1) confusion counts added into an int64 matrix, the
 *                                       'no class' column for predictions equal to the ignore label; reports
 *                                       out-of-range values instead of counting (the caller's numpy path then
 *                                       names them)
 *   flow_sums(pred, gt, ...)            every per-image (sum, count) of harness.metrics.flow.flow_sums; each
 *                                       float sum in numpy's pairwise order over the same compacted values, so
 *                                       the numbers are the numpy path's to the bit
 *
 * Only the CPython API and the buffer protocol are used: no numpy headers at build time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "numpy_sum.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------------------------ semantic */
/* Element kinds: (size in bytes, signed).  The wrapper passes only these (unsigned 1, 2, 4; signed 1, 2, 4, 8). */
static int kind_ok(int size, int is_signed) {
    if (is_signed) return size == 1 || size == 2 || size == 4 || size == 8;
    return size == 1 || size == 2 || size == 4;
}

/* values [start, start + len) of a label buffer as int64 */
static void widen(const char *base, Py_ssize_t start, Py_ssize_t len, int size, int is_signed, int64_t *out) {
    Py_ssize_t i;
#define WIDEN(T)                                                      \
    {                                                                 \
        const T *src = (const T *)base + start;                       \
        for (i = 0; i < len; i++) out[i] = (int64_t)src[i];           \
    }
    if (is_signed) {
        if (size == 1) WIDEN(int8_t)
        else if (size == 2) WIDEN(int16_t)
        else if (size == 4) WIDEN(int32_t)
        else WIDEN(int64_t)
    } else {
        if (size == 1) WIDEN(uint8_t) else if (size == 2) WIDEN(uint16_t) else WIDEN(uint32_t)
    }
#undef WIDEN
}

#define BLOCK 4096
#define CHUNK ((Py_ssize_t)1 << 30) /* pixels per uint32 histogram fill: no count can wrap */

/* Both maps one byte per pixel: a 256x256 histogram of (target, prediction) pairs, filled in one pass, then
 * folded into the matrix; returns the bad-value flags (1 target, 2 prediction).  Eight pixels whose target and
 * prediction bytes are all equal (most of a label map: regions are large) are one increment by 8; other words
 * alternate between two copies of the histogram, so neighbouring equal pairs do not wait on one counter. */
static int confusion_bytes(const uint8_t *t, const uint8_t *p, Py_ssize_t n, Py_ssize_t classes, int has_ignore,
                           int64_t ignore, int64_t *matrix, uint32_t *hist) {
    int bad = 0;
    for (Py_ssize_t start = 0; start < n; start += CHUNK) {
        Py_ssize_t stop = n - start < CHUNK ? n : start + CHUNK, i = start;
        uint32_t *h0 = hist, *h1 = hist + 65536;
        memset(hist, 0, 2 * 65536 * sizeof(uint32_t));
        for (; i + 8 <= stop; i += 8) {
            uint64_t a, b;
            memcpy(&a, t + i, 8);
            memcpy(&b, p + i, 8);
            if (a == (a & 0xff) * 0x0101010101010101ULL && b == (b & 0xff) * 0x0101010101010101ULL) {
                h0[((unsigned)t[i] << 8) | p[i]] += 8; /* eight equal pairs: most words of a smooth map */
                continue;
            }
            for (int j = 0; j < 8; j += 2) {
                h0[((unsigned)t[i + j] << 8) | p[i + j]]++;
                h1[((unsigned)t[i + j + 1] << 8) | p[i + j + 1]]++;
            }
        }
        for (; i < stop; i++) h0[((unsigned)t[i] << 8) | p[i]]++;
        for (int g = 0; g < 256; g++) {
            int g_ignored = has_ignore && g == ignore, g_class = g < classes;
            for (int q = 0; q < 256; q++) {
                uint64_t count = (uint64_t)h0[(g << 8) | q] + h1[(g << 8) | q];
                if (!count) continue;
                int q_ignored = has_ignore && q == ignore;
                if (!g_class && !g_ignored) bad |= 1;
                if (q >= classes && !q_ignored) bad |= 2;
                if (g_class && !g_ignored && !bad)
                    matrix[g * (classes + 1) + (q_ignored ? classes : q)] += (int64_t)count;
            }
        }
        if (bad) break;
    }
    return bad;
}

static int confusion_any(const char *t, int tsize, int tsigned, const char *p, int psize, int psigned, Py_ssize_t n,
                         Py_ssize_t classes, int has_ignore, int64_t ignore, int64_t *matrix, int64_t *work) {
    int64_t *tv = work, *pv = work + BLOCK;
    int bad = 0;
    for (Py_ssize_t start = 0; start < n && !bad; start += BLOCK) {
        Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;
        widen(t, start, len, tsize, tsigned, tv);
        widen(p, start, len, psize, psigned, pv);
        for (Py_ssize_t i = 0; i < len; i++) {
            int64_t g = tv[i], q = pv[i];
            int g_ignored = has_ignore && g == ignore, q_ignored = has_ignore && q == ignore;
            if ((g < 0 || g >= classes) && !g_ignored) bad |= 1;
            if ((q < 0 || q >= classes) && !q_ignored) bad |= 2;
            if (bad || g_ignored) continue;
            matrix[g * (classes + 1) + (q_ignored ? classes : q)]++;
        }
    }
    return bad;
}

/* confusion(target, tsize, tsigned, prediction, psize, psigned, classes, has_ignore, ignore, matrix) -> flags
 * target and prediction: C-contiguous label maps of the same number of pixels; matrix: writable (C, C+1)
 * int64, counts are added.  Returns 0, or the bad-value flags (1 target, 2 prediction): then the matrix is
 * not to be used (the caller passes a scratch matrix and adds it only on 0). */
static PyObject *confusion(PyObject *self, PyObject *args) {
    Py_buffer t_v, p_v, m_v;
    int tsize, tsigned, psize, psigned, has_ignore;
    Py_ssize_t classes;
    long long ignore;
    if (!PyArg_ParseTuple(args, "y*iiy*iinpLw*", &t_v, &tsize, &tsigned, &p_v, &psize, &psigned, &classes,
                          &has_ignore, &ignore, &m_v))
        return NULL;
    const char *problem = NULL;
    if (!kind_ok(tsize, tsigned) || !kind_ok(psize, psigned)) problem = "confusion: unsupported element kind";
    else if (classes < 1 || t_v.len % tsize || p_v.len % psize || t_v.len / tsize != p_v.len / psize)
        problem = "confusion: label maps of different sizes";
    else if (m_v.len != (Py_ssize_t)(classes * (classes + 1) * sizeof(int64_t)))
        problem = "confusion: matrix of the wrong size";
    int bad = 0, no_memory = 0;
    if (!problem) {
        Py_ssize_t n = t_v.len / tsize;
        int bytes = tsize == 1 && !tsigned && psize == 1 && !psigned;
        void *work = malloc(bytes ? 2 * 65536 * sizeof(uint32_t) : 2 * BLOCK * sizeof(int64_t));
        if (!work) no_memory = 1;
        else {
            Py_BEGIN_ALLOW_THREADS
            if (bytes)
                bad = confusion_bytes(t_v.buf, p_v.buf, n, classes, has_ignore, ignore, m_v.buf, work);
            else
                bad = confusion_any(t_v.buf, tsize, tsigned, p_v.buf, psize, psigned, n, classes, has_ignore,
                                    ignore, m_v.buf, work);
            Py_END_ALLOW_THREADS
            free(work);
        }
    }
    PyBuffer_Release(&t_v);
    PyBuffer_Release(&p_v);
    PyBuffer_Release(&m_v);
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    if (no_memory) return PyErr_NoMemory();
    return PyLong_FromLong(bad);
}

/* ------------------------------------------------------------------------------------------ flow */
/* quantity slots, in harness.metrics.flow.QUANTITIES order */
enum { Q_EPE, Q_ACC1, Q_ACC3, Q_ACC5, Q_ERR1, Q_ERR3, Q_ERR5, Q_FL, Q_S0, Q_S10, Q_S40, Q_MATCHED, Q_UNMATCHED, Q_N };

/* The arithmetic of pixels [start, start + len) (len even, at most FLOW_BLOCK): EPE, |gt|, EPE / |gt|, and
 * (x - x) + (y - y) of each flow, 0 exactly when both components are finite.  Per value these are the numpy
 * path's operations (float64 difference, x ** 2 as a product, sum, correctly rounded sqrt and division); with
 * SSE2 two pixels go through each instruction, which rounds every lane as the scalar instruction does. */
#define FLOW_BLOCK 256
typedef struct {
    double epe[FLOW_BLOCK], speed[FLOW_BLOCK], ratio[FLOW_BLOCK], pred_inf[FLOW_BLOCK], gt_inf[FLOW_BLOCK];
} FlowMath;

#if defined(__SSE2__)
static inline void load_pairs(const char *flow, int is64, Py_ssize_t i, __m128d *x, __m128d *y) {
    if (is64) { /* pixels i, i + 1: (x0, y0), (x1, y1) */
        __m128d a = _mm_loadu_pd((const double *)flow + 2 * i), b = _mm_loadu_pd((const double *)flow + 2 * i + 2);
        *x = _mm_unpacklo_pd(a, b);
        *y = _mm_unpackhi_pd(a, b);
    } else {
        __m128 f = _mm_loadu_ps((const float *)flow + 2 * i);
        *x = _mm_cvtps_pd(_mm_shuffle_ps(f, f, _MM_SHUFFLE(2, 0, 2, 0)));
        *y = _mm_cvtps_pd(_mm_shuffle_ps(f, f, _MM_SHUFFLE(3, 1, 3, 1)));
    }
}
#endif

static void flow_math(const char *pred, int pred64, const char *gt, int gt64, Py_ssize_t start, Py_ssize_t len,
                      FlowMath *out) {
#if defined(__SSE2__)
    for (Py_ssize_t j = 0; j < len; j += 2) {
        __m128d p0, p1, g0, g1;
        load_pairs(pred, pred64, start + j, &p0, &p1);
        load_pairs(gt, gt64, start + j, &g0, &g1);
        __m128d dx = _mm_sub_pd(p0, g0), dy = _mm_sub_pd(p1, g1);
        __m128d e = _mm_sqrt_pd(_mm_add_pd(_mm_mul_pd(dx, dx), _mm_mul_pd(dy, dy)));
        __m128d speed = _mm_sqrt_pd(_mm_add_pd(_mm_mul_pd(g0, g0), _mm_mul_pd(g1, g1)));
        _mm_storeu_pd(out->epe + j, e);
        _mm_storeu_pd(out->speed + j, speed);
        _mm_storeu_pd(out->ratio + j, _mm_div_pd(e, speed));
        _mm_storeu_pd(out->pred_inf + j, _mm_add_pd(_mm_sub_pd(p0, p0), _mm_sub_pd(p1, p1)));
        _mm_storeu_pd(out->gt_inf + j, _mm_add_pd(_mm_sub_pd(g0, g0), _mm_sub_pd(g1, g1)));
    }
#else
    for (Py_ssize_t j = 0; j < len; j++) {
        Py_ssize_t i = start + j;
        double p0, p1, g0, g1;
        if (pred64) {
            p0 = ((const double *)pred)[2 * i];
            p1 = ((const double *)pred)[2 * i + 1];
        } else {
            p0 = ((const float *)pred)[2 * i];
            p1 = ((const float *)pred)[2 * i + 1];
        }
        if (gt64) {
            g0 = ((const double *)gt)[2 * i];
            g1 = ((const double *)gt)[2 * i + 1];
        } else {
            g0 = ((const float *)gt)[2 * i];
            g1 = ((const float *)gt)[2 * i + 1];
        }
        double dx = p0 - g0, dy = p1 - g1;
        double e = sqrt(dx * dx + dy * dy), speed = sqrt(g0 * g0 + g1 * g1);
        out->epe[j] = e;
        out->speed[j] = speed;
        out->ratio[j] = e / speed;
        out->pred_inf[j] = (p0 - p0) + (p1 - p1);
        out->gt_inf[j] = (g0 - g0) + (g1 - g1);
    }
#endif
}

/* Pass over the pixels: EPE of each scored pixel, compacted in pixel order, its speed band (0..2, 3 for none:
 * a non-finite |gt|) and unmatched bit in ``code``; integer counts, band and region sizes; non-finite flags.
 * Returns the scored count. */
static Py_ssize_t flow_pass(const char *pred, int pred64, const char *gt, int gt64, const uint8_t *valid,
                            const uint8_t *occluded, const uint8_t *out_of_frame, Py_ssize_t pixels, double *epe,
                            uint8_t *code, int64_t *counts, int *flags, Py_ssize_t *bands, Py_ssize_t *regions) {
    Py_ssize_t n = 0, band0 = 0, band1 = 0, band2 = 0, band3 = 0, unmatched_count = 0;
    int64_t acc1 = 0, acc3 = 0, acc5 = 0, err1 = 0, err3 = 0, err5 = 0, fl = 0;
    int pred_bad = 0, gt_bad = 0;
    FlowMath math;
    /* no branches on the data: every pixel is computed, and a pixel outside the valid mask (v = 0) adds
     * nothing and is overwritten by the next one in the compacted output */
    Py_ssize_t even = pixels - pixels % 2;
    for (Py_ssize_t start = 0; start < pixels; start += FLOW_BLOCK) {
        Py_ssize_t len = pixels - start < FLOW_BLOCK ? pixels - start : FLOW_BLOCK;
        if (start + len > even) { /* an odd last pixel: computed on its own, as a block of two with itself */
            flow_math(pred, pred64, gt, gt64, start, len - 1, &math);
            FlowMath last;
            double pair_pred[4], pair_gt[4];
            for (int c = 0; c < 4; c++) {
                pair_pred[c] = pred64 ? ((const double *)pred)[2 * (pixels - 1) + c % 2]
                                      : ((const float *)pred)[2 * (pixels - 1) + c % 2];
                pair_gt[c] = gt64 ? ((const double *)gt)[2 * (pixels - 1) + c % 2]
                                  : ((const float *)gt)[2 * (pixels - 1) + c % 2];
            }
            flow_math((const char *)pair_pred, 1, (const char *)pair_gt, 1, 0, 2, &last);
            math.epe[len - 1] = last.epe[0];
            math.speed[len - 1] = last.speed[0];
            math.ratio[len - 1] = last.ratio[0];
            math.pred_inf[len - 1] = last.pred_inf[0];
            math.gt_inf[len - 1] = last.gt_inf[0];
        } else {
            flow_math(pred, pred64, gt, gt64, start, len, &math);
        }
        for (Py_ssize_t j = 0; j < len; j++) {
            Py_ssize_t i = start + j;
            int v = valid ? valid[i] : 1;
            double e = math.epe[j], speed = math.speed[j];
            pred_bad |= v & !(math.pred_inf[j] == 0.0);
            gt_bad |= v & !(math.gt_inf[j] == 0.0);
            acc1 += v & (e < 1.0);
            acc3 += v & (e < 3.0);
            acc5 += v & (e < 5.0);
            err1 += v & (e > 1.0);
            err3 += v & (e > 3.0);
            err5 += v & (e > 5.0);
            fl += v & (e > 3.0) & (math.ratio[j] > 0.05); /* KITTI: EPE > 3 and EPE / |gt| > 5 % */
            /* band 0 [0, 10), 1 [10, 40), 2 [40, inf); 3 for a NaN or infinite |gt| (in no band, as in numpy) */
            int band = ((speed >= 10.0) + (speed >= 40.0)) | (!(speed < HUGE_VAL) * 3);
            int unmatched = (occluded ? occluded[i] : 0) | (out_of_frame ? out_of_frame[i] : 0);
            epe[n] = e;
            code[n] = (uint8_t)(band | (unmatched << 2));
            band0 += v & (band == 0);
            band1 += v & (band == 1);
            band2 += v & (band == 2);
            band3 += v & (band == 3);
            unmatched_count += v & unmatched;
            n += v;
        }
    }
    bands[0] = band0;
    bands[1] = band1;
    bands[2] = band2;
    bands[3] = band3;
    regions[0] = n - unmatched_count;
    regions[1] = unmatched_count;
    regions[2] = regions[3] = 0;
    counts[Q_ACC1] = acc1;
    counts[Q_ACC3] = acc3;
    counts[Q_ACC5] = acc5;
    counts[Q_ERR1] = err1;
    counts[Q_ERR3] = err3;
    counts[Q_ERR5] = err5;
    counts[Q_FL] = fl;
    flags[0] = pred_bad;
    flags[1] = gt_bad;
    return n;
}

/* The values of each group (``key(code)`` in 0..3; keys from ``groups`` on are in no group; ``size`` counts
 * each key) moved side by side into ``scratch``, each group in pixel order, and summed as np.sum sums a
 * boolean-index copy; group sums into sums[first + k], sizes into counts[first + k].  The write position is
 * mask arithmetic on four running indices in registers: no branch on the data, no counter in memory. */
static void group_sums(const double *epe, const uint8_t *code, Py_ssize_t n, int shift, int mask, int groups,
                       const Py_ssize_t *size, double *scratch, double *sums, int64_t *counts, int first) {
    Py_ssize_t at0 = 0, at1 = size[0], at2 = at1 + size[1], at3 = at2 + size[2];
    for (Py_ssize_t i = 0; i < n; i++) {
        int k = (code[i] >> shift) & mask;
        Py_ssize_t m0 = -(Py_ssize_t)(k == 0), m1 = -(Py_ssize_t)(k == 1), m2 = -(Py_ssize_t)(k == 2),
                   m3 = -(Py_ssize_t)(k == 3);
        scratch[(at0 & m0) | (at1 & m1) | (at2 & m2) | (at3 & m3)] = epe[i];
        at0 -= m0;
        at1 -= m1;
        at2 -= m2;
        at3 -= m3;
    }
    Py_ssize_t offset = 0;
    for (int k = 0; k < groups; k++) {
        sums[first + k] = numpy_pairwise_sum(scratch + offset, size[k]);
        counts[first + k] = size[k];
        offset += size[k];
    }
}

/* flow_sums(pred, pred64, gt, gt64, valid, occluded, out_of_frame, sums, counts) -> (pred_nonfinite, gt_nonfinite)
 * pred, gt: C-contiguous (H, W, 2) float32 (flag 0) or float64 (flag 1); the masks: None or (H, W) bool;
 * sums (Q,) float64 and counts (Q,) int64 are written in QUANTITIES order (matched/unmatched only with a mask).
 * The flags say whether a scored pixel holds a non-finite value (the sums then hold what numpy would). */
static PyObject *flow_sums(PyObject *self, PyObject *args) {
    Py_buffer pred_v, gt_v, sums_v, counts_v, masks[3];
    PyObject *mask_objects[3];
    int pred64, gt64;
    if (!PyArg_ParseTuple(args, "y*py*pOOOw*w*", &pred_v, &pred64, &gt_v, &gt64, &mask_objects[0],
                          &mask_objects[1], &mask_objects[2], &sums_v, &counts_v))
        return NULL;
    int held[3] = {0, 0, 0};
    const char *problem = NULL;
    Py_ssize_t pixels = pred_v.len / (pred64 ? 16 : 8);
    if (pred_v.len % (pred64 ? 16 : 8) || gt_v.len != pixels * (gt64 ? 16 : 8))
        problem = "flow_sums: flows of different sizes";
    else if (sums_v.len != Q_N * 8 || counts_v.len != Q_N * 8)
        problem = "flow_sums: output of the wrong size";
    for (int k = 0; k < 3 && !problem; k++) {
        if (mask_objects[k] == Py_None) continue;
        if (PyObject_GetBuffer(mask_objects[k], &masks[k], PyBUF_SIMPLE) < 0) {
            for (int j = 0; j < k; j++)
                if (held[j]) PyBuffer_Release(&masks[j]);
            PyBuffer_Release(&pred_v);
            PyBuffer_Release(&gt_v);
            PyBuffer_Release(&sums_v);
            PyBuffer_Release(&counts_v);
            return NULL;
        }
        held[k] = 1;
        if (masks[k].len != pixels) problem = "flow_sums: mask of the wrong size";
    }
    int flags[2] = {0, 0}, no_memory = 0;
    if (!problem) {
        const uint8_t *mask_data[3];
        for (int k = 0; k < 3; k++) mask_data[k] = held[k] ? masks[k].buf : NULL;
        double *sums = sums_v.buf;
        int64_t *counts = counts_v.buf;
        size_t room = pixels ? (size_t)pixels : 1;
        double *epe = malloc(room * sizeof(double)), *scratch = malloc(room * sizeof(double));
        uint8_t *code = malloc(room);
        if (!epe || !scratch || !code) no_memory = 1;
        else {
            Py_BEGIN_ALLOW_THREADS
            for (int q = 0; q < Q_N; q++) {
                sums[q] = 0.0;
                counts[q] = 0;
            }
            Py_ssize_t bands[4], regions[4];
            Py_ssize_t n = flow_pass(pred_v.buf, pred64, gt_v.buf, gt64, mask_data[0], mask_data[1], mask_data[2],
                                     pixels, epe, code, counts, flags, bands, regions);
            sums[Q_EPE] = numpy_pairwise_sum(epe, n);
            for (int q = Q_EPE; q <= Q_FL; q++) {
                if (q != Q_EPE) sums[q] = (double)counts[q];
                counts[q] = n;
            }
            group_sums(epe, code, n, 0, 3, 3, bands, scratch, sums, counts, Q_S0); /* band 3: |gt| not finite */
            if (mask_data[1] || mask_data[2])
                group_sums(epe, code, n, 2, 1, 2, regions, scratch, sums, counts, Q_MATCHED);
            Py_END_ALLOW_THREADS
        }
        free(epe);
        free(scratch);
        free(code);
    }
    for (int k = 0; k < 3; k++)
        if (held[k]) PyBuffer_Release(&masks[k]);
    PyBuffer_Release(&pred_v);
    PyBuffer_Release(&gt_v);
    PyBuffer_Release(&sums_v);
    PyBuffer_Release(&counts_v);
    if (problem) {
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    if (no_memory) return PyErr_NoMemory();
    return Py_BuildValue("(OO)", flags[0] ? Py_True : Py_False, flags[1] ? Py_True : Py_False);
}

static PyMethodDef METHODS[] = {
    {"confusion", confusion, METH_VARARGS, "one image's (C, C+1) confusion counts, or the bad-value flags"},
    {"flow_sums", flow_sums, METH_VARARGS, "every per-image flow (sum, count), numpy's pairwise order"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_streamkernels", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__streamkernels(void) { return PyModule_Create(&MODULE); }
