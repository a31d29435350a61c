/* The VM: runs a compiled template over jansson data, with handlebars.js 4.7 semantics for
 * context stacks (../), @data frames, block params, helpers, sections and partials.
 * Program invocations recurse on the C stack (bounded by MAILBARS_LIMIT_CALL_DEPTH and
 * MAILBARS_LIMIT_PARTIAL_DEPTH); everything else lives in the reusable render state, so a
 * steady-state render makes no heap allocation. */
#include "jsonread.h"
#include "program.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { V_UNDEF, V_JSON, V_INT, V_STR };

/* A value on the VM stack: JSON (borrowed unless `owned`), an integer (@index), or a string
 * slice (@key of an object). `safe` marks a SafeString (never escaped). */
typedef struct mb_val {
    uint8_t t;
    uint8_t owned;
    uint8_t safe;
    union {
        json_t *j;
        int64_t i;
        struct {
            const char *s;
            size_t n;
        } s;
    } u;
} mb_val;

typedef struct mb_frame mb_frame;

/* The saved {{#> partial}}body{{/partial}} for @partial-block. */
typedef struct mb_pblock {
    int32_t prog;
    const mb_frame *caller;
    const struct mb_pblock *outer;
    const struct mb_data *caller_data;
} mb_pblock;

/* One @data frame (handlebars.js createFrame). Lookups walk `parent`, which matches
 * createFrame's copy of the parent's properties. */
typedef struct mb_data {
    const struct mb_data *parent;
    json_t *root;
    json_t *vars;
    uint8_t has_root, iter, first, last, has_pblock;
    int64_t index;
    mb_val key;
    const mb_pblock *pblock;
} mb_data;

/* One program invocation: context (depths[0]), the context chain for ../, the block-param
 * chain and the current @data frame. */
struct mb_frame {
    json_t *ctx;        /* depth0: `this` */
    json_t *dctx;       /* depths[0], which stays the old context when the new one equals it */
    const mb_frame *up; /* the frame whose dctx is depths[1] */
    const mb_frame *bp_parent;
    const mb_frame *wrap; /* whose ../ chain was current when this program was wrapped */
    const mb_val *bp;
    uint32_t nbp;
    const mb_data *data;
    uint8_t root; /* a template's or partial's main program: no block-param level */
};

typedef struct mb_scope {
    const char *name;
    size_t len;
    int32_t prog;
    const mb_frame *bp_parent; /* block params an inline partial sees: its declarer's parent's */
    const mb_frame *dcap;      /* the ../ chain it captured when declared */
} mb_scope;

struct mailbars_render_state {
    mailbars_render_ctx rctx;
    const mailbars_template *t;
    mailbars_buf out;
    mailbars_buf *cur;
    size_t out_limit;
    mb_val *stack;
    size_t sp, cap;
    uint64_t steps, iters;
    uint8_t custom_helper_ran; /* in this render (see mb_render_utf8_known) */
    uint64_t partial_depth, call_depth;
    mb_scope *scope;
    size_t nscope, capscope;
    mailbars_buf **caps; /* capture buffers, used as a stack; each stays where it is, as
                            helpers and st->cur hold them while more are taken */
    size_t ncaps, capcaps;
    json_t **jargs; /* materialised helper arguments, used as a stack */
    size_t njargs, capjargs;
    /* handlebars.js joins adjacent appends with JavaScript's `+`, so adjacent raw numbers and
     * booleans are added ({{{a}}}{{{b}}} with 1 and 2 prints 3). The pending run: */
    struct {
        int state;         /* NUM_STRING, NUM_RUNSTART or NUM_ACTIVE */
        mailbars_buf *buf; /* NUM_ACTIVE: the run's text is buf[start..end) */
        size_t start, end;
        double val;
    } num;
    json_t *nullctx;  /* handlebars.js container.nullContext: `this` for helpers when the
                         context is null or undefined */
    mailbars_buf tmp; /* value-to-string scratch */
    mailbars_error *err;
};

struct mailbars_call {
    mailbars_render_state *st;
    const mb_callsite *cs;
    const mb_helper *h;
    const mb_frame *f;
    json_t **args;
    size_t argc;
    size_t hash_base; /* index of the first hash value on the VM stack (it may move) */
    json_t *hash;
    mailbars_buf *out;
    json_t *ret;
    mailbars_buf *ret_buf; /* a SafeString result, in a capture buffer (instead of ret) */
    uint8_t ret_set, ret_safe, escapes;
    size_t caps_base;
    json_t *owned[8];
    size_t nowned;
};

static int exec(mailbars_render_state *st, int32_t prog, const mb_frame *f);
static int exec_value(mailbars_render_state *st, int32_t prog, const mb_frame *c, int *numeric);
static int val_truthy(const mb_val *v);

/* `this` as helpers see it: the context, or the shared empty object when it is nullish. */
static inline json_t *self_of(const mailbars_render_state *st, const mb_frame *f) {
    return f->ctx && !json_is_null(f->ctx) ? f->ctx : st->nullctx;
}

/* ---- errors ---- */

static int vm_fail(mailbars_render_state *st, int code, int line, int column, const char *fmt, ...)
    MB_PRINTF(5, 6);
static int vm_fail(mailbars_render_state *st, int code, int line, int column, const char *fmt,
                   ...) {
    if (st->err && st->err->code) return st->err->code; /* keep the first error */
    va_list ap;
    va_start(ap, fmt);
    mb_verror(st->err, code, line, column, fmt, ap);
    va_end(ap);
    return code;
}

static int vm_nomem(mailbars_render_state *st) {
    return vm_fail(st, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
}

/* ---- output ---- */

/* Slow path of out_write: grows the buffer without ever exceeding the output limit. */
static int out_grow(mailbars_render_state *st, mailbars_buf *b, size_t n) {
    if (b->len + n > st->out_limit)
        return vm_fail(st, MAILBARS_ERR_LIMIT_OUTPUT, 0, 0, "output exceeds the limit of %zu bytes",
                       st->out_limit);
    size_t need = b->len + n + 1, cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > st->out_limit + 1) cap = st->out_limit + 1;
    if (cap < need) cap = need;
    char *d = mb_realloc(b->data, cap);
    if (!d) return vm_nomem(st);
    b->data = d;
    b->cap = cap;
    return MAILBARS_OK;
}

/* Copies n <= 16 bytes with two overlapping loads and stores: no call, no loop. */
static inline void copy_short(char *o, const char *s, size_t n) {
    if (n >= 8) {
        uint64_t a, z;
        memcpy(&a, s, 8), memcpy(&z, s + n - 8, 8);
        memcpy(o, &a, 8), memcpy(o + n - 8, &z, 8);
    } else if (n >= 4) {
        uint32_t a, z;
        memcpy(&a, s, 4), memcpy(&z, s + n - 4, 4);
        memcpy(o, &a, 4), memcpy(o + n - 4, &z, 4);
    } else if (n) {
        o[0] = s[0], o[n / 2] = s[n / 2], o[n - 1] = s[n - 1];
    }
}

/* Appends bytes; the buffer is NUL-terminated only when a render or capture ends. */
static inline int out_write(mailbars_render_state *st, mailbars_buf *b, const char *s, size_t n) {
    if (MB_UNLIKELY(b->len + n + 1 > b->cap) && out_grow(st, b, n)) return st->err->code;
    if (n <= 16)
        copy_short(b->data + b->len, s, n);
    else
        memcpy(b->data + b->len, s, n);
    b->len += n;
    return MAILBARS_OK;
}

/* out_write for template text: the runs between tags are often 17 to 64 bytes, copied with
 * overlapping vectors rather than a call. */
static inline int out_text(mailbars_render_state *st, mailbars_buf *b, const mb_text *tx) {
#if defined(__SSE2__)
    const char *s = tx->s;
    size_t n = tx->len;
    if (n > 16 && n <= 64) {
        if (MB_UNLIKELY(b->len + n + 1 > b->cap) && out_grow(st, b, n)) return st->err->code;
        char *o = b->data + b->len;
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i z = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        if (n > 32) {
            __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
            __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 32));
            _mm_storeu_si128((__m128i *)(void *)(o + 16), c);
            _mm_storeu_si128((__m128i *)(void *)(o + n - 32), y);
        }
        _mm_storeu_si128((__m128i *)(void *)o, a);
        _mm_storeu_si128((__m128i *)(void *)(o + n - 16), z);
        b->len += n;
        return MAILBARS_OK;
    }
#endif
    return out_write(st, b, tx->s, tx->len);
}

/* Appends String(x) for an integer JavaScript holds exactly (see mb_js_int). */
static inline int out_int(mailbars_render_state *st, mailbars_buf *b, json_int_t x) {
    char num[24];
    return out_write(st, b, num, mb_format_int(x, num));
}

/* HTML-escapes into the output, copying runs of safe bytes at once. */
/* Scanning and copying are fused: 16 safe bytes are stored as they are loaded. Invariant: the
 * buffer has room for everything written so far plus the rest of the input unescaped. */
static int out_escaped_any(mailbars_render_state *st, mailbars_buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    if (MB_UNLIKELY(b->len + n + 1 > b->cap) && out_grow(st, b, n)) return st->err->code;
    char *o = b->data + b->len;
    for (;;) {
        unsigned c;
#if defined(__SSE2__)
        /* the hot loop stays free of the tail's width test: 16 bytes at a time */
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            unsigned mask = mb_esc_mask16(v);
            _mm_storeu_si128((__m128i *)(void *)o, v);
            if (!mask) {
                p += 16, o += 16;
                continue;
            }
            unsigned k = (unsigned)__builtin_ctz(mask);
            p += k, o += k;
            goto escape;
        }
        /* the tail of a string of 16 bytes or more: one vector that ends at the end, its
         * bytes already seen shifted out of the mask */
        if (p < end && n >= 16) {
            size_t r = (size_t)(end - p);
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(end - 16));
            unsigned mask = mb_esc_mask16(v) >> (16 - r);
            size_t k = mask ? (unsigned)__builtin_ctz(mask) : r;
            copy_short(o, (const char *)p, k);
            p += k, o += k;
            if (p == end) break;
            goto escape;
        }
        /* short strings 8 bytes at a time, in the low half of a vector */
        while (end - p >= 8) {
            __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)p);
            unsigned mask = mb_esc_mask16(v) & 0xFF;
            _mm_storel_epi64((__m128i *)(void *)o, v);
            if (!mask) {
                p += 8, o += 8;
                continue;
            }
            unsigned k = (unsigned)__builtin_ctz(mask);
            p += k, o += k;
            goto escape;
        }
#endif
        while (p < end && !mb_esc_class[*p]) *o++ = (char)*p++;
        if (p == end) break;
#if defined(__SSE2__)
    escape:
