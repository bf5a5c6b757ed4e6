/* Compiled kernels of the COCO evaluator (harness.metrics.coco.kernels wraps them; numpy fallbacks exist).
 *
 * Why C: the three steps below are sequential or per-record by nature, and numpy can only do them as many
 * whole-array passes (the greedy matching steps through detection ranks, the grouping sorts half a million
 * floats with a general stable sort, and the results file becomes half a million dicts before it becomes
 * columns).  Each kernel computes exactly what the numpy path computes; tests run both and compare bits.
 *
 *   parse_results(data)       a COCO results file's bytes -> columns, or None when the file is anything
 *                             but a plain array of {image_id, category_id, score, bbox | keypoints} objects
 *                             (then the general parser runs and gives every error message)
 *   group_order(...)          stable order by group, then by descending score (ties keep file order)
 *   greedy_match(...)         pycocotools' evaluateImg matching for every detection, threshold, area range
 *   polygons_to_rles(...)     COCO polygons -> compressed RLE strings, pycocotools' rasteriser to the bit
 *
 * Only the CPython stable ABI-ish API and the buffer protocol are used: no numpy headers at build time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <pthread.h>
#include "../numpy_sum.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ growable buffer */
typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_put(Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static PyObject *buf_bytes(Buf *b) { return PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len); }

/* A parsed column handed to Python without a copy: it takes over a Buf's memory and shows it read-only through
 * the buffer protocol (np.frombuffer views it), freed with the last view.  A bytes copy would hold every column
 * twice for a moment: 57 MiB more at the peak of a 140k-result keypoints file. */
typedef struct {
    PyObject_HEAD char *data;
    Py_ssize_t len;
} Column;

static void column_dealloc(Column *self) {
    free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int column_getbuffer(Column *self, Py_buffer *view, int flags) {
    static char empty[1];
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data ? self->data : empty, self->len, 1, flags);
}

static PyBufferProcs COLUMN_BUFFER = {(getbufferproc)column_getbuffer, NULL};

static PyTypeObject ColumnType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_ckernels.Column",
    .tp_basicsize = sizeof(Column),
    .tp_dealloc = (destructor)column_dealloc,
    .tp_as_buffer = &COLUMN_BUFFER,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a parsed column's memory, read-only through the buffer protocol",
};

/* The Buf as a Column (the Buf is left empty: its memory now belongs to the Column). */
static PyObject *buf_column(Buf *b) {
    Column *column = PyObject_New(Column, &ColumnType);
    if (!column) return NULL;
    if (b->data && b->len < b->cap) { /* give back the growth slack */
        char *fitted = realloc(b->data, b->len ? b->len : 1);
        if (fitted) b->data = fitted;
    }
    column->data = b->data;
    column->len = (Py_ssize_t)b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return (PyObject *)column;
}

/* ------------------------------------------------------------------------------------------ JSON scanning */
typedef const unsigned char *Ptr;

static Ptr skip_ws(Ptr p, Ptr end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* A JSON number (RFC 8259 grammar, nothing more); returns its end or NULL. */
static Ptr scan_number(Ptr p, Ptr end, int *is_int) {
    *is_int = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= end || !(*p >= '0' && *p <= '9')) return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !(*p >= '0' && *p <= '9')) return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    return p;
}

/* The double nearest to the number text [s, e) (strtod rounds correctly, as Python's float() does). */
static int to_double(Ptr s, Ptr e, double *out) {
    char local[128];
    size_t n = (size_t)(e - s);
    if (n >= sizeof(local)) return -1; /* absurdly long literal: the general parser decides */
    memcpy(local, s, n);
    local[n] = 0;
    char *stop = NULL;
    *out = strtod(local, &stop);
    return stop == local + n ? 0 : -1; /* a locale with another decimal point stops early: refuse */
}

/* A JSON integer literal [s, e) within int64. */
static int to_int64(Ptr s, Ptr e, int64_t *out) {
    int negative = 0;
    if (s < e && *s == '-') {
        negative = 1;
        s++;
    }
    uint64_t value = 0;
    for (; s < e; s++) {
        uint64_t digit = (uint64_t)(*s - '0');
        if (value > (UINT64_MAX - digit) / 10) return -1;
        value = value * 10 + digit;
    }
    if (negative ? value > (uint64_t)INT64_MAX + 1 : value > (uint64_t)INT64_MAX) return -1;
    *out = negative ? (int64_t)(0 - value) : (int64_t)value;
    return 0;
}

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path: with at most 2**53 as the digits and a power of ten up to 1e22, both are exact doubles
 * and one multiplication or division rounds once, correctly -- the same double strtod and Python give.
 * Returns -1 when the literal is outside that range (strtod then decides). */
static int fast_double(Ptr s, Ptr e, double *out) {
    int negative = 0;
    uint64_t digits = 0;
    int count = 0, scale = 0;
    if (*s == '-') {
        negative = 1;
        s++;
    }
    for (; s < e && *s >= '0' && *s <= '9'; s++) {
        if (++count > 18) return -1;
        digits = digits * 10 + (uint64_t)(*s - '0');
    }
    if (s < e && *s == '.') {
        for (s++; s < e && *s >= '0' && *s <= '9'; s++) {
            if (++count > 18) return -1;
            digits = digits * 10 + (uint64_t)(*s - '0');
            scale--;
        }
    }
    if (s < e) { /* exponent */
        int sign = 1, power = 0;
        s++;
        if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
        for (; s < e; s++) {
            if (power > 1000) return -1;
            power = power * 10 + (*s - '0');
        }
        scale += sign * power;
    }
    if (digits > ((uint64_t)1 << 53) || scale < -22 || scale > 22) return -1;
    double value = (double)digits;
    value = scale < 0 ? value / POW10[-scale] : value * POW10[scale];
    *out = negative ? -value : value;
    return 0;
}

static Ptr parse_number_general(Ptr p, Ptr end, double *out);

/* The common literals in one pass: an integer of up to 18 digits (converted as Python converts the int), or a
 * decimal fraction of up to 18 significant digits without exponent (Clinger's exact fast path); anything
 * else goes to parse_number_general. */
static Ptr parse_number(Ptr p, Ptr end, double *out) {
    Ptr start = p;
    int negative = 0, count = 0, scale = 0, is_int = 1;
    uint64_t digits = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; p < end && *p >= '0' && *p <= '9'; p++, count++)
            if (count < 19) digits = digits * 10 + (uint64_t)(*p - '0');
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= end || !(*p >= '0' && *p <= '9')) return NULL;
        for (; p < end && *p >= '0' && *p <= '9'; p++, count++)
            if (count < 19) {
                digits = digits * 10 + (uint64_t)(*p - '0');
                scale--;
            }
    }
    if ((p < end && (*p == 'e' || *p == 'E')) || count > 18) return parse_number_general(start, end, out);
    if (is_int) {
        int64_t value = negative ? -(int64_t)digits : (int64_t)digits;
        *out = (double)value;
        return p;
    }
    if (digits > ((uint64_t)1 << 53) || scale < -22) return parse_number_general(start, end, out);
    double value = (double)digits / POW10[-scale];
    *out = negative ? -value : value;
    return p;
}

static Ptr parse_number_general(Ptr p, Ptr end, double *out) {
    int is_int;
    Ptr e = scan_number(p, end, &is_int);
    if (!e) return NULL;
    if (is_int) { /* an integer literal is an int in Python first: -0 is 0, and big ones round from the int */
        int64_t value;
        if (!to_int64(p, e, &value)) {
            *out = (double)value;
            return e;
        }
    } else if (!fast_double(p, e, out)) {
        return e;
    }
    return to_double(p, e, out) ? NULL : e;
}

static Ptr parse_int(Ptr p, Ptr end, int64_t *out) {
    int is_int;
    Ptr e = scan_number(p, end, &is_int);
    if (!e || !is_int || to_int64(p, e, out)) return NULL;
    return e;
}

/* [n, n, ...] appended to ``into``; the count in *count.  Only numbers. */
static Ptr parse_number_array(Ptr p, Ptr end, Buf *into, Py_ssize_t *count) {
    *count = 0;
    if (p >= end || *p != '[') return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return p + 1;
    for (;;) {
        double value;
        p = parse_number(p, end, &value);
        if (!p || buf_put(into, &value, sizeof value)) return NULL;
        (*count)++;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ']') return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

enum { K_IMAGE, K_CATEGORY, K_SCORE, K_BBOX, K_KEYPOINTS, K_SEGMENTATION, K_COUNT };
static const char *KEY_NAMES[K_COUNT] = {"image_id", "category_id", "score", "bbox", "keypoints", "segmentation"};

/* A compressed-RLE segmentation {"size": [h, w], "counts": "..."} (keys in either order, nothing else): the
 * integers and where the string's text lies in the input (decoded later, with the GIL). */
typedef struct {
    int64_t height, width, offset, length, escaped;
} SegmSpan;

static Ptr parse_string_span(Ptr p, Ptr end, int64_t *escaped) {
    /* p is past the opening quote; returns the closing quote.  Only printable ASCII and the escapes \\, \" and
     * \/ (which is all an RLE string can need). */
    *escaped = 0;
    while (p < end && *p != '"') {
        if (*p == '\\') {
            if (p + 1 >= end || !(p[1] == '\\' || p[1] == '"' || p[1] == '/')) return NULL;
            *escaped = 1;
            p += 2;
            continue;
        }
        if (*p < 0x20 || *p >= 0x7f) return NULL;
        p++;
    }
    return p < end ? p : NULL;
}

static Ptr parse_segmentation(Ptr base, Ptr p, Ptr end, SegmSpan *out) {
    int seen = 0;
    if (p >= end || *p != '{') return NULL;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (p >= end || *p != '"') return NULL;
        Ptr ks = ++p;
        while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) p++;
        if (p >= end || *p != '"') return NULL;
        size_t n = (size_t)(p - ks);
        int key = n == 4 && !memcmp(ks, "size", 4) ? 1 : n == 6 && !memcmp(ks, "counts", 6) ? 2 : 0;
        if (!key || (seen & key)) return NULL;
        seen |= key;
        p = skip_ws(p + 1, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        if (key == 1) {
            if (p >= end || *p != '[') return NULL;
            p = parse_int(skip_ws(p + 1, end), end, &out->height);
            if (!p) return NULL;
            p = skip_ws(p, end);
            if (p >= end || *p != ',') return NULL;
            p = parse_int(skip_ws(p + 1, end), end, &out->width);
            if (!p) return NULL;
            p = skip_ws(p, end);
            if (p >= end || *p != ']') return NULL;
            p++;
        } else {
            if (p >= end || *p != '"') return NULL;
            Ptr text = p + 1;
            p = parse_string_span(text, end, &out->escaped);
            if (!p) return NULL;
            out->offset = text - base;
            out->length = p - text;
            p++;
        }
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') return seen == 3 ? p + 1 : NULL;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

static Py_ssize_t decode_counts(const char *s, Py_ssize_t len, uint32_t *out);

/* The spans as (blob, offsets, sizes, areas): every counts string unescaped back to back in one bytes object,
 * offsets int64 (n + 1) into it and sizes int64 (n, 2) -- no Python object per mask. */
static PyObject *segmentation_packed(Ptr base, const SegmSpan *spans, Py_ssize_t n) {
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) total += spans[i].length;
    PyObject *blob = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((n + 1) * 8));
    PyObject *sizes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 16));
    PyObject *areas = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    int64_t longest = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (spans[i].length > longest) longest = spans[i].length;
    uint32_t *runs = malloc((size_t)(longest + 1) * sizeof *runs);
    if (!blob || !offsets || !sizes || !areas || !runs) {
        Py_XDECREF(blob);
        Py_XDECREF(offsets);
        Py_XDECREF(sizes);
        Py_XDECREF(areas);
        free(runs);
        return runs ? NULL : PyErr_NoMemory();
    }
    double *area = (double *)PyBytes_AS_STRING(areas);
    char *out = PyBytes_AS_STRING(blob);
    int64_t *off = (int64_t *)PyBytes_AS_STRING(offsets), *hw = (int64_t *)PyBytes_AS_STRING(sizes);
    int64_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const SegmSpan *sp = spans + i;
        off[i] = at;
        for (int64_t j = 0; j < sp->length; j++) {
            char c = (char)base[sp->offset + j];
            if (sp->escaped && c == '\\') c = (char)base[sp->offset + ++j];
            out[at++] = c;
        }
        hw[2 * i] = sp->height;
        hw[2 * i + 1] = sp->width;
        /* the mask's area (pycocotools' area: the foreground runs), NaN when the text is not a valid mask of
         * its size -- outside the format, a run length out of range, or runs not adding up to h*w -- so the
         * caller hands the file to the general path, whose checks name the problem */
        Py_ssize_t m = decode_counts(out + off[i], (Py_ssize_t)(at - off[i]), runs);
        uint64_t a = 0, total = 0;
        for (Py_ssize_t j = 0; j < m; j++) {
            total += runs[j];
            if (j & 1) a += runs[j];
        }
        int sized = sp->height >= 1 && sp->width >= 1 && sp->height <= 65536 && sp->width <= 65536;
        area[i] = m < 0 || !sized || total != (uint64_t)(sp->height * sp->width) ? Py_NAN : (double)a;
    }
    free(runs);
    off[n] = at;
    if (at != total && _PyBytes_Resize(&blob, (Py_ssize_t)at)) {
        Py_DECREF(offsets);
        Py_DECREF(sizes);
        Py_DECREF(areas);
        return NULL;
    }
    return Py_BuildValue("(NNNN)", blob, offsets, sizes, areas);
}

static int key_of(Ptr s, Ptr e) {
    size_t n = (size_t)(e - s);
    for (int k = 0; k < K_COUNT; k++)
        if (strlen(KEY_NAMES[k]) == n && memcmp(KEY_NAMES[k], s, n) == 0) return k;
    return -1;
}

static PyObject *parse_results(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    Ptr p = (Ptr)view.buf, end = p + view.len;
    Buf cols[K_COUNT] = {{0}};
    Buf extent = {0}; /* per keypoints result (x, y, v triples): min x, min y, max x, max y, for loadRes' extent */
    Py_ssize_t present[K_COUNT] = {0};
    Py_ssize_t n = 0, kp_len = -1;
    int ok = 0;

    Py_BEGIN_ALLOW_THREADS
    p = skip_ws(p, end);
    if (p < end && *p == '[') {
        p = skip_ws(p + 1, end);
        ok = p < end && *p != ']'; /* an empty list goes to the general path */
        while (ok) {
            if (p >= end || *p != '{') { ok = 0; break; }
            p = skip_ws(p + 1, end);
            int seen = 0;
            if (p < end && *p == '}') { ok = 0; break; }
            for (;;) {
                if (p >= end || *p != '"') { ok = 0; break; }
                Ptr ks = ++p;
                while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) p++;
                if (p >= end || *p != '"') { ok = 0; break; }
                int key = key_of(ks, p);
                if (key < 0 || (seen & (1 << key))) { ok = 0; break; } /* unknown or repeated key */
                seen |= 1 << key;
                p = skip_ws(p + 1, end);
                if (p >= end || *p != ':') { ok = 0; break; }
                p = skip_ws(p + 1, end);
                if (key == K_IMAGE || key == K_CATEGORY) {
                    int64_t value;
                    p = parse_int(p, end, &value);
                    if (!p || buf_put(&cols[key], &value, sizeof value)) { ok = 0; break; }
                } else if (key == K_SCORE) {
                    double value;
                    p = parse_number(p, end, &value);
                    if (!p || buf_put(&cols[key], &value, sizeof value)) { ok = 0; break; }
                } else if (key == K_SEGMENTATION) {
                    SegmSpan span;
                    p = parse_segmentation((Ptr)view.buf, p, end, &span);
                    if (!p || buf_put(&cols[key], &span, sizeof span)) { ok = 0; break; }
                } else {
                    Py_ssize_t count;
                    p = parse_number_array(p, end, &cols[key], &count);
                    if (!p) { ok = 0; break; }
                    if (key == K_BBOX && count != 4) { ok = 0; break; }
                    if (key == K_KEYPOINTS) {
                        if (kp_len < 0) kp_len = count;
                        if (count != kp_len || count == 0) { ok = 0; break; }
                        if (count % 3 == 0) {
                            const double *v = (const double *)(cols[key].data + cols[key].len) - count;
                            double e[4] = {v[0], v[1], v[0], v[1]};
                            for (Py_ssize_t j = 3; j < count; j += 3) {
                                if (v[j] < e[0]) e[0] = v[j];
                                if (v[j + 1] < e[1]) e[1] = v[j + 1];
                                if (v[j] > e[2]) e[2] = v[j];
                                if (v[j + 1] > e[3]) e[3] = v[j + 1];
                            }
                            if (buf_put(&extent, e, sizeof e)) { ok = 0; break; }
                        }
                    }
                }
                present[key]++;
                p = skip_ws(p, end);
                if (p >= end) { ok = 0; break; }
                if (*p == '}') { p++; break; }
                if (*p != ',') { ok = 0; break; }
                p = skip_ws(p + 1, end);
            }
            if (!ok) break;
            n++;
            p = skip_ws(p, end);
            if (p >= end) { ok = 0; break; }
            if (*p == ']') {
                p = skip_ws(p + 1, end);
                ok = p == end;
                break;
            }
            if (*p != ',') { ok = 0; break; }
            p = skip_ws(p + 1, end);
        }
    }
    Py_END_ALLOW_THREADS

    PyObject *out = NULL;
    if (ok) {
        PyObject *columns = PyDict_New();
        PyObject *counts = PyDict_New();
        int failed = !columns || !counts;
        for (int k = 0; k < K_COUNT && !failed; k++) {
            PyObject *bytes = k == K_SEGMENTATION
                                  ? segmentation_packed((Ptr)view.buf, (const SegmSpan *)cols[k].data,
                                                        (Py_ssize_t)(cols[k].len / sizeof(SegmSpan)))
                                  : buf_column(&cols[k]);
            PyObject *count = PyLong_FromSsize_t(present[k]);
            failed = !bytes || !count || PyDict_SetItemString(columns, KEY_NAMES[k], bytes) ||
                     PyDict_SetItemString(counts, KEY_NAMES[k], count);
            Py_XDECREF(bytes);
            Py_XDECREF(count);
        }
        if (!failed) {
            PyObject *bounds = buf_column(&extent);
            failed = !bounds || PyDict_SetItemString(columns, "keypoint_extent", bounds);
            Py_XDECREF(bounds);
        }
        if (!failed) out = Py_BuildValue("nOOn", n, columns, counts, kp_len);
        Py_XDECREF(columns);
        Py_XDECREF(counts);
    } else {
        out = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&view);
    for (int k = 0; k < K_COUNT; k++) free(cols[k].data);
    free(extent.data);
    return out;
}

/* ------------------------------------------------------------------------------------------ grouping */
/* Stable order of rows by ``key`` (0 <= key < num_groups), and inside a group by descending ``score`` (equal
 * scores keep row order): what numpy's lexsort((-score, key)) gives.  Writes ``order`` (n) and ``bounds``
 * (num_groups + 1). */
