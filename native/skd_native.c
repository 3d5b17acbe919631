/* The corpus import's hot loops in C. Each is an optional speed-up of Python code in
 * generation/ that stays the reference (tests/generation/test_native.py holds them
 * to it), and the import falls back to that code when this module is missing.
 *
 * jsonl_columns(lines, skd) reads a list of JSON lines (bytes) into columns
 * (heads, relations, tails, splits, fields, odd). A line is read here when it is
 * "plain": an object of strings without escapes or control characters, simple
 * literals and numbers that orjson writes back as they came, with head, relation and
 * tail already clean text and split (when present) a clean split name. `fields` is
 * the object less those four keys as compact JSON, exactly as orjson.dumps writes it
 * ("" when nothing is left). Any other line is left to Python's careful reader: its
 * index is in `odd` and its entries in the columns are None.
 *
 * tail_keys (importing._tail_keys), bloom_check_and_add (bulk._MaybeSeen),
 * count_pairs and copy_binary (bulk.PartitionLoader) follow.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if __has_include(<xxhash.h>)
#define XXH_INLINE_ALL
#include <xxhash.h>
#define HAVE_XXH3 1
#endif

#define MAX_TEXT_CHARS 500
#define MAX_SPLIT_CHARS 16
#define MAX_EXTRA_KEYS 32
/* orjson writes a float back as it came when it has at most this many significant
 * digits and no exponent (checked exhaustively in the tests against orjson). */
#define MAX_NUMBER_DIGITS 15

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} Buffer;