#endif
        c = mb_esc_class[*p++];
        b->len = (size_t)(o - b->data);
        if (MB_UNLIKELY(b->len + mb_esc_len[c] + (size_t)(end - p) + 1 > b->cap)) {
            if (out_grow(st, b, mb_esc_len[c] + (size_t)(end - p))) return st->err->code;
            o = b->data + b->len;
        }
        memcpy(o, mb_esc_text[c], mb_esc_len[c]);
        o += mb_esc_len[c];
    }
    b->len = (size_t)(o - b->data);
    return MAILBARS_OK;
}

/* out_escaped_any with the usual case inline: 4 to 16 bytes (both ends in one vector, one
 * test) that need no escaping. */
static inline int out_escaped(mailbars_render_state *st, mailbars_buf *b, const char *s, size_t n) {
#if defined(__SSE2__)
    if (n >= 4 && n <= 16 && MB_LIKELY(b->len + n + 1 <= b->cap)) {
        __m128i v;
        if (n >= 8) {
            uint64_t a, z;
            memcpy(&a, s, 8), memcpy(&z, s + n - 8, 8);
            v = _mm_set_epi64x((long long)z, (long long)a);
        } else {
            uint32_t a, z;
            memcpy(&a, s, 4), memcpy(&z, s + n - 4, 4);
            v = _mm_set_epi32(0, 0, (int)z, (int)a);
        }
        if (!mb_esc_mask16(v)) {
            copy_short(b->data + b->len, s, n);
            b->len += n;
            return MAILBARS_OK;
        }
    }
#endif
    return out_escaped_any(st, b, s, n);
}

/* A JavaScript `+` chain is a string once a string joined it (NUM_STRING); at the start of a
 * chain (NUM_RUNSTART) a number starts a numeric sum (NUM_ACTIVE). */
enum { NUM_STRING, NUM_RUNSTART, NUM_ACTIVE, NUM_OBJECT };

/* Appends a raw number or boolean, adding it to a numeric run that ends right here. */
static int out_number(mailbars_render_state *st, mailbars_buf *b, double d, const char *text,
                      size_t n) {
    char num[40];
    if (st->num.state == NUM_ACTIVE && st->num.buf == b && st->num.end == b->len) {
        d += st->num.val;
        b->len = st->num.start;
        n = mb_format_number(d, num);
        text = num;
    } else if (st->num.state == NUM_RUNSTART) {
        st->num.start = b->len;
    } else {
        return out_write(st, b, text, n);
    }
    if (out_write(st, b, text, n)) return st->err->code;
    st->num.state = NUM_ACTIVE;
    st->num.buf = b;
    st->num.end = b->len;
    st->num.val = d;
    return MAILBARS_OK;
}

/* A string joined the chain. */
static inline void num_break(mailbars_render_state *st) {
    st->num.state = NUM_STRING;
}

static inline int is_nullish(const mb_val *v) {
    return v->t == V_UNDEF || (v->t == V_JSON && (!v->u.j || json_is_null(v->u.j)));
}

/* Appends a value as JavaScript's String() would, escaping unless raw or SafeString. */
static int out_value(mailbars_render_state *st, mailbars_buf *b, const mb_val *v, int escape) {
    char num[40];
    if (escape && !v->safe) num_break(st); /* escapeExpression always gives a string */
    switch (v->t) {
    case V_UNDEF: num_break(st); return MAILBARS_OK;
    case V_INT:
        if (!escape || v->safe)
            return out_number(st, b, (double)v->u.i, num, mb_format_int(v->u.i, num));
        return out_write(st, b, num, mb_format_int(v->u.i, num));
    case V_STR:
        num_break(st);
        return escape && !v->safe ? out_escaped(st, b, v->u.s.s, v->u.s.n)
                                  : out_write(st, b, v->u.s.s, v->u.s.n);
    default: break;
    }
    json_t *j = v->u.j;
    if (!j || json_is_null(j)) {
        num_break(st);
        return MAILBARS_OK;
    }
    if (!escape || v->safe) {
        if (json_is_number(j)) {
            json_int_t x;
            size_t n = mb_js_int(j, &x) ? mb_format_int(x, num)
                                        : mb_format_number(json_number_value(j), num);
            return out_number(st, b, json_number_value(j), num, n);
        }
        if (json_is_boolean(j))
            return out_number(st, b, json_is_true(j), json_is_true(j) ? "true" : "false",
                              json_is_true(j) ? 4 : 5);
    }
    json_int_t x;
    if (mb_js_int(j, &x)) { /* escaped: String(n), which has nothing to escape */
        num_break(st);
        return out_int(st, b, x);
    }
    /* an object or array that starts a chain stays a non-string if nothing else joins (an
     * indented partial then fails as handlebars.js does: result.split is not a function) */
    int obj_start = (!escape || v->safe) && st->num.state == NUM_RUNSTART &&
                    (json_is_object(j) || json_is_array(j));
    num_break(st); /* a string (or object, array) joins the chain */
    if (obj_start) {
        size_t start = b->len;
        mailbars_buf_reset(&st->tmp);
        if (mailbars_value_to_string(j, &st->tmp)) return vm_nomem(st);
        if (st->tmp.len && out_write(st, b, st->tmp.data, st->tmp.len)) return st->err->code;
        st->num.state = NUM_OBJECT;
        st->num.buf = b;
        st->num.start = start;
        st->num.end = b->len;
        return MAILBARS_OK;
    }
    if (json_is_string(j)) {
        return escape && !v->safe ? out_escaped(st, b, json_string_value(j), json_string_length(j))
                                  : out_write(st, b, json_string_value(j), json_string_length(j));
    }
    mailbars_buf_reset(&st->tmp);
    if (mailbars_value_to_string(j, &st->tmp)) return vm_nomem(st);
    if (!st->tmp.len) return MAILBARS_OK;
    return escape && !v->safe ? out_escaped(st, b, st->tmp.data, st->tmp.len)
                              : out_write(st, b, st->tmp.data, st->tmp.len);
}

/* ---- values ---- */

static inline mb_val vjson(json_t *j) {
    mb_val v = {0};
    v.t = j ? V_JSON : V_UNDEF;
    v.u.j = j;
    return v;
}

static void val_release(mb_val *v) {
    if (v->owned && v->t == V_JSON) json_decref(v->u.j);
    v->owned = 0;
}

/* handlebars.js falsiness for if/unless (no includeZero): false, null, undefined, "", 0, NaN, [].
 */
/* JavaScript truthiness (`x && ...`, `a || b`): objects and arrays, even empty, are truthy. */
static int js_truthy(const mb_val *v) {
    if (v->t == V_JSON && v->u.j && (json_is_array(v->u.j) || json_is_object(v->u.j))) return 1;
    return val_truthy(v);
}

static int val_truthy(const mb_val *v) {
    switch (v->t) {
    case V_UNDEF: return 0;
    case V_INT: return v->u.i != 0;
    case V_STR: return v->u.s.n != 0;
    default: return mailbars_value_is_truthy(v->u.j);
    }
}

/* A JSON view of a value for helpers and contexts; *owned receives a new reference to release
 * (or NULL). Returns NULL for undefined. */
static json_t *val_json(const mb_val *v, json_t **owned) {
    *owned = NULL;
    switch (v->t) {
    case V_JSON: return v->u.j;
    case V_INT: return *owned = json_integer(v->u.i);
    case V_STR: return *owned = json_stringn_nocheck(v->u.s.s, v->u.s.n);
    default: return NULL;
    }
}

/* Number of UTF-16 code units in UTF-8 text (JavaScript's String length). */
static int64_t utf16_length(const char *s, size_t n) {
    int64_t len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80) len += c >= 0xF0 ? 2 : 1;
    }
    return len;
}

/* The character holding UTF-16 unit `idx` of UTF-8 text, as a slice (a character outside the
 * BMP counts as two units and is returned whole for either). */
static mb_val string_unit(const char *s, size_t n, size_t idx) {
    mb_val r = {0};
    size_t unit = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t clen = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + clen > n) clen = n - i;
        size_t units = clen == 4 ? 2 : 1;
        if (idx < unit + units) {
            r.t = V_STR;
            r.u.s.s = s + i;
            r.u.s.n = clen;
            return r;
        }
        unit += units;
        i += clen;
    }
    return r;
}

/* Parses a canonical array index ("0", "17"; no sign, no leading zeros). */
static int array_index(const char *k, size_t n, size_t *out) {
    if (!n || n > 10 || (n > 1 && k[0] == '0')) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9') return 0;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v >= 4294967295u) return 0;
    *out = (size_t)v;
    return 1;
}

/* handlebars.js lookupProperty for JSON: own properties only (arrays: indexes and length,
 * strings: length). Sets *found when the property exists (for strict mode's `in`). */
static mb_val prop(const mb_val *base, const char *key, size_t len, int *found) {
    mb_val r = {0};
    *found = 0;
    if (base->t == V_STR || (base->t == V_JSON && base->u.j && json_is_string(base->u.j))) {
        const char *str = base->t == V_STR ? base->u.s.s : json_string_value(base->u.j);
        size_t slen = base->t == V_STR ? base->u.s.n : json_string_length(base->u.j);
        size_t idx;
        if (len == 6 && !memcmp(key, "length", 6)) {
            r.t = V_INT;
            r.u.i = utf16_length(str, slen);
            *found = 1;
        } else if (array_index(key, len, &idx)) {
            /* "abc"[1]: the UTF-16 code unit at idx, as a one-character string */
            r = string_unit(str, slen, idx);
            *found = r.t != V_UNDEF;
        }
        return r;
    }
    if (base->t != V_JSON || !base->u.j) return r;
    json_t *j = base->u.j;
    if (json_is_object(j)) {
        json_t *v = json_object_getn(j, key, len);
        if (v) *found = 1, r.t = V_JSON, r.u.j = v;
    } else if (json_is_array(j)) {
        size_t idx;
        if (len == 6 && !memcmp(key, "length", 6)) {
            *found = 1;
            r.t = V_INT;
            r.u.i = (int64_t)json_array_size(j);
        } else if (array_index(key, len, &idx) && idx < json_array_size(j)) {
            *found = 1;
            r.t = V_JSON;
            r.u.j = json_array_get(j, idx);
        }
    }
    return r;
}

json_t *mb_json_property(json_t *obj, const char *key, size_t len) {
    mb_val base = vjson(obj);
    int found;
    mb_val r = prop(&base, key, len, &found);
    json_t *o, *j = val_json(&r, &o);
    return o ? o : json_incref(j);
}