static void sort_by_score(int64_t *idx, int64_t *tmp, Py_ssize_t n, const double *score) {
    if (n <= 24) { /* insertion sort: stable, moves an item only past strictly lower scores */
        for (Py_ssize_t i = 1; i < n; i++) {
            int64_t item = idx[i];
            double s = score[item];
            Py_ssize_t j = i;
            while (j > 0 && score[idx[j - 1]] < s) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = item;
        }
        return;
    }
    Py_ssize_t half = n / 2;
    sort_by_score(idx, tmp, half, score);
    sort_by_score(idx + half, tmp, n - half, score);
    if (!(score[idx[half - 1]] < score[idx[half]])) return; /* already in order */
    memcpy(tmp, idx, (size_t)half * sizeof *idx);
    Py_ssize_t i = 0, j = half, o = 0;
    while (i < half && j < n) /* the left item goes first unless the right one scores strictly higher */
        idx[o++] = score[idx[j]] > score[tmp[i]] ? idx[j++] : tmp[i++];
    while (i < half) idx[o++] = tmp[i++];
}

/* Each group's rows sorted by descending score (ties in row order), the groups split between up to two threads
 * by row count (each group is sorted on its own, so the split never changes the order). */
typedef struct {
    int64_t *order;
    const int64_t *bounds;
    const double *score;
    Py_ssize_t g0, g1;
    int failed;
} SortCtx;

static void *sort_groups_walk(void *arg) {
    SortCtx *c = arg;
    Py_ssize_t largest = 0;
    for (Py_ssize_t g = c->g0; g < c->g1; g++)
        if (c->bounds[g + 1] - c->bounds[g] > largest) largest = c->bounds[g + 1] - c->bounds[g];
    int64_t *tmp = malloc((size_t)(largest / 2 + 1) * sizeof *tmp);
    if (!tmp) {
        c->failed = 1;
        return NULL;
    }
    for (Py_ssize_t g = c->g0; g < c->g1; g++)
        sort_by_score(c->order + c->bounds[g], tmp, c->bounds[g + 1] - c->bounds[g], c->score);
    free(tmp);
    return NULL;
}

/* The same order by a stable LSD radix sort of (key, row) pairs, for groups of thousands: the key maps a score
 * to an integer that ascends as the score descends (-0.0 as 0.0, so equal scores stay ties); bytes that every
 * key shares are skipped.  Stable passes keep equal keys in row order, as the merge sort does.  NaN scores are
 * not ordered like the comparison sort orders them: the caller sorts those groups with sort_by_score. */
typedef struct {
    uint64_t key;
    int64_t row;
} Keyed;

static int radix_by_score(int64_t *idx, Keyed *a, Keyed *b, Py_ssize_t n, const double *score) {
    static const int BYTES = 8;
    Py_ssize_t counts[8][256];
    memset(counts, 0, sizeof counts);
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = score[idx[i]];
        if (x != x) return 0; /* NaN */
        if (x == 0) x = 0.0;
        uint64_t u;
        memcpy(&u, &x, sizeof u);
        u = (u >> 63) ? ~u : (u | (1ull << 63)); /* ascends with the score */
        a[i] = (Keyed){~u, idx[i]};
        for (int byte = 0; byte < BYTES; byte++) counts[byte][(a[i].key >> (8 * byte)) & 255]++;
    }
    for (int byte = 0; byte < BYTES; byte++) {
        Py_ssize_t *count = counts[byte];
        if (count[(a[0].key >> (8 * byte)) & 255] == n) continue; /* every key shares this byte */
        Py_ssize_t at = 0;
        for (int v = 0; v < 256; v++) {
            Py_ssize_t c = count[v];
            count[v] = at;
            at += c;
        }
        for (Py_ssize_t i = 0; i < n; i++) b[count[(a[i].key >> (8 * byte)) & 255]++] = a[i];
        Keyed *swap = a;
        a = b;
        b = swap;
    }
    for (Py_ssize_t i = 0; i < n; i++) idx[i] = a[i].row;
    return 1;
}

static void *radix_groups_walk(void *arg) {
    SortCtx *c = arg;
    Py_ssize_t largest = 0;
    for (Py_ssize_t g = c->g0; g < c->g1; g++)
        if (c->bounds[g + 1] - c->bounds[g] > largest) largest = c->bounds[g + 1] - c->bounds[g];
    Keyed *pairs = malloc((size_t)(2 * largest + 2) * sizeof *pairs);
    int64_t *tmp = malloc((size_t)(largest / 2 + 1) * sizeof *tmp);
    if (!pairs || !tmp) {
        c->failed = 1;
        free(pairs);
        free(tmp);
        return NULL;
    }
    for (Py_ssize_t g = c->g0; g < c->g1; g++) {
        int64_t *rows = c->order + c->bounds[g];
        Py_ssize_t n = c->bounds[g + 1] - c->bounds[g];
        if (n < 256 || !radix_by_score(rows, pairs, pairs + largest + 1, n, c->score))
            sort_by_score(rows, tmp, n, c->score);
    }
    free(pairs);
    free(tmp);
    return NULL;
}

/* The groups' sorts by ``walk`` (sort_groups_walk or radix_groups_walk), split between up to two threads at the
 * group where the later half of the rows begins; nonzero if a thread ran out of memory. */
static int split_group_sorts(int64_t *order, const int64_t *bounds, Py_ssize_t num_groups, const double *score,
                             Py_ssize_t threads, void *(*walk)(void *)) {
    Py_ssize_t split = num_groups;
    if (threads > 1 && num_groups > 1) {
        int64_t half = (bounds[num_groups] - bounds[0]) / 2;
        for (split = 0; split < num_groups && bounds[split] - bounds[0] < half; split++) {}
    }
    SortCtx ctx[2] = {{order, bounds, score, 0, split, 0}, {order, bounds, score, split, num_groups, 0}};
    pthread_t helper;
    int helped = split < num_groups && pthread_create(&helper, NULL, walk, &ctx[1]) == 0;
    walk(&ctx[0]);
    if (helped) pthread_join(helper, NULL);
    else if (split < num_groups) walk(&ctx[1]);
    return ctx[0].failed || ctx[1].failed;
}

static int radix_groups(int64_t *order, const int64_t *bounds, Py_ssize_t num_groups, const double *score,
                        Py_ssize_t threads) {
    return split_group_sorts(order, bounds, num_groups, score, threads, radix_groups_walk);
}

static int sort_groups(int64_t *order, const int64_t *bounds, Py_ssize_t num_groups, const double *score,
                       Py_ssize_t threads) {
    return split_group_sorts(order, bounds, num_groups, score, threads, sort_groups_walk);
}

/* group_order(key, score, num_groups, order, bounds[, threads]): with threads 2 a second thread sorts the groups
 * holding the later half of the rows (the order does not depend on it). */
static PyObject *group_order(PyObject *self, PyObject *args) {
    Py_buffer key_view, score_view, order_view, bounds_view;
    Py_ssize_t num_groups, threads = 1;
    if (!PyArg_ParseTuple(args, "y*y*nw*w*|n", &key_view, &score_view, &num_groups, &order_view, &bounds_view,
                          &threads))
        return NULL;
    Py_ssize_t n = key_view.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *key = key_view.buf;
    const double *score = score_view.len ? score_view.buf : NULL;
    int64_t *order = order_view.buf, *bounds = bounds_view.buf;
    int bad = order_view.len != key_view.len || bounds_view.len != (num_groups + 1) * (Py_ssize_t)sizeof(int64_t) ||
              (score && score_view.len != n * (Py_ssize_t)sizeof(double));
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        memset(bounds, 0, (size_t)(num_groups + 1) * sizeof *bounds);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (key[i] < 0 || key[i] >= num_groups) { bad = 1; break; }
            bounds[key[i] + 1]++;
        }
        if (!bad) {
            for (Py_ssize_t g = 0; g < num_groups; g++) bounds[g + 1] += bounds[g];
            int64_t *fill = malloc((size_t)(num_groups + 1) * sizeof *fill);
            if (fill) {
                memcpy(fill, bounds, (size_t)(num_groups + 1) * sizeof *fill);
                for (Py_ssize_t i = 0; i < n; i++) order[fill[key[i]]++] = i;
                free(fill);
                if (score) {
                    /* a second thread only where it pays: from 4096 rows */
                    if (sort_groups(order, bounds, num_groups, score, n >= 4096 ? threads : 1)) bad = 2;
                }
            } else {
                bad = 2;
            }
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&key_view);
    PyBuffer_Release(&score_view);
    PyBuffer_Release(&order_view);
    PyBuffer_Release(&bounds_view);
    if (bad == 2) return PyErr_NoMemory();
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "group_order: bad sizes or keys");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ matching */
/* pycocotools' evaluateImg for every candidate detection.  Pairs are ordered by detection (detections in
 * group-then-rank order), then ground truth.  A detection takes, among the ground truths not yet taken (crowds
 * can be taken again) with IoU >= the threshold, a regular one before an ignored one, then the highest IoU,
 * then the latest position.  ``matched`` (T, A, C) receives the ground truth of each candidate or -1. */
static PyObject *greedy_match(PyObject *self, PyObject *args) {
    /* With ``status`` buffers (tp, fp: (C, A) uint16), the matches are not stored: each candidate's COCOeval
     * status at every (threshold, area range) is written instead, as bits (see accumulate_status), which needs
     * ``id_zero`` (G) and ``outside`` (A, D) of the detections in the sorted view. */
    Py_buffer det_v, gt_v, iou_v, crowd_v, ignored_v, thr_v, matched_v;
    Py_buffer zero_v = {0}, out_v = {0}, tpb_v = {0}, fpb_v = {0};
    Py_ssize_t num_a, num_g;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*nnw*|y*y*w*w*", &det_v, &gt_v, &iou_v, &crowd_v, &ignored_v, &thr_v,
                          &num_a, &num_g, &matched_v, &zero_v, &out_v, &tpb_v, &fpb_v))
        return NULL;
    const int64_t *pd = det_v.buf, *pg = gt_v.buf;
    const double *piou = iou_v.buf, *thr = thr_v.buf;
    const uint8_t *crowd = crowd_v.buf, *ignored = ignored_v.buf, *id_zero = zero_v.buf, *outside = out_v.buf;
    int32_t *matched = matched_v.buf;
    uint16_t *tp_bits = tpb_v.buf, *fp_bits = fpb_v.buf;
    int status = tpb_v.buf != NULL;
    Py_ssize_t num_p = det_v.len / 8, num_t = thr_v.len / 8, num_d = num_a ? out_v.len / num_a : 0;
    Py_ssize_t num_c = !num_t || !num_a ? 0 : status ? tpb_v.len / 2 / num_a : matched_v.len / 4 / (num_t * num_a);
    int bad = gt_v.len != det_v.len || iou_v.len != det_v.len || crowd_v.len != num_g ||
              ignored_v.len != num_a * num_g ||
              (status ? (fpb_v.len != tpb_v.len || tpb_v.len != num_c * num_a * 2 || zero_v.len != num_g ||
                         num_t > 16 || out_v.len != num_a * num_d)
                      : matched_v.len != num_t * num_a * num_c * 4);
    for (Py_ssize_t j = 0; j < num_p && !bad; j++)
        if (pg[j] < 0 || pg[j] >= num_g || (status && (pd[j] < 0 || pd[j] >= num_d))) bad = 1;
    uint8_t *taken = NULL;
    if (!bad) {
        taken = calloc((size_t)(num_t * num_a * num_g) + 1, 1); /* (G, T, A): one ground truth's flags together */
        if (!taken) bad = 2;
    }
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        Py_ssize_t c = -1;
        for (Py_ssize_t s = 0, e; s < num_p && !bad; s = e) {
            for (e = s + 1; e < num_p && pd[e] == pd[s]; e++) {}
            if (++c >= num_c) { bad = 1; break; }
            if (status)
                for (Py_ssize_t a = 0; a < num_a; a++) tp_bits[c * num_a + a] = fp_bits[c * num_a + a] = 0;
            for (Py_ssize_t t = 0; t < num_t; t++) {
                double threshold = thr[t];
                for (Py_ssize_t a = 0; a < num_a; a++) {
                    const uint8_t *ig = ignored + a * num_g;
                    int64_t best = -1;
                    int best_tier = 2;
                    double best_iou = threshold;
                    for (Py_ssize_t j = s; j < e; j++) {
                        int64_t g = pg[j];
                        double iou = piou[j];
                        if ((taken[(g * num_t + t) * num_a + a] && !crowd[g]) || !(iou >= threshold)) continue;
                        int tier = ig[g] != 0;
                        if (tier < best_tier || (tier == best_tier && iou >= best_iou)) {
                            best = g;
                            best_tier = tier;
                            best_iou = iou;
                        }
                    }
                    if (best >= 0 && !crowd[best]) taken[(best * num_t + t) * num_a + a] = 1;
                    if (!status) {
                        matched[(t * num_a + a) * num_c + c] = (int32_t)best;
                        continue;
                    }
                    int got = best >= 0;
                    int dtm_nonzero = got && !id_zero[best];
                    int is_ignored = (got && ig[best]) || (!dtm_nonzero && outside[a * num_d + pd[s]]);
                    if (!is_ignored) {
                        if (dtm_nonzero) tp_bits[c * num_a + a] |= (uint16_t)(1u << t);
                        else fp_bits[c * num_a + a] |= (uint16_t)(1u << t);
                    }
                }
            }
        }
        if (!bad && c + 1 != num_c) bad = 1;
        Py_END_ALLOW_THREADS
    }
    free(taken);
    Py_buffer *views[] = {&det_v, &gt_v, &iou_v, &crowd_v, &ignored_v, &thr_v, &matched_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    Py_buffer *optional[] = {&zero_v, &out_v, &tpb_v, &fpb_v};
    for (size_t i = 0; i < sizeof optional / sizeof *optional; i++)
        if (optional[i]->obj) PyBuffer_Release(optional[i]);
    if (bad == 2) return PyErr_NoMemory();
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "greedy_match: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ accumulation */
/* pycocotools' accumulate for every image once.  Detections arrive in accumulation order (category, then
 * descending score, then image, then rank), ``cat_bounds`` delimiting the categories.  For each (category,
 * area range, maxDets, threshold) the walk counts true and false positives; the interpolated precision at a
 * recall threshold is the best precision at or beyond it, and that best is always reached at a true positive,
 * so only true positives compute a precision (pycocotools' arithmetic: tp / ((fp + tp) + eps), recall tp / npig).
 * ``rank``, ``slot`` and ``plain_inside`` are gathered into that order (``seq`` only gives the count).
 * Never-matched detections (``slot`` -1) are false positives where ``plain_inside`` says so, at every threshold
 * alike; candidates have their status per (threshold) in ``cand_tp`` / ``cand_counted`` laid out (C, A, T).
 * ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M) must arrive filled with -1. */
static PyObject *accumulate(PyObject *self, PyObject *args) {
    Py_buffer seq_v, bounds_v, rank_v, slot_v, plain_v, tp_v, counted_v, npos_v, rthr_v, mdet_v, prec_v, rec_v;
    Py_ssize_t num_t, num_a, num_k;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*nnnw*w*", &seq_v, &bounds_v, &rank_v, &slot_v, &plain_v, &tp_v,
                          &counted_v, &npos_v, &rthr_v, &mdet_v, &num_t, &num_a, &num_k, &prec_v, &rec_v))
        return NULL;
    const int64_t *cat_bounds = bounds_v.buf, *rank = rank_v.buf, *slot = slot_v.buf;
    const int64_t *npos = npos_v.buf, *max_dets = mdet_v.buf;
    const uint8_t *plain = plain_v.buf, *cand_tp = tp_v.buf, *cand_counted = counted_v.buf;
    const double *rthr = rthr_v.buf;
    double *precision = prec_v.buf, *recall = rec_v.buf;
    Py_ssize_t num_d = rank_v.len / 8, num_r = rthr_v.len / 8, num_m = mdet_v.len / 8, num_seq = seq_v.len / 8;
    Py_ssize_t num_c = num_t && num_a ? tp_v.len / (num_t * num_a) : 0;
    int bad = bounds_v.len != (num_k + 1) * 8 || slot_v.len != rank_v.len || plain_v.len != num_a * num_d ||
              counted_v.len != tp_v.len || npos_v.len != num_k * num_a * 8 ||
              prec_v.len != num_t * num_r * num_k * num_a * num_m * 8 || rec_v.len != num_t * num_k * num_a * num_m * 8;
    if (!bad && num_k && (cat_bounds[0] < 0 || cat_bounds[num_k] > num_seq)) bad = 1;
    if (num_seq != num_d) bad = 1;
    for (Py_ssize_t i = 0; i < num_d && !bad; i++)
        if (slot[i] >= num_c) bad = 1;
    double *work = bad ? NULL : malloc((size_t)(num_t * (num_r + 1) + 2 * num_t) * sizeof(double));
    if (!bad && !work) bad = 2;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        const double eps = 2.220446049250313e-16; /* np.spacing(1) */
        double *best = work, *tp = work + num_t * (num_r + 1), *fp = tp + num_t;
        for (Py_ssize_t k = 0; k < num_k; k++) {
            for (Py_ssize_t a = 0; a < num_a; a++) {
                int64_t npig = npos[k * num_a + a];
                if (npig <= 0) continue;
                const uint8_t *inside = plain + a * num_d;
                for (Py_ssize_t m = 0; m < num_m; m++) {
                    int64_t max_det = max_dets[m];
                    double plain_fp = 0;
                    memset(work, 0, (size_t)(num_t * (num_r + 1) + 2 * num_t) * sizeof(double));
                    for (Py_ssize_t i = cat_bounds[k]; i < cat_bounds[k + 1]; i++) {
                        int64_t d = i; /* the columns arrive gathered into accumulation order */
                        if (rank[d] >= max_det) continue;
                        int64_t c = slot[d];
                        if (c < 0) {
                            plain_fp += inside[d];
                            continue;
                        }
                        const uint8_t *is_tp = cand_tp + (c * num_a + a) * num_t;
                        const uint8_t *is_counted = cand_counted + (c * num_a + a) * num_t;
                        for (Py_ssize_t t = 0; t < num_t; t++) {
                            if (is_tp[t]) {
                                double tpd = ++tp[t], fpd = fp[t] + plain_fp;
                                double pr = tpd / ((fpd + tpd) + eps);
                                double rc = tpd / (double)npig;
                                Py_ssize_t lo = 0, hi = num_r; /* thresholds <= rc */
                                while (lo < hi) {
                                    Py_ssize_t mid = (lo + hi) / 2;
                                    if (rthr[mid] <= rc) lo = mid + 1; else hi = mid;
                                }
                                double *slot_best = best + t * (num_r + 1) + lo;
                                if (pr > *slot_best) *slot_best = pr;
                            } else if (is_counted[t]) {
                                fp[t] += 1;
                            }
                        }
                    }
                    for (Py_ssize_t t = 0; t < num_t; t++) {
                        double *row = best + t * (num_r + 1), running = 0;
                        for (Py_ssize_t r = num_r; r >= 1; r--) { /* best of the entries reaching > r-1 */
                            if (row[r] > running) running = row[r];
                            precision[(((t * num_r + (r - 1)) * num_k + k) * num_a + a) * num_m + m] = running;
                        }
                        recall[((t * num_k + k) * num_a + a) * num_m + m] = tp[t] / (double)npig;
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
    }
    free(work);
    Py_buffer *views[] = {&seq_v, &bounds_v, &rank_v, &slot_v, &plain_v, &tp_v, &counted_v, &npos_v, &rthr_v,
                          &mdet_v, &prec_v, &rec_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    if (bad == 2) return PyErr_NoMemory();
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "accumulate: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ masks */
/* COCO's compressed RLE strings (the format of pycocotools' "counts"): each count is a little-endian run of
 * 5-bit groups in chars offset by 48, 0x20 meaning "more", the last group's 0x10 its sign; from the fourth
 * count on, counts are stored as differences to the count two places earlier.  Runs alternate background /
 * foreground, column-major, starting with background. */
typedef struct {
    uint32_t *runs;       /* all masks' runs, back to back */
    int64_t *start;       /* (n + 1) */
    Py_ssize_t n;
} Runs;

static void runs_free(Runs *r) {
    free(r->runs);
    free(r->start);
}

/* Decode one string into ``out`` (room for len(s) counts); returns the count, or -1 if the text is outside the
 * format (then the caller falls back to pycocotools). */
static Py_ssize_t decode_counts(const char *s, Py_ssize_t len, uint32_t *out) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    Py_ssize_t m = 0;
    while (p < end) {
        unsigned c = (unsigned)*p++ - 48u; /* below '0' wraps: one compare finds both ends of the alphabet */
        if (c > 63u) return -1;
        int64_t x;
        if (!(c & 0x20)) { /* a one-character value (most of them): 5 bits, 0x10 the sign */
            x = (c & 0x10) ? (int64_t)c - 32 : (int64_t)c;
        } else {
            x = c & 0x1f;
            for (int k = 1;; k++) {
                if (p >= end || k >= 6) return -1; /* a count of more than 30 bits is not a mask of a real image */
                c = (unsigned)*p++ - 48u;
                if (c > 63u) return -1;
                x |= (int64_t)(c & 0x1f) << (5 * k);
                if (!(c & 0x20)) {
                    if (c & 0x10) x |= (int64_t)(int32_t)(UINT32_MAX << (5 * (k + 1))); /* sign-extend as int */
                    break;
                }
            }
        }
        if (m > 2) x += (int64_t)out[m - 2];
        if ((uint64_t)x > UINT32_MAX) return -1; /* a negative or out-of-range run length */
        out[m++] = (uint32_t)x;
    }
    return m;
}

/* The counts of packed strings: (blob bytes, offsets int64 (n + 1)), string i = blob[offsets[i]:offsets[i+1]]. */
static int runs_from_packed(PyObject *packed, Runs *r, const uint8_t *needed) {
    PyObject *blob = PyTuple_GET_ITEM(packed, 0);
    Py_buffer off_v;
    if (!PyBytes_Check(blob)) { PyErr_SetString(PyExc_TypeError, "packed masks: blob must be bytes"); return -1; }
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(packed, 1), &off_v, PyBUF_SIMPLE)) return -1;
    const int64_t *off = off_v.buf;
    Py_ssize_t n = off_v.len / 8 - 1, size = PyBytes_GET_SIZE(blob);
    const char *text = PyBytes_AS_STRING(blob);
    int status = n < 0 ? 1 : 0;
    for (Py_ssize_t i = 0; i < n && !status; i++)
        if (off[i] < 0 || off[i] > off[i + 1] || off[i + 1] > size) status = 1;
    if (!status) {
        r->n = n;
        r->start = malloc((size_t)(n + 1) * sizeof(int64_t));
        r->runs = malloc((size_t)(size + 1) * sizeof(uint32_t));
        if (!r->start || !r->runs) status = -2;
    }
    int64_t at = 0;
    for (Py_ssize_t i = 0; i < n && !status; i++) {
        r->start[i] = at;
        if (needed && !needed[i]) continue;
        Py_ssize_t m = decode_counts(text + off[i], (Py_ssize_t)(off[i + 1] - off[i]), r->runs + at);
        if (m < 0) status = 1;
        else at += m;
    }
    if (!status) r->start[n] = at;
    PyBuffer_Release(&off_v);
    if (status) {
        runs_free(r);
        r->runs = NULL;
        r->start = NULL;
        if (status == -2) PyErr_NoMemory();
        return status == -2 ? -1 : 1;
    }
    return 0;
}

/* The counts of a list of str/bytes objects (or dicts with "counts"); only items with ``needed[i]`` (all when
 * NULL) are decoded, the others get no runs. */
static int runs_from_list(PyObject *list, Runs *r, const uint8_t *needed) {
    r->runs = NULL;
    r->start = NULL;
    if (PyTuple_Check(list) && PyTuple_GET_SIZE(list) == 2) return runs_from_packed(list, r, needed);
    PyObject *seq = PySequence_Fast(list, "expected a list");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    r->n = n;
    r->start = malloc((size_t)(n + 1) * sizeof(int64_t));
    const char **texts = malloc((size_t)(n + 1) * sizeof(char *));
    Py_ssize_t *lens = malloc((size_t)(n + 1) * sizeof(Py_ssize_t));
    int status = (!r->start || !texts || !lens) ? -2 : 0;
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n && !status; i++) {
        lens[i] = 0;
        if (needed && !needed[i]) continue;
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (PyDict_Check(item)) item = PyDict_GetItemString(item, "counts");
        if (item && PyUnicode_Check(item)) {
            texts[i] = PyUnicode_AsUTF8AndSize(item, &lens[i]);
            if (!texts[i]) { PyErr_Clear(); status = 1; }
        } else if (item && PyBytes_Check(item)) {
            texts[i] = PyBytes_AS_STRING(item);
            lens[i] = PyBytes_GET_SIZE(item);
        } else {
            status = 1;
        }
        if (!status) total += lens[i];
    }
    if (!status) {
        r->runs = malloc((size_t)(total + 1) * sizeof(uint32_t));
        if (!r->runs) status = -2;
    }
    int64_t at = 0;
    for (Py_ssize_t i = 0; i < n && !status; i++) {
        r->start[i] = at;
        if (needed && !needed[i]) continue;
        Py_ssize_t m = decode_counts(texts[i], lens[i], r->runs + at);
        if (m < 0) status = 1;
        else at += m;
    }
    if (!status) r->start[n] = at;
    free(texts);
    free(lens);
    Py_DECREF(seq);
    if (status) {
        runs_free(r);
        if (status == -2) PyErr_NoMemory();
        return status == -2 ? -1 : 1;
    }
    return 0;
}

