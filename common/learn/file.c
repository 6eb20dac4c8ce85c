/*
 * file.c - the model file of lr.h: ks_lr_save and ks_lr_load.
 *
 * Model file, version 1, every number little-endian:
 *   "KSLRMODL"                      8-byte magic
 *   u32 version (1), u32 kind (1 router, 2 triage, 3 verifier), u32 bits,
 *   u32 feature set (1: the one described in lr.h; 2: verify.h's, of a
 *   verifier before version 4; 4: verify.h's with the signals trained,
 *   what a verifier is saved with now; 3: a router's with task features, lr.h's
 *   struct ks_lr_task), u32 n_labels
 *   n_labels x (u32 length, bytes)  router: "0", "1"; triage: unique
 *   feature set 4 only: u32 signals  a verifier's trained signals
 *                                   (verify.h enum ks_verify_signal)
 *   feature set 3 only: u32 n_keys (<= KS_LR_MAX_META_KEYS), n_keys x
 *   (u32 length, bytes)             the metadata keys that are features
 *   f64 platt_a, f64 platt_c, f64 temperature
 *   n_vec x (f64 bias, u32 nnz, nnz x (u32 bucket, f32 weight))
 *                                   buckets strictly increasing
 *   u64 FNV-1a 64 of every byte before it
 * n_vec is 1 for a router and n_labels for triage. Loading checks every
 * field against the caps in lr.h before it sizes anything by it, so a
 * corrupt file is refused with a reason and never read out of bounds.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "learn/lr.h"
#include "learn/lr_internal.h"
#include "learn/verify.h"

#include "base/banned.h"

#define LR_MAGIC              "KSLRMODL"
#define LR_VERSION            1
#define LR_FEATURE_SET        1
#define LR_FEATURE_SET_VERIFY 2 /* verify.h's features */
#define LR_FEATURE_SET_TASK   3 /* router: lr.h's, plus type and metadata */
#define LR_FEATURE_SET_VSIG   4 /* verify.h's, with the signals trained */

/* ---- writing ---- */

static void put_u32(struct ks_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};

    ks_buf_append(b, x, sizeof(x));
}