/* The value of @name in a data frame chain. */
static mb_val data_get(const mb_data *d, const char *name, size_t len, int *found) {
    mb_val r = {0};
    *found = 0;
    for (; d; d = d->parent) {
        if (d->iter) {
            if (len == 5 && !memcmp(name, "index", 5)) {
                r.t = V_INT, r.u.i = d->index, *found = 1;
                return r;
            }
            if (len == 3 && !memcmp(name, "key", 3)) {
                *found = 1;
                return d->key;
            }
            if (len == 5 && !memcmp(name, "first", 5)) {
                *found = 1;
                return vjson(json_boolean(d->first));
            }
            if (len == 4 && !memcmp(name, "last", 4)) {
                *found = 1;
                return vjson(json_boolean(d->last));
            }
        }
        if (d->has_pblock && len == 13 && !memcmp(name, "partial-block", 13)) {
            /* a function in handlebars.js: truthy when a partial block is active */
            if (!d->pblock) return r;
            *found = 1;
            return vjson(json_true());
        }
        if (d->has_root && len == 4 && !memcmp(name, "root", 4)) {
            *found = 1;
            return vjson(d->root);
        }
        if (d->vars) {
            json_t *v = json_object_getn(d->vars, name, len);
            if (v) {
                *found = 1;
                return vjson(v);
            }
        }
    }
    return r;
}

static const mb_pblock *data_pblock(const mb_data *d) {
    for (; d; d = d->parent)
        if (d->has_pblock) return d->pblock;
    return NULL;
}

/* String(v) for error messages, as JavaScript would concatenate it. */
static const char *val_cstr(mailbars_render_state *st, const mb_val *v) {
    mailbars_buf_reset(&st->tmp);
    if (v->t == V_UNDEF) return "undefined";
    if (v->t == V_JSON && json_is_null(v->u.j)) return "null";
    if (v->t == V_INT)
        mb_buf_printf(&st->tmp, "%lld", (long long)v->u.i);
    else if (v->t == V_STR)
        mailbars_buf_append(&st->tmp, v->u.s.s, v->u.s.n);
    else
        mailbars_value_to_string(v->u.j, &st->tmp);
    return st->tmp.data ? st->tmp.data : "";
}

/* Object lookups by position. jansson keeps keys in insertion order, and the objects one path
 * segment meets usually share a shape (the items of a list, the same data for every
 * recipient), so the key is most often where it was last time: one comparison there replaces
 * hashing the key and walking a bucket. The hint is a guess checked on every use; threads
 * sharing a template may race on it harmlessly (relaxed atomics). Objects larger than
 * hint_scan() keys turn the segment over to json_object_getn for good (HINT_NONE): walking
 * to a key costs a load per position read directly (jsonread.h), a call through the API. */
enum { HINT_NONE = 0xFF };
static inline size_t hint_scan(void) {
    return mb_jr_direct == 1 ? 32 : 8;
}