static uint32_t runs_area(const Runs *r, Py_ssize_t i) {
    uint32_t a = 0;
    for (int64_t j = r->start[i] + 1; j < r->start[i + 1]; j += 2) a += r->runs[j];
    return a;
}

/* How many masks a list, or a packed (blob, offsets) tuple, holds; -1 with an exception set on error. */
static Py_ssize_t masks_length(PyObject *masks) {
    if (PyTuple_Check(masks) && PyTuple_GET_SIZE(masks) == 2) {
        Py_buffer off_v;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(masks, 1), &off_v, PyBUF_SIMPLE)) return -1;
        Py_ssize_t n = off_v.len / 8 - 1;
        PyBuffer_Release(&off_v);
        return n < 0 ? 0 : n;
    }
    return PyObject_Length(masks);
}

/* mask_areas(list) -> bytes of float64 areas (pycocotools' area), or None when a string is outside the format */
static PyObject *mask_areas(PyObject *self, PyObject *args) {
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O", &list)) return NULL;
    Runs r;
    int status = runs_from_list(list, &r, NULL);
    if (status < 0) return NULL;
    if (status > 0) Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, r.n * (Py_ssize_t)sizeof(double));
    if (out) {
        double *areas = (double *)PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; i < r.n; i++) areas[i] = (double)runs_area(&r, i);
    }
    runs_free(&r);
    return out;
}

/* Mask IoU of pairs, as pycocotools' rleIou computes it: walk both run lists together counting the pixels in
 * either (u) and in both (i); a crowd ground truth's union is the detection's area; no shared pixel gives 0
 * (pycocotools' box pre-check, or i = 0 over u = 1).  Masks of one pair must have the same size (the loader
 * checked it against the image).  mask_iou(dt_list, gt_list, crowd u8, pair_dt i64, pair_gt i64, out f64)
 * -> True, or False when a string is outside the format (nothing written). */
/* One thread's share of mask_iou: the pairs [j0, j1) (each pair writes only its own output). */
typedef struct {
    const Runs *dt, *gt;
    const int64_t *pd, *pg;
    const uint8_t *crowd;
    double *out;
    Py_ssize_t j0, j1;
} MaskIouCtx;

static void *mask_iou_range(void *arg) {
    const MaskIouCtx *job = arg;
    const Runs dt = *job->dt, gt = *job->gt;
    const int64_t *pd = job->pd, *pg = job->pg;
    const uint8_t *crowd = job->crowd;
    double *out = job->out;
    for (Py_ssize_t j = job->j0; j < job->j1; j++) {
        const uint32_t *ra = dt.runs + dt.start[pd[j]], *rb = gt.runs + gt.start[pg[j]];
        int64_t ka = dt.start[pd[j] + 1] - dt.start[pd[j]], kb = gt.start[pg[j] + 1] - gt.start[pg[j]];
        uint32_t i = 0, u = 0;
        if (ka > 0 && kb > 0) {
            uint32_t ca = ra[0], cb = rb[0], c;
            int64_t a = 1, b = 1;
            int va = 0, vb = 0;
            for (;;) {
                c = ca < cb ? ca : cb;
                if (va || vb) {
                    u += c;
                    if (va && vb) i += c;
                }
                int moved = c > 0;
                ca -= c;
                if (!ca && a < ka) { ca = ra[a++]; va = !va; moved = 1; }
                cb -= c;
                if (!cb && b < kb) { cb = rb[b++]; vb = !vb; moved = 1; }
                if (ca + (uint64_t)cb == 0 || !moved) break; /* !moved: runs of unequal totals */
            }
        }
        if (i == 0) {
            out[j] = 0.0;
            continue;
        }
        if (crowd[pg[j]]) u = runs_area(&dt, pd[j]);
        out[j] = (double)i / (double)u;
    }
    return NULL;
}

static PyObject *mask_iou(PyObject *self, PyObject *args) {
    PyObject *dt_list, *gt_list;
    Py_buffer crowd_v, pd_v, pg_v, out_v;
    if (!PyArg_ParseTuple(args, "OOy*y*y*w*", &dt_list, &gt_list, &crowd_v, &pd_v, &pg_v, &out_v)) return NULL;
    Runs dt, gt;
    Py_ssize_t num_p = pd_v.len / 8;
    const int64_t *pd = pd_v.buf, *pg = pg_v.buf;
    Py_ssize_t num_dt = masks_length(dt_list), num_gt = masks_length(gt_list);
    if (num_dt < 0 || num_gt < 0) return NULL;
    uint8_t *need_dt = calloc((size_t)num_dt + 1, 1), *need_gt = calloc((size_t)num_gt + 1, 1);
    int status = need_dt && need_gt ? 0 : -1;
    if (status) PyErr_NoMemory();
    for (Py_ssize_t j = 0; j < num_p && !status; j++) { /* decode only the masks that are in a pair */
        if (pd[j] < 0 || pd[j] >= num_dt || pg[j] < 0 || pg[j] >= num_gt) {
            PyErr_SetString(PyExc_ValueError, "mask_iou: pair index out of range");
            status = -1;
        } else {
            need_dt[pd[j]] = need_gt[pg[j]] = 1;
        }
    }
    if (status == 0) status = runs_from_list(dt_list, &dt, need_dt);
    if (status == 0) {
        status = runs_from_list(gt_list, &gt, need_gt);
        if (status) runs_free(&dt);
    }
    free(need_dt);
    free(need_gt);
    const uint8_t *crowd = crowd_v.buf;
    double *out = out_v.buf;
    int bad = 0;
    if (status == 0) {
        bad = pg_v.len != pd_v.len || out_v.len != pd_v.len || crowd_v.len != gt.n;
        for (Py_ssize_t j = 0; j < num_p && !bad; j++)
            if (pd[j] < 0 || pd[j] >= dt.n || pg[j] < 0 || pg[j] >= gt.n) bad = 1;
        if (!bad) {
            Py_BEGIN_ALLOW_THREADS
            /* two threads over halves of the pairs, from 4096 pairs on (below, a thread costs more) */
            Py_ssize_t half = num_p >= 4096 ? num_p / 2 : num_p;
            MaskIouCtx ctx[2] = {{&dt, &gt, pd, pg, crowd, out, 0, half}, {&dt, &gt, pd, pg, crowd, out, half, num_p}};
            pthread_t helper;
            int helped = half < num_p && pthread_create(&helper, NULL, mask_iou_range, &ctx[1]) == 0;
            mask_iou_range(&ctx[0]);
            if (helped) pthread_join(helper, NULL);
            else if (half < num_p) mask_iou_range(&ctx[1]);
            Py_END_ALLOW_THREADS
        }
        runs_free(&dt);
        runs_free(&gt);
    }
    PyBuffer_Release(&crowd_v);
    PyBuffer_Release(&pd_v);
    PyBuffer_Release(&pg_v);
    PyBuffer_Release(&out_v);
    if (status < 0) return NULL;
    if (status > 0) Py_RETURN_FALSE;
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "mask_iou: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* ------------------------------------------------------------------------------------------ polygons */
/* COCO polygons to compressed RLE strings, the masks pycocotools gives for them (``frPyObjects`` on the parts,
 * then ``merge`` of the parts, as ``COCO.annToRLE`` does), without a Python object per polygon.
 *
 * pycocotools rasterises a part (its rleFrPoly) in three steps, reproduced here operation for operation
 * because the masks must be identical to the bit:
 *   1. vertices scaled by 5 and rounded as (int)(5 * v + .5); the closed outline is walked edge by edge, from
 *      each edge's first vertex to its second, one step per unit of the longer axis, the other coordinate
 *      (int)(start + slope * t + .5) with the slope computed from the end points in the same orientation as
 *      pycocotools (the edge swapped so the walk's major axis increases, the step index mirrored back);
 *   2. wherever two consecutive walk points lie in different columns, the column boundary between them is
 *      mapped back to pixel space ((c + .5) / 5 - .5); it counts only when it lands exactly on a column of the
 *      image, and its row (from the smaller of the two rows, mapped the same way) is clamped to [0, h] and
 *      rounded up.  Each such crossing toggles the mask at position column * h + row (column-major);
 *   3. the positions sorted, h * w appended, differences taken: the run lengths; a zero-length run (two
 *      crossings at one position) joins the runs on either side into one.
 * A zero-length edge (a repeated vertex) has no slope (pycocotools divides 0 by 0 and casts the NaN); its
 * single walk point is never the second of a pair whose columns differ inside the image, so its row does not
 * matter -- it is written as INT_MIN, the value that cast gives on x86.
 * Parts are then merged by union, one after the other, walking both run lists at once (rleMerge's loop,
 * zero-length runs and all), and every mask is written in COCO's compressed string form. */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} U32Vec;

static int u32_reserve(U32Vec *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    uint32_t *grown = realloc(b->v, cap * sizeof *grown);
    if (!grown) return -1;
    b->v = grown;
    b->cap = cap;
    return 0;
}

/* Sorts ``a`` (n) ascending.  A polygon's crossings come in long monotone stretches (along each edge the
 * column moves one way), so: find the maximal non-decreasing / non-increasing runs, reverse the latter, and
 * merge neighbouring runs pass by pass (``tmp`` holds n). */