static int buffer_reserve(Buffer *b, size_t more) {
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline void buffer_put(Buffer *b, const char *s, size_t n) {
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

typedef struct {
    const char *p;
    Py_ssize_t n;
    int high; /* holds a byte >= 0x80 */
} Span;

static inline int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* A JSON string starting at s[*i] == '"', without escapes or control characters: C0,
 * DEL and C1 (U+0080-U+009F, in UTF-8 0xC2 0x80-0x9F), which Python refuses with the
 * line and the field (formats._CONTROL). */
static int scan_string(const char *s, Py_ssize_t n, Py_ssize_t *i, Span *out) {
    const unsigned char *start = (const unsigned char *)s + *i + 1;
    const unsigned char *end = memchr(start, '"', (size_t)(n - *i - 1));
    if (!end) return 0;
    Py_ssize_t len = end - start;
    /* One pass the compiler vectorizes: any backslash, control character or high byte. */
    unsigned char bad = 0, high = 0;
    for (Py_ssize_t k = 0; k < len; k++) {
        unsigned char c = start[k];
        bad |= (c == '\\') | (c < 0x20) | (c == 0x7F);
        high |= c;
    }
    if (bad) return 0;
    if (high & 0x80) {
        /* 0xC2 is always a lead byte in UTF-8, so this finds C1 and nothing else. */
        for (Py_ssize_t k = 0; k + 1 < len; k++)
            if (start[k] == 0xC2 && start[k + 1] >= 0x80 && start[k + 1] <= 0x9F) return 0;
    }
    out->p = (const char *)start;
    out->n = len;
    out->high = (high & 0x80) != 0;
    *i = (end - (const unsigned char *)s) + 1;
    return 1;
}

/* A number in the form orjson writes back unchanged: -?(0|[1-9]d*)(.d+)? with no
 * exponent, a fraction that is "0" or ends in a non-zero digit, at most
 * MAX_NUMBER_DIGITS significant digits and, below 1, no more than three leading
 * zeros after the point. An integer "-0" is refused (orjson writes 0). */
static int scan_number(const char *s, Py_ssize_t n, Py_ssize_t *i, int *is_int) {
    Py_ssize_t j = *i;
    if (j < n && s[j] == '-') j++;
    Py_ssize_t int_start = j;
    if (j < n && s[j] == '0') {
        j++;
    } else if (j < n && s[j] >= '1' && s[j] <= '9') {
        while (j < n && s[j] >= '0' && s[j] <= '9') j++;
    } else {
        return 0;
    }
    Py_ssize_t int_digits = j - int_start;
    int zero_int = int_digits == 1 && s[int_start] == '0';
    if (j < n && s[j] >= '0' && s[j] <= '9') return 0; /* leading zero */
    Py_ssize_t significant = zero_int ? 0 : int_digits;
    *is_int = 1;
    if (j < n && s[j] == '.') {
        j++;
        Py_ssize_t frac_start = j;
        while (j < n && s[j] >= '0' && s[j] <= '9') j++;
        Py_ssize_t frac_digits = j - frac_start;
        if (frac_digits == 0) return 0;
        if (!(frac_digits == 1 && s[frac_start] == '0')) {
            if (s[j - 1] == '0') return 0;
            if (zero_int) {
                Py_ssize_t zeros = 0;
                while (s[frac_start + zeros] == '0') zeros++;
                if (zeros > 3) return 0;
                significant = frac_digits - zeros;
            } else {
                significant += frac_digits;
            }
        }
        *is_int = 0;
    } else if (zero_int && int_start > *i) {
        return 0; /* -0 */
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) return 0;
    if (significant > MAX_NUMBER_DIGITS || int_digits > MAX_NUMBER_DIGITS) return 0;
    *i = j;
    return 1;
}

/* Clean text as formats.clean_text leaves it: not empty, no whitespace but single
 * inner spaces. A non-ASCII value is refused when it holds one of the code points
 * Python counts as whitespace (U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000). Control characters never reach here. */
static int is_clean(const Span *v) {
    const unsigned char *p = (const unsigned char *)v->p;
    Py_ssize_t n = v->n;
    if (n == 0 || p[0] == ' ' || p[n - 1] == ' ') return 0;
    unsigned char doubled = 0;
    for (Py_ssize_t k = 0; k + 1 < n; k++) doubled |= (p[k] == ' ') & (p[k + 1] == ' ');
    if (doubled) return 0;
    if (!v->high) return 1;
    for (Py_ssize_t k = 0; k < n; k++) {
        unsigned char c = p[k];
        if (c < 0x80) continue;
        if (c == 0xC2 && k + 1 < n && (p[k + 1] == 0x85 || p[k + 1] == 0xA0)) return 0;
        if (c == 0xE1 && k + 2 < n && p[k + 1] == 0x9A && p[k + 2] == 0x80) return 0;
        if (c == 0xE2 && k + 2 < n) {
            unsigned char b = p[k + 1], d = p[k + 2];
            if (b == 0x80 && ((d >= 0x80 && d <= 0x8A) || d == 0xA8 || d == 0xA9 || d == 0xAF))
                return 0;
            if (b == 0x81 && d == 0x9F) return 0;
        }
        if (c == 0xE3 && k + 2 < n && p[k + 1] == 0x80 && p[k + 2] == 0x80) return 0;
    }
    return 1;
}

static Py_ssize_t char_count(const Span *v) {
    if (!v->high) return v->n;
    Py_ssize_t count = 0;
    for (Py_ssize_t k = 0; k < v->n; k++) count += (((unsigned char)v->p[k]) & 0xC0) != 0x80;
    return count;
}

static int is_split_name(const Span *v) {
    if (v->n < 1 || v->n > MAX_SPLIT_CHARS) return 0;
    for (Py_ssize_t k = 0; k < v->n; k++) {
        char c = v->p[k];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return 0;
    }
    return 1;
}

/* A number as scan_number accepts it lies in [0, 1]: 0, 1, 0.x, 1.0, or a negative
 * zero (-0.0 >= 0 holds for Python too). */
static int is_unit_interval(const char *v, Py_ssize_t n) {
    int negative = v[0] == '-';
    if (negative) {
        for (Py_ssize_t k = 1; k < n; k++)
            if (v[k] != '0' && v[k] != '.') return 0;
        return 1;
    }
    if (v[0] == '0') return 1;
    return v[0] == '1' && (n == 1 || (n == 3 && v[2] == '0'));
}

static inline int span_is(const Span *v, const char *word, Py_ssize_t n) {
    return v->n == n && memcmp(v->p, word, n) == 0;
}

typedef struct {
    Span head, relation, tail, split;
    int has_split;
} Line;

/* One line; the extra members are appended to `fields` as compact JSON. */
static int read_line(const char *s, Py_ssize_t n, int skd, Line *line, Buffer *fields) {
    Py_ssize_t i = 0;
    Span keys[MAX_EXTRA_KEYS];
    int n_keys = 0, seen_head = 0, seen_relation = 0, seen_tail = 0;
    line->has_split = 0;
    while (i < n && is_ws(s[i])) i++;
    if (i >= n || s[i] != '{') return 0;
    i++;
    while (i < n && is_ws(s[i])) i++;
    if (i < n && s[i] == '}') return 0; /* no head */
    for (;;) {
        Span key, text;
        if (i >= n || s[i] != '"' || !scan_string(s, n, &i, &key)) return 0;
        while (i < n && is_ws(s[i])) i++;
        if (i >= n || s[i] != ':') return 0;
        i++;
        while (i < n && is_ws(s[i])) i++;
        if (i >= n) return 0;
        Py_ssize_t value_start = i;
        char c = s[i];
        int is_string = 0, is_int = 0, is_number = 0;
        if (c == '"') {
            if (!scan_string(s, n, &i, &text)) return 0;
            is_string = 1;
        } else if (c == 't' && n - i >= 4 && memcmp(s + i, "true", 4) == 0) {
            i += 4;
        } else if (c == 'f' && n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
            i += 5;
        } else if (c == 'n' && n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            i += 4;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!scan_number(s, n, &i, &is_int)) return 0;
            is_number = 1;
        } else {
            return 0; /* arrays, objects, anything else */
        }
        Py_ssize_t value_len = i - value_start;

        if (span_is(&key, "head", 4)) {
            if (seen_head++ || !is_string) return 0;
            line->head = text;
        } else if (span_is(&key, "relation", 8)) {
            if (seen_relation++ || !is_string) return 0;
            line->relation = text;
        } else if (span_is(&key, "tail", 4)) {
            if (seen_tail++ || !is_string) return 0;
            line->tail = text;
        } else if (span_is(&key, "split", 5)) {
            if (line->has_split++ || !is_string) return 0;
            line->split = text;
        } else {
            for (int k = 0; k < n_keys; k++)
                if (keys[k].n == key.n && memcmp(keys[k].p, key.p, key.n) == 0) return 0;
            if (n_keys == MAX_EXTRA_KEYS) return 0;
            keys[n_keys++] = key;
            if (skd && span_is(&key, "valid", 5) && c != 'n') {
                /* 2, 1, -1, -2 or -9, as an integer */
                if (!is_int || !is_number) return 0;
                const char *v = s + value_start;
                int ok = (value_len == 1 && (v[0] == '1' || v[0] == '2')) ||
                         (value_len == 2 && v[0] == '-' && (v[1] == '1' || v[1] == '2' || v[1] == '9'));
                if (!ok) return 0;
            } else if (skd && span_is(&key, "p_valid_model", 13) && c != 'n') {
                if (!is_number || !is_unit_interval(s + value_start, value_len)) return 0;
            }
            if (buffer_reserve(fields, key.n + value_len + 5) < 0) return -1;
            buffer_put(fields, n_keys == 1 ? "{\"" : ",\"", 2);
            buffer_put(fields, key.p, key.n);
            buffer_put(fields, "\":", 2);
            buffer_put(fields, s + value_start, value_len);
        }
        while (i < n && is_ws(s[i])) i++;
        if (i >= n) return 0;
        if (s[i] == ',') {
            i++;
            while (i < n && is_ws(s[i])) i++;
            continue;
        }
        if (s[i] != '}') return 0;
        i++;
        break;
    }
    while (i < n && is_ws(s[i])) i++;
    if (i != n) return 0;
    if (!seen_head || !seen_relation || !seen_tail) return 0;
    if (!is_clean(&line->head) || !is_clean(&line->tail) || !is_clean(&line->relation)) return 0;
    if (char_count(&line->head) > MAX_TEXT_CHARS || char_count(&line->tail) > MAX_TEXT_CHARS)
        return 0;
    if (line->has_split && !is_split_name(&line->split)) return 0;
    if (n_keys) {
        if (buffer_reserve(fields, 1) < 0) return -1;
        buffer_put(fields, "}", 1);
    }
    return 1;
}

/* The str of `v`, reusing `*last` when it holds the same text (relations, splits and
 * heads come in runs), so that runs share one object. NULL with an error set when the
 * bytes are not UTF-8 (the caller then gives up on the piece). */
static PyObject *text_of(const Span *v, PyObject **last, const char **last_p, Py_ssize_t *last_n) {
    if (*last && *last_n == v->n && memcmp(*last_p, v->p, v->n) == 0) {
        Py_INCREF(*last);
        return *last;
    }
    PyObject *text = PyUnicode_DecodeUTF8(v->p, v->n, NULL);
    if (!text) return NULL;
    Py_XSETREF(*last, Py_NewRef(text));
    *last_p = v->p;
    *last_n = v->n;
    return text;
}

typedef struct {
    PyObject *last;
    const char *p;
    Py_ssize_t n;
} Run;

static PyObject *jsonl_columns(PyObject *module, PyObject *args) {
    PyObject *lines;
    int skd;
    if (!PyArg_ParseTuple(args, "O!p", &PyList_Type, &lines, &skd)) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(lines);
    PyObject *columns[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    Run runs[3] = {{NULL, NULL, 0}, {NULL, NULL, 0}, {NULL, NULL, 0}};
    Buffer fields = {NULL, 0, 0};
    PyObject *result = NULL, *empty = NULL, *train = NULL;

    for (int c = 0; c < 5; c++)
        if (!(columns[c] = PyList_New(count))) goto done;
    if (!(columns[5] = PyList_New(0))) goto done; /* the lines left to Python */
    empty = PyUnicode_FromStringAndSize("", 0);
    train = PyUnicode_FromString("train");
    if (!empty || !train) goto done;

    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PyList_GET_ITEM(lines, k);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "lines must be bytes");
            goto done;
        }
        Line line;
        fields.len = 0;
        int ok = read_line(PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item), skd, &line, &fields);
        if (ok < 0) goto done;
        PyObject *values[5] = {NULL, NULL, NULL, NULL, NULL};
        if (ok) {
            values[0] = text_of(&line.head, &runs[0].last, &runs[0].p, &runs[0].n);
            if (values[0]) values[1] = text_of(&line.relation, &runs[1].last, &runs[1].p, &runs[1].n);
            if (values[1]) values[2] = PyUnicode_DecodeUTF8(line.tail.p, line.tail.n, NULL);
            if (values[2])
                values[3] = line.has_split
                                ? text_of(&line.split, &runs[2].last, &runs[2].p, &runs[2].n)
                                : Py_NewRef(train);
            if (values[3])
                values[4] = fields.len ? PyUnicode_DecodeUTF8(fields.data, fields.len, NULL)
                                       : Py_NewRef(empty);
            if (!values[4]) {
                for (int c = 0; c < 4; c++) Py_XDECREF(values[c]);
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) goto done;
                PyErr_Clear(); /* not UTF-8: the Python path names the line */
                ok = 0;
            }
        }
        if (!ok) {
            PyObject *index = PyLong_FromSsize_t(k);
            int failed = !index || PyList_Append(columns[5], index) < 0;
            Py_XDECREF(index);
            if (failed) goto done;
            for (int c = 0; c < 5; c++) values[c] = Py_NewRef(Py_None);
        }
        for (int c = 0; c < 5; c++) PyList_SET_ITEM(columns[c], k, values[c]);
    }
    result = PyTuple_New(6);
    if (!result) goto done;
    for (int c = 0; c < 6; c++) {
        PyTuple_SET_ITEM(result, c, columns[c]);
        columns[c] = NULL;
    }

