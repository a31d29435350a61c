/* JavaScript semantics for JSON values: String(v), truthiness, and handlebars.js escaping. */
#include "internal.h"
#include "program.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Shortest digits that round-trip, laid out as Number.prototype.toString does (ECMA-262
 * Number::toString): plain digits for exponents in [-6, 21), exponent form otherwise. */
size_t mb_format_number(double d, char *out) {
    if (isnan(d)) return (size_t)sprintf(out, "NaN");
    if (isinf(d)) return (size_t)sprintf(out, d < 0 ? "-Infinity" : "Infinity");
    if (d == 0) return (size_t)sprintf(out, "0");
    if (fabs(d) < 9007199254740992.0 && d == (double)(long long)d)
        return mb_format_int((int64_t)d, out);
    char tmp[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp is [-]D[.DDD]e[+-]XX: collect digits and decimal exponent n (value = 0.DIGITS * 10^n) */
    char digits[24];
    int k = 0;
    const char *s = tmp;
    size_t o = 0;
    if (*s == '-') out[o++] = '-', s++;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[k++] = *s;
    while (k > 1 && digits[k - 1] == '0') k--;
    int n = atoi(s + 1) + 1;
    if (k <= n && n <= 21) {
        memcpy(out + o, digits, (size_t)k), o += (size_t)k;
        for (int i = k; i < n; i++) out[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(out + o, digits, (size_t)n), o += (size_t)n;
        out[o++] = '.';
        memcpy(out + o, digits + n, (size_t)(k - n)), o += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        out[o++] = '0', out[o++] = '.';
        for (int i = 0; i < -n; i++) out[o++] = '0';
        memcpy(out + o, digits, (size_t)k), o += (size_t)k;
    } else {
        out[o++] = digits[0];
        if (k > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, (size_t)(k - 1)), o += (size_t)(k - 1);
        }
        o += (size_t)sprintf(out + o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    out[o] = 0;
    return o;
}

int mailbars_value_to_string(const json_t *v, mailbars_buf *out) {
    char num[40];
    if (!v) return MAILBARS_OK;
    switch (json_typeof(v)) {
    case JSON_STRING: return mailbars_buf_append(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        json_int_t i;
        if (!mb_js_int(v, &i)) /* JS sees a double */
            return mailbars_buf_append(out, num, mb_format_number(json_number_value(v), num));
        return mailbars_buf_append(out, num, mb_format_int(i, num));
    }
    case JSON_REAL: return mailbars_buf_append(out, num, mb_format_number(json_real_value(v), num));
    case JSON_TRUE: return mailbars_buf_append(out, "true", 4);
    case JSON_FALSE: return mailbars_buf_append(out, "false", 5);
    case JSON_NULL: return MAILBARS_OK;
    case JSON_OBJECT: return mailbars_buf_append(out, "[object Object]", 15);
    case JSON_ARRAY: {
        /* Array.prototype.join(","): null and undefined items print as empty */
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i && mb_buf_putc(out, ',') != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
            const json_t *item = json_array_get(v, i);
            if (json_is_null(item)) continue;
            int rc = mailbars_value_to_string(item, out);
            if (rc) return rc;
        }
        return MAILBARS_OK;
    }
    }
    return MAILBARS_OK;
}

/* handlebars.js Utils.isEmpty (with, if): falsy but not 0, or an empty array. */
int mb_value_is_empty(const json_t *v) {
    if (!v) return 1;
    if (json_is_array(v)) return json_array_size(v) == 0;
    if (json_is_number(v) && json_number_value(v) == 0) return 0;
    return !mailbars_value_is_truthy(v);
}

int mailbars_value_is_truthy(const json_t *v) {
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_STRING: return json_string_length(v) != 0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: {
        double d = json_real_value(v);
        return d != 0 && !isnan(d);
    }
    case JSON_TRUE: return 1;
    case JSON_FALSE: return 0;
    case JSON_NULL: return 0;
    case JSON_ARRAY: return json_array_size(v) != 0;
    case JSON_OBJECT: return 1;
    }
    return 0;
}

/* 0 = copy as is; otherwise the index into mb_esc_text. */
const unsigned char mb_esc_class[256] = {
    ['&'] = 1, ['<'] = 2, ['>'] = 3, ['"'] = 4, ['\''] = 5, ['`'] = 6, ['='] = 7,
};
const char *const mb_esc_text[8] = {"",       "&amp;",  "&lt;",   "&gt;",
                                    "&quot;", "&#x27;", "&#x60;", "&#x3D;"};
const unsigned char mb_esc_len[8] = {0, 5, 4, 4, 6, 6, 6, 6};

/* Length of the prefix of p[0..n) that needs no escaping: 16 bytes at a time with SSE2. */
size_t mb_escape_scan(const unsigned char *p, size_t n) {
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        unsigned mask = mb_esc_mask16(_mm_loadu_si128((const __m128i *)(const void *)(p + i)));
        if (mask) return i + (size_t)__builtin_ctz(mask);
    }
#endif
    while (i < n && !mb_esc_class[p[i]]) i++;
    return i;
}

/* Decimal form of a 64-bit integer; `out` needs 21 bytes; returns the length. */
size_t mb_format_int(int64_t v, char *out) {
    if (v >= 0 && v < 100) { /* @index, counts: most numbers printed are small */
        size_t n = v >= 10;
        if (n) out[0] = (char)('0' + v / 10);
        out[n] = (char)('0' + v % 10), out[n + 1] = 0;
        return n + 1;
    }
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0) out[o++] = '-';
    while (n) out[o++] = tmp[--n];
    out[o] = 0;
    return o;
}