static void sort_crossings(uint32_t *a, uint32_t *tmp, size_t n, size_t *bounds) {
    size_t runs = 0, i = 0;
    while (i < n) {
        size_t j = i + 1;
        if (j < n && a[j] < a[i]) {
            while (j < n && a[j] <= a[j - 1]) j++;
            for (size_t lo = i, hi = j - 1; lo < hi; lo++, hi--) {
                uint32_t t = a[lo];
                a[lo] = a[hi];
                a[hi] = t;
            }
        } else {
            while (j < n && a[j] >= a[j - 1]) j++;
        }
        bounds[runs++] = i;
        i = j;
    }
    bounds[runs] = n;
    uint32_t *src = a, *dst = tmp;
    while (runs > 1) {
        size_t out_runs = 0;
        for (size_t r = 0; r < runs; r += 2) {
            size_t lo = bounds[r], mid = bounds[r + 1], hi = r + 2 <= runs ? bounds[r + 2] : mid;
            size_t p = lo, q = mid, o = lo;
            while (p < mid && q < hi) dst[o++] = src[q] < src[p] ? src[q++] : src[p++];
            while (p < mid) dst[o++] = src[p++];
            while (q < hi) dst[o++] = src[q++];
            bounds[out_runs++] = lo;
        }
        bounds[out_runs] = n;
        runs = out_runs;
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

/* The crossing of the column boundary between walk points (pu, pv) and (u, v), if it is inside the image. */
static int polygon_crossing(int u, int v, int pu, int pv, int64_t h, int64_t w, U32Vec *keys) {
    double xd = (double)(u < pu ? u : u - 1);
    xd = (xd + .5) / 5.0 - .5;
    if (floor(xd) != xd || xd < 0 || xd > (double)(w - 1)) return 0;
    double yd = (double)(v < pv ? v : pv);
    yd = (yd + .5) / 5.0 - .5;
    if (yd < 0) yd = 0;
    else if (yd > (double)h) yd = (double)h;
    yd = ceil(yd);
    if (u32_reserve(keys, keys->n + 1)) return -1;
    keys->v[keys->n++] = (uint32_t)((int)xd * (int)h + (int)yd);
    return 0;
}

/* One edge of the walk after pycocotools' orientation: points t = 0..steps, walked from t = flip ? steps : 0. */
typedef struct {
    int xs, ys, xe, ye, dx, dy, steps, flip;
    double s;
} Edge;

static Edge polygon_edge(const double *xy, Py_ssize_t j, Py_ssize_t k) {
    Py_ssize_t nx = j + 1 < k ? j + 1 : 0;
    Edge e;
    e.xs = (int)(5.0 * xy[2 * j] + .5);
    e.ys = (int)(5.0 * xy[2 * j + 1] + .5);
    e.xe = (int)(5.0 * xy[2 * nx] + .5);
    e.ye = (int)(5.0 * xy[2 * nx + 1] + .5);
    e.dx = abs(e.xe - e.xs);
    e.dy = abs(e.ys - e.ye);
    e.flip = (e.dx >= e.dy && e.xs > e.xe) || (e.dx < e.dy && e.ys > e.ye);
    if (e.flip) {
        int t = e.xs;
        e.xs = e.xe;
        e.xe = t;
        t = e.ys;
        e.ys = e.ye;
        e.ye = t;
    }
    e.steps = e.dx >= e.dy ? e.dx : e.dy;
    e.s = e.dx >= e.dy ? (e.dx ? (double)(e.ye - e.ys) / e.dx : 0.0) : (double)(e.xe - e.xs) / e.dy;
    return e;
}

/* Walk point t of an edge, with pycocotools' expressions (a zero-length edge's row: see above). */
static inline int edge_u(const Edge *e, int t) {
    return e->dx >= e->dy ? t + e->xs : (int)(e->xs + e->s * t + .5);
}
static inline int edge_v(const Edge *e, int t) {
    return e->dx >= e->dy ? (e->dx ? (int)(e->ys + e->s * t + .5) : INT_MIN) : t + e->ys;
}

/* A crossing known to lie on image column n (0 <= n < w), the smaller row of its pair being ``vmin``:
 * polygon_crossing's arithmetic without the column test (ceil of a value in [0, h] done in integers). */
static inline int push_crossing(U32Vec *keys, int64_t n, int vmin, int64_t h) {
    double yd = ((double)vmin + .5) / 5.0 - .5;
    if (yd < 0) yd = 0;
    else if (yd > (double)h) yd = (double)h;
    int y = (int)yd;
    if ((double)y < yd) y++;
    if (keys->n == keys->cap && u32_reserve(keys, keys->n + 1)) return -1;
    keys->v[keys->n++] = (uint32_t)((int)n * (int)h + y);
    return 0;
}

/* The crossings of one edge's consecutive walk points, without walking every point: a crossing needs the
 * smaller column of the pair to be c = 5n + 2 (then (c + .5) / 5 - .5 is exactly n; for any other c it is not
 * an integer), so only every fifth column change can count.  Along a shallow edge the column changes at every
 * step (u = t + xs); along a steep one at most once per step, monotonically in t, and the step where it
 * passes column c is predicted from the slope and settled by evaluating the walk's own expression. */
static int edge_crossings(const Edge *e, int64_t h, int64_t w, U32Vec *keys) {
    if (e->steps == 0) return 0;
    int64_t last_column = (w - 1) * 5 + 2;
    if (e->dx >= e->dy) {
        /* pairs (t0, t0 + 1), smaller column xs + t0, t0 in [0, steps - 1] */
        int64_t lo = 2 - (int64_t)e->xs, hi = (int64_t)e->steps - 1;
        if (hi > last_column - e->xs) hi = last_column - e->xs;
        if (lo < 0) lo += ((-lo + 4) / 5) * 5;
        for (int64_t t0 = lo; t0 <= hi; t0 += 5) {
            int t = (int)t0, va = edge_v(e, t), vb = edge_v(e, t + 1);
            if (push_crossing(keys, (e->xs + t0 - 2) / 5, va < vb ? va : vb, h)) return -1;
        }
        return 0;
    }
    int u0 = edge_u(e, 0), u1 = edge_u(e, e->steps);
    int rising = u1 >= u0, cmin = rising ? u0 : u1, cmax = rising ? u1 : u0;
    /* columns c (the smaller of a pair) in [cmin, cmax - 1] with c = 5n + 2, 0 <= n <= w - 1 */
    int64_t c = cmin < 2 ? 2 : cmin + ((2 - cmin) % 5 + 5) % 5;
    int64_t clast = cmax - 1 < last_column ? cmax - 1 : last_column;
    for (; c <= clast; c += 5) {
        /* the first t whose column is beyond c (>= c + 1 rising, <= c falling); t >= 1 since u(0) is not */
        double guess = ((double)c + .5 - e->xs) / e->s;
        int64_t t = rising ? (int64_t)ceil(guess) : (int64_t)floor(guess) + 1;
        if (t < 1) t = 1;
        if (t > e->steps) t = e->steps;
#define BEYOND(tt) (rising ? edge_u(e, (int)(tt)) >= c + 1 : edge_u(e, (int)(tt)) <= c)
        while (t > 1 && BEYOND(t - 1)) t--;
        while (t < e->steps && !BEYOND(t)) t++;
#undef BEYOND
        if (push_crossing(keys, (c - 2) / 5, (int)t - 1 + e->ys, h)) return -1;
    }
    return 0;
}

/* One part's run lengths into ``runs`` (replacing its contents); ``xy`` holds k vertices. */
static int polygon_runs(const double *xy, Py_ssize_t k, int64_t h, int64_t w, U32Vec *keys, U32Vec *tmp,
                        size_t **bounds, size_t *bounds_cap, U32Vec *runs) {
    keys->n = 0;
    int have_prev = 0, pu = 0, pv = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        Edge e = polygon_edge(xy, j, k);
        int t_first = e.flip ? e.steps : 0, t_last = e.flip ? 0 : e.steps;
        int u = edge_u(&e, t_first), v = edge_v(&e, t_first);
        /* the pair across the junction with the previous edge's last point */
        if (have_prev && u != pu && polygon_crossing(u, v, pu, pv, h, w, keys)) return -1;
        if (edge_crossings(&e, h, w, keys)) return -1;
        pu = edge_u(&e, t_last);
        pv = edge_v(&e, t_last);
        have_prev = 1;
    }
    if (u32_reserve(keys, keys->n + 1) || u32_reserve(tmp, keys->n + 1) || u32_reserve(runs, keys->n + 1))
        return -1;
    keys->v[keys->n++] = (uint32_t)(h * w);
    if (*bounds_cap < keys->n + 1) {
        size_t *grown = realloc(*bounds, (keys->n + 1) * sizeof **bounds);
        if (!grown) return -1;
        *bounds = grown;
        *bounds_cap = keys->n + 1;
    }
    sort_crossings(keys->v, tmp->v, keys->n, *bounds);
    uint32_t prev = 0;
    for (size_t j = 0; j < keys->n; j++) { /* positions -> differences */
        uint32_t t = keys->v[j];
        keys->v[j] -= prev;
        prev = t;
    }
    size_t m = 0, j = 0;
    runs->v[m++] = keys->v[j++];
    while (j < keys->n) {
        if (keys->v[j] > 0) {
            runs->v[m++] = keys->v[j++];
        } else {
            j++;
            if (j < keys->n) runs->v[m - 1] += keys->v[j++];
        }
    }
    runs->n = m;
    return 0;
}

/* ``acc`` := union of ``acc`` and ``b`` (rleMerge's walk); ``out`` is scratch, swapped into ``acc``. */
static int runs_union(U32Vec *acc, const U32Vec *b, U32Vec *out) {
    if (u32_reserve(out, acc->n + b->n + 1)) return -1;
    const uint32_t *A = acc->v, *B = b->v;
    size_t am = acc->n, bm = b->n, a = 1, bi = 1, m = 0;
    uint32_t ca = A[0], cb = B[0], cc = 0, ct = 1, c;
    int v = 0, va = 0, vb = 0, vp;
    while (ct > 0) {
        c = ca < cb ? ca : cb;
        cc += c;
        ct = 0;
        ca -= c;
        if (!ca && a < am) {
            ca = A[a++];
            va = !va;
        }
        ct += ca;
        cb -= c;
        if (!cb && bi < bm) {
            cb = B[bi++];
            vb = !vb;
        }
        ct += cb;
        vp = v;
        v = va || vb;
        if (v != vp || ct == 0) {
            out->v[m++] = cc;
            cc = 0;
        }
    }
    out->n = m;
    U32Vec t = *acc;
    *acc = *out;
    *out = t;
    return 0;
}

/* Appends runs in COCO's compressed string form (pycocotools' rleToString): from the third count on, the
 * difference to the count two before; 5 bits per character plus 48, 0x20 = more follow, 0x10 of the last = sign. */
static int runs_encode(const U32Vec *r, Buf *out) {
    size_t need = out->len + r->n * 7; /* at most 7 characters a count (33 bits with the sign) */
    if (need > out->cap) {
        size_t cap = out->cap ? out->cap : 1 << 16;
        while (cap < need) cap *= 2;
        char *grown = realloc(out->data, cap);
        if (!grown) return -1;
        out->data = grown;
        out->cap = cap;
    }
    char *o = out->data + out->len;
    for (size_t i = 0; i < r->n; i++) {
        long long x = (long long)r->v[i];
        if (i > 2) x -= (long long)r->v[i - 2];
        int more = 1;
        while (more) {
            char c = (char)(x & 0x1f);
            x >>= 5;
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            *o++ = (char)(c + 48);
        }
    }
    out->len = (size_t)(o - out->data);
    return 0;
}

/* polygons_to_rles(coords f64, part_starts i64 (P + 1), item_parts i64 (N + 1), sizes i64 (N, 2))
 *   -> (blob, offsets i64 (N + 1), areas f64 (N)) as bytes: mask i is the union of parts
 *   item_parts[i] .. item_parts[i + 1] - 1, part p the vertices coords[part_starts[p] : part_starts[p + 1]]
 *   (x, y interleaved), rasterised at sizes[i] = (h, w); its string is blob[offsets[i]:offsets[i + 1]].
 * The caller checked the values (harness.io.validation.coco_geometry); the kernel refuses anything outside
 * those bounds again with ValueError rather than trust it. */
static PyObject *polygons_to_rles(PyObject *self, PyObject *args) {
    Py_buffer xy_v, ps_v, ip_v, hw_v;
    if (!PyArg_ParseTuple(args, "y*y*y*y*", &xy_v, &ps_v, &ip_v, &hw_v)) return NULL;
    const double *xy = xy_v.buf;
    const int64_t *ps = ps_v.buf, *ip = ip_v.buf, *hw = hw_v.buf;
    Py_ssize_t num_xy = xy_v.len / 8, num_p = ps_v.len / 8 - 1, num_i = ip_v.len / 8 - 1;
    const char *problem = NULL;
    if (num_p < 0 || num_i < 0 || hw_v.len != num_i * 16) problem = "inconsistent sizes";
    for (Py_ssize_t p = 0; p < num_p && !problem; p++)
        if (ps[p] < 0 || ps[p + 1] < ps[p] || ps[p + 1] > num_xy || (ps[p + 1] - ps[p]) % 2 || ps[p + 1] == ps[p])
            problem = "part offsets out of range or odd";
    for (Py_ssize_t i = 0; i < num_i && !problem; i++)
        if (ip[i] < 0 || ip[i + 1] <= ip[i] || ip[i + 1] > num_p || hw[2 * i] < 1 || hw[2 * i + 1] < 1 ||
            hw[2 * i] > 65536 || hw[2 * i + 1] > 65536 || hw[2 * i] * hw[2 * i + 1] >= ((int64_t)1 << 31))
            problem = "item offsets or image sizes out of range";
    for (Py_ssize_t j = 0; j < num_xy && !problem; j++)
        if (!(fabs(xy[j]) <= 1e7)) problem = "coordinates must be finite and within +-1e7";
    if (problem) {
        PyBuffer_Release(&xy_v);
        PyBuffer_Release(&ps_v);
        PyBuffer_Release(&ip_v);
        PyBuffer_Release(&hw_v);
        PyErr_Format(PyExc_ValueError, "polygons_to_rles: %s", problem);
        return NULL;
    }
    Buf blob = {0};
    int64_t *offsets = malloc((size_t)(num_i + 1) * sizeof *offsets);
    double *areas = malloc((size_t)(num_i + 1) * sizeof *areas);
    U32Vec keys = {0}, tmp = {0}, part = {0}, acc = {0}, scratch = {0};
    size_t *bounds = NULL, bounds_cap = 0;
    int failed = !offsets || !areas;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < num_i && !failed; i++) {
        int64_t h = hw[2 * i], w = hw[2 * i + 1];
        offsets[i] = (int64_t)blob.len;
        for (int64_t p = ip[i]; p < ip[i + 1] && !failed; p++) {
            U32Vec *into = p == ip[i] ? &acc : &part;
            failed = polygon_runs(xy + ps[p], (Py_ssize_t)((ps[p + 1] - ps[p]) / 2), h, w, &keys, &tmp, &bounds,
                                  &bounds_cap, into) ||
                     (p > ip[i] && runs_union(&acc, &part, &scratch));
        }
        if (failed) break;
        uint64_t area = 0;
        for (size_t j = 1; j < acc.n; j += 2) area += acc.v[j];
        areas[i] = (double)area;
        failed = runs_encode(&acc, &blob);
    }
    Py_END_ALLOW_THREADS
    if (!failed) offsets[num_i] = (int64_t)blob.len;
    free(keys.v);
    free(tmp.v);
    free(part.v);
    free(acc.v);
    free(scratch.v);
    free(bounds);
    PyBuffer_Release(&xy_v);
    PyBuffer_Release(&ps_v);
    PyBuffer_Release(&ip_v);
    PyBuffer_Release(&hw_v);
    PyObject *out = NULL;
    if (failed) {
        PyErr_NoMemory();
    } else {
        PyObject *b = buf_bytes(&blob);
        PyObject *o = PyBytes_FromStringAndSize((const char *)offsets, (Py_ssize_t)((num_i + 1) * 8));
        PyObject *a = PyBytes_FromStringAndSize((const char *)areas, (Py_ssize_t)(num_i * 8));
        if (b && o && a) out = PyTuple_Pack(3, b, o, a);
        Py_XDECREF(b);
        Py_XDECREF(o);
        Py_XDECREF(a);
    }
    free(blob.data);
    free(offsets);
    free(areas);
    return out;
}

/* ------------------------------------------------------------------------------------------ ground truth */
/* Any JSON value, checked as strictly as a JSON parser would (strings: escapes, control characters, UTF-8),
 * skipped; returns its end or NULL. */
static Ptr skip_string(Ptr p, Ptr end) { /* p after the opening quote; returns past the closing one */
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            if (p + 1 >= end) return NULL;
            unsigned char e = p[1];
            if (e == 'u') {
                if (p + 6 > end) return NULL;
                for (int i = 2; i < 6; i++) {
                    unsigned char h = p[i];
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F'))) return NULL;
                }
                p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                p += 2;
            } else {
                return NULL;
            }
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        /* UTF-8: lead byte, then continuation bytes; no overlongs, surrogates or values past U+10FFFF */
        int n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
        else return NULL;
        if (p + n >= end) return NULL;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) return NULL;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return NULL;
        p += n + 1;
    }
    return NULL;
}

static Ptr skip_value(Ptr p, Ptr end, int depth) {
    if (p >= end || depth > 200) return NULL;
    unsigned char c = *p;
    if (c == '"') return skip_string(p + 1, end);
    if (c == '{' || c == '[') {
        unsigned char close = c == '{' ? '}' : ']';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (c == '{') {
                if (p >= end || *p != '"') return NULL;
                p = skip_string(p + 1, end);
                if (!p) return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p = skip_ws(p + 1, end);
            }
            p = skip_value(p, end, depth + 1);
            if (!p) return NULL;
            p = skip_ws(p, end);
            if (p >= end) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p = skip_ws(p + 1, end);
        }
    }
    if (c == 't') return end - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
    if (c == 'f') return end - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
    if (c == 'n') return end - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
    int is_int;
    return scan_number(p, end, &is_int);
}

/* A ground-truth "segmentation" value for the mask fast path: polygons ([[x, y, ...], ...], at least one part,
 * numbers only) append their values to ``coords``, each part's length to ``part_lengths`` and set *parts; an
 * object (an RLE) is skipped as JSON and its span (start, end) appended to ``objects`` with *parts = 0.  Anything
 * else: NULL (the caller hands the file to the general reader). */