static void put_u64(struct ks_buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(struct ks_buf *b, float f)
{
    uint32_t v;

    memcpy(&v, &f, sizeof(v));
    put_u32(b, v);
}

static void put_f64(struct ks_buf *b, double d)
{
    uint64_t v;

    memcpy(&v, &d, sizeof(v));
    put_u64(b, v);
}

static uint32_t feature_set(const struct ks_lr_model *m)
{
    if (m->kind == LR_VERIFIER) {
        return LR_FEATURE_SET_VSIG;
    }
    return m->task_features ? LR_FEATURE_SET_TASK : LR_FEATURE_SET;
}

int ks_lr_save(const struct ks_lr_model *m,
               const char *path,
               char *errstr,
               size_t errstr_size)
{
    struct ks_buf b, tmp;
    FILE *fp = NULL;
    int rc = -1;
    char ebuf[128];

    ks_buf_init(&b);
    ks_buf_init(&tmp);
    ks_buf_append(&b, LR_MAGIC, 8);
    put_u32(&b, LR_VERSION);
    put_u32(&b, (uint32_t)m->kind);
    put_u32(&b, m->bits);
    put_u32(&b, feature_set(m));
    put_u32(&b, (uint32_t)m->n_labels);
    for (size_t i = 0; i < m->n_labels; i++) {
        put_u32(&b, (uint32_t)strlen(m->labels[i]));
        ks_buf_append(&b, m->labels[i], strlen(m->labels[i]));
    }
    if (feature_set(m) == LR_FEATURE_SET_VSIG) {
        put_u32(&b, m->signals);
    }
    if (feature_set(m) == LR_FEATURE_SET_TASK) {
        put_u32(&b, (uint32_t)m->n_meta_keys);
        for (size_t i = 0; i < m->n_meta_keys; i++) {
            put_u32(&b, (uint32_t)strlen(m->meta_keys[i]));
            ks_buf_append(&b, m->meta_keys[i], strlen(m->meta_keys[i]));
        }
    }
    put_f64(&b, m->platt_a);
    put_f64(&b, m->platt_c);
    put_f64(&b, m->temperature);
    for (size_t k = 0; k < m->n_vec; k++) {
        size_t nnz = 0, at;

        put_f64(&b, m->bias[k]);
        at = b.len;
        put_u32(&b, 0);
        for (size_t j = 0; j < ((size_t)1 << m->bits); j++) {
            float w = m->w[j * m->n_vec + k];

            if (w != 0) {
                put_u32(&b, (uint32_t)j);
                put_f32(&b, w);
                nnz++;
            }
        }
        for (int i = 0; i < 4; i++) {
            b.data[at + (size_t)i] = (char)(unsigned char)(nnz >> (8 * i));
        }
    }
    put_u64(&b, lr_fnv1a(LR_FNV_OFFSET, b.data, b.len));

    ks_buf_printf(&tmp, "%s.tmp", path);
    fp = fopen(tmp.data, "wb");
    if (!fp) {
        snprintf(errstr, errstr_size, "%s: %s", tmp.data,
                 ks_strerror(errno, ebuf, sizeof(ebuf)));
        goto out;
    }
    if (fwrite(b.data, 1, b.len, fp) != b.len || fflush(fp) != 0) {
        snprintf(errstr, errstr_size, "%s: write: %s", tmp.data,
                 ks_strerror(errno, ebuf, sizeof(ebuf)));
        goto out_close;
    }
    if (fclose(fp) != 0) {
        fp = NULL;
        snprintf(errstr, errstr_size, "%s: close: %s", tmp.data,
                 ks_strerror(errno, ebuf, sizeof(ebuf)));
        goto out_unlink;
    }
    fp = NULL;
    if (rename(tmp.data, path) != 0) {
        snprintf(errstr, errstr_size, "rename %s to %s: %s", tmp.data, path,
                 ks_strerror(errno, ebuf, sizeof(ebuf)));
        goto out_unlink;
    }
    rc = 0;
    goto out;

out_close:
    fclose(fp);
out_unlink:
    remove(tmp.data);
out:
    ks_buf_fini(&tmp);
    ks_buf_fini(&b);
    return rc;
}

/* ---- reading ---- */

/* A bounds-checked cursor over the file's bytes. */
struct rd {
    const unsigned char *p;
    size_t len, off;
};

static bool get_bytes(struct rd *r, size_t n, const unsigned char **out)
{
    if (r->len - r->off < n) {
        return false;
    }
    *out = r->p + r->off;
    r->off += n;
    return true;
}

static bool get_u32(struct rd *r, uint32_t *v)
{
    const unsigned char *x;

    if (!get_bytes(r, 4, &x)) {
        return false;
    }
    *v = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 |
         (uint32_t)x[3] << 24;
    return true;
}

static bool get_u64(struct rd *r, uint64_t *v)
{
    uint32_t lo, hi;

    if (!get_u32(r, &lo) || !get_u32(r, &hi)) {
        return false;
    }
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

static bool get_f64(struct rd *r, double *d)
{
    uint64_t v;

    if (!get_u64(r, &v)) {
        return false;
    }
    memcpy(d, &v, sizeof(*d));
    return true;
}

/* Reads the whole file, refusing anything over max bytes. */
static unsigned char *slurp(
    const char *path, size_t max, size_t *len, char *errstr, size_t errstr_size)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    unsigned char *data = NULL;
    char ebuf[128];

    if (!fp) {
        snprintf(errstr, errstr_size, "%s: %s", path,
                 ks_strerror(errno, ebuf, sizeof(ebuf)));
        return NULL;
    }
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(errstr, errstr_size, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(errstr, errstr_size,
                 "%s: %lld bytes is over the %zu-byte model cap", path,
                 (long long)st.st_size, max);
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        snprintf(errstr, errstr_size, "%s: out of memory", path);
        goto out;
    }
    *len = fread(data, 1, (size_t)st.st_size, fp);
    if (*len != (size_t)st.st_size) {
        snprintf(errstr, errstr_size, "%s: short read", path);
        free(data);
        data = NULL;
    }
out:
    fclose(fp);
    return data;
}

#define FAIL(...)                                                              \
    do {                                                                       \
        snprintf(errstr, errstr_size, __VA_ARGS__);                            \
        goto out_free;                                                         \
    } while (0)
#define NEED(ok, what)                                                         \
    do {                                                                       \
        if (!(ok)) {                                                           \
            FAIL("%s: truncated at byte %zu (reading %s)", path, r.off, what); \
        }                                                                      \
    } while (0)

/* Reads labels and checks them for the kind. Labels go into *labels. */
static bool read_labels(struct rd *r,
                        enum lr_kind kind,
                        size_t n,
                        char **labels,
                        char *why,
                        size_t why_size)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *s = NULL;
        uint32_t len;

        if (!get_u32(r, &len) ||
            (len <= KS_LR_MAX_LABEL_LEN && !get_bytes(r, len, &s))) {
            snprintf(why, why_size, "truncated at byte %zu (reading label %zu)",
                     r->off, i);
            return false;
        }
        if (len == 0 || len > KS_LR_MAX_LABEL_LEN ||
            memchr(s, '\0', len) != NULL) {
            snprintf(why, why_size,
                     "label %zu: length %u or a NUL byte is not allowed", i,
                     len);
            return false;
        }
        labels[i] = ks_xstrndup((const char *)s, len);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(labels[j], labels[i]) == 0) {
                snprintf(why, why_size, "label '%s' appears twice", labels[i]);
                return false;
            }
        }
    }
    if (LR_BINARY(kind) &&
        (strcmp(labels[0], "0") != 0 || strcmp(labels[1], "1") != 0)) {
        snprintf(why, why_size,
                 "a binary model's labels must be \"0\" and \"1\"");
        return false;
    }
    return true;
}

