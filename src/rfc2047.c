/* Header writing: folding at 78 columns and RFC 2047 encoded words. A header value never
 * contains a raw CR, LF or control character (mb_header_clean), so no value can start a new
 * header line. */
#include "mime_internal.h"
#include <stdio.h>
#include <unicode/utf16.h>

int mb_hdr_begin(mb_hdr *h, mailbars_buf *out, const char *name) {
    h->out = out;
    h->col = strlen(name) + 1;
    h->sep = 1;
    if (mb_buf_puts(out, name) || mb_buf_putc(out, ':')) return MAILBARS_ERR_NOMEM;
    return MAILBARS_OK;
}

/* Appends a token after a separator: sep 0 none, 1 a space (the first token stays on the
 * name's line), 2 a space or, when the line would pass 78, a fold (CRLF SP). */
int mb_hdr_token(mb_hdr *h, const char *s, size_t n) {
    if (h->sep == 2 && h->col + 1 + n > MB_HDR_LINE) {
        if (mailbars_buf_append(h->out, "\r\n ", 3)) return MAILBARS_ERR_NOMEM;
        h->col = 1;
    } else if (h->sep) {
        if (mb_buf_putc(h->out, ' ')) return MAILBARS_ERR_NOMEM;
        h->col++;
    }
    h->sep = 2;
    if (mailbars_buf_append(h->out, s, n)) return MAILBARS_ERR_NOMEM;
    h->col += n;
    return MAILBARS_OK;
}

int mb_hdr_raw(mb_hdr *h, const char *s, size_t n) {
    if (mailbars_buf_append(h->out, s, n)) return MAILBARS_ERR_NOMEM;
    h->col += n;
    return MAILBARS_OK;
}

int mb_hdr_end(mb_hdr *h) {
    h->col = 0;
    return mailbars_buf_append(h->out, "\r\n", 2);
}

/* Q-encoding: the character a byte is written as when it stands for itself (the phrase-safe
 * set of RFC 2047 5(3): letters, digits, ! * + - /, and space as '_'), or 0 for =XX. */
static const char q_lit[256] = {
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   '_', '!', 0,   0,   0,   0,
    0,   0,   0,   0,   '*', '+', 0,   '-', 0,   '/', '0', '1', '2', '3', '4', '5', '6', '7', '8',
    '9', 0,   0,   0,   0,   0,   0,   0,   'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K',
    'L', 'M', 'N', 'O', 'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 0,   0,   0,   0,
    0,   0,   'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q',
    'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,
};

/* Characters one byte takes in Q encoding. */
static inline size_t q_cost(unsigned char c) {
    return q_lit[c] ? 1 : 3;
}

/* Characters `n` bytes take in B encoding. */
static inline size_t b_cost(size_t n) {
    return (n + 2) / 3 * 4;
}

static const char hexd[] = "0123456789ABCDEF";

/* Writes one encoded word of bytes [p, p+n) as a header token. */
static int ew_emit(mb_hdr *h, const mb_charset *cs, int useq, const unsigned char *p, size_t n) {
    char w[256];
    size_t ll = strlen(cs->label), k = 0;
    w[k++] = '=';
    w[k++] = '?';
    memcpy(w + k, cs->label, ll);
    k += ll;
    w[k++] = '?';
    w[k++] = useq ? 'Q' : 'B';
    w[k++] = '?';
    if (useq) {
        for (size_t i = 0; i < n && k + 3 < sizeof w; i++) {
            unsigned char c = p[i];
            char l = q_lit[c];
            if (l) {
                w[k++] = l;
            } else {
                w[k] = '=';
                w[k + 1] = hexd[c >> 4];
                w[k + 2] = hexd[c & 15];
                k += 3;
            }
        }
    } else {
        mailbars_buf b = {w, k, sizeof w};
        if (b_cost(n) + k + 3 > sizeof w) return MAILBARS_ERR_INTERNAL;
        mailbars_base64_encode(p, n, 0, &b); /* fits: never reallocates the stack buffer */
        k = b.len;
    }
    w[k++] = '?';
    w[k++] = '=';
    return mb_hdr_token(h, w, k);
}