static Ptr parse_segm_polygons(Ptr base, Ptr p, Ptr end, Buf *coords, Buf *part_lengths, Buf *objects,
                               int64_t *parts) {
    *parts = 0;
    if (p < end && *p == '{') {
        Ptr e = skip_value(p, end, 0);
        int64_t span[2] = {p - base, e ? e - base : 0};
        if (!e || buf_put(objects, span, sizeof span)) return NULL;
        return e;
    }
    if (p >= end || *p != '[') return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return NULL; /* no parts: the general path names it */
    for (;;) {
        Py_ssize_t count;
        p = parse_number_array(p, end, coords, &count);
        int64_t length = count;
        if (!p || buf_put(part_lengths, &length, sizeof length)) return NULL;
        (*parts)++;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ']') return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

enum { A_ID, A_IMAGE, A_CATEGORY, A_AREA, A_ISCROWD, A_BBOX, A_KEYPOINTS, A_NUM_KEYPOINTS, A_COUNT };
static const char *ANN_KEYS[A_COUNT] = {"id", "image_id", "category_id", "area", "iscrowd", "bbox", "keypoints",
                                        "num_keypoints"};

/* parse_ground_truth(data) -> None, or (n, columns, counts, kp_len, spans): a COCO annotation file whose
 * "annotations" are objects with integer id / image_id / category_id / iscrowd, numeric area and num_keypoints,
 * 4-number bbox and same-length keypoints (each at most once; any other key is checked as JSON and skipped).
 * ``spans`` maps every other top-level key to the (start, end) of its value's text, for the caller to parse.
 * With ``segm`` true, "segmentation" is read too (parse_segm_polygons) and a sixth item is added:
 * (segmentations seen, coords, part lengths, parts per segmentation, RLE object spans (start, end) in order). */
static PyObject *parse_ground_truth(PyObject *self, PyObject *args) {
    Py_buffer view;
    int segm = 0;
    if (!PyArg_ParseTuple(args, "y*|p", &view, &segm)) return NULL;
    Buf segm_cols[4] = {{0}}; /* coords, part lengths, parts per segmentation, object spans */
    Py_ssize_t segm_present = 0;
    Ptr base = (Ptr)view.buf, p = base, end = base + view.len;
    Buf cols[A_COUNT] = {{0}};
    Py_ssize_t present[A_COUNT] = {0};
    Py_ssize_t n = 0, kp_len = -1, num_spans = 0;
    int64_t span_key[64][2], span_value[64][2];
    int ok = 1, have_annotations = 0;

    Py_BEGIN_ALLOW_THREADS
    p = skip_ws(p, end);
    if (p >= end || *p != '{') ok = 0;
    else p = skip_ws(p + 1, end);
    if (ok && p < end && *p == '}') ok = 0;
    while (ok) {
        if (p >= end || *p != '"') { ok = 0; break; }
        Ptr ks = ++p;
        while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) p++;
        if (p >= end || *p != '"') { ok = 0; break; }
        Ptr ke = p;
        p = skip_ws(p + 1, end);
        if (p >= end || *p != ':') { ok = 0; break; }
        p = skip_ws(p + 1, end);
        for (Py_ssize_t i = 0; i < num_spans; i++) /* a repeated key: the general parser's rules decide */
            if (span_key[i][1] - span_key[i][0] == ke - ks && !memcmp(base + span_key[i][0], ks, (size_t)(ke - ks))) ok = 0;
        int is_annotations = ke - ks == 11 && !memcmp(ks, "annotations", 11);
        if (!ok || (is_annotations && have_annotations) || num_spans >= 64) { ok = 0; break; }
        if (is_annotations) {
            have_annotations = 1;
            if (p >= end || *p != '[') { ok = 0; break; }
            p = skip_ws(p + 1, end);
            if (p < end && *p == ']') { ok = 0; break; } /* no annotations: the general path */
            for (;;) {
                if (p >= end || *p != '{') { ok = 0; break; }
                p = skip_ws(p + 1, end);
                int seen = 0;
                if (p < end && *p == '}') { ok = 0; break; }
                for (;;) {
                    if (p >= end || *p != '"') { ok = 0; break; }
                    Ptr as = ++p;
                    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) p++;
                    if (p >= end || *p != '"') { ok = 0; break; }
                    Py_ssize_t len = p - as;
                    int key = -1;
                    for (int k = 0; k < A_COUNT; k++)
                        if ((Py_ssize_t)strlen(ANN_KEYS[k]) == len && !memcmp(ANN_KEYS[k], as, (size_t)len)) key = k;
                    p = skip_ws(p + 1, end);
                    if (p >= end || *p != ':') { ok = 0; break; }
                    p = skip_ws(p + 1, end);
                    if (segm && len == 12 && !memcmp(as, "segmentation", 12)) {
                        int64_t parts;
                        if (seen & (1 << A_COUNT)) { ok = 0; break; }
                        seen |= 1 << A_COUNT;
                        p = parse_segm_polygons(base, p, end, &segm_cols[0], &segm_cols[1], &segm_cols[3], &parts);
                        if (!p || buf_put(&segm_cols[2], &parts, sizeof parts)) { ok = 0; break; }
                        segm_present++;
                    } else if (key < 0) {
                        p = skip_value(p, end, 0);
                        if (!p) { ok = 0; break; }
                    } else {
                        if (seen & (1 << key)) { ok = 0; break; }
                        seen |= 1 << key;
                        if (key == A_ID || key == A_IMAGE || key == A_CATEGORY || key == A_ISCROWD) {
                            int64_t value;
                            p = parse_int(p, end, &value);
                            if (!p || buf_put(&cols[key], &value, sizeof value)) { ok = 0; break; }
                        } else if (key == A_AREA || key == A_NUM_KEYPOINTS) {
                            double value;
                            p = parse_number(p, end, &value);
                            if (!p || buf_put(&cols[key], &value, sizeof value)) { ok = 0; break; }
                        } else {
                            Py_ssize_t count;
                            p = parse_number_array(p, end, &cols[key], &count);
                            if (!p) { ok = 0; break; }
                            if (key == A_BBOX && count != 4) { ok = 0; break; }
                            if (key == A_KEYPOINTS) {
                                if (kp_len < 0) kp_len = count;
                                if (count != kp_len || count == 0) { ok = 0; break; }
                            }
                        }
                        present[key]++;
                    }
                    p = skip_ws(p, end);
                    if (p >= end) { ok = 0; break; }
                    if (*p == '}') { p++; break; }
                    if (*p != ',') { ok = 0; break; }
                    p = skip_ws(p + 1, end);
                }
                if (!ok) break;
                /* iscrowd is optional (0): keep the column aligned with the annotations */
                if (!(seen & (1 << A_ISCROWD))) {
                    int64_t zero = 0;
                    if (buf_put(&cols[A_ISCROWD], &zero, sizeof zero)) { ok = 0; break; }
                }
                n++;
                p = skip_ws(p, end);
                if (p >= end) { ok = 0; break; }
                if (*p == ']') { p++; break; }
                if (*p != ',') { ok = 0; break; }
                p = skip_ws(p + 1, end);
            }
            if (!ok) break;
            span_key[num_spans][0] = ks - base;
            span_key[num_spans][1] = ke - base;
            span_value[num_spans][0] = span_value[num_spans][1] = -1;
            num_spans++;
        } else {
            Ptr vs = p;
            p = skip_value(p, end, 0);
            if (!p) { ok = 0; break; }
            span_key[num_spans][0] = ks - base;
            span_key[num_spans][1] = ke - base;
            span_value[num_spans][0] = vs - base;
            span_value[num_spans][1] = p - base;
            num_spans++;
        }
        p = skip_ws(p, end);
        if (p >= end) { ok = 0; break; }
        if (*p == '}') {
            p = skip_ws(p + 1, end);
            ok = p == end;
            break;
        }
        if (*p != ',') { ok = 0; break; }
        p = skip_ws(p + 1, end);
    }
    if (!have_annotations) ok = 0;
    Py_END_ALLOW_THREADS

    PyObject *out = NULL;
    if (ok) {
        PyObject *columns = PyDict_New(), *counts = PyDict_New(), *spans = PyDict_New();
        int failed = !columns || !counts || !spans;
        for (int k = 0; k < A_COUNT && !failed; k++) {
            PyObject *bytes = buf_column(&cols[k]);
            PyObject *count = PyLong_FromSsize_t(k == A_ISCROWD ? n : present[k]);
            failed = !bytes || !count || PyDict_SetItemString(columns, ANN_KEYS[k], bytes) ||
                     PyDict_SetItemString(counts, ANN_KEYS[k], count);
            Py_XDECREF(bytes);
            Py_XDECREF(count);
        }
        for (Py_ssize_t i = 0; i < num_spans && !failed; i++) {
            if (span_value[i][0] < 0) continue;
            PyObject *key = PyUnicode_DecodeASCII((const char *)base + span_key[i][0],
                                                  (Py_ssize_t)(span_key[i][1] - span_key[i][0]), NULL);
            PyObject *value = Py_BuildValue("(LL)", (long long)span_value[i][0], (long long)span_value[i][1]);
            failed = !key || !value || PyDict_SetItem(spans, key, value);
            Py_XDECREF(key);
            Py_XDECREF(value);
        }
        if (!failed && segm) {
            PyObject *c0 = buf_column(&segm_cols[0]), *c1 = buf_column(&segm_cols[1]), *c2 = buf_column(&segm_cols[2]),
                     *c3 = buf_column(&segm_cols[3]);
            if (c0 && c1 && c2 && c3)
                out = Py_BuildValue("nOOnO(nOOOO)", n, columns, counts, kp_len, spans, segm_present, c0, c1, c2, c3);
            Py_XDECREF(c0);
            Py_XDECREF(c1);
            Py_XDECREF(c2);
            Py_XDECREF(c3);
        } else if (!failed) out = Py_BuildValue("nOOnO", n, columns, counts, kp_len, spans);
        Py_XDECREF(columns);
        Py_XDECREF(counts);
        Py_XDECREF(spans);
    } else {
        out = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&view);
    for (int k = 0; k < A_COUNT; k++) free(cols[k].data);
    for (int k = 0; k < 4; k++) free(segm_cols[k].data);
    return out;
}

/* ------------------------------------------------------------------------------------------ boxes */
/* box_iou(dt_box (D, 4), gt_box (G, 4), gt_crowd (G) uint8, pair_dt (P), pair_gt (P), out (P)): cocoapi's bbIou
 * of each pair, operation by operation as ious.box_iou_pairs writes it in numpy (which the tests compare bit for
 * bit): w = min(dw + dx, gw + gx) - max(dx, gx), h alike, 0 unless w > 0 and h > 0, else i / u with i = w * h and
 * u = dw * dh for a crowd ground truth, (dw * dh + gw * gh) - i otherwise.  The boxes are finite (checked). */
static PyObject *box_iou(PyObject *self, PyObject *args) {
    Py_buffer dt_v, gt_v, crowd_v, pd_v, pg_v, out_v;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*", &dt_v, &gt_v, &crowd_v, &pd_v, &pg_v, &out_v)) return NULL;
    Py_ssize_t num_dt = dt_v.len / 32, num_gt = gt_v.len / 32, num_p = pd_v.len / 8;
    const double *dt = dt_v.buf, *gt = gt_v.buf;
    const uint8_t *crowd = crowd_v.buf;
    const int64_t *pd = pd_v.buf, *pg = pg_v.buf;
    double *out = out_v.buf;
    int bad = dt_v.len != num_dt * 32 || gt_v.len != num_gt * 32 || crowd_v.len != num_gt ||
              pg_v.len != pd_v.len || pd_v.len != num_p * 8 || out_v.len != num_p * 8;
    for (Py_ssize_t j = 0; j < num_p && !bad; j++)
        if (pd[j] < 0 || pd[j] >= num_dt || pg[j] < 0 || pg[j] >= num_gt) bad = 1;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < num_p; j++) {
            const double *d = dt + 4 * pd[j], *g = gt + 4 * pg[j];
            double dx = d[0], dy = d[1], dw = d[2], dh = d[3], gx = g[0], gy = g[1], gw = g[2], gh = g[3];
            double right = dw + dx, g_right = gw + gx, bottom = dh + dy, g_bottom = gh + gy;
            double w = (right < g_right ? right : g_right) - (dx > gx ? dx : gx);
            double h = (bottom < g_bottom ? bottom : g_bottom) - (dy > gy ? dy : gy);
            if (!(w > 0 && h > 0)) {
                out[j] = 0.0;
                continue;
            }
            double inter = w * h, dt_area = dw * dh;
            double uni = crowd[pg[j]] ? dt_area : (dt_area + gw * gh) - inter;
            out[j] = inter / uni;
        }
        Py_END_ALLOW_THREADS
    }
    Py_buffer *views[] = {&dt_v, &gt_v, &crowd_v, &pd_v, &pg_v, &out_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "box_iou: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ keypoints */
/* OKS of pairs in two steps around numpy's exp (so every exp is numpy's own):
 *   oks_terms   e for each pair (row of K), computed as pycocotools' computeOks does operation by operation:
 *               ((dx*dx + dy*dy) / var) / (area + eps) / 2 over the labelled keypoints of the ground truth
 *               (moved to the front of the row, their count returned), or over all K against the box twice
 *               the ground truth's size when none is labelled;
 *   oks_sums    sum of exp(-e) over each row's first ``count`` values, in the order of numpy's pairwise sum
 *               (np.sum on the compacted 1-D array, as pycocotools calls it), divided by the count. */
static PyObject *oks_terms(PyObject *self, PyObject *args) {
    Py_buffer dt_v, gt_v, box_v, area_v, var_v, pd_v, pg_v, e_v, count_v;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*w*w*", &dt_v, &gt_v, &box_v, &area_v, &var_v, &pd_v, &pg_v, &e_v,
                          &count_v))
        return NULL;
    Py_ssize_t k = var_v.len / 8, num_p = pd_v.len / 8;
    Py_ssize_t num_dt = k ? dt_v.len / 8 / (3 * k) : 0, num_gt = k ? gt_v.len / 8 / (3 * k) : 0;
    const double *dt = dt_v.buf, *gt = gt_v.buf, *box = box_v.buf, *area = area_v.buf, *var = var_v.buf;
    const int64_t *pd = pd_v.buf, *pg = pg_v.buf;
    double *e = e_v.buf;
    int64_t *count = count_v.buf;
    int bad = k < 1 || box_v.len != num_gt * 32 || area_v.len != num_gt * 8 || pg_v.len != pd_v.len ||
              e_v.len != num_p * k * 8 || count_v.len != num_p * 8;
    for (Py_ssize_t j = 0; j < num_p && !bad; j++)
        if (pd[j] < 0 || pd[j] >= num_dt || pg[j] < 0 || pg[j] >= num_gt) bad = 1;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        const double eps = 2.220446049250313e-16;
        for (Py_ssize_t j = 0; j < num_p; j++) {
            const double *d = dt + pd[j] * 3 * k, *g = gt + pg[j] * 3 * k, *b = box + pg[j] * 4;
            double scale = area[pg[j]] + eps, *row = e + j * k;
            int64_t c = 0;
            for (Py_ssize_t q = 0; q < k; q++)
                if (g[3 * q + 2] > 0) {
                    double dx = d[3 * q] - g[3 * q], dy = d[3 * q + 1] - g[3 * q + 1];
                    row[c++] = (dx * dx + dy * dy) / var[q] / scale / 2;
                }
            if (c == 0) {
                double x0 = b[0] - b[2], x1 = b[0] + b[2] * 2, y0 = b[1] - b[3], y1 = b[1] + b[3] * 2;
                for (Py_ssize_t q = 0; q < k; q++) {
                    double xd = d[3 * q], yd = d[3 * q + 1];
                    double ax = x0 - xd, bx = xd - x1, ay = y0 - yd, by = yd - y1;
                    double dx = (ax > 0 ? ax : 0.0) + (bx > 0 ? bx : 0.0);
                    double dy = (ay > 0 ? ay : 0.0) + (by > 0 ? by : 0.0);
                    row[q] = (dx * dx + dy * dy) / var[q] / scale / 2;
                }
                c = k;
            }
            for (Py_ssize_t q = c; q < k; q++) row[q] = 0.0;
            count[j] = c;
        }
        Py_END_ALLOW_THREADS
    }
    Py_buffer *views[] = {&dt_v, &gt_v, &box_v, &area_v, &var_v, &pd_v, &pg_v, &e_v, &count_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "oks_terms: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}


static PyObject *oks_sums(PyObject *self, PyObject *args) {
    Py_buffer x_v, count_v, out_v;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &x_v, &count_v, &k, &out_v)) return NULL;
    Py_ssize_t num_p = count_v.len / 8;
    const double *x = x_v.buf;
    const int64_t *count = count_v.buf;
    double *out = out_v.buf;
    int bad = k < 1 || k > 128 || x_v.len != num_p * k * 8 || out_v.len != num_p * 8;
    for (Py_ssize_t j = 0; j < num_p && !bad; j++)
        if (count[j] < 1 || count[j] > k) bad = 1;
    if (!bad)
        for (Py_ssize_t j = 0; j < num_p; j++) out[j] = numpy_pairwise_sum(x + j * k, count[j]) / (double)count[j];
    PyBuffer_Release(&x_v);
    PyBuffer_Release(&count_v);
    PyBuffer_Release(&out_v);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "oks_sums: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ weighted accumulation */
/* ``accumulate_matches`` for image multisets (the bootstrap): ``weights`` (I, B) int32 says how often each
 * image is drawn in each of B resamples.  The resampled list is the images in order, an image's copies side by
 * side, so in pycocotools' per-category order a *block* (a run of equal category, score and image;
 * ``block_start`` flags its first position) appears as w consecutive copies of itself.  Counts before the j-th
 * copy of a block are the weighted counts before the block plus (j-1) times the block's own; the q-th true
 * positive of copy j has tp = before + (j-1) * block_tp + tp_up_to_q (fp alike).  Without counted false
 * positives in the block precision only grows with j, so only the last copy can set a maximum; otherwise every
 * copy is scored.  Counts are whole numbers (int32, checked against overflow up front; exact in double) and
 * precision / recall use accumulate_matches' arithmetic, so each resample equals a full evaluation of its image
 * list bit for bit.
 * Where the time goes, and what keeps it low: never-matched detections (most of them) only add their weights to
 * per-area false-positive counts, and every count is kept resample-innermost, so a block's copies are one
 * vector add over the thread's resamples.  Scoring a true positive is per resample and branch-free (wa_event):
 * its recall bin comes from a table of every count's bin for the resample's positives (wa_bins, the same
 * division and scan), its precision goes into the bin's maximum, and the envelope is taken once at the end.
 * (Data-dependent branches per true positive -- a recall-threshold scan, skipping dominated points -- cost more
 * in mispredictions than the work they saved.)  A block of several detections is read once for all resamples.
 * Inputs, in accumulation order: image, rank, slot (-1: never a candidate), inside (bit a: inside area range
 * a); cand_tp, cand_fp (C, A) uint16 status bits (match_status); positives: gt_key (k * A + a) and gt_image of
 * every non-ignored (ground truth, area range); max_dets (M) and want (M) uint8: which maxDets get a precision
 * (all get a recall).  ``precision`` is (B, M', A, T, K, R) for the M' wanted maxDets (rows written in
 * sequence) and ``recall`` (B, M, A, T, K), filled here (-1 where a category has no positives in the
 * resample).  With ``threads`` > 1 a second thread walks half of the resamples (each resample's numbers do not
 * depend on it).  ``specs`` (S, 4) int64, when given, asks for pycocotools' summary of every resample into
 * ``stats`` (B, S), computed in C by the thread that walked the resample: see wa_summary. */
#define WA_MAX_A 8
#define WA_MAX_M 8
/* What one thread of accumulate_weighted needs: the inputs, the categories [k0, k1) it walks for the resamples
 * [b0, b1), and whether it summarises them.  Categories are independent (each has its own rows of precision
 * and recall; ``plain`` is the thread's own), and so are resamples, so threads share nothing they write. */
typedef struct {
    const int64_t *cat_bounds, *image, *rank, *slot, *max_dets, *specs;
    const int32_t *weights;
    const double *rthr, *npos;
    const uint8_t *block_start, *inside;
    const uint16_t *cand_tp, *cand_fp;
    double *precision, *recall, *stats;
    int32_t *plain;
    const Py_ssize_t *mp_of;
    Py_ssize_t num_t, num_a, num_k, num_r, num_m, num_b, num_mp, num_s, b0, b1;
    Py_ssize_t k0, k1; /* the categories it walks (for the resamples [b0, b1)); then it summarises those */
    Py_ssize_t *next_k; /* when set: categories are taken one at a time from this shared counter instead */
    Py_ssize_t max_positives; /* the largest weighted positive count of any (resample, category, area range) */
    int failed; /* the thread's scratch could not be allocated */
} WaCtx;

/* pycocotools' summarize of the resamples [b0, b1), as summarize_resamples reads it: spec s = (kind, t, a, m)
 * is the mean of the values > -1 of precision[b, m, a] (kind 0; read in (T, R, K) order) or recall[b, m, a]
 * (kind 1; (T, K)), over all thresholds (t = -1) or threshold t; -1 when there are none or the kind is 2.  A
 * precision block (T, K, R) is transposed once into ``scratch`` (T, R, K) in tiles, so that what a stat reads is
 * contiguous; the valid values are summed in numpy's order (copied to ``gather`` first only when some are -1),
 * so each stat equals np.mean's bits. */
static void wa_summary(const double *precision, const double *recall, const int64_t *specs, Py_ssize_t num_s,
                       Py_ssize_t num_mp, Py_ssize_t num_m, Py_ssize_t num_a, Py_ssize_t num_t, Py_ssize_t num_k,
                       Py_ssize_t num_r, Py_ssize_t b0, Py_ssize_t b1, double *scratch, double *gather,
                       double *stats) {
    const Py_ssize_t tile = 16, block = num_t * num_k * num_r;
    Py_ssize_t kept = 0, *keep = (Py_ssize_t *)(gather + num_t * num_k * num_r + num_t * num_k);
    for (Py_ssize_t b = b0; b < b1; b++) {
        Py_ssize_t held = -1; /* the (m, a) block in scratch */
        for (Py_ssize_t s = 0; s < num_s; s++) {
            const int64_t *spec = specs + s * 4;
            int64_t kind = spec[0], t_sel = spec[1], a = spec[2], m = spec[3];
            Py_ssize_t t_lo = t_sel < 0 ? 0 : t_sel, t_hi = t_sel < 0 ? num_t : t_sel + 1, len = 0;
            const double *span = NULL;
            if (kind == 0) {
                Py_ssize_t key = m * num_a + a;
                if (key != held) {
                    /* a category's rows are all -1 (no positives) or all valid: keep the valid categories only */
                    const double *p = precision + ((b * num_mp + m) * num_a + a) * block;
                    kept = 0;
                    for (Py_ssize_t k = 0; k < num_k; k++)
                        if (num_r && p[k * num_r] > -1) keep[kept++] = k;
                    for (Py_ssize_t t = 0; t < num_t; t++) {
                        const double *src = p + t * num_k * num_r; /* (K, R) */
                        double *dst = scratch + t * num_r * kept;  /* (R, kept) */
                        for (Py_ssize_t j0 = 0; j0 < kept; j0 += tile)
                            for (Py_ssize_t r0 = 0; r0 < num_r; r0 += tile)
                                for (Py_ssize_t j = j0; j < j0 + tile && j < kept; j++)
                                    for (Py_ssize_t r = r0; r < r0 + tile && r < num_r; r++)
                                        dst[r * kept + j] = src[keep[j] * num_r + r];
                    }
                    held = key;
                }
                span = scratch + t_lo * num_r * kept;
                len = (t_hi - t_lo) * num_r * kept;
            } else if (kind == 1) {
                span = recall + (((b * num_m + m) * num_a + a) * num_t + t_lo) * num_k;
                len = (t_hi - t_lo) * num_k;
            }
            Py_ssize_t n = kind == 0 ? len : 0; /* the kept categories' precisions are all valid */
            while (n < len && span[n] > -1) n++;
            if (n < len) { /* some values are -1: the valid ones, in order */
                memcpy(gather, span, (size_t)n * sizeof(double));
                for (Py_ssize_t i = n; i < len; i++)
                    if (span[i] > -1) gather[n++] = span[i];
                span = gather;
            }
            stats[b * num_s + s] = n ? numpy_pairwise_sum(span, n) / (double)n : -1.0;
        }
    }
}

