/* Charsets through ICU converters. UTF-8 needs no converter; any other charset converts with
 * ICU's "stop" callbacks and no fallbacks, and every conversion is checked by converting back,
 * so a character the charset cannot hold is always an error, never a substitute. */
#include "mime_internal.h"
#include <stdio.h>
#include <strings.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

void mb_charset_init(mb_charset *cs) {
    memset(cs, 0, sizeof *cs);
    strcpy(cs->label, "UTF-8");
    cs->ascii_compatible = 1;
}

void mb_charset_free(mb_charset *cs) {
    if (cs->cnv) ucnv_close(cs->cnv);
    mb_free(cs->u16);
    mb_free(cs->cp);
    mb_free(cs->back);
    mailbars_buf_free(&cs->words);
    mb_charset_init(cs);
}

/* Grows a scratch array to hold `n` elements of `size` bytes. */
static int cs_grow(void **p, size_t *cap, size_t n, size_t size) {
    if (n <= *cap) return MAILBARS_OK;
    size_t c = *cap ? *cap : 64;
    while (c < n) c *= 2;
    if (c > SIZE_MAX / size || c > INT32_MAX) return MAILBARS_ERR_NOMEM;
    void *q = mb_realloc(*p, c * size);
    if (!q) return MAILBARS_ERR_NOMEM;
    *p = q;
    *cap = c;
    return MAILBARS_OK;
}

/* 1 when `s` is usable as an RFC 2047 charset token (no especials, no '*' language tag). */
static int cs_label_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((mb_charset *)0)->label)) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7F || strchr("()<>@,;:\"/[]?.=\\*", c)) return 0;
    }
    return 1;
}

/* Converts UTF-16 [u, u+n) with a reset converter, flushing, appending to `out`. On an
 * unmappable character returns MAILBARS_ERR_UNMAPPABLE and its UTF-16 index in *bad. */
