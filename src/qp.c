/* Quoted-printable (RFC 2045 6.7). The encoder is table-driven: runs of safe bytes are copied
 * at once, the worst-case output is reserved once, and bytes are written through a raw
 * pointer. Besides RFC 2045's rules it encodes a '.' or "From " that would start a line, so
 * bodies survive SMTP dot-stuffing and mbox "From " quoting untouched. */
#include "mime_internal.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { QP_SAFE = 0, QP_ENC = 1, QP_WS = 2, QP_BRK = 3 };

/* Byte classes: printable ASCII except '=' is safe; space and tab are safe unless trailing;
 * CR and LF are line breaks in text mode; everything else is encoded. */
static const unsigned char qp_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 1, 1, 3, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, /* 0x30: '=' encoded */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* 0x70: DEL encoded */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

/* "=XY" for every byte, padded to 4 so that one store writes it. */
#define QP_HX(n) ((n) < 10 ? '0' + (n) : 'A' + (n)-10)
#define QP_E(c)                                                                                    \
    { '=', QP_HX((c) >> 4), QP_HX((c)&15), 0 }
#define QP_R4(c) QP_E(c), QP_E((c) + 1), QP_E((c) + 2), QP_E((c) + 3)
#define QP_R16(c) QP_R4(c), QP_R4((c) + 4), QP_R4((c) + 8), QP_R4((c) + 12)
#define QP_R64(c) QP_R16(c), QP_R16((c) + 16), QP_R16((c) + 32), QP_R16((c) + 48)
static const char qp_enc[256][4] = {QP_R64(0), QP_R64(64), QP_R64(128), QP_R64(192)};

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Non-zero when one of the 8 bytes is below 0x20, above 0x7E, or '=' (so needs a closer look). */
static inline uint64_t swar_special(uint64_t x) {
    uint64_t below = (x - ONES * 0x20) & ~x;
    uint64_t above = (x + ONES * (127 - 0x7E)) | x;
    uint64_t y = x ^ (ONES * '=');
    uint64_t eq = (y - ONES) & ~y;
    return (below | above | eq) & HIGHS;
}

/* Longest run of characters before a soft break ("=" makes the line 76). */
#define QP_ROOM 75

/* Encodes `len` bytes; see mailbars_qp_encode. MB_QP_TERMINATE makes the output end in CRLF,
 * with a soft break when the input did not end in a line break (decoders then add nothing). */