/* ``bins[x]``, x = 0..npig: how many recall thresholds tp = x reaches (those <= x / npig, accumulate_matches'
 * division and scan), so that scoring a true positive is a lookup instead of a division and a data-dependent
 * loop.  Thresholds are ascending. */
static void wa_bins(int16_t *bins, double npig, const double *rthr, Py_ssize_t num_r) {
    Py_ssize_t n = (Py_ssize_t)npig, r = 0;
    for (Py_ssize_t x = 0; x <= n; x++) {
        double rc = (double)x / npig;
        while (r < num_r && rthr[r] <= rc) r++;
        bins[x] = (int16_t)r;
    }
}

/* Per resample and category: the best precision per recall bin of every (area range, threshold) walk, the
 * highest bin each walk reached, and per area range the bins of every count (built on first use). */
/* The true positives of one (area range, threshold) in a block of several detections: entries [first, first +
 * count) of the block's (tp, fp)-within-a-copy list, and one copy's totals. */
typedef struct {
    Py_ssize_t at, a, first, count;
    double block_tp, block_fp;
} WaGroup;

typedef struct {
    double *best;     /* (A*T, R+1) */
    int32_t *hi;      /* (A*T): highest recall bin scored, -1 before the first point */
    int16_t *bins;    /* (A, span) */
    uint8_t *ready;   /* (A): bins built */
    Py_ssize_t span;  /* entries per area range: the largest positive count + 1 */
} WaLane;

/* A true positive (tp, fp) of walk ``at`` (area a): its precision into the best of the recall bin it reaches.
 * Branch-free but for the first use of an area range's bins: the maximum is kept per bin and the envelope taken
 * at the end, as accumulate_matches does. */
static inline void wa_event(const WaLane *ln, Py_ssize_t at, Py_ssize_t a, double tp, double fp, const double *rthr,
                            Py_ssize_t num_r, double npig) {
    const double eps = 2.220446049250313e-16; /* np.spacing(1) */
    int16_t *bins = ln->bins + a * ln->span;
    if (!ln->ready[a]) {
        wa_bins(bins, npig, rthr, num_r);
        ln->ready[a] = 1;
    }
    double pr = tp / ((fp + tp) + eps);
    int32_t lo;
    if (tp <= npig) lo = bins[(Py_ssize_t)tp];
    else { /* (more true positives than positives cannot happen; the division as a safeguard) */
        double rc = tp / npig;
        for (lo = 0; lo < num_r && rthr[lo] <= rc; lo++) {}
    }
    double *cell = ln->best + at * (num_r + 1) + lo;
    *cell = pr > *cell ? pr : *cell;
    ln->hi[at] = lo > ln->hi[at] ? lo : ln->hi[at];
}

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize"))) /* element-wise adds over resamples; no reassociation */
#endif
static void *wa_walk(void *arg) {
    WaCtx *c = arg;
    const int64_t *cat_bounds = c->cat_bounds, *image = c->image, *rank = c->rank, *slot = c->slot;
    const int64_t *max_dets = c->max_dets;
    const int32_t *weights = c->weights;
    const double *rthr = c->rthr, *npos = c->npos;
    const uint8_t *block_start = c->block_start, *inside = c->inside;
    const uint16_t *cand_tp = c->cand_tp, *cand_fp = c->cand_fp;
    double *precision = c->precision, *recall = c->recall;
    const Py_ssize_t *mp_of = c->mp_of;
    const Py_ssize_t num_t = c->num_t, num_a = c->num_a, num_k = c->num_k, num_r = c->num_r, num_m = c->num_m;
    const Py_ssize_t num_b = c->num_b, num_mp = c->num_mp, b0 = c->b0, b1 = c->b1;
    const Py_ssize_t ta = num_t * num_a, walks = num_mp ? num_mp : 1, nl = b1 - b0;
    if (nl <= 0) return NULL;
    int32_t *plain = c->plain + b0; /* (A, B), the thread's own: lane l of area a at a * num_b + l */
    /* resample-innermost counts (index (x * nl + l)): true and counted false positives per walk, and the true
     * positives of the recall-only maxDets */
    int32_t *acc_tp = malloc((size_t)(ta * nl) * sizeof(int32_t));
    int32_t *acc_fp = malloc((size_t)(ta * nl) * sizeof(int32_t));
    int32_t *tot = malloc((size_t)(num_m * ta * nl) * sizeof(int32_t));
    double *best = calloc((size_t)(nl * ta * (num_r + 1)), sizeof(double));
    const Py_ssize_t span = c->max_positives + 1;
    int32_t *hi = malloc((size_t)(nl * ta) * sizeof(int32_t));
    int16_t *bins = malloc((size_t)(nl * num_a * span) * sizeof(int16_t));
    uint8_t *ready = malloc((size_t)(nl * num_a));
    WaGroup *groups = malloc((size_t)ta * sizeof(WaGroup));
    double *gen = NULL; /* a block's true-positive points, grown as needed */
    Py_ssize_t gen_cap = 0;
    /* the summary's transposed precision block and its valid values */
    const size_t summary_len = (size_t)(2 * (num_t * num_k * num_r + num_t * num_k) + num_k + 1);
    double *gather = c->num_s ? malloc(summary_len * sizeof(double)) : NULL;
    if (!acc_tp || !acc_fp || !tot || !best || !hi || !bins || !ready || !groups || (c->num_s && !gather)) {
        c->failed = 1;
        goto done;
    }
    for (Py_ssize_t k = c->next_k ? __atomic_fetch_add(c->next_k, 1, __ATOMIC_RELAXED) : c->k0; k < c->k1;
         k = c->next_k ? __atomic_fetch_add(c->next_k, 1, __ATOMIC_RELAXED) : k + 1) {
        for (Py_ssize_t walk = 0; walk < walks; walk++) {
            Py_ssize_t m_prec = -1; /* the maxDets whose precision this walk computes (-1: recall only) */
            for (Py_ssize_t m = 0; m < num_m; m++)
                if (mp_of[m] == walk) m_prec = m;
            int64_t limit = m_prec >= 0 ? max_dets[m_prec] : INT64_MAX;
            int count_recall = walk == 0;
            memset(acc_tp, 0, (size_t)(ta * nl) * sizeof(int32_t));
            memset(acc_fp, 0, (size_t)(ta * nl) * sizeof(int32_t));
            if (count_recall) memset(tot, 0, (size_t)(num_m * ta * nl) * sizeof(int32_t));
            for (Py_ssize_t a = 0; a < num_a; a++) memset(plain + a * num_b, 0, (size_t)nl * sizeof(int32_t));
            for (Py_ssize_t x = 0; x < nl * ta; x++) hi[x] = -1;
            memset(ready, 0, (size_t)(nl * num_a));
            for (Py_ssize_t s = cat_bounds[k], e; s < cat_bounds[k + 1]; s = e) {
                int has_cand = slot[s] >= 0;
                for (e = s + 1; e < cat_bounds[k + 1] && !block_start[e]; e++) has_cand |= slot[e] >= 0;
                const int32_t *wv = weights + image[s] * num_b + b0;
                if (!has_cand) { /* never-matched detections: false positives where inside, all resamples */
                    if (m_prec < 0) continue;
                    for (Py_ssize_t i = s; i < e && rank[i] < limit; i++)
                        for (Py_ssize_t a = 0; a < num_a; a++) {
                            if (!((inside[i] >> a) & 1)) continue;
                            int32_t *pa = plain + a * num_b;
                            for (Py_ssize_t l = 0; l < nl; l++) pa[l] += wv[l];
                        }
                    continue;
                }
                if (count_recall) /* recall: every maxDets counts the true positives it keeps */
                    for (Py_ssize_t i = s; i < e; i++) {
                        if (slot[i] < 0) continue;
                        const uint16_t *tb = cand_tp + slot[i] * num_a;
                        for (Py_ssize_t m = 0; m < num_m; m++) {
                            if (rank[i] >= max_dets[m] || mp_of[m] >= 0) continue;
                            for (Py_ssize_t a = 0; a < num_a; a++)
                                for (unsigned bits = tb[a]; bits; bits &= bits - 1) {
                                    int32_t *row = tot + (m * ta + a * num_t + __builtin_ctz(bits)) * nl;
                                    for (Py_ssize_t l = 0; l < nl; l++) row[l] += wv[l];
                                }
                        }
                    }
                if (m_prec < 0) continue;
                Py_ssize_t end = s; /* the block within maxDets: ranks grow inside a block */
                while (end < e && rank[end] < limit) end++;
                if (end == s) continue;
                uint16_t any[WA_MAX_A];
                int any_tp = 0;
                for (Py_ssize_t a = 0; a < num_a; a++) {
                    any[a] = 0;
                    for (Py_ssize_t i = s; i < end; i++)
                        if (slot[i] >= 0) any[a] |= cand_tp[slot[i] * num_a + a];
                    any_tp |= any[a] != 0;
                }
                Py_ssize_t num_h = 0; /* several detections: each (area, threshold)'s true positives in one copy */
                if (any_tp && end > s + 1) {
                    if ((end - s) * ta > gen_cap) {
                        double *grown = realloc(gen, (size_t)(2 * (end - s) * ta) * sizeof(double));
                        if (!grown) {
                            c->failed = 1;
                            goto done;
                        }
                        gen = grown;
                        gen_cap = (end - s) * ta;
                    }
                    Py_ssize_t num_e = 0;
                    for (Py_ssize_t a = 0; a < num_a; a++)
                        for (unsigned bits = any[a]; bits; bits &= bits - 1) {
                            int t = __builtin_ctz(bits);
                            double tp_in = 0, fp_in = 0;
                            WaGroup *g = groups + num_h++;
                            g->at = a * num_t + t;
                            g->a = a;
                            g->first = num_e;
                            for (Py_ssize_t i = s; i < end; i++) {
                                if (slot[i] < 0) fp_in += (inside[i] >> a) & 1;
                                else if ((cand_tp[slot[i] * num_a + a] >> t) & 1) {
                                    tp_in += 1;
                                    gen[2 * num_e] = tp_in; /* the point of this true positive within the copy */
                                    gen[2 * num_e + 1] = fp_in;
                                    num_e++;
                                } else fp_in += (cand_fp[slot[i] * num_a + a] >> t) & 1;
                            }
                            g->count = num_e - g->first;
                            g->block_tp = tp_in;
                            g->block_fp = fp_in;
                        }
                }
                for (Py_ssize_t l = 0; l < nl && any_tp; l++) { /* score the block's true positives */
                    int32_t w = wv[l];
                    if (w == 0) continue;
                    WaLane ln = {best + l * ta * (num_r + 1), hi + l * ta, bins + l * num_a * span, ready + l * num_a,
                                 span};
                    const double *npig_l = npos + ((b0 + l) * num_k + k) * num_a;
                    if (end == s + 1) { /* one detection, a true positive somewhere: its last copy */
                        const uint16_t *tb = cand_tp + slot[s] * num_a;
                        for (Py_ssize_t a = 0; a < num_a; a++) {
                            int32_t pl = plain[a * num_b + l];
                            for (unsigned bits = tb[a]; bits; bits &= bits - 1) {
                                Py_ssize_t at = a * num_t + __builtin_ctz(bits);
                                wa_event(&ln, at, a, (double)(acc_tp[at * nl + l] + w),
                                         (double)(acc_fp[at * nl + l] + pl), rthr, num_r, npig_l[a]);
                            }
                        }
                        continue;
                    }
                    for (Py_ssize_t h = 0; h < num_h; h++) {
                        const WaGroup *g = groups + h;
                        Py_ssize_t at = g->at, a = g->a;
                        double tp0 = acc_tp[at * nl + l], fp0 = (double)(acc_fp[at * nl + l] + plain[a * num_b + l]);
                        const double *e = gen + 2 * g->first;
                        for (double j = g->block_fp > 0 ? 1 : w; j <= w; j++) /* copies; tp grows */
                            for (Py_ssize_t q = 0; q < g->count; q++)
                                wa_event(&ln, at, a, tp0 + (j - 1) * g->block_tp + e[2 * q],
                                         fp0 + (j - 1) * g->block_fp + e[2 * q + 1], rthr, num_r, npig_l[a]);
                    }
                }
                for (Py_ssize_t i = s; i < end; i++) { /* w copies of the block, every resample at once */
                    if (slot[i] < 0) {
                        for (Py_ssize_t a = 0; a < num_a; a++) {
                            if (!((inside[i] >> a) & 1)) continue;
                            int32_t *pa = plain + a * num_b;
                            for (Py_ssize_t l = 0; l < nl; l++) pa[l] += wv[l];
                        }
                        continue;
                    }
                    const uint16_t *tb = cand_tp + slot[i] * num_a, *fb = cand_fp + slot[i] * num_a;
                    for (Py_ssize_t a = 0; a < num_a; a++) {
                        for (unsigned bits = tb[a]; bits; bits &= bits - 1) {
                            int32_t *row = acc_tp + (a * num_t + __builtin_ctz(bits)) * nl;
                            for (Py_ssize_t l = 0; l < nl; l++) row[l] += wv[l];
                        }
                        for (unsigned bits = fb[a]; bits; bits &= bits - 1) {
                            int32_t *row = acc_fp + (a * num_t + __builtin_ctz(bits)) * nl;
                            for (Py_ssize_t l = 0; l < nl; l++) row[l] += wv[l];
                        }
                    }
                }
            }
            for (Py_ssize_t l = 0; l < nl; l++) {
                Py_ssize_t b = b0 + l;
                const double *npig_k = npos + (b * num_k + k) * num_a;
                WaLane ln = {best + l * ta * (num_r + 1), hi + l * ta, bins + l * num_a * span, ready + l * num_a,
                             span};
                for (Py_ssize_t m = 0; m < num_m; m++) {
                    /* a precision walk's own maxDets: its true positives; the others' counted in walk 0 */
                    if (mp_of[m] >= 0 ? mp_of[m] != walk : !count_recall) continue;
                    const int32_t *tps = mp_of[m] >= 0 ? acc_tp : tot + m * ta * nl;
                    for (Py_ssize_t a = 0; a < num_a; a++)
                        for (Py_ssize_t t = 0; t < num_t; t++)
                            recall[(((b * num_m + m) * num_a + a) * num_t + t) * num_k + k] =
                                npig_k[a] > 0 ? (double)tps[(a * num_t + t) * nl + l] / npig_k[a] : -1.0;
                }
                if (m_prec < 0) continue;
                for (Py_ssize_t a = 0; a < num_a; a++)
                    for (Py_ssize_t t = 0; t < num_t; t++) {
                        Py_ssize_t at = a * num_t + t;
                        double *row = ln.best + at * (num_r + 1);
                        Py_ssize_t top = ln.hi[at]; /* highest recall bin scored, -1: none */
                        double *out = precision + ((((b * num_mp + walk) * num_a + a) * num_t + t) * num_k + k) * num_r;
                        if (npig_k[a] <= 0 || top < 0) {
                            double fill = npig_k[a] <= 0 ? -1.0 : 0.0;
                            for (Py_ssize_t r = 0; r < num_r; r++) out[r] = fill;
                        } else {
                            double running = 0;
                            for (Py_ssize_t r = num_r; r > top; r--) out[r - 1] = 0.0; /* bins never scored */
                            for (Py_ssize_t r = top; r >= 1; r--) {
                                if (row[r] > running) running = row[r];
                                out[r - 1] = running;
                            }
                        }
                        if (top >= 0) memset(row, 0, (size_t)(top + 1) * sizeof(double));
                    }
            }
        }
    }
    if (c->num_s)
        wa_summary(precision, recall, c->specs, c->num_s, num_mp, num_m, num_a, num_t, num_k, num_r, b0, b1, gather,
                   gather + num_t * num_k * num_r + num_t * num_k, c->stats);
done:
    free(acc_tp);
    free(acc_fp);
    free(tot);
    free(best);
    free(hi);
    free(bins);
    free(ready);
    free(groups);
    free(gen);
    free(gather);
    return NULL;
}