done:
    for (int c = 0; c < 6; c++) Py_XDECREF(columns[c]);
    for (int r = 0; r < 3; r++) Py_XDECREF(runs[r].last);
    Py_XDECREF(empty);
    Py_XDECREF(train);
    PyMem_Free(fields.data);
    return result;
}

/* --- COPY ----------------------------------------------------------------- */

/* PostgreSQL's binary COPY: each field is its length (4 bytes, big-endian), then
 * int8 as 8 bytes, int4 as 4 bytes, both big-endian, text as its UTF-8 bytes. */
static inline void put_be(Buffer *b, uint64_t v, int bytes) {
    for (int k = bytes - 1; k >= 0; k--) b->data[b->len++] = (char)((v >> (8 * k)) & 0xFF);
}

static int put_binary(Buffer *b, PyObject *value, char kind) {
    if (kind == 't') {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(value, &n);
        if (!s) return -1;
        if (n > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "text too long for COPY");
            return -1;
        }
        if (buffer_reserve(b, 4 + (size_t)n) < 0) return -1;
        put_be(b, (uint64_t)n, 4);
        buffer_put(b, s, n);
        return 0;
    }
    long long v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred()) return -1;
    int bytes = kind == 'q' ? 8 : 4;
    if (bytes == 4 && (v < INT32_MIN || v > INT32_MAX)) {
        PyErr_SetString(PyExc_OverflowError, "value out of range for an int4 column");
        return -1;
    }
    if (buffer_reserve(b, 4 + bytes) < 0) return -1;
    put_be(b, (uint64_t)bytes, 4);
    put_be(b, (uint64_t)v, bytes);
    return 0;
}