/* a[0..n) == b[0..n) for the short keys of data, without a call. */
static inline int key_eq(const char *a, const char *b, size_t n) {
    if (n > 16) return !memcmp(a, b, n);
    if (n >= 8) {
        uint64_t x, y, u, v;
        memcpy(&x, a, 8), memcpy(&y, b, 8), memcpy(&u, a + n - 8, 8), memcpy(&v, b + n - 8, 8);
        return x == y && u == v;
    }
    if (n >= 4) {
        uint32_t x, y, u, v;
        memcpy(&x, a, 4), memcpy(&y, b, 4), memcpy(&u, a + n - 4, 4), memcpy(&v, b + n - 4, 4);
        return x == y && u == v;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static inline int iter_is(void *it, const mb_seg *s) {
    return mb_jr_keylen(it) == s->len && key_eq(mb_jr_key(it), s->key, s->len);
}

/* The hint missed: find the key by a scan of a small object, and remember where it was. */
static json_t *obj_get_scan(json_t *obj, mb_seg *s) {
    if (mb_jr_objsize(obj) > hint_scan()) {
        __atomic_store_n(&s->hint, (unsigned char)HINT_NONE, __ATOMIC_RELAXED);
        return json_object_getn(obj, s->key, s->len);
    }
    unsigned k = 0;
    for (void *it = mb_jr_iter(obj); it; it = mb_jr_next(obj, it), k++) {
        if (iter_is(it, s)) {
            __atomic_store_n(&s->hint, (unsigned char)k, __ATOMIC_RELAXED);
            return mb_jr_value(it);
        }
    }
    return NULL;
}

/* json_object_getn(obj, s->key, s->len) for an object `obj`, through the segment's hint. */
static inline json_t *obj_get(json_t *obj, mb_seg *s) {
    unsigned pos = __atomic_load_n(&s->hint, __ATOMIC_RELAXED);
    if (pos == HINT_NONE) return json_object_getn(obj, s->key, s->len);
    if (MB_LIKELY(mb_jr_direct == 1)) {
        /* a position below the size is on the list: no end test per step */
        const struct mb_jr_object *x = (const struct mb_jr_object *)obj;
        if (pos < x->size) {
            const struct mb_jr_list *l = x->ordered.next;
            while (pos--) l = l->next;
            const struct mb_jr_pair *pr = MB_JR_PAIR(l);
            if (pr->key_len == s->len && key_eq(pr->key, s->key, s->len)) return pr->value;
        }
        return obj_get_scan(obj, s);
    }
    void *it = mb_jr_iter(obj);
    while (it && pos--) it = mb_jr_next(obj, it);
    if (it && iter_is(it, s)) return mb_jr_value(it);
    return obj_get_scan(obj, s);
}

/* The common case of lookup: a.b.c through objects from `this`. Returns 0 when the general
 * lookup must decide (arrays, strings, null on the way). */
static inline int lookup_fast_json(const mb_path *p, const mb_frame *f, json_t **out) {
    json_t *j = f->ctx;
    for (uint32_t i = 0; i < p->nparts; i++) {
        if (!j || !json_is_object(j)) return 0;
        j = obj_get(j, &p->parts[i]);
        if (!j) break;
    }
    *out = j;
    return 1;
}

static inline int lookup_fast(const mb_path *p, const mb_frame *f, mb_val *out) {
    json_t *j;
    if (!lookup_fast_json(p, f, &j)) return 0;
    *out = vjson(j);
    return 1;
}

/* Resolves a compiled path in frame f. */
static int lookup(mailbars_render_state *st, const mb_path *p, const mb_frame *f, mb_val *out) {
    mb_val v = {0};
    uint32_t i = 0;
    int found;
    switch (p->kind) {
    case PATH_THIS:
    case PATH_CTX: {
        const mb_frame *d = f;
        for (unsigned k = 0; k < p->depth && d; k++) d = d->up;
        /* depth 0 is depth0 (`this`); ../ reads depths[n] */
        json_t *dbase = !d ? NULL : p->depth ? d->dctx : d->ctx;
        if (p->kind == PATH_THIS) {
            *out = vjson(dbase);
            return MAILBARS_OK;
        }
        if (p->compat) {
            /* Mustache-style: the first context on the stack that has the name */
            for (const mb_frame *c = f; c; c = c->up) {
                mb_val base = vjson(c->dctx);
                if (!is_nullish(&base) && !js_truthy(&base)) {
                    v = base; /* `depths[i] && ...` yields false, 0 or "" itself */
                    break;
                }
                mb_val r = prop(&base, p->parts[0].key, p->parts[0].len, &found);
                if (!is_nullish(&r)) {
                    v = r;
                    break;
                }
            }
            i = 1;
        } else {
            v = vjson(dbase);
        }
        break;
    }
    case PATH_DATA: {
        const mb_data *d = f->data;
        for (unsigned k = 0; k < p->depth && d; k++) d = d->parent;
        if (!d) break;
        if (p->nparts == 1 && p->strict_terminal) {
            v = data_get(d, p->parts[0].key, p->parts[0].len, &found);
            if (!found)
                return vm_fail(st, MAILBARS_ERR_STRICT, p->line, p->column + 1,
                               "\"%s\" not defined in [object Object] - %d:%d", p->parts[0].key,
                               p->line, p->column);
        } else {
            v = data_get(d, p->parts[0].key, p->parts[0].len, &found);
        }
        i = 1;
        break;
    }
    case PATH_BLOCKPARAM: {
        const mb_frame *b = f;
        for (unsigned k = 0; k < p->bp_depth && b; k++) b = b->bp_parent;
        if (!b || b->root || !b->bp) /* handlebars.js: blockParams[depth] is undefined here */
            return vm_fail(st, MAILBARS_ERR_RENDER, p->line, p->column + 1,
                           "Cannot read properties of undefined (reading '%u')", p->bp_index);
        if (p->bp_index < b->nbp) v = b->bp[p->bp_index];
        v.owned = 0;
        break;
    }
    }
    for (; i < p->nparts; i++) {
        mb_seg *s = &p->parts[i];
        int last = i + 1 == p->nparts;
        if (last && p->strict_terminal) {
            int objlike = v.t == V_JSON && v.u.j && (json_is_object(v.u.j) || json_is_array(v.u.j));
            mb_val r = objlike ? prop(&v, s->key, s->len, &found) : (mb_val){0};
            if (!objlike || !found)
                return vm_fail(st, MAILBARS_ERR_STRICT, p->line, p->column + 1,
                               "\"%s\" not defined in %s - %d:%d", s->key, val_cstr(st, &v),
                               p->line, p->column);
            v = r;
            break;
        }
        if (is_nullish(&v)) {
            if (p->strict_chain)
                return vm_fail(st, MAILBARS_ERR_STRICT, p->line, p->column + 1,
                               "Cannot read properties of %s (reading '%s')",
                               v.t == V_UNDEF || !v.u.j ? "undefined" : "null", s->key);
            break; /* null stays null, undefined stays undefined */
        }
        if (v.t == V_JSON && json_is_object(v.u.j)) { /* prop() for objects, by hint */
            json_t *r = obj_get(v.u.j, s);
            v = r ? vjson(r) : (mb_val){0};
        } else {
            v = prop(&v, s->key, s->len, &found);
        }
    }
    *out = v;
    return MAILBARS_OK;
}

/* ---- stacks ---- */

static int stack_reserve(mailbars_render_state *st, size_t n) {
    if (st->sp + n <= st->cap) return MAILBARS_OK;
    size_t cap = st->cap ? st->cap * 2 : 64;
    while (cap < st->sp + n) cap *= 2;
    mb_val *s = mb_realloc(st->stack, cap * sizeof *s);
    if (!s) return vm_nomem(st);
    st->stack = s;
    st->cap = cap;
    return MAILBARS_OK;
}

static void pop_n(mailbars_render_state *st, size_t n) {
    while (n--) val_release(&st->stack[--st->sp]);
}

static mailbars_buf *capture_acquire(mailbars_render_state *st) {
    if (st->ncaps == st->capcaps) {
        size_t cap = st->capcaps ? st->capcaps * 2 : 4;
        mailbars_buf **c = mb_realloc(st->caps, cap * sizeof *c);
        if (!c) return vm_nomem(st), NULL;
        for (size_t i = st->capcaps; i < cap; i++) c[i] = NULL;
        st->caps = c;
        st->capcaps = cap;
    }
    if (!st->caps[st->ncaps]) {
        mailbars_buf *n = mb_malloc(sizeof *n);
        if (!n) return vm_nomem(st), NULL;
        mailbars_buf_init(n);
        st->caps[st->ncaps] = n;
    }
    mailbars_buf *b = st->caps[st->ncaps++];
    mailbars_buf_reset(b);
    return b;
}

static int scope_push(mailbars_render_state *st, const mb_inline *in, uint32_t n,
                      const mb_frame *bp_parent, const mb_frame *dcap) {
    if (st->nscope + n > st->capscope) {
        size_t cap = st->capscope ? st->capscope * 2 : 16;
        while (cap < st->nscope + n) cap *= 2;
        mb_scope *s = mb_realloc(st->scope, cap * sizeof *s);
        if (!s) return vm_nomem(st);
        st->scope = s;
        st->capscope = cap;
    }
    for (uint32_t i = 0; i < n; i++)
        st->scope[st->nscope++] = (mb_scope){in[i].name, in[i].len, in[i].program, bp_parent, dcap};
    return MAILBARS_OK;
}

/* A child frame for running a block program with context ctx, as handlebars.js's
 * wrapProgram does: a new entry on the ../ chain only when the context changes. */
/* JavaScript's `a == b` for two contexts, as handlebars.js's wrapProgram compares a new
 * context with depths[0] (so "[object Object]" equals any object, 1 equals "1"). */
static int js_loose_eq(mailbars_render_state *st, const json_t *a, const json_t *b) {
    if (a == b) return 1;
    int an = !a || json_is_null(a), bn = !b || json_is_null(b);
    if (an || bn) return an && bn;
    int ao = json_is_object(a) || json_is_array(a), bo = json_is_object(b) || json_is_array(b);
    if (ao && bo) return 0;
    if (ao || bo) {
        /* object == primitive: compare String(object) with the primitive */
        const json_t *o = ao ? a : b, *p = ao ? b : a;
        if (json_is_object(o)) /* String({}) without building it */
            return json_is_string(p) && json_string_length(p) == 15 &&
                   !memcmp(json_string_value(p), "[object Object]", 15);
        /* String(array) is the items joined with ","; it is built in the state's scratch
         * buffer and only as far as it can still equal the primitive, so an each over a long
         * array stays linear */
        size_t n = json_array_size(o);
        if (!json_is_string(p) && n >= 2) return 0; /* "a,b" is never a number */
        size_t limit = json_is_string(p) ? json_string_length(p) : 64;
        mailbars_buf *tmp = &st->tmp;
        mailbars_buf_reset(tmp);
        for (size_t i = 0; i < n && tmp->len <= limit; i++) {
            if (i && mb_buf_putc(tmp, ',')) return 0;
            const json_t *item = json_array_get(o, i);
            if (!json_is_null(item) && mailbars_value_to_string(item, tmp)) return 0;
        }
        if (tmp->len > limit) return 0;
        if (json_is_string(p))
            return tmp->len == json_string_length(p) &&
                   !memcmp(tmp->data ? tmp->data : "", json_string_value(p), tmp->len);
        char *end;
        double d = tmp->len ? strtod(tmp->data, &end) : 0;
        double pv = json_is_number(p) ? json_number_value(p) : json_is_true(p);
        return (!tmp->len || *end == 0) && d == pv;
    }
    if (json_is_string(a) && json_is_string(b))
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    /* numbers, booleans and numeric strings compare as numbers */
    double x, y;
    const json_t *v[2] = {a, b};
    double *out[2] = {&x, &y};
    for (int k = 0; k < 2; k++) {
        if (json_is_number(v[k]))
            *out[k] = json_number_value(v[k]);
        else if (json_is_boolean(v[k]))
            *out[k] = json_is_true(v[k]);
        else {
            const char *s = json_string_value(v[k]);
            char *end;
            while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
            *out[k] = *s ? strtod(s, &end) : 0;
            if (*s) {
                while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
                if (*end) return 0; /* NaN */
            }
        }
    }
    return x == y;
}

/* Links c's ../ chain below `parent`'s: handlebars.js prepends the new context to depths only
 * when `context != depths[0]` (and not for nullContext over a null depths[0]). */
static inline void depth_link(const mailbars_render_state *st, mb_frame *c, json_t *ctx,
                              const mb_frame *parent) {
    c->ctx = ctx;
    int same = 0;
    if (parent) {
        same = ctx == parent->dctx;
        if (!same && ctx && parent->dctx && json_is_object(ctx) && json_is_object(parent->dctx)) {
            /* two distinct objects, the common case of each over objects: not equal */
        } else if (!same) {
            if (ctx == st->nullctx)
                same = parent->dctx && json_is_null(parent->dctx);
            else
                same = js_loose_eq((mailbars_render_state *)st, ctx, parent->dctx);
        }
    }
    c->dctx = same ? parent->dctx : ctx;
    c->up = same ? parent->up : parent;
}

static void child_frame(const mailbars_render_state *st, mb_frame *c, const mb_frame *parent,
                        json_t *ctx, const mb_data *data) {
    depth_link(st, c, ctx, parent);
    c->bp_parent = parent;
    c->wrap = parent;
    c->bp = NULL;
    c->nbp = 0;
    c->data = data;
    c->root = 0;
}

static int run_program(mailbars_render_state *st, int32_t prog, const mb_frame *parent, json_t *ctx,
                       const mb_data *data, const mb_val *bp, uint32_t nbp) {
    if (prog < 0) {
        num_break(st); /* noop() returns "" */
        return MAILBARS_OK;
    }
    mb_frame c;
    child_frame(st, &c, parent, ctx, data);
    c.bp = bp;
    c.nbp = nbp;
    return exec_value(st, prog, &c, NULL);
}

/* Runs a program whose result handlebars.js uses as a raw value (a block's fn/inverse, a
 * partial block, an inline partial): a number joins the caller's JS `+` chain. *numeric (if
 * given) tells whether the result was a number. */
static int exec_value(mailbars_render_state *st, int32_t prog, const mb_frame *c, int *numeric) {
    mailbars_buf *b = st->cur;
    size_t start = b->len;
    __typeof__(st->num) saved = st->num;
    st->num.state = NUM_RUNSTART;
    int rc = exec(st, prog, c);
    if (rc) return rc;
    int is_num = st->num.state == NUM_ACTIVE && st->num.buf == b && st->num.start == start &&
                 st->num.end == b->len;
    if (numeric)
        *numeric = is_num || (st->num.state == NUM_OBJECT && st->num.buf == b &&
                              st->num.start == start && st->num.end == b->len);
    if (is_num) {
        if (saved.state == NUM_RUNSTART) {
            /* the block's number starts the parent's chain: keep it as the run */
        } else if (saved.state != NUM_ACTIVE || saved.buf != b || saved.end != start) {
            num_break(st);
        } else {
            double d = saved.val + st->num.val;
            char num[40];
            size_t n = mb_format_number(d, num);
            b->len = saved.start;
            if (out_write(st, b, num, n)) return st->err->code;
            st->num.start = saved.start;
            st->num.end = b->len;
            st->num.val = d;
        }
    } else {
        num_break(st);
    }
    return MAILBARS_OK;
}

/* ---- helpers ---- */

static json_t *call_own(mailbars_call *call, json_t *j) {
    if (!j) return NULL;
    if (call->nowned < sizeof call->owned / sizeof call->owned[0]) {
        call->owned[call->nowned++] = j;
    } else {
        /* rare: too many materialised values in one call; keep them for the render's end */
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Calls `h` for call site cs with the values args[0..nparams+nhash); the result goes to *res
 * (mode OP_CALL) or is appended to the current output. */
static int invoke(mailbars_render_state *st, const mb_frame *f, const mb_callsite *cs,
                  const mb_helper *h, mb_val *args, uint8_t op, uint8_t flags, mb_val *res) {
    if (++st->call_depth > st->rctx.limits[MAILBARS_LIMIT_CALL_DEPTH]) {
        st->call_depth--;
        return vm_fail(st, MAILBARS_ERR_LIMIT_CALL_DEPTH, 0, 0,
                       "helper call depth exceeds the limit of %llu",
                       (unsigned long long)st->rctx.limits[MAILBARS_LIMIT_CALL_DEPTH]);
    }
    if (!h->builtin) st->custom_helper_ran = 1;
    mailbars_call call = {0};
    call.st = st;
    call.cs = cs;
    call.h = h;
    call.f = f;
    call.argc = cs->nparams;
    call.hash_base = cs->nhash ? (size_t)(args - st->stack) + cs->nparams : 0;
    call.escapes = (flags & OUTF_ESCAPE) != 0;
    size_t jbase = st->njargs;
    int rc = MAILBARS_OK;
    if (st->njargs + cs->nparams > st->capjargs) {
        size_t cap = st->capjargs ? st->capjargs * 2 : 16;
        while (cap < st->njargs + cs->nparams) cap *= 2;
        json_t **n = mb_realloc(st->jargs, cap * sizeof *n);
        if (!n) {
            st->call_depth--;
            return vm_nomem(st);
        }
        st->jargs = n;
        st->capjargs = cap;
    }
    call.args = st->jargs ? st->jargs + jbase : NULL; /* NULL + 0 is undefined */
    st->njargs += cs->nparams;
    for (uint32_t i = 0; i < cs->nparams; i++) {
        json_t *owned;
        call.args[i] = val_json(&args[i], &owned);
        if (owned)
            call_own(&call, owned);
        else if (args[i].t != V_JSON && args[i].t != V_UNDEF)
            rc = vm_nomem(st);
    }
    call.caps_base = st->ncaps;
    mailbars_buf *cap = NULL;
    if (op == OP_CALL) {
        cap = capture_acquire(st);
        if (!cap) rc = st->err->code;
    }
    call.out = cap ? cap : st->cur;
    if (!rc) {
        rc = h->fn(&call, h->userdata);
        if (rc && !(st->err && st->err->code))
            vm_fail(st, rc, 0, 0, "helper '%s' failed: %s", cs->name, mailbars_status_message(rc));
        if (rc) rc = st->err && st->err->code ? st->err->code : rc;
    }
    if (!rc && call.ret_buf && op == OP_CALL && !cap->len) {
        /* a subexpression's value outlives the call's capture buffers */
        call.ret =
            json_stringn_nocheck(call.ret_buf->data ? call.ret_buf->data : "", call.ret_buf->len);
        call.ret_buf = NULL;
        if (!call.ret) rc = vm_nomem(st);
    }
    if (!rc) {
        mb_val r = vjson(call.ret);
        r.owned = call.ret != NULL;
        r.safe = call.ret_safe;
        if (call.ret_buf) {
            r.t = V_STR;
            r.u.s.s = call.ret_buf->data ? call.ret_buf->data : "";
            r.u.s.n = call.ret_buf->len;
        }
        call.ret = NULL;
        if (op == OP_CALL) {
            if (cap->len) {
                /* written text, then the returned value, as one SafeString */
                if (!is_nullish(&r) && out_value(st, cap, &r, 0)) rc = st->err->code;
                val_release(&r);
                json_t *s = rc ? NULL : json_stringn_nocheck(cap->data, cap->len);
                if (!rc && !s) rc = vm_nomem(st);
                *res = vjson(s);
                res->owned = s != NULL;
                res->safe = 1;
            } else {
                *res = r;
            }
        } else if (call.ret_set) {
            rc = out_value(st, st->cur, &r, (flags & OUTF_ESCAPE) && op == OP_CALL_OUT);
            val_release(&r);
        } else if (!h->builtin || (h->builtin != MB_BUILTIN_IF && h->builtin != MB_BUILTIN_UNLESS &&
                                   h->builtin != MB_BUILTIN_WITH)) {
            num_break(st); /* an undefined result appends "" */
        }
    }
    json_decref(call.ret);
    json_decref(call.hash);
    for (size_t i = 0; i < call.nowned; i++) json_decref(call.owned[i]);
    st->ncaps = call.caps_base;
    st->njargs = jbase;
    st->call_depth--;
    return rc;
}

/* Runs a helper call instruction: pops its arguments, handles helperMissing. */
static int do_call(mailbars_render_state *st, const mb_frame *f, const mb_callsite *cs, uint8_t op,
                   uint8_t flags) {
    size_t nargs = cs->nparams + cs->nhash;
    mb_val *args = &st->stack[st->sp - nargs];
    const mb_helper *h = cs->helper;
    if (!h && cs->name_path >= 0) {
        /* `helpers.x || context.x || helperMissing`: a value there is not callable; strict
         * mode has no helperMissing, its strict lookup fails when the value is missing */
        const mb_path *p = &st->t->paths[cs->name_path];
        mb_val v;
        int rc = lookup(st, p, f, &v);
        if (rc || (st->t->flags & MAILBARS_STRICT) || js_truthy(&v)) {
            pop_n(st, nargs);
            return rc ? rc
                      : vm_fail(st, MAILBARS_ERR_MISSING_HELPER, p->line, p->column + 1,
                                "%s is not a function", p->original);
        }
    }
    if (!h) h = st->t->helper_missing;
    if (!h) {
        pop_n(st, nargs);
        /* the built-in helperMissing returns undefined when it got no positional argument */
        if (cs->nparams == 0) {
            if (op == OP_CALL)
                st->stack[st->sp++] = (mb_val){0};
            else
                num_break(st);
            return MAILBARS_OK;
        }
        return vm_fail(st, MAILBARS_ERR_MISSING_HELPER, 0, 0, "Missing helper: \"%s\"", cs->name);
    }
    mb_val res = {0};
    int rc = invoke(st, f, cs, h, args, op, flags, &res);
    pop_n(st, nargs);
    if (rc) return rc;
    if (op == OP_CALL) st->stack[st->sp++] = res;
    return MAILBARS_OK;
}

/* ---- iteration (built-in each, and sections over arrays) ---- */

typedef struct key_ref {
    const char *key;
    size_t len;
    json_t *value;
    size_t index;
} key_ref;

static int key_ref_cmp(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static int count_iteration(mailbars_render_state *st) {
    if (MB_UNLIKELY(st->iters == 0))
        return vm_fail(st, MAILBARS_ERR_LIMIT_ITERATIONS, 0, 0,
                       "each iterations exceed the limit of %llu",
                       (unsigned long long)st->rctx.limits[MAILBARS_LIMIT_ITERATIONS]);
    st->iters--;
    return MAILBARS_OK;
}

/* Runs a `simple` program for one item as exec would when every path finds what the simple
 * route handles (a string to print, any value to test). `lvl` is how many execs deep the
 * general route would be. Returns 1 when it ran; 0 when something else was met (a number, a
 * missing value, a budget too close to its limit) so that exec must run the item (the caller
 * rolls back); -1 with *rc set when the output failed as exec's would have. Steps are taken
 * before the program runs, so a nested program sees what is left, as under exec. */
static int simple_run(mailbars_render_state *st, const mb_frame *f, const mb_prog *prog,
                      json_t *item, size_t index, int have_data, unsigned lvl, int *rc);

/* simple_run's body: inlined into `each`'s loop for the item's own program, called out of
 * line for the programs of {{#if}} blocks inside it. */
static inline MB_ALWAYS_INLINE int simple_body(mailbars_render_state *st, const mb_frame *f,
                                               const mb_prog *prog, json_t *item, size_t index,
                                               int have_data, unsigned lvl, int *rc) {
    const mailbars_template *t = st->t;
    mailbars_buf *b = st->cur;
    if (st->steps <= prog->ncode ||
        st->call_depth + lvl > st->rctx.limits[MAILBARS_LIMIT_CALL_DEPTH])
        return 0;
    st->steps -= prog->ncode - 1; /* exec's NEXT after every instruction but END */
    for (const mb_insn *pc = prog->code; pc->op != OP_END; pc++) {
        if (pc->op == OP_TEXT) {
            if ((*rc = out_text(st, b, &t->texts[pc->b]))) return -1;
            continue;
        }
        const mb_path *p = &t->paths[pc->b];
        if (p->kind == PATH_DATA) { /* @index, escaped */
            char num[24];
            if (!have_data) return 0;
            if ((*rc = out_write(st, b, num, mb_format_int((int64_t)index, num)))) return -1;
            continue;
        }
        /* lookup_fast_json's walk, from the item or from the frame ../ names (written out
         * here: through a shared helper the item loop costs 4 more instructions) */
        json_t *j = item;
        if (p->depth) {
            /* the item's frame links below f unless the item equals f's object in JavaScript
             * (depth_link): only that object itself, or the string "[object Object]"; an
             * {{#if}} frame inside links the same way */
            if (!f->dctx || !json_is_object(f->dctx) || item == f->dctx ||
                (item && json_is_string(item) && json_string_length(item) == 15 &&
                 !memcmp(json_string_value(item), "[object Object]", 15)))
                return 0;
            const mb_frame *d = f;
            for (unsigned k = 1; k < p->depth && d; k++) d = d->up;
            if (!d) return 0;
            j = d->dctx;
        }
        for (uint32_t i = 0; i < p->nparts; i++) {
            if (!j || !json_is_object(j)) return 0;
            if (!(j = obj_get(j, &p->parts[i]))) break;
        }
        if (pc->op == OP_PUSH_PATH) { /* the condition of the IF or UNLESS that follows */
            mb_val v = vjson(j);
            int truthy = val_truthy(&v);
            pc++;
            const mb_callsite *cs = &t->calls[pc->b];
            int32_t run = truthy != (pc->op == OP_UNLESS) ? cs->fn : cs->inverse;
            if (run >= 0) {
                int r = simple_run(st, f, &t->progs[run], item, index, have_data, lvl + 1, rc);
                if (r <= 0) return r;
            }
            continue;
        }
        if (j && json_is_integer(j) && (pc->flags & OUTF_ESCAPE)) { /* String(n) */
            json_int_t x;
            if (!mb_js_int(j, &x)) return 0;
            if ((*rc = out_int(st, b, x))) return -1;
            continue;
        }
        if (!j || !json_is_string(j)) return 0;
        *rc = (pc->flags & OUTF_ESCAPE) ? out_escaped(st, b, mb_jr_str(j), mb_jr_strlen(j))
                                        : out_write(st, b, mb_jr_str(j), mb_jr_strlen(j));
        if (*rc) return -1;
    }
    return 1;
}

static int simple_run(mailbars_render_state *st, const mb_frame *f, const mb_prog *prog,
                      json_t *item, size_t index, int have_data, unsigned lvl, int *rc) {
    return simple_body(st, f, prog, item, index, have_data, lvl, rc);
}

/* An `each` item through simple_run, or 0 with everything rolled back for exec to run it. */
static int each_simple(mailbars_render_state *st, const mb_frame *f, const mb_prog *body,
                       json_t *item, size_t index, int have_data, int *rc) {
    size_t mark = st->cur->len;
    uint64_t steps = st->steps;
    int r = simple_body(st, f, body, item, index, have_data, 1, rc);
    if (r == 0) {
        st->cur->len = mark;
        st->steps = steps;
    }
    return r;
}

/* handlebars.js's built-in each over v; returns MAILBARS_OK and sets *n to the iterations. */
static int run_each(mailbars_render_state *st, const mb_frame *f, const mb_callsite *cs,
                    const mb_val *v, size_t *n) {
    *n = 0;
    if (v->t != V_JSON || !v->u.j) return MAILBARS_OK;
    json_t *j = v->u.j;
    mb_data d = {0};
    d.parent = f->data;
    d.iter = 1;
    const mb_data *dp = (st->t->flags & MAILBARS_NO_DATA) && !f->data ? NULL : &d;
    mb_val bp[2] = {{0}};
    /* values are written field by field below: copying freshly built structs stalls on
     * store forwarding in this loop */
    int rc = MAILBARS_OK;
    if (json_is_array(j)) {
        size_t len = mb_jr_arrsize(j);
        const mb_prog *body =
            cs->fn >= 0 && st->t->progs[cs->fn].simple ? &st->t->progs[cs->fn] : NULL;
        for (size_t i = 0; i < len && !rc; i++) {
            if ((rc = count_iteration(st))) break;
            json_t *item = mb_jr_arrget(j, i);
            if (body) {
                int done = each_simple(st, f, body, item, i, dp != NULL, &rc);
                if (done) {
                    (*n)++;
                    num_break(st);
                    continue;
                }
            }
            d.index = (int64_t)i;
            d.key.t = V_INT;
            d.key.u.i = (int64_t)i;
            d.first = i == 0;
            d.last = i + 1 == len;
            bp[0].t = item ? V_JSON : V_UNDEF;
            bp[0].u.j = item;
            bp[1].t = V_INT;
            bp[1].u.i = (int64_t)i;
            (*n)++;
            if (cs->fn < 0) continue;
            /* the item's result is joined to a string (ret = ret + fn(...), ret = ''), so the
             * body runs directly, without run_program's value bookkeeping */
            mb_frame c;
            child_frame(st, &c, f, item, dp);
            c.bp = bp;
            c.nbp = 2;
            st->num.state = NUM_RUNSTART;
            rc = exec(st, cs->fn, &c);
            num_break(st);
        }
        if (!*n || cs->fn < 0) num_break(st);
        return rc;
    }
    if (!json_is_object(j)) return MAILBARS_OK;
    size_t len = json_object_size(j);
    /* JavaScript orders integer-like keys first, ascending, then the rest in insertion order */
    size_t nint = 0;
    const char *key;
    json_t *val;
    size_t klen, idx;
    json_object_keylen_foreach(j, key, klen, val) {
        if (array_index(key, klen, &idx)) nint++;
    }
    key_ref *order = NULL;
    if (nint) {
        order = mb_malloc(len * sizeof *order);
        if (!order) return vm_nomem(st);
        size_t a = 0, b = nint;
        json_object_keylen_foreach(j, key, klen, val) {
            if (array_index(key, klen, &idx))
                order[a++] = (key_ref){key, klen, val, idx};
            else
                order[b++] = (key_ref){key, klen, val, 0};
        }
        qsort(order, nint, sizeof *order, key_ref_cmp);
    }
    size_t i = 0;
    void *it = json_object_iter(j);
    for (; i < len && !rc; i++) {
        if (order) {
            key = order[i].key, klen = order[i].len, val = order[i].value;
        } else {
            key = json_object_iter_key(it);
            klen = json_object_iter_key_len(it);
            val = json_object_iter_value(it);
            it = json_object_iter_next(j, it);
        }
        if ((rc = count_iteration(st))) break;
        d.index = (int64_t)i;
        d.key.t = V_STR;
        d.key.u.s.s = key;
        d.key.u.s.n = klen;
        d.first = i == 0;
        d.last = i + 1 == len;
        bp[0].t = val ? V_JSON : V_UNDEF;
        bp[0].u.j = val;
        bp[1].t = V_STR;
        bp[1].u.s.s = key;
        bp[1].u.s.n = klen;
        num_break(st);
        rc = run_program(st, cs->fn, f, val, dp, bp, 2);
        (*n)++;
    }
    mb_free(order);
    return rc;
}

/* blockHelperMissing: a section over a data value. */
/* blockHelperMissing: a section over a data value. handlebars.js passes the raw context as
 * `this` here (not nullContext as for helpers). */
static int do_section(mailbars_render_state *st, const mb_frame *f, const mb_callsite *cs,
                      mb_val *v) {
    if (st->t->block_helper_missing) {
        /* hand the value to the custom hook as its one argument */
        mb_callsite one = *cs;
        one.nparams = 1;
        one.nhash = 0;
        return invoke(st, f, &one, st->t->block_helper_missing, v, OP_CALL_BLOCK, 0, NULL);
    }
    if (v->t == V_JSON && v->u.j && json_is_true(v->u.j))
        return run_program(st, cs->fn, f, f->ctx, f->data, NULL, 0);
    if (is_nullish(v) || (v->t == V_JSON && json_is_false(v->u.j)))
        return run_program(st, cs->inverse, f, f->ctx, f->data, NULL, 0);
    if (v->t == V_JSON && json_is_array(v->u.j)) {
        if (!json_array_size(v->u.j))
            return run_program(st, cs->inverse, f, f->ctx, f->data, NULL, 0);
        size_t n;
        int rc = run_each(st, f, cs, v, &n);
        if (!rc && !n) rc = run_program(st, cs->inverse, f, f->ctx, f->data, NULL, 0);
        return rc;
    }
    json_t *owned;
    json_t *ctx = val_json(v, &owned);
    int rc = run_program(st, cs->fn, f, ctx, f->data, NULL, 0);
    json_decref(owned);
    return rc;
}

/* ---- partials ---- */

const mb_partial_entry *mb_find_partial(const mailbars_template *t, const char *name, size_t len) {
    size_t lo = 0, hi = t->npartials;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const mb_partial_entry *e = &t->partials[mid];
        size_t n = e->len < len ? e->len : len;
        int r = memcmp(e->name, name, n);
        if (!r) r = (e->len > len) - (e->len < len);
        if (!r) return e;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Prefixes every line of out[start..] with indent, except an empty last line (the
 * handlebars.js partial indentation rule). */
static int indent_region(mailbars_render_state *st, mailbars_buf *b, size_t start,
                         const char *indent, size_t ilen) {
    size_t end = b->len;
    if (end == start) return MAILBARS_OK;
    size_t k = 1;
    for (size_t i = start; i < end; i++)
        if (b->data[i] == '\n' && i + 1 < end) k++;
    size_t extra = k * ilen;
    if (b->len + extra + 1 > b->cap && out_grow(st, b, extra)) return st->err->code;
    char *d = b->data;
    size_t src = end, dst = end + extra;
    d[dst] = 0;
    while (src > start) {
        char ch = d[--src];
        d[--dst] = ch;
        if (src > start && d[src - 1] == '\n' && src < end) {
            dst -= ilen;
            memcpy(d + dst, indent, ilen);
        }
    }
    dst -= ilen;
    memcpy(d + dst, indent, ilen);
    b->len = end + extra;
    return MAILBARS_OK;
}

/* Utils.extend(target, source): own enumerable properties, so an array gives its indexes
 * and a string its characters. */
static int extend_into(mailbars_render_state *st, json_t *target, json_t *source) {
    char key[24];
    if (json_is_object(source)) return json_object_update(target, source) ? vm_nomem(st) : 0;
    if (json_is_array(source)) {
        for (size_t i = 0; i < json_array_size(source); i++) {
            snprintf(key, sizeof key, "%zu", i);
            if (json_object_set(target, key, json_array_get(source, i))) return vm_nomem(st);
        }
    } else if (json_is_string(source)) {
        const char *s = json_string_value(source);
        size_t n = json_string_length(source);
        for (size_t i = 0;; i++) {
            mb_val ch = string_unit(s, n, i);
            if (ch.t == V_UNDEF) break;
            snprintf(key, sizeof key, "%zu", i);
            if (json_object_set_new(target, key, json_stringn_nocheck(ch.u.s.s, ch.u.s.n)))
                return vm_nomem(st);
        }
    }
    return MAILBARS_OK;
}

static int do_partial(mailbars_render_state *st, const mb_frame *f, const mb_partial_site *ps) {
    size_t nargs = (ps->name ? 0 : 1) + ps->has_context + ps->nhash;
    mb_val *args = &st->stack[st->sp - nargs];
    const char *name = ps->name;
    size_t nlen = ps->name_len;
    int rc = MAILBARS_OK;
    json_t *owned_ctx = NULL, *hash_ctx = NULL;
    if (!name) {
        mb_val *nv = &args[0];
        if (nv->t == V_STR)
            name = nv->u.s.s, nlen = nv->u.s.n;
        else if (nv->t == V_JSON && nv->u.j && json_is_string(nv->u.j))
            name = json_string_value(nv->u.j), nlen = json_string_length(nv->u.j);
        else {
            const char *s = val_cstr(st, nv);
            name = s, nlen = strlen(s);
        }
        args++;
    }
    json_t *ctx = f->ctx;
    if (ps->has_context) {
        ctx = val_json(&args[0], &owned_ctx);
        args++;
    } else if (ps->explicit_ctx) {
        ctx = NULL;
    }
    if (ps->nhash) {
        /* Utils.extend({}, context, hash) */
        hash_ctx = json_object();
        if (!hash_ctx) rc = vm_nomem(st);
        if (!rc && ctx) rc = extend_into(st, hash_ctx, ctx);
        /* handlebars.js assigns hash pairs last to first; undefined values stay as keys */
        for (uint32_t i = ps->nhash; i-- > 0 && !rc;) {
            json_t *o, *hv = val_json(&args[i], &o);
            if (!o && !hv) hv = json_null();
            if (o ? json_object_set_new(hash_ctx, ps->hash_keys[i], o)
                  : json_object_set(hash_ctx, ps->hash_keys[i], hv))
                rc = vm_nomem(st);
        }
        ctx = hash_ctx;
    }
    /* resolve: @partial-block, inline partials in scope, then registered partials */
    const mb_data *caller_data = ps->no_data ? NULL : f->data;
    const mb_pblock *current_pb = data_pblock(caller_data);
    const mb_pblock *use_pb = NULL;
    int32_t prog = -1;
    const mb_partial_entry *entry = NULL;
    const mb_scope *inl = NULL;
    if (!rc) {
        if (nlen == 14 && !memcmp(name, "@partial-block", 14)) {
            use_pb = current_pb;
        } else {
            for (size_t i = st->nscope; i-- > 0;)
                if (st->scope[i].len == nlen && !memcmp(st->scope[i].name, name, nlen)) {
                    prog = st->scope[i].prog;
                    inl = &st->scope[i];
                    break;
                }
            if (prog < 0) {
                entry = ps->name ? ps->entry : mb_find_partial(st->t, name, nlen);
                if (entry) prog = entry->program;
            }
        }
    }
    mb_pblock mine = {ps->block, f, current_pb, f->data};
    mb_data pdata = {0};
    pdata.parent = caller_data;
    pdata.has_pblock = 1;
    pdata.pblock = &mine;
    const mb_data *data = caller_data;
    if (ps->block >= 0) {
        data = &pdata;
        if (!use_pb && prog < 0 && !(entry && entry->error)) use_pb = &mine;
    }
    if (!rc && entry && entry->error) {
        rc = vm_fail(st, entry->error->code, entry->error->line, entry->error->column, "%s",
                     entry->error->message);
        snprintf(st->err->part, sizeof st->err->part, "%.*s", (int)(nlen < 60 ? nlen : 60), name);
    }
    if (!rc && prog < 0 && !use_pb)
        rc = vm_fail(st, MAILBARS_ERR_MISSING_PARTIAL, ps->line, ps->column + 1,
                     "The partial %.*s could not be found", (int)nlen, name);
    if (!rc && ++st->partial_depth > st->rctx.limits[MAILBARS_LIMIT_PARTIAL_DEPTH]) {
        rc = vm_fail(st, MAILBARS_ERR_LIMIT_PARTIAL_DEPTH, ps->line, ps->column + 1,
                     "partials nested deeper than the limit of %llu",
                     (unsigned long long)st->rctx.limits[MAILBARS_LIMIT_PARTIAL_DEPTH]);
        st->partial_depth--;
    } else if (!rc) {
        size_t start = st->cur->len;
        size_t scope0 = st->nscope;
        int numeric = 0;
        /* inline partials declared inside a partial block are visible to the partial */
        if (ps->block >= 0 && st->t->progs[ps->block].ninline)
            rc = scope_push(st, st->t->progs[ps->block].inlines, st->t->progs[ps->block].ninline, f,
                            f);
        if (!rc && use_pb) {
            /* a partial block's result is the block program's raw value (it may join a JS
             * `+` chain); a compiled partial's is a string */
            /* the block body runs in its caller's frame chain, with the outer partial block */
            mb_data bdata = {0};
            bdata.parent = data;
            bdata.has_pblock = 1;
            bdata.pblock = use_pb->outer;
            mb_frame bf;
            child_frame(st, &bf, use_pb->caller, ctx, &bdata);
            rc = exec_value(st, use_pb->prog, &bf, &numeric);
        } else if (!rc) {
            mb_frame pf = {0};
            pf.root = !inl;
            pf.bp_parent = inl ? inl->bp_parent : NULL;
            /* an inline partial keeps the ../ chain captured where it was declared; compat
             * passes the caller's depths; otherwise a partial starts a new chain */
            const mb_frame *chain = inl ? inl->dcap : (st->t->flags & MAILBARS_COMPAT) ? f : NULL;
            depth_link(st, &pf, ctx, chain);
            pf.wrap = chain;
            pf.data = data;
            if (inl) {
                rc = exec_value(st, prog, &pf, &numeric); /* the inline program's raw value */
            } else {
                num_break(st); /* a compiled partial returns '' + main(): a string */
                st->num.state = NUM_RUNSTART;
                rc = exec(st, prog, &pf);
                num_break(st);
            }
        }
        st->nscope = scope0;
        st->partial_depth--;
        if (!rc && ps->indent_len && numeric) /* indenting calls result.split() */
            rc = vm_fail(st, MAILBARS_ERR_RENDER, ps->line, ps->column + 1,
                         "result.split is not a function");
        if (!rc && ps->indent_len) {
            num_break(st);
            rc = indent_region(st, st->cur, start, ps->indent, ps->indent_len);
        }
    }
    json_decref(hash_ctx);
    json_decref(owned_ctx);
    pop_n(st, nargs);
    return rc;
}

/* ---- the interpreter ---- */

static int out_path_slow(mailbars_render_state *st, const mb_frame *f, const mb_path *p,
                         const mb_val *v, uint8_t flags) {
    if (flags & OUTF_MISSING)
        return vm_fail(st, MAILBARS_ERR_MISSING_VALUE, p->line, p->column + 1,
                       "Attribute '%s' is not present in the rendering data.", p->original);
    if ((flags & OUTF_AMBIG) && st->t->helper_missing) {
        mb_callsite cs = {0};
        cs.name = p->original;
        return invoke(st, f, &cs, st->t->helper_missing, NULL, OP_CALL_OUT, flags, NULL);
    }
    (void)v;
    return MAILBARS_OK;
}

static int exec(mailbars_render_state *st, int32_t prog_index, const mb_frame *f) {
    const mailbars_template *t = st->t;
    const mb_prog *prog = &t->progs[prog_index];
    if (MB_UNLIKELY(++st->call_depth > st->rctx.limits[MAILBARS_LIMIT_CALL_DEPTH])) {
        st->call_depth--;
        return vm_fail(st, MAILBARS_ERR_LIMIT_CALL_DEPTH, 0, 0,
                       "block nesting at render time exceeds the limit of %llu",
                       (unsigned long long)st->rctx.limits[MAILBARS_LIMIT_CALL_DEPTH]);
    }
    size_t scope0 = st->nscope;
    int rc = MAILBARS_OK;
    if (prog->ninline && (rc = scope_push(st, prog->inlines, prog->ninline, f->bp_parent, f->wrap)))
        goto done;
    if ((rc = stack_reserve(st, prog->max_stack + 1))) goto done;
    const mb_insn *pc = prog->code;
    mb_val v;

#if defined(__GNUC__)
    static const void *const labels[OP__COUNT] = {
#define X(name, operands, doc) &&L_##name,
#include "opcodes.def"
#undef X
    };
#define CASE(name) L_##name:
#define NEXT                                                                                       \
    do {                                                                                           \
        if (MB_UNLIKELY(--st->steps == 0)) goto steps_exceeded;                                    \
        pc++;                                                                                      \
        goto *labels[pc->op];                                                                      \
    } while (0)
    goto *labels[pc->op];
#else
#define CASE(name) case OP_##name:
#define NEXT                                                                                       \
    do {                                                                                           \
        if (MB_UNLIKELY(--st->steps == 0)) goto steps_exceeded;                                    \
        pc++;                                                                                      \
        goto dispatch;                                                                             \
    } while (0)
dispatch:
    switch (pc->op) {
#endif
    CASE(END) {
        goto done;
    }
    CASE(TEXT) {
        num_break(st);
        if ((rc = out_text(st, st->cur, &t->texts[pc->b]))) goto done;
        NEXT;
    }
    CASE(OUT_PATH) {
        const mb_path *p = &t->paths[pc->b];
        if (pc->flags & OUTF_NOSUM) num_break(st);
        json_t *fj;
        if (p->fast && lookup_fast_json(p, f, &fj)) {
            if (fj && json_is_string(fj)) {
                /* the common case, without building a value: a string found by a plain path */
                num_break(st);
                rc = (pc->flags & OUTF_ESCAPE)
                         ? out_escaped(st, st->cur, mb_jr_str(fj), mb_jr_strlen(fj))
                         : out_write(st, st->cur, mb_jr_str(fj), mb_jr_strlen(fj));
                if (rc) goto done;
                NEXT;
            }
            json_int_t x;
            if ((pc->flags & OUTF_ESCAPE) && mb_js_int(fj, &x)) {
                /* an escaped integer is String(n): digits, nothing to escape, no JS sum */
                num_break(st);
                if ((rc = out_int(st, st->cur, x))) goto done;
                NEXT;
            }
            v = vjson(fj);
        } else if ((rc = lookup(st, p, f, &v))) {
            goto done;
        }
        if (MB_UNLIKELY(is_nullish(&v))) {
            num_break(st); /* `x != null ? x : ""` */
            if (pc->flags & (OUTF_MISSING | OUTF_AMBIG) &&
                (rc = out_path_slow(st, f, p, &v, pc->flags)))
                goto done;
            NEXT;
        }
        if (v.t == V_JSON && json_is_string(v.u.j)) {
            num_break(st);
            const char *s = mb_jr_str(v.u.j);
            size_t n = mb_jr_strlen(v.u.j);
            rc = (pc->flags & OUTF_ESCAPE) ? out_escaped(st, st->cur, s, n)
                                           : out_write(st, st->cur, s, n);
        } else {
            rc = out_value(st, st->cur, &v, pc->flags & OUTF_ESCAPE);
        }
        if (rc) goto done;
        NEXT;
    }
    CASE(OUT_VAL) {
        mb_val *top = &st->stack[st->sp - 1];
        if (pc->flags & OUTF_NOSUM) num_break(st);
        if (is_nullish(top) && (pc->flags & OUTF_MISSING)) {
            rc = out_path_slow(st, f, &t->paths[pc->b], top, pc->flags);
        } else {
            rc = out_value(st, st->cur, top, pc->flags & OUTF_ESCAPE);
        }
        pop_n(st, 1);
        if (rc) goto done;
        NEXT;
    }
    CASE(PUSH_PATH) {
        const mb_path *p = &t->paths[pc->b];
        if (!(p->fast && lookup_fast(p, f, &st->stack[st->sp])) &&
            (rc = lookup(st, p, f, &st->stack[st->sp])))
            goto done;
        st->sp++;
        NEXT;
    }
    CASE(PUSH_CONST) {
        st->stack[st->sp++] = vjson(t->consts[pc->b]);
        NEXT;
    }
    CASE(PUSH_UNDEF) {
        st->stack[st->sp++] = (mb_val){0};
        NEXT;
    }
    CASE(CALL) {
        if ((rc = do_call(st, f, &t->calls[pc->b], OP_CALL, pc->flags))) goto done;
        NEXT;
    }
    CASE(CALL_OUT) {
        if (pc->flags & OUTF_NOSUM) num_break(st);
        if ((rc = do_call(st, f, &t->calls[pc->b], OP_CALL_OUT, pc->flags))) goto done;
        NEXT;
    }
    CASE(CALL_BLOCK) {
        if (pc->flags & OUTF_NOSUM) num_break(st);
        if ((rc = do_call(st, f, &t->calls[pc->b], OP_CALL_BLOCK, pc->flags))) goto done;
        NEXT;
    }
    CASE(SECTION) {
        v = st->stack[--st->sp];
        if (pc->flags & OUTF_NOSUM) num_break(st);
        rc = do_section(st, f, &t->calls[pc->b], &v);
        /* an explicit `buffer += value;` ends the chain and the next one starts afresh; any
         * other section is an operand of the chain with the block's raw value */
        if (pc->flags & OUTF_EXPLICIT) st->num.state = NUM_RUNSTART;
        val_release(&v);
        if (rc) goto done;
        NEXT;
    }
    CASE(IF)
    CASE(UNLESS) {
        if (pc->flags & OUTF_NOSUM) num_break(st);
        v = st->stack[--st->sp];
        const mb_callsite *cs = &t->calls[pc->b];
        int run_fn = val_truthy(&v) != (pc->op == OP_UNLESS);
        val_release(&v);
        if ((rc = run_program(st, run_fn ? cs->fn : cs->inverse, f, self_of(st, f), f->data, NULL,
                              0)))
            goto done;
        NEXT;
    }
    CASE(WITH) {
        if (pc->flags & OUTF_NOSUM) num_break(st);
        v = st->stack[--st->sp];
        const mb_callsite *cs = &t->calls[pc->b];
        /* Utils.isEmpty: 0 is not empty */
        int empty = v.t == V_INT   ? 0
                    : v.t == V_STR ? !v.u.s.n
                                   : mb_value_is_empty(v.t == V_JSON ? v.u.j : NULL);
        if (empty) {
            rc = run_program(st, cs->inverse, f, self_of(st, f), f->data, NULL, 0);
        } else {
            json_t *owned, *ctx = val_json(&v, &owned);
            mb_val bp = vjson(ctx);
            rc = run_program(st, cs->fn, f, ctx, f->data, &bp, 1);
            json_decref(owned);
        }
        val_release(&v);
        if (rc) goto done;
        NEXT;
    }
    CASE(EACH) {
        if (pc->flags & OUTF_NOSUM) num_break(st);
        v = st->stack[--st->sp];
        const mb_callsite *cs = &t->calls[pc->b];
        size_t n;
        rc = run_each(st, f, cs, &v, &n);
        val_release(&v);
        if (n) num_break(st); /* ret = '' + ... */
        if (!rc && !n) rc = run_program(st, cs->inverse, f, self_of(st, f), f->data, NULL, 0);
        if (rc) goto done;
        NEXT;
    }
    CASE(PARTIAL) {
        if (pc->flags & OUTF_NOSUM) num_break(st);
        if ((rc = do_partial(st, f, &t->psites[pc->b]))) goto done;
        NEXT;
    }
    CASE(ERROR) {
        const mb_text *tx = &t->texts[pc->b];
        rc = vm_fail(st, pc->a, 0, 0, "%.*s", (int)tx->len, tx->s);
        goto done;
    }
#if !defined(__GNUC__)
}
#endif
steps_exceeded
    : rc = vm_fail(st, MAILBARS_ERR_LIMIT_STEPS, 0, 0, "render exceeds the limit of %llu steps",
                   (unsigned long long)st->rctx.limits[MAILBARS_LIMIT_STEPS]);
done : st->nscope = scope0;
st->call_depth--;
return rc;
#undef CASE
#undef NEXT
}

/* ---- public API: render state and rendering ---- */

mailbars_render_state *mailbars_render_state_new(const mailbars_render_ctx *rctx) {
    mailbars_render_state *st = mb_calloc(1, sizeof *st);
    if (!st) return NULL;
    st->rctx = rctx ? *rctx : *mb_default_render_ctx();
    mb_jr_init();
    if (!(st->nullctx = json_object())) {
        mb_free(st);
        return NULL;
    }
    return st;
}

int mb_render_utf8_known(const mailbars_render_state *st, const mailbars_template *t) {
    return t->src_utf8 && !st->custom_helper_ran;
}

void mb_render_state_set_limits(mailbars_render_state *st, const mailbars_render_ctx *limits) {
    st->rctx = *limits;
}

void mailbars_render_state_free(mailbars_render_state *st) {
    if (!st) return;
    json_decref(st->nullctx);
    mailbars_buf_free(&st->out);
    mailbars_buf_free(&st->tmp);
    for (size_t i = 0; i < st->capcaps && st->caps[i]; i++) {
        mailbars_buf_free(st->caps[i]);
        mb_free(st->caps[i]);
    }
    mb_free(st->caps);
    mb_free(st->stack);
    mb_free(st->scope);
    mb_free(st->jargs);
    mb_free(st);
}

static uint64_t limit_or_max(uint64_t v) {
    return v ? v : UINT64_MAX;
}

/* Renders into `out` (appending). */
static int render_into(mailbars_render_state *st, const mailbars_template *t, json_t *data,
                       json_t *data_vars, mailbars_buf *out, mailbars_error *err) {
    mailbars_error local;
    mailbars_error_clear(err);
    if (!st || !t) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "NULL state or template");
    st->err = err ? err : &local;
    mailbars_error_clear(st->err);
    st->t = t;
    st->cur = out;
    st->sp = 0;
    st->nscope = 0;
    st->ncaps = 0;
    st->njargs = 0;
    st->call_depth = 0;
    st->partial_depth = 0;
    st->custom_helper_ran = 0;
    st->num.state = NUM_RUNSTART;
    st->steps = limit_or_max(st->rctx.limits[MAILBARS_LIMIT_STEPS]);
    st->iters = limit_or_max(st->rctx.limits[MAILBARS_LIMIT_ITERATIONS]);
    uint64_t ol = st->rctx.limits[MAILBARS_LIMIT_OUTPUT];
    st->out_limit = ol && ol < SIZE_MAX - 1 ? (size_t)ol + out->len : SIZE_MAX - 1;
    /* initData: a base frame for runtime @data, then @root (unless the runtime data has one) */
    mb_data base = {0}, rootf = {0};
    base.vars = data_vars && json_is_object(data_vars) ? data_vars : NULL;
    rootf.parent = &base;
    rootf.has_root = !(base.vars && json_object_get(base.vars, "root"));
    rootf.root = data;
    mb_frame f = {0};
    f.ctx = f.dctx = data;
    f.data = &rootf;
    if ((t->flags & MAILBARS_NO_DATA) && !t->main_uses_data) /* data: false: no initData */
        f.data = base.vars ? &base : NULL;
    f.root = 1;
    if (out->cap == 0 && out_grow(st, out, 0)) return st->err->code;
    int rc = exec(st, (int32_t)t->main, &f);
    pop_n(st, st->sp);
    if (!rc && out->data) out->data[out->len] = 0;
    return rc;
}

int mailbars_render(mailbars_render_state *st, const mailbars_template *t, json_t *data,
                    json_t *data_vars, mailbars_error *err) {
    if (!st) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "NULL render state");
    mailbars_buf_reset(&st->out);
    int rc = render_into(st, t, data, data_vars, &st->out, err);
    if (rc) mailbars_buf_reset(&st->out);
    return rc;
}

const char *mailbars_render_output(const mailbars_render_state *st, size_t *len) {
    if (len) *len = st ? st->out.len : 0;
    return st && st->out.data ? st->out.data : "";
}

int mailbars_render_buf(mailbars_render_state *st, const mailbars_template *t, json_t *data,
                        json_t *data_vars, mailbars_buf *out, mailbars_error *err) {
    if (!out) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "NULL output buffer");
    size_t len0 = out->len;
    int rc = render_into(st, t, data, data_vars, out, err);
    if (rc) {
        out->len = len0;
        if (out->data) out->data[len0] = 0;
    }
    return rc;
}

int mailbars_render_stream(mailbars_render_state *st, const mailbars_template *t, json_t *data,
                           json_t *data_vars, mailbars_write_fn write, void *userdata,
                           mailbars_error *err) {
    if (!write) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "NULL writer");
    int rc = mailbars_render(st, t, data, data_vars, err);
    if (rc) return rc;
    const size_t chunk = 1 << 16;
    for (size_t off = 0; off < st->out.len; off += chunk) {
        size_t n = st->out.len - off < chunk ? st->out.len - off : chunk;
        if (write(userdata, st->out.data + off, n))
            return mb_error(err, MAILBARS_ERR_IO, 0, 0, "the output writer failed");
    }
    return MAILBARS_OK;
}

char *mailbars_render_string(const mailbars_template *t, json_t *data, size_t *len,
                             mailbars_error *err) {
    mailbars_render_state *st = mailbars_render_state_new(NULL);
    if (!st) {
        mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    mailbars_buf out = {0};
    int rc = render_into(st, t, data, NULL, &out, err);
    mailbars_render_state_free(st);
    if (rc) {
        mailbars_buf_free(&out);
        return NULL;
    }
    if (len) *len = out.len;
    if (!out.data) return mb_strndup("", 0);
    return out.data;
}

/* ---- public API: inside helpers ---- */

const char *mailbars_call_name(const mailbars_call *call) {
    return call->cs->name;
}

size_t mailbars_call_argc(const mailbars_call *call) {
    return call->argc;
}

json_t *mailbars_call_arg(const mailbars_call *call, size_t i) {
    return i < call->argc ? call->args[i] : NULL;
}

json_t *mailbars_call_hash(mailbars_call *call) {
    if (call->hash) return call->hash;
    json_t *h = json_object();
    if (!h) return NULL;
    /* last to first, as handlebars.js builds options.hash; undefined values become null */
    for (uint32_t i = call->cs->nhash; i-- > 0;) {
        json_t *o, *v = val_json(&call->st->stack[call->hash_base + i], &o);
        if (!o && !v) v = json_null();
        if (o ? json_object_set_new(h, call->cs->hash_keys[i], o)
              : json_object_set(h, call->cs->hash_keys[i], v)) {
            json_decref(h);
            return NULL;
        }
    }
    return call->hash = h;
}

json_t *mailbars_call_context(const mailbars_call *call) {
    return self_of(call->st, call->f);
}

json_t *mailbars_call_data(const mailbars_call *call, const char *name) {
    int found;
    if (!name) return NULL;
    mb_val v = data_get(call->f->data, name, strlen(name), &found);
    json_t *owned, *j = val_json(&v, &owned);
    if (owned) return call_own((mailbars_call *)call, owned);
    return j;
}

int mailbars_call_is_block(const mailbars_call *call) {
    return call->cs->is_block;
}

int mailbars_call_has_inverse(const mailbars_call *call) {
    return call->cs->inverse >= 0;
}

size_t mailbars_call_block_param_count(const mailbars_call *call) {
    return call->cs->fn_block_params;
}

int mailbars_call_escapes(const mailbars_call *call) {
    return call->escapes;
}

/* options.fn / options.inverse with an optional new context, @data frame and block params. */
static int call_program(mailbars_call *call, int32_t prog, json_t *ctx, json_t *frame,
                        json_t *const *bps, size_t nbp, mailbars_buf **capture) {
    mailbars_render_state *st = call->st;
    if (capture) {
        *capture = capture_acquire(st);
        if (!*capture) return st->err->code;
    }
    if (prog < 0) {
        num_break(st); /* noop() returns "" */
        return MAILBARS_OK;
    }
    mb_data d = {0};
    const mb_data *data = call->f->data;
    if (frame && json_is_object(frame)) {
        d.parent = data;
        d.vars = frame;
        data = &d;
    }
    mb_val small[8];
    mb_val *bp = nbp <= 8 ? small : mb_malloc(nbp * sizeof *bp);
    if (!bps) nbp = 0;
    if (!bp) return vm_nomem(st);
    for (size_t i = 0; i < nbp; i++) bp[i] = vjson(bps[i]);
    mailbars_buf *saved = st->cur;
    st->cur = capture ? *capture : call->out;
    size_t sp0 = st->sp;
    /* if/unless/with return the block's raw value; other helpers are taken to build strings */
    if (!call->h || (call->h->builtin != MB_BUILTIN_IF && call->h->builtin != MB_BUILTIN_UNLESS &&
                     call->h->builtin != MB_BUILTIN_WITH))
        num_break(st);
    int rc = run_program(st, prog, call->f, ctx, data, nbp ? bp : NULL, (uint32_t)nbp);
    st->sp = sp0;
    st->cur = saved;
    if (capture && (*capture)->data) (*capture)->data[(*capture)->len] = 0;
    if (bp != small) mb_free(bp);
    return rc;
}

int mailbars_call_fn(mailbars_call *call, json_t *ctx, json_t *frame, json_t *const *block_params,
                     size_t nparams, mailbars_buf **capture) {
    return call_program(call, call->cs->fn, ctx, frame, block_params, nparams, capture);
}

int mailbars_call_inverse(mailbars_call *call, json_t *ctx, json_t *frame,
                          json_t *const *block_params, size_t nparams, mailbars_buf **capture) {
    return call_program(call, call->cs->inverse, ctx, frame, block_params, nparams, capture);
}

int mailbars_call_write(mailbars_call *call, const char *s, size_t len) {
    num_break(call->st);
    return out_write(call->st, call->out, s, len);
}

int mailbars_call_write_escaped(mailbars_call *call, const char *s, size_t len) {
    num_break(call->st);
    return out_escaped(call->st, call->out, s, len);
}

int mailbars_call_return(mailbars_call *call, json_t *value) {
    json_decref(call->ret);
    call->ret = value;
    call->ret_buf = NULL;
    call->ret_safe = 0;
    call->ret_set = 1;
    return MAILBARS_OK;
}

/* The text goes to a capture buffer of the state, reused from render to render, rather than
 * to a new JSON string: no allocation per call once the state is warm. */
int mailbars_call_return_safe(mailbars_call *call, const char *s, size_t len) {
    mailbars_buf *b = call->ret_buf ? call->ret_buf : capture_acquire(call->st);
    if (!b) return call->st->err->code;
    call->ret_buf = b;
    mailbars_buf_reset(b);
    if (len && mailbars_buf_append(b, s, len)) return vm_nomem(call->st);
    json_decref(call->ret);
    call->ret = NULL;
    call->ret_safe = 1;
    call->ret_set = 1;
    return MAILBARS_OK;
}

int mailbars_call_error(mailbars_call *call, const char *message) {
    return vm_fail(call->st, MAILBARS_ERR_HELPER, 0, 0, "%s", message ? message : "helper error");
}

/* For the built-in log helper (helpers.c). */
const mailbars_env *mb_call_env(const mailbars_call *call);
const mailbars_env *mb_call_env(const mailbars_call *call) {
    return call->st->t->env;
}