static PyObject *accumulate_weighted(PyObject *self, PyObject *args) {
    Py_buffer bounds_v, start_v, image_v, rank_v, slot_v, inside_v, ctp_v, cfp_v, w_v, gkey_v, gimg_v, rthr_v,
        mdet_v, want_v, spec_v, prec_v, rec_v, stat_v;
    Py_ssize_t num_t, num_a, num_k, num_i, threads;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*nnnnnw*w*w*", &bounds_v, &start_v, &image_v, &rank_v,
                          &slot_v, &inside_v, &ctp_v, &cfp_v, &w_v, &gkey_v, &gimg_v, &rthr_v, &mdet_v, &want_v,
                          &spec_v, &num_t, &num_a, &num_k, &num_i, &threads, &prec_v, &rec_v, &stat_v))
        return NULL;
    const int64_t *cat_bounds = bounds_v.buf, *image = image_v.buf, *rank = rank_v.buf, *slot = slot_v.buf;
    const int64_t *gkey = gkey_v.buf, *gimg = gimg_v.buf, *max_dets = mdet_v.buf, *specs = spec_v.buf;
    const int32_t *weights = w_v.buf;
    const uint8_t *block_start = start_v.buf, *inside = inside_v.buf, *want = want_v.buf;
    const uint16_t *cand_tp = ctp_v.buf, *cand_fp = cfp_v.buf;
    const double *rthr = rthr_v.buf;
    double *precision = prec_v.buf, *recall = rec_v.buf, *stats = stat_v.buf;
    Py_ssize_t num_n = image_v.len / 8, num_r = rthr_v.len / 8, num_m = mdet_v.len / 8, num_g = gkey_v.len / 8;
    Py_ssize_t num_s = spec_v.len / 32;
    Py_ssize_t num_b = num_i ? w_v.len / 4 / num_i : 0;
    Py_ssize_t num_c = num_a ? ctp_v.len / 2 / num_a : 0;
    Py_ssize_t num_mp = 0, mp_of[WA_MAX_M];
    int bad = num_t > 16 || num_t < 1 || num_a < 1 || num_a > WA_MAX_A || num_m < 1 || num_m > WA_MAX_M ||
              want_v.len != num_m || bounds_v.len != (num_k + 1) * 8 || start_v.len != num_n ||
              rank_v.len != num_n * 8 || slot_v.len != num_n * 8 || inside_v.len != num_n ||
              cfp_v.len != ctp_v.len || ctp_v.len != num_c * num_a * 2 || w_v.len != num_b * num_i * 4 ||
              gimg_v.len != gkey_v.len || rec_v.len != num_b * num_m * num_a * num_t * num_k * 8 ||
              spec_v.len != num_s * 32 || stat_v.len != num_b * num_s * 8 || num_r > INT16_MAX - 1;
    for (Py_ssize_t m = 0; m < num_m && !bad; m++) mp_of[m] = want[m] ? num_mp++ : -1;
    if (!bad && prec_v.len != num_b * num_mp * num_a * num_t * num_r * num_k * 8) bad = 1;
    if (!bad && num_k && (cat_bounds[0] < 0 || cat_bounds[num_k] > num_n)) bad = 1;
    for (Py_ssize_t k = 0; k < num_k && !bad; k++)
        if (cat_bounds[k] > cat_bounds[k + 1]) bad = 1;
    for (Py_ssize_t i = 0; i < num_n && !bad; i++)
        if (image[i] < 0 || image[i] >= num_i || slot[i] >= num_c) bad = 1;
    for (Py_ssize_t g = 0; g < num_g && !bad; g++)
        if (gkey[g] < 0 || gkey[g] >= num_k * num_a || gimg[g] < 0 || gimg[g] >= num_i) bad = 1;
    for (Py_ssize_t x = 0; x < num_c * num_a && !bad; x++) /* status bits beyond the thresholds index nothing */
        if ((cand_tp[x] | cand_fp[x]) >> num_t) bad = 1;
    if (!bad) { /* every count is int32: a resample's total weight times the most detections counted per image */
        int64_t most = 0, heaviest = 0;
        for (Py_ssize_t m = 0; m < num_m; m++) most = max_dets[m] > most ? max_dets[m] : most;
        int64_t top_rank = -1;
        for (Py_ssize_t i = 0; i < num_n; i++) top_rank = rank[i] > top_rank ? rank[i] : top_rank;
        if (top_rank + 1 < most) most = top_rank + 1;
        for (Py_ssize_t b = 0; b < num_b && !bad; b++) {
            int64_t total = 0;
            for (Py_ssize_t i = 0; i < num_i; i++) {
                if (weights[i * num_b + b] < 0) bad = 1;
                total += weights[i * num_b + b];
            }
            heaviest = total > heaviest ? total : heaviest;
        }
        if (most > 0 && heaviest > (int64_t)INT32_MAX / most) bad = 3;
    }
    for (Py_ssize_t s = 0; s < num_s && !bad; s++) { /* (kind, t, area, maxDets index) */
        const int64_t *spec = specs + s * 4;
        if (spec[0] < 0 || spec[0] > 2) bad = 1;
        else if (spec[0] < 2 && (spec[1] < -1 || spec[1] >= num_t || spec[2] < 0 || spec[2] >= num_a || spec[3] < 0 ||
                                 spec[3] >= (spec[0] == 0 ? num_mp : num_m)))
            bad = 1;
    }
    double *npos = NULL;
    int32_t *plain = NULL;
    if (!bad) {
        plain = malloc((size_t)(2 * num_a * num_b + 1) * sizeof(int32_t)); /* (A, B) weighted plain false
                                                                             * positives, one per thread */
        npos = calloc((size_t)(num_b * num_k * num_a + 1), sizeof(double));
        if (!plain || !npos) bad = 2;
    }
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t g = 0; g < num_g; g++) { /* weighted positives (B, K*A) */
            const int32_t *w = weights + gimg[g] * num_b;
            for (Py_ssize_t b = 0; b < num_b; b++) npos[b * num_k * num_a + gkey[g]] += w[b];
        }
        Py_ssize_t max_positives = 0;
        for (Py_ssize_t x = 0; x < num_b * num_k * num_a; x++)
            if (npos[x] > max_positives) max_positives = (Py_ssize_t)npos[x];
        /* two passes of two threads: the categories shared out one at a time (every thread reads a detection
         * once for all the chunk's resamples; a split of the resamples would read each one twice, and a fixed
         * split of the categories leaves one thread waiting), then the summary of each half of the resamples
         * (with one category, the walk too is split by resamples) */
        int two = threads > 1;
        Py_ssize_t next_k = 0, split_k = two && num_k > 1 ? 0 : num_k;
        Py_ssize_t split_b = two && num_b > 1 ? num_b / 2 : num_b;
        WaCtx ctx[2];
        for (int pass = 0; pass < 2 && !bad; pass++) {
            for (int h = 0; h < 2; h++) {
                ctx[h] = (WaCtx){cat_bounds, image, rank, slot, max_dets, specs, weights, rthr, npos, block_start,
                                 inside, cand_tp, cand_fp, precision, recall, stats, plain + h * num_a * num_b, mp_of,
                                 num_t, num_a, num_k, num_r, num_m, num_b, num_mp, pass ? num_s : 0, 0, num_b,
                                 0, 0, NULL, max_positives, 0};
                if (pass == 0 && split_k < num_k) { /* the walk: categories from the counter, every resample */
                    ctx[h].k1 = num_k;
                    ctx[h].next_k = &next_k;
                } else if (pass == 0) { /* one category: the walk of each half of the resamples */
                    ctx[h].k1 = num_k;
                    ctx[h].b0 = h ? split_b : 0;
                    ctx[h].b1 = h ? num_b : split_b;
                } else { /* the summary: resamples [b0, b1) */
                    ctx[h].b0 = h ? split_b : 0;
                    ctx[h].b1 = h ? num_b : split_b;
                }
            }
            int work = pass == 0 ? (split_k < num_k || split_b < num_b) : (num_s > 0 && split_b < num_b);
            pthread_t helper;
            int helped = work && pthread_create(&helper, NULL, wa_walk, &ctx[1]) == 0;
            wa_walk(&ctx[0]);
            if (helped) pthread_join(helper, NULL);
            else if (work) wa_walk(&ctx[1]);
            if (ctx[0].failed || ctx[1].failed) bad = 2;
        }
        Py_END_ALLOW_THREADS
    }
    free(plain);
    free(npos);
    Py_buffer *views[] = {&bounds_v, &start_v, &image_v, &rank_v, &slot_v, &inside_v, &ctp_v, &cfp_v, &w_v,
                          &gkey_v, &gimg_v, &rthr_v, &mdet_v, &want_v, &spec_v, &prec_v, &rec_v, &stat_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    if (bad == 2) return PyErr_NoMemory();
    if (bad == 3) {
        PyErr_SetString(PyExc_OverflowError, "accumulate_weighted: counts could pass 2**31 - 1");
        return NULL;
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "accumulate_weighted: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ memory */
/* Free heap pages back to the system in every malloc arena (glibc's malloc_trim; elsewhere nothing): what
 * worker threads allocated and freed would otherwise stay resident in their arenas. */
static PyObject *release_free_memory(PyObject *self, PyObject *args) {
#ifdef __GLIBC__
    Py_BEGIN_ALLOW_THREADS
    malloc_trim(0);
    Py_END_ALLOW_THREADS
#endif
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ dense grouping */
/* dense_groups: grouping.build_groups (with categories) when every possible key 0 <= key < space gets a slot:
 * the groups that occur, in key order; the ground truths by group, then row (stable); the detections by group,
 * then descending score, ties in row order, cut at ``max_det`` per group, with their group and rank.
 *   in:  gt_full (G), dt_full (N) keys, dt_score (N), space, max_det, threads
 *   out: keys (space), gt_order (G), gt_bounds (space + 1), dt_order, dt_group, dt_rank (N), dt_bounds (space + 1)
 * Returns (groups, kept detections): the outputs' leading parts that hold them. */
static PyObject *dense_groups(PyObject *self, PyObject *args) {
    Py_buffer gfull_v, dfull_v, score_v, keys_v, gorder_v, gbounds_v, dorder_v, dgroup_v, drank_v, dbounds_v;
    Py_ssize_t space, max_det, threads;
    if (!PyArg_ParseTuple(args, "y*y*y*nnnw*w*w*w*w*w*w*", &gfull_v, &dfull_v, &score_v, &space, &max_det, &threads,
                          &keys_v, &gorder_v, &gbounds_v, &dorder_v, &dgroup_v, &drank_v, &dbounds_v))
        return NULL;
    const int64_t *gt_full = gfull_v.buf, *dt_full = dfull_v.buf;
    const double *score = score_v.buf;
    int64_t *keys = keys_v.buf, *gt_order = gorder_v.buf, *gt_bounds = gbounds_v.buf, *dt_order = dorder_v.buf;
    int64_t *dt_group = dgroup_v.buf, *dt_rank = drank_v.buf, *dt_bounds = dbounds_v.buf;
    Py_ssize_t num_g = gfull_v.len / 8, num_n = dfull_v.len / 8, num_groups = 0, kept = 0;
    int bad = space < 0 || max_det < 0 || score_v.len != num_n * 8 || keys_v.len != space * 8 ||
              gorder_v.len != num_g * 8 || gbounds_v.len != (space + 1) * 8 || dorder_v.len != num_n * 8 ||
              dgroup_v.len != num_n * 8 || drank_v.len != num_n * 8 || dbounds_v.len != (space + 1) * 8;
    int64_t *slot = NULL, *fill = NULL;
    if (!bad) {
        slot = calloc((size_t)space + 1, sizeof *slot);
        fill = malloc(((size_t)space + 1) * sizeof *fill);
        if (!slot || !fill) bad = 2;
    }
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < num_g && !bad; i++) {
            if (gt_full[i] < 0 || gt_full[i] >= space) bad = 1;
            else slot[gt_full[i]] = 1;
        }
        for (Py_ssize_t i = 0; i < num_n && !bad; i++) {
            if (dt_full[i] < 0 || dt_full[i] >= space) bad = 1;
            else slot[dt_full[i]] = 1;
        }
        if (!bad) {
            for (Py_ssize_t s = 0; s < space; s++)
                if (slot[s]) {
                    keys[num_groups] = s;
                    slot[s] = num_groups++;
                }
            /* ground truths: counting sort by group (stable) */
            memset(gt_bounds, 0, (size_t)(num_groups + 1) * sizeof *gt_bounds);
            for (Py_ssize_t i = 0; i < num_g; i++) gt_bounds[slot[gt_full[i]] + 1]++;
            for (Py_ssize_t g = 0; g < num_groups; g++) gt_bounds[g + 1] += gt_bounds[g];
            memcpy(fill, gt_bounds, (size_t)(num_groups + 1) * sizeof *fill);
            for (Py_ssize_t i = 0; i < num_g; i++) gt_order[fill[slot[gt_full[i]]]++] = i;
            /* detections: counting sort by group, then by score inside each group, then the cut */
            memset(dt_bounds, 0, (size_t)(num_groups + 1) * sizeof *dt_bounds);
            for (Py_ssize_t i = 0; i < num_n; i++) dt_bounds[slot[dt_full[i]] + 1]++;
            for (Py_ssize_t g = 0; g < num_groups; g++) dt_bounds[g + 1] += dt_bounds[g];
            memcpy(fill, dt_bounds, (size_t)(num_groups + 1) * sizeof *fill);
            for (Py_ssize_t i = 0; i < num_n; i++) dt_order[fill[slot[dt_full[i]]]++] = i;
            if (sort_groups(dt_order, dt_bounds, num_groups, score, threads)) bad = 2;
        }
        if (!bad) {
            int64_t start = 0; /* dt_bounds[g] before it is overwritten with the cut bounds */
            for (Py_ssize_t g = 0; g < num_groups; g++) {
                int64_t end = dt_bounds[g + 1], count = end - start < max_det ? end - start : max_det;
                for (int64_t r = 0; r < count; r++) {
                    dt_order[kept] = dt_order[start + r];
                    dt_group[kept] = g;
                    dt_rank[kept] = r;
                    kept++;
                }
                dt_bounds[g + 1] = kept;
                start = end;
            }
        }
        Py_END_ALLOW_THREADS
    }
    free(slot);
    free(fill);
    Py_buffer *views[] = {&gfull_v, &dfull_v, &score_v, &keys_v, &gorder_v, &gbounds_v, &dorder_v, &dgroup_v,
                          &drank_v, &dbounds_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    if (bad == 2) return PyErr_NoMemory();
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "dense_groups: bad sizes or keys");
        return NULL;
    }
    return Py_BuildValue("nn", num_groups, kept);
}

/* category_order: group_order (stable by key, then descending score, ties in row order) with the per-group
 * sorts split between up to two threads. */
static PyObject *category_order(PyObject *self, PyObject *args) {
    Py_buffer key_v, score_v, order_v, bounds_v;
    Py_ssize_t num_groups, threads;
    if (!PyArg_ParseTuple(args, "y*y*nnw*w*", &key_v, &score_v, &num_groups, &threads, &order_v, &bounds_v))
        return NULL;
    Py_ssize_t n = key_v.len / 8;
    const int64_t *key = key_v.buf;
    int64_t *order = order_v.buf, *bounds = bounds_v.buf;
    int bad = num_groups < 0 || order_v.len != key_v.len || score_v.len != key_v.len ||
              bounds_v.len != (num_groups + 1) * 8;
    int64_t *fill = NULL;
    if (!bad && !(fill = malloc(((size_t)num_groups + 1) * sizeof *fill))) bad = 2;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        memset(bounds, 0, (size_t)(num_groups + 1) * sizeof *bounds);
        for (Py_ssize_t i = 0; i < n && !bad; i++) {
            if (key[i] < 0 || key[i] >= num_groups) bad = 1;
            else bounds[key[i] + 1]++;
        }
        if (!bad) {
            for (Py_ssize_t g = 0; g < num_groups; g++) bounds[g + 1] += bounds[g];
            memcpy(fill, bounds, (size_t)(num_groups + 1) * sizeof *fill);
            for (Py_ssize_t i = 0; i < n; i++) order[fill[key[i]]++] = i;
            if (radix_groups(order, bounds, num_groups, score_v.buf, threads)) bad = 2;
        }
        Py_END_ALLOW_THREADS
    }
    free(fill);
    Py_buffer *views[] = {&key_v, &score_v, &order_v, &bounds_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    if (bad == 2) return PyErr_NoMemory();
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "category_order: bad sizes or keys");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ box matching */
/* box_status: box IoU and pycocotools' greedy matching fused, per (image, category) group, for every kept
 * detection, in up to two threads (groups split by work; each group is independent of the others).
 *   dt_box (N, 4), gt_box (M, 4)       the tables' boxes (xywh) in table order
 *   d_rows (D), g_rows (G)             table rows of the sorted views (groups contiguous, detections by rank)
 *   dt_bounds, gt_bounds (groups + 1)  each group's detections and ground truths in the sorted views
 *   crowd, id_zero (G), ignored (A, G) flags of the sorted ground truths; outside (A, D) of the detections
 *   thresholds (T <= 16)               already clipped to 1 - 1e-10
 * Writes tp, fp (D, A) uint16: each detection's COCOeval status bits per threshold, as greedy_match's status
 * mode (a detection that overlaps nothing enough is a false positive where its area is inside the range).
 * The IoU is cocoapi's bbIou operation by operation (ious.box_iou_pairs), so every comparison sees the same
 * double; the matching rule is greedy_match's (a regular ground truth before an ignored one, then the highest
 * IoU, then the latest position; crowds can be taken again). */
typedef struct {
    const double *dt_box, *gt_box, *thr;
    const int64_t *d_rows, *g_rows, *dt_bounds, *gt_bounds;
    const uint8_t *crowd, *id_zero, *ignored, *outside;
    uint16_t *tp, *fp;
    Py_ssize_t num_t, num_a, num_g, num_d, g0, g1, max_dg, max_g;
    int failed;
} BoxCtx;

static void *box_walk(void *arg) {
    BoxCtx *c = arg;
    const Py_ssize_t num_t = c->num_t, num_a = c->num_a, num_g = c->num_g, num_d = c->num_d;
    const uint16_t all = (uint16_t)((1u << num_t) - 1);
    double min_thr = 2;
    for (Py_ssize_t t = 0; t < num_t; t++)
        if (c->thr[t] < min_thr) min_thr = c->thr[t];
    double *iou = malloc((size_t)(c->max_dg + 1) * sizeof *iou);
    uint8_t *taken = malloc((size_t)(c->max_g * num_t * num_a + 1));
    int64_t *near = malloc((size_t)(c->max_g + 1) * sizeof *near);
    if (!iou || !taken || !near) {
        c->failed = 1;
        free(iou);
        free(taken);
        free(near);
        return NULL;
    }
    for (Py_ssize_t grp = c->g0; grp < c->g1; grp++) {
        int64_t d0 = c->dt_bounds[grp], d1 = c->dt_bounds[grp + 1], g0 = c->gt_bounds[grp], g1 = c->gt_bounds[grp + 1];
        int64_t ng = g1 - g0;
        for (int64_t d = d0; d < d1; d++) {
            const double *db = c->dt_box + 4 * c->d_rows[d];
            double dx = db[0], dy = db[1], dw = db[2], dh = db[3], da = dw * dh;
            for (int64_t j = 0; j < ng; j++) {
                const double *gb = c->gt_box + 4 * c->g_rows[g0 + j];
                double gx = gb[0], gy = gb[1], gw = gb[2], gh = gb[3];
                double w = fmin(dw + dx, gw + gx) - fmax(dx, gx);
                double h = fmin(dh + dy, gh + gy) - fmax(dy, gy);
                double value = 0;
                if (w > 0 && h > 0) {
                    double inter = w * h;
                    double uni = c->crowd[g0 + j] ? da : (da + gw * gh) - inter;
                    value = inter / uni;
                }
                iou[(d - d0) * ng + j] = value;
            }
        }
        memset(taken, 0, (size_t)(ng * num_t * num_a));
        for (int64_t d = d0; d < d1; d++) {
            const double *row = iou + (d - d0) * ng;
            Py_ssize_t count = 0;
            for (int64_t j = 0; j < ng; j++)
                if (row[j] >= min_thr) near[count++] = j;
            uint16_t *tpd = c->tp + d * num_a, *fpd = c->fp + d * num_a;
            if (!count) {
                for (Py_ssize_t a = 0; a < num_a; a++) {
                    tpd[a] = 0;
                    fpd[a] = c->outside[a * num_d + d] ? 0 : all;
                }
                continue;
            }
            for (Py_ssize_t a = 0; a < num_a; a++) tpd[a] = fpd[a] = 0;
            for (Py_ssize_t t = 0; t < num_t; t++) {
                double threshold = c->thr[t];
                for (Py_ssize_t a = 0; a < num_a; a++) {
                    const uint8_t *ig = c->ignored + a * num_g + g0;
                    int64_t best = -1;
                    int best_tier = 2;
                    double best_iou = threshold;
                    for (Py_ssize_t x = 0; x < count; x++) {
                        int64_t j = near[x];
                        double value = row[j];
                        if ((taken[(j * num_t + t) * num_a + a] && !c->crowd[g0 + j]) || !(value >= threshold)) continue;
                        int tier = ig[j] != 0;
                        if (tier < best_tier || (tier == best_tier && value >= best_iou)) {
                            best = j;
                            best_tier = tier;
                            best_iou = value;
                        }
                    }
                    if (best >= 0 && !c->crowd[g0 + best]) taken[(best * num_t + t) * num_a + a] = 1;
                    int got = best >= 0;
                    int dtm_nonzero = got && !c->id_zero[g0 + best];
                    int is_ignored = (got && ig[best]) || (!dtm_nonzero && c->outside[a * num_d + d]);
                    if (!is_ignored) {
                        if (dtm_nonzero) tpd[a] |= (uint16_t)(1u << t);
                        else fpd[a] |= (uint16_t)(1u << t);
                    }
                }
            }
        }
    }
    free(iou);
    free(taken);
    free(near);
    return NULL;
}