int mailbars_escape_html(const char *s, size_t len, mailbars_buf *out) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    /* reserve for the common case: few escapes */
    if (mailbars_buf_reserve(out, len) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    while (p < end) {
        const unsigned char *run = p;
        p += mb_escape_scan(p, (size_t)(end - p));
        if (p > run && mailbars_buf_append(out, run, (size_t)(p - run)) != MAILBARS_OK)
            return MAILBARS_ERR_NOMEM;
        if (p == end) break;
        unsigned c = mb_esc_class[*p++];
        if (mailbars_buf_append(out, mb_esc_text[c], mb_esc_len[c]) != MAILBARS_OK)
            return MAILBARS_ERR_NOMEM;
    }
    return MAILBARS_OK;
}

int mb_json_check_limits(const char *s, size_t len, const char *what,
                         const mailbars_render_ctx *limits, mailbars_error *err) {
    if (!limits) limits = mb_default_render_ctx();
    uint64_t max_size = limits->limits[MAILBARS_LIMIT_JSON_SIZE];
    uint64_t max_depth = limits->limits[MAILBARS_LIMIT_JSON_DEPTH];
    if (!what) what = "JSON";
    if (max_size && len > max_size)
        return mb_error(err, MAILBARS_ERR_LIMIT_JSON_SIZE, 0, 0,
                        "%s is %zu bytes; the JSON size limit is %llu bytes", what, len,
                        (unsigned long long)max_size);
    /* bracket depth outside strings, with the line and column where it goes too deep */
    uint64_t depth = 0;
    int in_str = 0, line = 1, col = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        col++;
        if (c == '\n') line++, col = 0;
        if (in_str) {
            if (c == '\\')
                i++, col++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth && max_depth)
                return mb_error(err, MAILBARS_ERR_LIMIT_JSON_DEPTH, line, col,
                                "%s: line %d, column %d: JSON nested deeper than the limit of %llu",
                                what, line, col, (unsigned long long)max_depth);
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return MAILBARS_OK;
}

/* Lead bytes 0xC0..0xFF of UTF-8 (RFC 3629 table): the number of continuation bytes, the
 * range of the second byte (its lowest value and the span above it), and which of the third and
 * fourth bytes (low and high byte of a 16-bit pair) must be continuation bytes. The second
 * byte's range alone rules out overlongs, surrogates and code points past U+10FFFF. A byte that
 * does not lead a sequence wants a pair no byte pair gives. */
typedef struct utf8_lead_t {
    unsigned char n, lo, span;
    unsigned short tail_mask, tail_want;
} utf8_lead_t;
#define L0                                                                                         \
    { 0, 0, 0, 0, 0xFFFF }
#define L1(lo, span)                                                                               \
    { 1, lo, span, 0, 0 }
#define L2(lo, span)                                                                               \
    { 2, lo, span, 0x00C0, 0x0080 }
#define L3(lo, span)                                                                               \
    { 3, lo, span, 0xC0C0, 0x8080 }
static const utf8_lead_t utf8_lead[64] = {
    // clang-format off
    L0, L0, L1(0x80, 0x3F), L1(0x80, 0x3F), /* C0 */
    L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F),
    L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F),
    L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F),
    L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F), /* D0 */
    L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F),
    L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F),
    L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F), L1(0x80, 0x3F),
    L2(0xA0, 0x1F), L2(0x80, 0x3F), L2(0x80, 0x3F), L2(0x80, 0x3F), /* E0 */
    L2(0x80, 0x3F), L2(0x80, 0x3F), L2(0x80, 0x3F), L2(0x80, 0x3F),
    L2(0x80, 0x3F), L2(0x80, 0x3F), L2(0x80, 0x3F), L2(0x80, 0x3F),
    L2(0x80, 0x3F), L2(0x80, 0x1F), L2(0x80, 0x3F), L2(0x80, 0x3F),
    L3(0x90, 0x2F), L3(0x80, 0x3F), L3(0x80, 0x3F), L3(0x80, 0x3F), /* F0 */
    L3(0x80, 0x0F), L0, L0, L0,
    L0, L0, L0, L0,
    L0, L0, L0, L0,
    // clang-format on
};
#undef L0
#undef L1
#undef L2
#undef L3

/* Returns the offset of the first byte that does not start a valid UTF-8 sequence (no
 * overlongs, no surrogates, nothing above U+10FFFF), or len. Runs of ASCII are skipped 16
 * bytes at a time up to their first other byte; each multi-byte sequence is checked in one
 * step through utf8_lead (near the end, missing bytes read as 0, which no sequence accepts). */
size_t mb_utf8_check(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
#if defined(__SSE2__)
            /* no byte of the 16 has its high bit set, or skip to the first that has */
            while (len - i >= 16) {
                unsigned m = (unsigned)_mm_movemask_epi8(
                    _mm_loadu_si128((const __m128i *)(const void *)(s + i)));
                if (m) {
                    i += (size_t)__builtin_ctz(m);
                    break;
                }
                i += 16;
            }
#endif
            while (i < len && s[i] < 0x80) i++;
            continue;
        }
        if (c < 0xC0) return i;
        const utf8_lead_t *e = &utf8_lead[c - 0xC0];
        unsigned b1, tail;
        if (len - i >= 4) {
            b1 = s[i + 1];
            tail = s[i + 2] | (unsigned)s[i + 3] << 8;
        } else {
            b1 = len - i > 1 ? s[i + 1] : 0;
            tail = len - i > 2 ? s[i + 2] : 0;
        }
        if ((unsigned char)(b1 - e->lo) > e->span || (tail & e->tail_mask) != e->tail_want)
            return i;
        i += e->n + 1u;
    }
    return len;
}