static int cs_from_u16(mb_charset *cs, const UChar *u, int32_t n, mailbars_buf *out, int32_t *bad) {
    UConverter *cnv = cs->cnv;
    size_t start = out->len;
    ucnv_resetFromUnicode(cnv);
    size_t want = (size_t)n * (size_t)ucnv_getMaxCharSize(cnv) + 16;
    if (mailbars_buf_reserve(out, want) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    const UChar *src = u, *lim = u + n;
    for (;;) {
        UErrorCode st = U_ZERO_ERROR;
        char *t = out->data + out->len;
        char *tlim = out->data + out->cap - 1;
        ucnv_fromUnicode(cnv, &t, tlim, &src, lim, NULL, 1, &st);
        out->len = (size_t)(t - out->data);
        if (st == U_BUFFER_OVERFLOW_ERROR) {
            if (mailbars_buf_reserve(out, out->cap) != MAILBARS_OK) goto nomem;
            continue;
        }
        if (U_FAILURE(st)) {
            UChar inv[8];
            int8_t ilen = (int8_t)(sizeof inv / sizeof inv[0]);
            UErrorCode st2 = U_ZERO_ERROR;
            ucnv_getInvalidUChars(cnv, inv, &ilen, &st2);
            int32_t at = (int32_t)(src - u) - (U_SUCCESS(st2) ? ilen : 1);
            *bad = at < 0 ? 0 : at;
            out->len = start;
            out->data[start] = 0;
            return MAILBARS_ERR_UNMAPPABLE;
        }
        break;
    }
    out->data[out->len] = 0;
    /* Round trip: what the reader will decode must be exactly what we were given. */
    const char *bytes = out->data + start;
    int32_t blen = (int32_t)(out->len - start);
    if (cs_grow((void **)&cs->back, &cs->back_cap, (size_t)blen + (size_t)n + 16, sizeof(UChar)))
        goto nomem;
    UErrorCode st = U_ZERO_ERROR;
    int32_t m = ucnv_toUChars(cnv, cs->back, (int32_t)cs->back_cap, bytes, blen, &st);
    if (st == U_BUFFER_OVERFLOW_ERROR) {
        if (cs_grow((void **)&cs->back, &cs->back_cap, (size_t)m + 1, sizeof(UChar))) goto nomem;
        st = U_ZERO_ERROR;
        m = ucnv_toUChars(cnv, cs->back, (int32_t)cs->back_cap, bytes, blen, &st);
    }
    int32_t k = 0;
    if (U_SUCCESS(st)) {
        while (k < n && k < m && cs->back[k] == u[k]) k++;
        if (k == n && m == n) return MAILBARS_OK;
    }
    if (k > 0 && k < n && U16_IS_TRAIL(u[k]) && U16_IS_LEAD(u[k - 1])) k--;
    if (k >= n) k = n ? n - 1 : 0;
    *bad = k;
    out->len = start;
    out->data[start] = 0;
    return MAILBARS_ERR_UNMAPPABLE;
nomem:
    out->len = start;
    if (out->data) out->data[start] = 0;
    return MAILBARS_ERR_NOMEM;
}

/* Opens an ICU converter by any of its names; UTF-8 (under any alias) uses no converter.
 * The header label is the charset's MIME name, else its IANA name. */
int mb_charset_set(mb_charset *cs, const char *name, mailbars_error *err) {
    if (!name || !*name || !strcasecmp(name, "UTF-8") || !strcasecmp(name, "utf8")) {
        if (cs->cnv) ucnv_close(cs->cnv);
        cs->cnv = NULL;
        strcpy(cs->label, "UTF-8");
        cs->ascii_compatible = 1;
        return MAILBARS_OK;
    }
    UErrorCode st = U_ZERO_ERROR;
    UConverter *cnv = ucnv_open(name, &st);
    if (U_FAILURE(st) || !cnv)
        return mb_error(err, MAILBARS_ERR_CHARSET, 0, 0, "unknown charset '%.100s'", name);
    const char *canon = ucnv_getName(cnv, &st);
    if (U_FAILURE(st)) canon = name;
    if (strcmp(canon, "UTF-8") == 0) {
        ucnv_close(cnv);
        if (cs->cnv) ucnv_close(cs->cnv);
        cs->cnv = NULL;
        strcpy(cs->label, "UTF-8");
        cs->ascii_compatible = 1;
        return MAILBARS_OK;
    }
    const char *label = NULL;
    static const char *const standards[] = {"MIME", "IANA"};
    for (size_t k = 0; k < 2 && !label; k++) {
        st = U_ZERO_ERROR;
        const char *l = ucnv_getStandardName(canon, standards[k], &st);
        if (U_SUCCESS(st) && l && cs_label_ok(l)) label = l;
    }
    if (!label && cs_label_ok(name)) label = name;
    if (!label) {
        ucnv_close(cnv);
        return mb_error(err, MAILBARS_ERR_CHARSET, 0, 0,
                        "charset '%.100s' has no MIME name usable in a message", name);
    }
    st = U_ZERO_ERROR;
    ucnv_setFromUCallBack(cnv, UCNV_FROM_U_CALLBACK_STOP, NULL, NULL, NULL, &st);
    ucnv_setToUCallBack(cnv, UCNV_TO_U_CALLBACK_STOP, NULL, NULL, NULL, &st);
    ucnv_setFallback(cnv, 0);
    if (U_FAILURE(st)) {
        ucnv_close(cnv);
        return mb_error(err, MAILBARS_ERR_CHARSET, 0, 0, "charset '%.100s' cannot be used", name);
    }
    if (cs->cnv) ucnv_close(cs->cnv);
    cs->cnv = cnv;
    snprintf(cs->label, sizeof cs->label, "%s", label);
    /* ASCII-compatible: printable ASCII, TAB, CR and LF convert to themselves. */
    UChar probe[98];
    char want[98];
    int32_t np = 0;
    for (int c = 0x20; c < 0x7F; c++) probe[np] = (UChar)c, want[np++] = (char)c;
    probe[np] = '\t', want[np++] = '\t';
    probe[np] = '\r', want[np++] = '\r';
    probe[np] = '\n', want[np++] = '\n';
    mailbars_buf tmp = {0};
    int32_t bad = 0;
    int rc = cs_from_u16(cs, probe, np, &tmp, &bad);
    cs->ascii_compatible =
        rc == MAILBARS_OK && tmp.len == (size_t)np && !memcmp(tmp.data, want, (size_t)np);
    mailbars_buf_free(&tmp);
    if (rc == MAILBARS_ERR_NOMEM) return mb_error(err, rc, 0, 0, NULL);
    return MAILBARS_OK;
}

/* Loads UTF-8 into the UTF-16 scratch and indexes its code points. */
int mb_charset_load(mb_charset *cs, const char *s, size_t len) {
    if (len > INT32_MAX / 2) return MAILBARS_ERR_NOMEM;
    if (cs_grow((void **)&cs->u16, &cs->u16_cap, len + 1, sizeof(UChar)) ||
        cs_grow((void **)&cs->cp, &cs->cp_cap, len + 2, sizeof(int32_t)))
        return MAILBARS_ERR_NOMEM;
    const unsigned char *p = (const unsigned char *)s;
    int32_t n = 0, k = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t c = p[i];
        size_t extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        if (extra) c &= 0x3F >> extra;
        for (size_t j = 1; j <= extra && i + j < len; j++) c = c << 6 | (p[i + j] & 0x3F);
        i += extra + 1;
        cs->cp[k++] = n;
        if (c >= 0x10000) {
            cs->u16[n++] = U16_LEAD(c);
            cs->u16[n++] = U16_TRAIL(c);
        } else {
            cs->u16[n++] = (UChar)c;
        }
    }
    cs->cp[k] = n;
    cs->u16_len = n;
    cs->ncp = k;
    return MAILBARS_OK;
}