static PyObject *box_status(PyObject *self, PyObject *args) {
    Py_buffer dbox_v, gbox_v, drow_v, grow_v, dbnd_v, gbnd_v, crowd_v, zero_v, ign_v, out_v, thr_v, tp_v, fp_v;
    Py_ssize_t num_a, threads;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*nnw*w*", &dbox_v, &gbox_v, &drow_v, &grow_v, &dbnd_v,
                          &gbnd_v, &crowd_v, &zero_v, &ign_v, &out_v, &thr_v, &num_a, &threads, &tp_v, &fp_v))
        return NULL;
    const int64_t *d_rows = drow_v.buf, *g_rows = grow_v.buf, *dt_bounds = dbnd_v.buf, *gt_bounds = gbnd_v.buf;
    Py_ssize_t num_dt = dbox_v.len / 32, num_gt = gbox_v.len / 32, num_d = drow_v.len / 8, num_g = grow_v.len / 8;
    Py_ssize_t num_groups = dbnd_v.len / 8 - 1, num_t = thr_v.len / 8;
    int bad = num_t < 1 || num_t > 16 || num_a < 1 || dbox_v.len != num_dt * 32 || gbox_v.len != num_gt * 32 ||
              num_groups < 0 || gbnd_v.len != dbnd_v.len || crowd_v.len != num_g || zero_v.len != num_g ||
              ign_v.len != num_a * num_g || out_v.len != num_a * num_d || tp_v.len != num_d * num_a * 2 ||
              fp_v.len != tp_v.len;
    if (!bad && (dt_bounds[0] != 0 || gt_bounds[0] != 0 || dt_bounds[num_groups] != num_d ||
                 gt_bounds[num_groups] != num_g))
        bad = 1;
    Py_ssize_t max_dg = 0, max_g = 0;
    double total = 0;
    for (Py_ssize_t grp = 0; grp < num_groups && !bad; grp++) {
        int64_t nd = dt_bounds[grp + 1] - dt_bounds[grp], ng = gt_bounds[grp + 1] - gt_bounds[grp];
        if (nd < 0 || ng < 0) { bad = 1; break; }
        if (nd * ng > max_dg) max_dg = nd * ng;
        if (ng > max_g) max_g = ng;
        total += (double)nd * (double)(ng + 1);
    }
    for (Py_ssize_t i = 0; i < num_d && !bad; i++)
        if (d_rows[i] < 0 || d_rows[i] >= num_dt) bad = 1;
    for (Py_ssize_t i = 0; i < num_g && !bad; i++)
        if (g_rows[i] < 0 || g_rows[i] >= num_gt) bad = 1;
    int failed = 0;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        Py_ssize_t split = num_groups; /* the first group of the second thread: half the work on each side */
        if (threads > 1 && num_groups > 1) {
            double done = 0;
            for (split = 0; split < num_groups && done < total / 2; split++)
                done += (double)(dt_bounds[split + 1] - dt_bounds[split]) * (double)(gt_bounds[split + 1] - gt_bounds[split] + 1);
        }
        BoxCtx ctx[2];
        for (int h = 0; h < 2; h++)
            ctx[h] = (BoxCtx){dbox_v.buf, gbox_v.buf, thr_v.buf, d_rows, g_rows, dt_bounds, gt_bounds, crowd_v.buf,
                              zero_v.buf, ign_v.buf, out_v.buf, tp_v.buf, fp_v.buf, num_t, num_a, num_g, num_d,
                              h ? split : 0, h ? num_groups : split, max_dg, max_g, 0};
        pthread_t helper;
        int helped = split < num_groups && pthread_create(&helper, NULL, box_walk, &ctx[1]) == 0;
        box_walk(&ctx[0]);
        if (helped) pthread_join(helper, NULL);
        else if (split < num_groups) box_walk(&ctx[1]);
        failed = ctx[0].failed || ctx[1].failed;
        Py_END_ALLOW_THREADS
    }
    Py_buffer *views[] = {&dbox_v, &gbox_v, &drow_v, &grow_v, &dbnd_v, &gbnd_v, &crowd_v, &zero_v, &ign_v, &out_v,
                          &thr_v, &tp_v, &fp_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    if (failed) return PyErr_NoMemory();
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "box_status: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* accumulate_status (kernels.accumulate_matches): pycocotools' accumulate straight from the matching, for every
 * image once.
 *   seq (n)            sorted-view positions of the detections in accumulation order (category, then descending
 *                      score, then image, then rank)
 *   cat_bounds (K + 1) categories in ``seq``
 *   rank, slot (D)     rank in its group, and candidate index (-1: never overlaps a ground truth enough)
 *   outside (A, D)     area outside each range
 *   cand_tp, cand_fp (C, A) uint16: each candidate's status bits per threshold (greedy_match with status, or
 *                      box_status for every detection)
 * A candidate's status at (t, a) follows COCOeval: it is ignored when it matched an ignored ground truth, or
 * when it is unmatched (or matched id 0) and its area is outside the range; a true positive when matched
 * (id != 0) and not ignored; else a false positive (pycocotools keeps matches by ground-truth id, so id 0
 * reads as unmatched).  For each (category, area range, maxDets, threshold) the walk counts true and false
 * positives; the interpolated precision at a recall threshold is the best precision at or beyond it, and that
 * best is always reached at a true positive, so only true positives compute a precision (pycocotools'
 * arithmetic: tp / ((fp + tp) + eps), recall tp / npig).  One category at a time: its detections' statuses
 * gathered once, every maxDets walked in one pass (each sees the same sequence it would alone).  The categories
 * are split between up to two threads by their detection counts; each category writes only its own entries,
 * so the split never changes a number.  ``precision`` is written in COCOeval's layout (T, R, K, A, M) and
 * ``recall`` (T, K, A, M), both filled with -1 beforehand. */
typedef struct {
    const int64_t *seq, *cat_bounds, *rank, *slot, *npos, *max_dets;
    const uint8_t *outside;
    const uint16_t *cand_tp, *cand_fp;
    const double *rthr;
    double *precision, *recall;
    Py_ssize_t num_t, num_a, num_k, num_r, num_m, num_d, k0, k1;
    int failed;
} AccCtx;

static void *acc_walk(void *arg) {
    AccCtx *c = arg;
    const Py_ssize_t num_t = c->num_t, num_a = c->num_a, num_r = c->num_r, num_m = c->num_m, num_d = c->num_d;
    const Py_ssize_t num_k = c->num_k;
    const int64_t *seq = c->seq, *cat_bounds = c->cat_bounds, *slot = c->slot;
    const double *rthr = c->rthr;
    Py_ssize_t largest = 0;
    for (Py_ssize_t k = c->k0; k < c->k1; k++)
        if (cat_bounds[k + 1] - cat_bounds[k] > largest) largest = cat_bounds[k + 1] - cat_bounds[k];
    /* one category at a time: its detections' rank and status in every range gathered once (n, A) */
    uint16_t *tp_bits = malloc((size_t)(largest * num_a + 1) * sizeof *tp_bits);
    uint16_t *fp_bits = malloc((size_t)(largest * num_a + 1) * sizeof *fp_bits);
    int32_t *seq_rank = malloc((size_t)(largest + 1) * sizeof *seq_rank);
    /* per maxDets: best precision per (threshold, recall slot), tp, fp counts; all walked in one pass */
    const Py_ssize_t wsize = num_t * (num_r + 1) + 2 * num_t;
    double *work = malloc((size_t)(num_m * wsize + num_m) * sizeof(double));
    Py_ssize_t *next = malloc((size_t)(num_m * num_t + 1) * sizeof *next);
    /* the category's precision written (A, M, T, R), in sequence, then copied to COCOeval's layout (writing
     * that layout directly scatters every value to its own page) */
    const Py_ssize_t per_k = num_a * num_m * num_t * num_r;
    double *local = malloc((size_t)(per_k + 1) * sizeof *local);
    if (!tp_bits || !fp_bits || !seq_rank || !work || !next || !local) {
        c->failed = 1;
        free(tp_bits), free(fp_bits), free(seq_rank), free(work), free(next), free(local);
        return NULL;
    }
    double *plain = work + num_m * wsize;
    const double eps = 2.220446049250313e-16; /* np.spacing(1) */
    const uint16_t all = (uint16_t)((1u << num_t) - 1);
    const Py_ssize_t am = num_a * num_m;
    for (Py_ssize_t k = c->k0; k < c->k1; k++) {
        const Py_ssize_t i0 = cat_bounds[k], n = cat_bounds[k + 1] - i0;
        int any = 0;
        for (Py_ssize_t a = 0; a < num_a; a++) any |= c->npos[k * num_a + a] > 0;
        if (!any) continue;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t d = seq[i0 + i], s = slot[d];
            seq_rank[i] = c->rank[d] > INT32_MAX ? INT32_MAX : (int32_t)c->rank[d];
            uint16_t *tb = tp_bits + i * num_a, *fb = fp_bits + i * num_a;
            for (Py_ssize_t a = 0; a < num_a; a++) {
                if (s < 0) {
                    tb[a] = 0;
                    fb[a] = c->outside[a * num_d + d] ? 0 : all;
                } else {
                    tb[a] = c->cand_tp[s * num_a + a];
                    fb[a] = c->cand_fp[s * num_a + a];
                }
            }
        }
        for (Py_ssize_t a = 0; a < num_a; a++) {
            int64_t npig = c->npos[k * num_a + a];
            if (npig <= 0) continue;
            memset(work, 0, (size_t)(num_m * wsize + num_m) * sizeof(double));
            for (Py_ssize_t x = 0; x < num_m * num_t; x++) next[x] = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                uint16_t tb = tp_bits[i * num_a + a], fb = fp_bits[i * num_a + a];
                if (!tb && !fb) continue; /* ignored at every threshold (e.g. outside the area range) */
                for (Py_ssize_t m = 0; m < num_m; m++) { /* each maxDets sees the same sequence as alone */
                    if (seq_rank[i] >= c->max_dets[m]) continue;
                    double *best = work + m * wsize, *tp = best + num_t * (num_r + 1), *fp = tp + num_t;
                    Py_ssize_t *nx = next + m * num_t;
                    if (!tb) {
                        if (fb == all) plain[m] += 1;
                        else
                            for (Py_ssize_t t = 0; t < num_t; t++) fp[t] += (fb >> t) & 1;
                        continue;
                    }
                    const double plain_fp = plain[m];
                    for (Py_ssize_t t = 0; t < num_t; t++) {
                        if ((tb >> t) & 1) {
                            double tpd = ++tp[t], fpd = fp[t] + plain_fp;
                            double pr = tpd / ((fpd + tpd) + eps);
                            double rc = tpd / (double)npig;
                            Py_ssize_t lo = nx[t]; /* recall only grows: thresholds <= rc, by pointer */
                            while (lo < num_r && rthr[lo] <= rc) lo++;
                            nx[t] = lo;
                            double *slot_best = best + t * (num_r + 1) + lo;
                            if (pr > *slot_best) *slot_best = pr;
                        } else {
                            fp[t] += (fb >> t) & 1;
                        }
                    }
                }
            }
            for (Py_ssize_t m = 0; m < num_m; m++) {
                double *best = work + m * wsize, *tp = best + num_t * (num_r + 1);
                for (Py_ssize_t t = 0; t < num_t; t++) {
                    double *row = best + t * (num_r + 1), running = 0;
                    double *out = local + ((a * num_m + m) * num_t + t) * num_r;
                    for (Py_ssize_t r = num_r; r >= 1; r--) {
                        if (row[r] > running) running = row[r];
                        out[r - 1] = running;
                    }
                    c->recall[t * num_k * am + k * am + a * num_m + m] = tp[t] / (double)npig;
                }
            }
        }
        for (Py_ssize_t t = 0; t < num_t; t++) /* (A, M, T, R) of category k -> precision[t, r, k, :, :] */
            for (Py_ssize_t r = 0; r < num_r; r++) {
                double *dst = c->precision + ((t * num_r + r) * num_k + k) * am;
                for (Py_ssize_t x = 0; x < am; x++) /* an area range without positives stays -1 */
                    if (c->npos[k * num_a + x / num_m] > 0) dst[x] = local[(x * num_t + t) * num_r + r];
            }
    }
    free(tp_bits), free(fp_bits), free(seq_rank), free(work), free(next), free(local);
    return NULL;
}

static PyObject *accumulate_status(PyObject *self, PyObject *args) {
    Py_buffer seq_v, bounds_v, rank_v, slot_v, out_v, ctp_v, cfp_v, npos_v, rthr_v, mdet_v, prec_v, rec_v;
    Py_ssize_t num_t, num_a, num_k, threads;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*nnnnw*w*", &seq_v, &bounds_v, &rank_v, &slot_v, &out_v, &ctp_v,
                          &cfp_v, &npos_v, &rthr_v, &mdet_v, &num_t, &num_a, &num_k, &threads, &prec_v, &rec_v))
        return NULL;
    const int64_t *seq = seq_v.buf, *cat_bounds = bounds_v.buf, *slot = slot_v.buf;
    Py_ssize_t num_n = seq_v.len / 8, num_d = rank_v.len / 8, num_r = rthr_v.len / 8, num_m = mdet_v.len / 8;
    Py_ssize_t num_c = num_a ? ctp_v.len / 2 / num_a : 0;
    int bad = num_t > 16 || num_t < 1 || num_a < 1 || bounds_v.len != (num_k + 1) * 8 || slot_v.len != rank_v.len ||
              out_v.len != num_a * num_d || cfp_v.len != ctp_v.len || ctp_v.len != num_c * num_a * 2 ||
              npos_v.len != num_k * num_a * 8 || prec_v.len != num_t * num_r * num_k * num_a * num_m * 8 ||
              rec_v.len != num_t * num_k * num_a * num_m * 8;
    if (!bad && num_k && (cat_bounds[0] < 0 || cat_bounds[num_k] > num_n)) bad = 1;
    for (Py_ssize_t k = 0; k < num_k && !bad; k++)
        if (cat_bounds[k] > cat_bounds[k + 1]) bad = 1;
    for (Py_ssize_t i = 0; i < num_n && !bad; i++)
        if (seq[i] < 0 || seq[i] >= num_d || slot[seq[i]] >= num_c) bad = 1;
    int failed = 0;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        Py_ssize_t split = num_k; /* the first category of the second thread: about half the detections */
        if (threads > 1 && num_k > 1) {
            Py_ssize_t half = (cat_bounds[num_k] - cat_bounds[0]) / 2;
            for (split = 0; split < num_k && cat_bounds[split] - cat_bounds[0] < half; split++) {}
        }
        AccCtx ctx[2];
        for (int h = 0; h < 2; h++)
            ctx[h] = (AccCtx){seq, cat_bounds, rank_v.buf, slot, npos_v.buf, mdet_v.buf, out_v.buf, ctp_v.buf,
                              cfp_v.buf, rthr_v.buf, prec_v.buf, rec_v.buf, num_t, num_a, num_k, num_r, num_m, num_d,
                              h ? split : 0, h ? num_k : split, 0};
        pthread_t helper;
        int helped = split < num_k && pthread_create(&helper, NULL, acc_walk, &ctx[1]) == 0;
        acc_walk(&ctx[0]);
        if (helped) pthread_join(helper, NULL);
        else if (split < num_k) acc_walk(&ctx[1]);
        failed = ctx[0].failed || ctx[1].failed;
        Py_END_ALLOW_THREADS
    }
    Py_buffer *views[] = {&seq_v, &bounds_v, &rank_v, &slot_v, &out_v, &ctp_v, &cfp_v, &npos_v, &rthr_v, &mdet_v,
                          &prec_v, &rec_v};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) PyBuffer_Release(views[i]);
    if (failed) return PyErr_NoMemory();
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "accumulate_status: inconsistent sizes");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef METHODS[] = {
    {"release_free_memory", release_free_memory, METH_NOARGS, "malloc_trim(0) where glibc has it"},
    {"dense_groups", dense_groups, METH_VARARGS, "build_groups with a slot per possible key"},
    {"category_order", category_order, METH_VARARGS, "group_order with the sorts over two threads"},
    {"box_status", box_status, METH_VARARGS, "box IoU + greedy matching per group: status bits of every detection"},
    {"accumulate_status", accumulate_status, METH_VARARGS, "accumulate_matches with the categories over two threads"},
    {"accumulate_weighted", accumulate_weighted, METH_VARARGS, "accumulate_matches for image multisets (bootstrap)"},
    {"box_iou", box_iou, METH_VARARGS, "cocoapi's bbIou of box pairs"},
    {"oks_terms", oks_terms, METH_VARARGS, "OKS exponents of pairs, pycocotools' arithmetic"},
    {"oks_sums", oks_sums, METH_VARARGS, "mean of exp terms in numpy's pairwise order"},
    {"parse_ground_truth", parse_ground_truth, METH_VARARGS, "COCO annotation file -> annotation columns + spans"},
    {"mask_areas", mask_areas, METH_VARARGS, "areas of compressed RLE strings"},
    {"mask_iou", mask_iou, METH_VARARGS, "pycocotools' mask IoU of pairs"},
    {"polygons_to_rles", polygons_to_rles, METH_VARARGS, "COCO polygons -> compressed RLE strings (frPyObjects + merge)"},
    {"accumulate", accumulate, METH_VARARGS, "pycocotools' accumulate over every image once"},
    {"parse_results", parse_results, METH_VARARGS, "COCO results bytes -> (n, columns, counts, kp_len) or None"},
    {"group_order", group_order, METH_VARARGS, "stable order by group, then descending score"},
    {"greedy_match", greedy_match, METH_VARARGS, "pycocotools' greedy matching of candidate pairs"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_ckernels", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__ckernels(void) {
    if (PyType_Ready(&ColumnType) < 0) return NULL;
    return PyModule_Create(&MODULE);
}