/* copy_binary(columns, kinds, mask=None, want=0) -> bytes: the rows of equally long
 * lists (columns) as binary COPY tuples (with no header or trailer); kinds has one
 * letter per column: "q" for bigint, "l" for integer, "t" for text. With a mask (one
 * byte per row), only rows whose byte is `want`. */
static PyObject *copy_binary(PyObject *module, PyObject *args) {
    PyObject *columns;
    const char *kinds;
    Py_buffer mask = {NULL, NULL};
    int want = 0;
    if (!PyArg_ParseTuple(args, "O!s|z*i", &PyTuple_Type, &columns, &kinds, &mask, &want))
        return NULL;
    PyObject *out = NULL;
    Buffer b = {NULL, 0, 0};
    Py_ssize_t width = PyTuple_GET_SIZE(columns);
    Py_ssize_t rows = -1;
    if ((Py_ssize_t)strlen(kinds) != width || width == 0 || width > INT16_MAX) {
        PyErr_SetString(PyExc_ValueError, "one kind per column");
        goto done;
    }
    for (Py_ssize_t c = 0; c < width; c++) {
        PyObject *column = PyTuple_GET_ITEM(columns, c);
        if (!PyList_Check(column)) {
            PyErr_SetString(PyExc_TypeError, "columns must be lists");
            goto done;
        }
        if (rows >= 0 && PyList_GET_SIZE(column) != rows) {
            PyErr_SetString(PyExc_ValueError, "columns differ in length");
            goto done;
        }
        rows = PyList_GET_SIZE(column);
        if (kinds[c] != 'q' && kinds[c] != 'l' && kinds[c] != 't') {
            PyErr_SetString(PyExc_ValueError, "kinds are 'q', 'l' or 't'");
            goto done;
        }
    }
    if (mask.buf && mask.len != rows) {
        PyErr_SetString(PyExc_ValueError, "the mask has one byte per row");
        goto done;
    }
    const unsigned char *selected = mask.buf;
    if (buffer_reserve(&b, (size_t)rows * 80 + 16) < 0) goto done;
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (selected && selected[r] != (unsigned char)want) continue;
        if (buffer_reserve(&b, 2) < 0) goto done;
        put_be(&b, (uint64_t)width, 2);
        for (Py_ssize_t c = 0; c < width; c++) {
            PyObject *value = PyList_GET_ITEM(PyTuple_GET_ITEM(columns, c), r);
            if (put_binary(&b, value, kinds[c]) < 0) goto done;
        }
    }
    out = PyBytes_FromStringAndSize(b.data, b.len);