/* The longest word that fits the current line, or a fresh folded line. */
static size_t ew_budget(const mb_hdr *h, size_t overhead) {
    size_t used = h->col + (h->sep ? 1 : 0);
    size_t room = used < MB_HDR_LINE ? MB_HDR_LINE - used : 0;
    int can_fold = h->sep == 2;
    if (room > MB_EW_MAX) room = MB_EW_MAX;
    if (room < overhead + 12 && (can_fold || room < overhead + 4)) room = MB_EW_MAX;
    return room;
}

int mb_hdr_words(mb_hdr *h, mb_charset *cs, const char *s, size_t len, int phrase, const char *what,
                 mailbars_error *err) {
    (void)phrase; /* the phrase-safe Q set is used everywhere */
    if (len == 0) return MAILBARS_OK;
    size_t overhead = strlen(cs->label) + 7; /* =?cs?Q? + ?= */
    mailbars_buf *conv = &cs->words;         /* scratch kept by the charset */
    conv->len = 0;
    int rc = MAILBARS_OK;
    int32_t bad = 0;
    const unsigned char *bytes = (const unsigned char *)s;
    size_t nbytes = len;
    if (!mb_charset_is_utf8(cs)) {
        rc = mb_charset_encode(cs, s, len, what, conv, err);
        if (rc) goto done;
        bytes = (const unsigned char *)conv->data;
        nbytes = conv->len;
    }
    size_t qlen = 0;
    for (size_t i = 0; i < nbytes; i++) qlen += q_cost(bytes[i]);
    int useq = qlen <= b_cost(nbytes);

    if (mb_charset_is_utf8(cs)) {
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;
        while (i < len) {
            size_t budget = ew_budget(h, overhead);
            size_t cap = budget > overhead ? budget - overhead : 4, start = i;
            if (useq) { /* bytes >= 0x80 always take 3 characters */
                size_t qc = 0;
                while (i < len) {
                    unsigned c = p[i];
                    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
                    size_t add = c < 0x80 ? q_cost((unsigned char)c) : 3 * n;
                    if (i > start && qc + add > cap) break;
                    qc += add;
                    i += n;
                }
            } else { /* as many bytes as fit, cut back to a character boundary */
                size_t e = start + cap / 4 * 3;
                if (e >= len) {
                    e = len;
                } else {
                    while (e > start && (p[e] & 0xC0) == 0x80) e--;
                    if (e == start) /* not even one character fits: take one anyway */
                        for (e = start + 1; e < len && (p[e] & 0xC0) == 0x80;) e++;
                }
                i = e;
            }
            if ((rc = ew_emit(h, cs, useq, p + start, i - start))) goto nomem;
        }
        goto done;
    }

    /* Other charsets: each word is converted on its own (a stateful charset such as
     * ISO-2022-JP then returns to ASCII inside every word); a binary search finds the most
     * code points that fit. */
    if (mb_charset_load(cs, s, len)) goto nomem;
    int32_t ncp = cs->ncp, a = 0;
    while (a < ncp) {
        size_t budget = ew_budget(h, overhead);
        int32_t lo = a + 1, hi = ncp;
        if ((size_t)(hi - a) > budget) hi = a + (int32_t)budget;
        while (lo < hi) { /* invariant: lo fits (or is the minimum); find the largest fit */
            int32_t mid = lo + (hi - lo + 1) / 2;
            conv->len = 0;
            rc = mb_charset_encode_range(cs, a, mid, conv, &bad);
            if (rc) goto conv_fail;
            size_t cost = 0;
            if (useq)
                for (size_t j = 0; j < conv->len; j++) cost += q_cost((unsigned char)conv->data[j]);
            else
                cost = b_cost(conv->len);
            if (overhead + cost <= budget)
                lo = mid;
            else
                hi = mid - 1;
        }
        conv->len = 0;
        rc = mb_charset_encode_range(cs, a, lo, conv, &bad);
        if (rc) goto conv_fail;
        if ((rc = ew_emit(h, cs, useq, (unsigned char *)conv->data, conv->len))) goto nomem;
        a = lo;
    }
    goto done;
conv_fail:
    if (rc == MAILBARS_ERR_UNMAPPABLE) {
        UChar32 c;
        U16_GET(cs->u16, 0, cs->cp[bad], cs->u16_len, c);
        rc = mb_charset_unmappable(cs, (uint32_t)c, mb_utf8_offset_of_cp(s, len, bad), what, err);
        goto done;
    }
nomem:
    rc = mb_error(err, rc ? rc : MAILBARS_ERR_NOMEM, 0, 0, NULL);
done:
    return rc;
}