int mb_qp_encode(const char *src, size_t len, unsigned flags, mailbars_buf *out) {
    const unsigned char *s = (const unsigned char *)src;
    const int text = (flags & MB_QP_TEXT) != 0;
    if (len > SIZE_MAX / 4 - 64) return MAILBARS_ERR_NOMEM;
    /* Worst case: 3 characters per byte plus a 3-byte soft break per 25 encoded bytes. */
    if (mailbars_buf_reserve(out, len * 3 + len / 8 + 16) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    char *d = out->data + out->len;
    size_t col = 0, i = 0;
    while (i < len) {
        unsigned c = s[i];
        unsigned k = qp_class[c];
        if (k == QP_BRK) {
            if (!text) goto encode;
            i += (c == '\r' && i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
            *d++ = '\r';
            *d++ = '\n';
            col = 0;
            continue;
        }
        if (col == 0 && (c == '.' || (c == 'F' && len - i >= 5 && memcmp(s + i, "From ", 5) == 0)))
            goto encode;
        if (k == QP_SAFE ||
            (k == QP_WS && i + 1 < len && !(text && qp_class[s[i + 1]] == QP_BRK))) {
            if (col >= QP_ROOM) goto soft;
            /* Copy the run of literal bytes that fits the line. Blocks of 8 are copied whole
             * (the output has room) and advanced to their first byte that is not printable
             * ASCII or is '=', found by SWAR; a space left at the end of the copy before a line
             * break or the end is taken back, to be encoded. The rest goes bytewise. */
            const unsigned char *p = s + i, *end = s + len;
            const unsigned char *lim = s + (len - i < QP_ROOM - col ? len : i + (QP_ROOM - col));
            char *d0 = d;
            for (;;) {
#if defined(__SSE2__)
                /* 16 at a time: below 0x20 or above 0x7F (negative as signed), DEL, '=' */
                while (lim - p >= 16) {
                    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
                    _mm_storeu_si128((__m128i *)(void *)d, x);
                    __m128i m = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                                             _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x7F)),
                                                          _mm_cmpeq_epi8(x, _mm_set1_epi8('='))));
                    unsigned bits = (unsigned)_mm_movemask_epi8(m);
                    if (!bits) {
                        p += 16;
                        d += 16;
                        continue;
                    }
                    unsigned run = (unsigned)__builtin_ctz(bits);
                    p += run;
                    d += run;
                    goto special;
                }
#endif
                while (lim - p >= 8) {
                    uint64_t x;
                    memcpy(&x, p, 8);
                    memcpy(d, &x, 8);
                    uint64_t m = swar_special(x);
                    if (!m) {
                        p += 8;
                        d += 8;
                        continue;
                    }
                    size_t run = (size_t)__builtin_ctzll(m) >> 3;
                    p += run;
                    d += run;
                    break;
                }
#if defined(__SSE2__)
            special:
#endif
                if (d > d0 && d[-1] == ' ' && (p == end || (text && qp_class[*p] == QP_BRK))) {
                    p--;
                    d--;
                    break;
                }
                if (p >= lim) break;
                unsigned b = *p, kb = qp_class[b];
                if (kb != QP_SAFE &&
                    !(kb == QP_WS && p + 1 < end && !(text && qp_class[p[1]] == QP_BRK)))
                    break;
                *d++ = (char)b;
                p++;
            }
            col += (size_t)(d - d0);
            i = (size_t)(p - s);
            continue;
        }
        if (k == QP_WS) goto encode; /* trailing whitespace */
    encode:
        if (col + 3 > QP_ROOM) goto soft;
        /* This byte and the encoded bytes after it, as many as fit the line. */
        {
            size_t fit = (QP_ROOM - col) / 3, end = len - i < fit ? len : i + fit, i0 = i;
            do {
                memcpy(d, qp_enc[c], 4); /* "=XY" and a byte the next write covers */
                d += 3;
            } while (++i < end && qp_class[c = s[i]] == QP_ENC);
            col += 3 * (i - i0);
        }
        continue;
    soft:
        d[0] = '=';
        d[1] = '\r';
        d[2] = '\n';
        d += 3;
        col = 0;
    }
    if ((flags & MB_QP_TERMINATE) && col > 0) {
        d[0] = '=';
        d[1] = '\r';
        d[2] = '\n';
        d += 3;
    }
    out->len = (size_t)(d - out->data);
    out->data[out->len] = 0;
    return MAILBARS_OK;
}

/* Public entry: text mode turns every line break into CRLF; binary mode encodes CR and LF. */
int mailbars_qp_encode(const char *src, size_t len, int text, mailbars_buf *out) {
    return mb_qp_encode(src, len, text ? MB_QP_TEXT : 0, out);
}

/* Value of a hex digit (either case), or -1. */
static int qp_hexval(unsigned c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    return -1;
}

/* Decodes quoted-printable: "=XX" escapes, soft breaks ("=" then optional transport
 * whitespace then CRLF or LF, or the end), trailing whitespace on a line dropped (RFC 2045
 * rule 3); a malformed escape is kept literally. */
int mailbars_qp_decode(const char *src, size_t len, mailbars_buf *out) {
    const unsigned char *s = (const unsigned char *)src;
    if (mailbars_buf_reserve(out, len) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    char *d = out->data + out->len;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == '=') {
            int hi = i + 2 < len ? qp_hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? qp_hexval(s[i + 2]) : -1;
            if (hi >= 0 && lo >= 0) {
                *d++ = (char)(hi << 4 | lo);
                i += 3;
                continue;
            }
            size_t j = i + 1;
            while (j < len && (s[j] == ' ' || s[j] == '\t')) j++;
            if (j == len) break;
            if (s[j] == '\n' || (s[j] == '\r' && j + 1 < len && s[j + 1] == '\n')) {
                i = j + (s[j] == '\r' ? 2 : 1);
                continue;
            }
            *d++ = '=';
            i++;
            continue;
        }
        if (c == ' ' || c == '\t') {
            size_t j = i;
            while (j < len && (s[j] == ' ' || s[j] == '\t')) j++;
            if (j == len || s[j] == '\n' || (s[j] == '\r' && j + 1 < len && s[j + 1] == '\n')) {
                i = j;
                continue;
            }
            memcpy(d, s + i, j - i);
            d += j - i;
            i = j;
            continue;
        }
        *d++ = (char)c;
        i++;
    }
    out->len = (size_t)(d - out->data);
    out->data[out->len] = 0;
    return MAILBARS_OK;
}