done:
    PyMem_Free(b.data);
    if (mask.obj) PyBuffer_Release(&mask);
    return out;
}

/* --- An approximate set (Bloom filter) of (head id, relation id, tail key) ------ */

static inline uint64_t mix64(uint64_t x) { /* splitmix64's finalizer */
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static int int64_at(PyObject *column, Py_ssize_t k, uint64_t *out) {
    long long v = PyLong_AsLongLong(PyList_GET_ITEM(column, k));
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* bloom_check_and_add(bits, head_ids, relation_ids, keys) -> bytes: for each row, 1
 * when it may have been added before, else 0; then adds the rows. "Before" is an
 * earlier call (all of the row's three bits were set) or an earlier row of this call
 * with the same 64-bit hash, so a repeat within the rows given is flagged too. `bits`
 * is a writable buffer of 64-byte lines, a power of two of them: each row's three bits
 * lie in one line, so that a row costs one cache miss. bulk._MaybeSeen does the same
 * with numpy. */
static PyObject *bloom_check_and_add(PyObject *module, PyObject *args) {
    Py_buffer bits;
    PyObject *heads, *relations, *keys;
    if (!PyArg_ParseTuple(args, "w*O!O!O!", &bits, &PyList_Type, &heads, &PyList_Type,
                          &relations, &PyList_Type, &keys))
        return NULL;
    PyObject *result = NULL;
    uint64_t *positions = NULL, *seen = NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    uint64_t lines = (uint64_t)bits.len / 64;
    if (lines == 0 || (lines & (lines - 1)) || (uint64_t)bits.len != lines * 64 ||
        PyList_GET_SIZE(heads) != n || PyList_GET_SIZE(relations) != n) {
        PyErr_SetString(PyExc_ValueError,
                        "bits must be a power of two of 64-byte lines; columns equally long");
        goto done;
    }
    uint64_t slots = 2;
    while (slots < 2 * (uint64_t)n) slots <<= 1;
    unsigned char *bytes = bits.buf;
    positions = PyMem_Malloc(sizeof(uint64_t) * 3 * (n ? n : 1));
    seen = PyMem_Calloc(slots, sizeof(uint64_t));
    result = PyBytes_FromStringAndSize(NULL, n);
    if (!positions || !seen || !result) {
        if (result) PyErr_NoMemory();
        Py_CLEAR(result);
        goto done;
    }
    unsigned char *maybe = (unsigned char *)PyBytes_AS_STRING(result);
    int seen_zero = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        uint64_t head, relation, key;
        if (int64_at(heads, k, &head) || int64_at(relations, k, &relation) ||
            int64_at(keys, k, &key)) {
            Py_CLEAR(result);
            goto done;
        }
        uint64_t h = mix64(key ^ mix64(head * 65536 + relation));
        uint64_t g = mix64(h);
        uint64_t line = (h & (lines - 1)) * 512;
        uint64_t *p = positions + 3 * k;
        p[0] = line + (g & 511);
        p[1] = line + ((g >> 9) & 511);
        p[2] = line + ((g >> 18) & 511);
        unsigned char all = 1;
        for (int j = 0; j < 3; j++) all &= (bytes[p[j] >> 3] >> (p[j] & 7)) & 1;
        /* An earlier row with the same hash: open addressing, 0 standing for empty. */
        unsigned char repeat = 0;
        if (h == 0) {
            repeat = (unsigned char)seen_zero;
            seen_zero = 1;
        } else {
            uint64_t slot = g & (slots - 1);
            while (seen[slot] && seen[slot] != h) slot = (slot + 1) & (slots - 1);
            repeat = seen[slot] == h;
            seen[slot] = h;
        }
        maybe[k] = all | repeat;
    }
    for (Py_ssize_t k = 0; k < 3 * n; k++)
        bytes[positions[k] >> 3] |= (unsigned char)(1u << (positions[k] & 7));
done:
    PyMem_Free(positions);
    PyMem_Free(seen);
    PyBuffer_Release(&bits);
    return result;
}

/* --- Counts by (relation id, split) --------------------------------------- */

#define MAX_PAIRS 256

/* count_pairs(relation_ids, splits, counts, mask=None, want=0) -> list of
 * (relation_id, split, rows, occurrences): the rows (of those whose mask byte is
 * `want`, when a mask is given) counted by relation and split, `counts` summed. */
static PyObject *count_pairs(PyObject *module, PyObject *args) {
    PyObject *relations, *splits, *counts;
    Py_buffer mask = {NULL, NULL};
    int want = 0;
    if (!PyArg_ParseTuple(args, "O!O!O!|z*i", &PyList_Type, &relations, &PyList_Type, &splits,
                          &PyList_Type, &counts, &mask, &want))
        return NULL;
    PyObject *result = NULL;
    PyObject *pair_relation[MAX_PAIRS], *pair_split[MAX_PAIRS];
    long long pair_rows[MAX_PAIRS], pair_total[MAX_PAIRS];
    int pairs = 0, last = -1;
    Py_ssize_t n = PyList_GET_SIZE(relations);
    if (PyList_GET_SIZE(splits) != n || PyList_GET_SIZE(counts) != n ||
        (mask.buf && mask.len != n)) {
        PyErr_SetString(PyExc_ValueError, "columns (and the mask) must be equally long");
        goto done;
    }
    const unsigned char *selected = mask.buf;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (selected && selected[k] != (unsigned char)want) continue;
        PyObject *relation = PyList_GET_ITEM(relations, k), *split = PyList_GET_ITEM(splits, k);
        long long count = PyLong_AsLongLong(PyList_GET_ITEM(counts, k));
        if (count == -1 && PyErr_Occurred()) goto done;
        int found = -1;
        /* Rows come in runs of one relation and split: try the last pair first, then
         * the others, by identity and then by value. */
        if (last >= 0 && pair_relation[last] == relation && pair_split[last] == split) found = last;
        for (int p = 0; found < 0 && p < pairs; p++) {
            int same = (pair_relation[p] == relation) ? 1
                       : PyObject_RichCompareBool(pair_relation[p], relation, Py_EQ);
            if (same < 0) goto done;
            if (same) {
                same = (pair_split[p] == split) ? 1
                       : PyObject_RichCompareBool(pair_split[p], split, Py_EQ);
                if (same < 0) goto done;
            }
            if (same) found = p;
        }
        if (found < 0) {
            if (pairs == MAX_PAIRS) {
                PyErr_SetString(PyExc_ValueError, "too many (relation, split) pairs");
                goto done;
            }
            found = pairs++;
            pair_relation[found] = relation;
            pair_split[found] = split;
            pair_rows[found] = pair_total[found] = 0;
        }
        pair_rows[found] += 1;
        pair_total[found] += count;
        last = found;
    }
    result = PyList_New(pairs);
    for (int p = 0; result && p < pairs; p++) {
        PyObject *item = Py_BuildValue("(OOLL)", pair_relation[p], pair_split[p], pair_rows[p],
                                       pair_total[p]);
        if (!item) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, p, item);
    }
done:
    if (mask.obj) PyBuffer_Release(&mask);
    return result;
}