/* 1 when an unstructured value can be written as plain folded words and read back exactly:
 * printable ASCII words separated by single spaces, nothing that looks like an encoded word,
 * each word short enough for a line. */
static int plain_ok(const mb_hdr *h, const char *s, size_t len) {
    if (len == 0 || s[0] == ' ' || s[len - 1] == ' ') return 0;
    size_t word = 0, first_room = MB_HDR_LINE - (h->col + 1);
    int first = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            if (s[i - 1] == ' ') return 0;
            if (first && word > first_room) return 0;
            first = 0;
            word = 0;
            continue;
        }
        if (c < 0x21 || c > 0x7E) return 0;
        if (c == '=' && i + 1 < len && s[i + 1] == '?') return 0;
        if (++word > MB_HDR_LINE - 2) return 0;
    }
    return !(first && word > first_room);
}

int mb_hdr_unstructured(mb_hdr *h, mb_charset *cs, const char *s, size_t len, const char *what,
                        mailbars_error *err) {
    if (!plain_ok(h, s, len)) return mb_hdr_words(h, cs, s, len, 0, what, err);
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ' ') j++;
        if (mb_hdr_token(h, s + i, j - i)) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        i = j + 1;
    }
    return MAILBARS_OK;
}

/* Bytes mb_header_clean looks at: C0 controls, DEL, and 0xC2 (the lead byte of C1 controls). */
static const unsigned char hdr_special[256] = {1, 1, 1, 1, 1, 1, 1, 1, 1,          1,         1, 1,
                                               1, 1, 1, 1, 1, 1, 1, 1, 1,          1,         1, 1,
                                               1, 1, 1, 1, 1, 1, 1, 1, [0x7F] = 1, [0xC2] = 1};

int mb_header_clean(const char *s, size_t len, const char *what, mailbars_buf *out,
                    mailbars_error *err) {
    size_t bad = mb_utf8_check((const unsigned char *)s, len);
    if (bad < len) {
        mb_error(err, MAILBARS_ERR_UTF8, 0, 0, "%s: invalid UTF-8 at byte offset %zu", what, bad);
        if (err) snprintf(err->part, sizeof err->part, "%s", what);
        return MAILBARS_ERR_UTF8;
    }
    if (mailbars_buf_reserve(out, len)) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && !hdr_special[(unsigned char)s[j]]) j++; /* the common bytes */
        memcpy(out->data + out->len, s + i, j - i);
        out->len += j - i;
        if (j == len) break;
        unsigned char c = (unsigned char)s[j];
        unsigned cp = c; /* the control's code point, or 0xA0 for "not a control" */
        if (c == 0xC2) cp = (unsigned char)s[j + 1] < 0xA0 ? (unsigned char)s[j + 1] : 0xA0;
        if (c == '\r' || c == '\n') { /* each becomes a space: byte offsets stay exact */
            out->data[out->len++] = ' ';
        } else if (cp == '\t' || cp == 0xA0) {
            out->data[out->len++] = (char)c;
        } else {
            mb_error(err, MAILBARS_ERR_HEADER, 0, 0,
                     "%s: control character U+%04X at byte offset %zu is not allowed in a header",
                     what, cp, j);
            if (err) snprintf(err->part, sizeof err->part, "%s", what);
            return MAILBARS_ERR_HEADER;
        }
        i = j + 1;
    }
    out->data[out->len] = 0;
    return MAILBARS_OK;
}

/* Public: a header value as folded RFC 2047 encoded words. */
int mailbars_rfc2047_encode(const char *s, size_t len, const char *charset, size_t column,
                            mailbars_buf *out, mailbars_error *err) {
    mb_charset cs;
    mb_charset_init(&cs);
    char stack[512];
    mailbars_buf clean = {0};
    if (len < sizeof stack) clean.data = stack, clean.cap = sizeof stack; /* never grows */
    size_t start = out->len;
    int rc = mb_charset_set(&cs, charset, err);
    if (!rc) rc = mb_header_clean(s, len, "value", &clean, err);
    if (!rc) {
        mb_hdr h = {out, column, 0};
        rc = mb_hdr_words(&h, &cs, clean.data ? clean.data : "", clean.len, 0, "value", err);
    }
    if (rc) {
        out->len = start;
        if (out->data) out->data[start] = 0;
    }
    if (clean.data != stack) mailbars_buf_free(&clean);
    mb_charset_free(&cs);
    return rc;
}