/* Feature set 3: the metadata keys of a router with task features. */
static bool read_meta_keys(struct rd *r,
                           struct ks_lr_model *m,
                           char *why,
                           size_t why_size)
{
    uint32_t n;

    m->task_features = true;
    if (!get_u32(r, &n) || n > KS_LR_MAX_META_KEYS) {
        snprintf(why, why_size, "bad metadata key count at byte %zu", r->off);
        return false;
    }
    m->meta_keys = ks_xcalloc(n + 1, sizeof(*m->meta_keys));
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *s = NULL;
        uint32_t len;

        if (!get_u32(r, &len) || len == 0 || len > KS_LR_MAX_LABEL_LEN ||
            !get_bytes(r, len, &s) || memchr(s, '\0', len)) {
            snprintf(why, why_size,
                     "metadata key %u is truncated, empty, "
                     "too long or holds a NUL",
                     i);
            return false;
        }
        m->meta_keys[m->n_meta_keys++] = ks_xstrndup((const char *)s, len);
    }
    return true;
}

/* In the readers below: fail with why, or with a truncation at r's
 * offset. */
#define WHY(...)                                                               \
    do {                                                                       \
        snprintf(why, why_size, __VA_ARGS__);                                  \
        return false;                                                          \
    } while (0)
#define WANT(ok, what)                                                         \
    do {                                                                       \
        if (!(ok)) {                                                           \
            WHY("truncated at byte %zu (reading %s)", r->off, what);           \
        }                                                                      \
    } while (0)

/* Reads and checks the header: magic, version, kind, hash bits, feature
 * set and label count, and that the weights fit the cap. */
static bool read_header(struct rd *r,
                        uint32_t *fsetp,
                        uint32_t *kindp,
                        uint32_t *bitsp,
                        uint32_t *n_labelsp,
                        char *why,
                        size_t why_size)
{
    const unsigned char *magic;
    uint32_t version, kind, bits, fset, n_labels;

    WANT(get_bytes(r, 8, &magic), "magic");
    if (memcmp(magic, LR_MAGIC, 8) != 0) {
        WHY("not a kascade model (bad magic)");
    }
    WANT(get_u32(r, &version), "version");
    if (version != LR_VERSION) {
        WHY("model format version %u, this build reads %d", version,
            LR_VERSION);
    }
    WANT(get_u32(r, &kind) && get_u32(r, &bits) && get_u32(r, &fset) &&
             get_u32(r, &n_labels),
         "header");
    if (kind != LR_ROUTER && kind != LR_TRIAGE && kind != LR_VERIFIER) {
        WHY("unknown model kind %u", kind);
    }
    if (bits < KS_LR_MIN_BITS || bits > KS_LR_MAX_BITS) {
        WHY("%u hash bits is outside [%d, %d]", bits, KS_LR_MIN_BITS,
            KS_LR_MAX_BITS);
    }
    if (kind == LR_VERIFIER
            ? fset != LR_FEATURE_SET_VERIFY && fset != LR_FEATURE_SET_VSIG
            : fset != (kind == LR_TRIAGE             ? LR_FEATURE_SET
                       : fset == LR_FEATURE_SET_TASK ? LR_FEATURE_SET_TASK
                                                     : LR_FEATURE_SET)) {
        WHY("unknown feature set %u", fset);
    }
    if (LR_BINARY(kind) ? n_labels != 2
                        : (n_labels < 2 || n_labels > KS_LR_MAX_LABELS)) {
        WHY("%u labels is not allowed for this kind (triage: 2..%d, "
            "router: 2)",
            n_labels, KS_LR_MAX_LABELS);
    }
    if ((LR_BINARY(kind) ? 1 : (uint64_t)n_labels) << bits >
        KS_LR_MAX_WEIGHTS) {
        WHY("%u labels x 2^%u buckets is over the %u-weight cap", n_labels,
            bits, KS_LR_MAX_WEIGHTS);
    }
    *fsetp = fset;
    *kindp = kind;
    *bitsp = bits;
    *n_labelsp = n_labels;
    return true;
}