#ifdef HAVE_XXH3
/* --- Tail keys ---------------------------------------------------------------- */

static inline int is_tail_end(char c) {
    return c == '.' || c == '!' || c == '?' || c == ';' || c == ',' || c == ' ';
}

/* tail_keys(tails, tail_key) -> list of int: importing.tail_key of each tail (the
 * signed xxh3-64 of its normalized form). Clean ASCII tails are normalized here;
 * any other goes to `tail_key`, the Python function. */
static PyObject *tail_keys(PyObject *module, PyObject *args) {
    PyObject *tails, *slow;
    if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &tails, &slow)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(tails);
    PyObject *keys = PyList_New(n);
    if (!keys) return NULL;
    char small[512];
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *tail = PyList_GET_ITEM(tails, k), *key = NULL;
        int fast = PyUnicode_Check(tail) && PyUnicode_IS_ASCII(tail) &&
                   PyUnicode_GET_LENGTH(tail) <= (Py_ssize_t)sizeof(small);
        if (fast) {
            const unsigned char *s = PyUnicode_1BYTE_DATA(tail);
            Py_ssize_t len = PyUnicode_GET_LENGTH(tail);
            unsigned char odd = len == 0 || s[0] == ' ' || s[len - 1] == ' ';
            for (Py_ssize_t i = 0; i < len; i++) {
                unsigned char c = s[i];
                odd |= (c < 0x20) | (i + 1 < len && c == ' ' && s[i + 1] == ' ');
                small[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
            }
            if (!odd) {
                while (len > 0 && is_tail_end(small[len - 1])) len--;
                uint64_t hash = XXH3_64bits(small, (size_t)len);
                key = PyLong_FromLongLong((long long)(hash ^ 0x8000000000000000ULL));
            } else {
                fast = 0;
            }
        }
        if (!fast) key = PyObject_CallOneArg(slow, tail);
        if (!key) {
            Py_DECREF(keys);
            return NULL;
        }
        PyList_SET_ITEM(keys, k, key);
    }
    return keys;
}
#endif

static PyMethodDef methods[] = {
    {"count_pairs", count_pairs, METH_VARARGS,
     "count_pairs(relation_ids, splits, counts, mask=None, want=0) -> [(relation, split, rows, total)]"},
#ifdef HAVE_XXH3
    {"tail_keys", tail_keys, METH_VARARGS, "tail_keys(tails, tail_key) -> list of int"},
#endif
    {"bloom_check_and_add", bloom_check_and_add, METH_VARARGS,
     "bloom_check_and_add(bits, head_ids, relation_ids, keys) -> bytes of 0/1"},
    {"jsonl_columns", jsonl_columns, METH_VARARGS,
     "jsonl_columns(lines, skd) -> (heads, relations, tails, splits, fields, odd)"},
    {"copy_binary", copy_binary, METH_VARARGS,
     "copy_binary(columns, kinds, mask=None, want=0) -> bytes: rows as binary COPY tuples"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "skd_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit_skd_native(void) { return PyModule_Create(&module); }