/* Byte offset in UTF-8 `s` of code point number k. */
size_t mb_utf8_offset_of_cp(const char *s, size_t len, int32_t k) {
    size_t i = 0;
    for (; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (k == 0) return i;
            k--;
        }
    }
    return len;
}

/* The unmappable-character error, naming the character and where it is. */
int mb_charset_unmappable(const mb_charset *cs, uint32_t c, size_t off, const char *what,
                          mailbars_error *err) {
    mb_error(err, MAILBARS_ERR_UNMAPPABLE, 0, 0,
             "%s: character U+%04X at byte offset %zu cannot be represented in %s", what,
             (unsigned)c, off, cs->label);
    if (err) snprintf(err->part, sizeof err->part, "%s", what);
    return MAILBARS_ERR_UNMAPPABLE;
}

/* Index of the code point containing UTF-16 offset `u` (binary search in cs->cp). */
static int32_t cs_cp_at(const mb_charset *cs, int32_t u) {
    int32_t lo = 0, hi = cs->ncp;
    while (hi - lo > 1) {
        int32_t mid = (lo + hi) / 2;
        if (cs->cp[mid] <= u)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int mb_charset_encode_range(mb_charset *cs, int32_t a, int32_t b, mailbars_buf *out, int32_t *bad) {
    int32_t ubad = 0;
    int rc = cs_from_u16(cs, cs->u16 + cs->cp[a], cs->cp[b] - cs->cp[a], out, &ubad);
    if (rc == MAILBARS_ERR_UNMAPPABLE) *bad = cs_cp_at(cs, cs->cp[a] + ubad);
    return rc;
}

int mb_charset_encode(mb_charset *cs, const char *s, size_t len, const char *what,
                      mailbars_buf *out, mailbars_error *err) {
    if (!cs->cnv) {
        if (mailbars_buf_append(out, s, len)) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        return MAILBARS_OK;
    }
    if (mb_charset_load(cs, s, len)) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    int32_t bad = 0;
    int rc = cs->ncp ? mb_charset_encode_range(cs, 0, cs->ncp, out, &bad) : MAILBARS_OK;
    if (rc == MAILBARS_ERR_UNMAPPABLE) {
        UChar32 c;
        int32_t at = cs->cp[bad];
        U16_GET(cs->u16, 0, at, cs->u16_len, c);
        return mb_charset_unmappable(cs, (uint32_t)c, mb_utf8_offset_of_cp(s, len, bad), what, err);
    }
    if (rc) return mb_error(err, rc, 0, 0, NULL);
    return MAILBARS_OK;
}