/* Reads the weight vectors into m: per vector its bias and its non-zero
 * weights in increasing bucket order, every number finite. */
static bool read_weights(struct rd *r,
                         struct ks_lr_model *m,
                         char *why,
                         size_t why_size)
{
    for (size_t k = 0; k < m->n_vec; k++) {
        uint32_t nnz, idx, wbits;
        int64_t last = -1;

        WANT(get_f64(r, &m->bias[k]) && get_u32(r, &nnz), "weights");
        if (!isfinite(m->bias[k])) {
            WHY("weight vector %zu: bias is not a finite number", k);
        }
        if (nnz > (1u << m->bits)) {
            WHY("weight vector %zu: %u weights for 2^%u buckets", k, nnz,
                m->bits);
        }
        for (uint32_t i = 0; i < nnz; i++) {
            float w;

            WANT(get_u32(r, &idx) && get_u32(r, &wbits), "weights");
            memcpy(&w, &wbits, sizeof(w));
            if ((int64_t)idx <= last || idx >= (1u << m->bits) ||
                !isfinite(w)) {
                WHY("weight vector %zu: weight %u (bucket %u) is out of "
                    "order, out of range or not finite",
                    k, i, idx);
            }
            m->w[(size_t)idx * m->n_vec + k] = w;
            last = idx;
        }
    }
    return true;
}

#undef WANT
#undef WHY

struct ks_lr_model *ks_lr_load(const char *path,
                               char *errstr,
                               size_t errstr_size)
{
    /* The largest valid file: every weight non-zero, every label long. */
    size_t max = 64 + (size_t)KS_LR_MAX_LABELS * (4 + KS_LR_MAX_LABEL_LEN) +
                 (size_t)KS_LR_MAX_LABELS * 12 + (size_t)KS_LR_MAX_WEIGHTS * 8 +
                 8 + (size_t)KS_LR_MAX_META_KEYS * (4 + KS_LR_MAX_LABEL_LEN);
    struct ks_lr_model *m = NULL;
    struct rd r = {0};
    uint32_t fset, kind, bits, n_labels;
    uint64_t sum;
    char **labels = NULL;
    char why[256];
    unsigned char *data;

    data = slurp(path, max, &r.len, errstr, errstr_size);
    if (!data) {
        return NULL;
    }
    r.p = data;
    if (!read_header(&r, &fset, &kind, &bits, &n_labels, why, sizeof(why))) {
        FAIL("%s: %s", path, why);
    }
    labels = ks_xcalloc(n_labels, sizeof(*labels));
    if (!read_labels(&r, kind, n_labels, labels, why, sizeof(why))) {
        FAIL("%s: %s", path, why);
    }
    m = lr_model_new(kind, bits, n_labels, labels);
    labels = NULL;
    if (fset == LR_FEATURE_SET_TASK &&
        !read_meta_keys(&r, m, why, sizeof(why))) {
        FAIL("%s: %s", path, why);
    }
    m->signals = KS_VSIG_ALL; /* set 2: written before they were kept */
    if (fset == LR_FEATURE_SET_VSIG) {
        NEED(get_u32(&r, &m->signals), "signals");
        if (m->signals & ~(uint32_t)KS_VSIG_ALL) {
            FAIL("%s: unknown verifier signals 0x%x", path, m->signals);
        }
    }
    NEED(get_f64(&r, &m->platt_a) && get_f64(&r, &m->platt_c) &&
             get_f64(&r, &m->temperature),
         "calibration");
    if (!isfinite(m->platt_a) || m->platt_a < 0 || !isfinite(m->platt_c) ||
        !isfinite(m->temperature) || m->temperature <= 0) {
        FAIL("%s: bad calibration (a %g, c %g, temperature %g)", path,
             m->platt_a, m->platt_c, m->temperature);
    }
    if (!read_weights(&r, m, why, sizeof(why))) {
        FAIL("%s: %s", path, why);
    }
    sum = lr_fnv1a(LR_FNV_OFFSET, data, r.off);
    {
        uint64_t stored;

        NEED(get_u64(&r, &stored), "checksum");
        if (stored != sum) {
            FAIL("%s: checksum mismatch (corrupt file)", path);
        }
    }
    if (r.off != r.len) {
        FAIL("%s: %zu unexpected bytes after the checksum", path,
             r.len - r.off);
    }
    free(data);
    ks_log_info("lr", "loaded %s model %s (%zu labels, %u bits)", ks_lr_kind(m),
                path, m->n_labels, m->bits);
    return m;

out_free:
    if (labels) {
        for (size_t i = 0; i < n_labels; i++) {
            free(labels[i]);
        }
        free(labels);
    }
    ks_lr_destroy(m);
    free(data);
    return NULL;
}
