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

/* Longest run of characters before a soft break ("=" makes the line 76). */
#define QP_ROOM 75

/* Bit j set when byte j of the 64 at p ends a run of literal bytes: it is below 0x20, above
 * 0x7E, or '='; in *high, when it is above 0x7F. Fewer than 64 bytes (`avail`) are read through
 * a copy; the bits from `avail` on are set in the result (so that runs stop at the end) and
 * clear in *high. */
static inline uint64_t qp_special_mask(const unsigned char *p, size_t avail, uint64_t *high) {
    unsigned char tmp[64];
    if (avail < 64) {
        memset(tmp, 0, sizeof tmp);
        memcpy(tmp, p, avail);
        p = tmp;
    }
    uint64_t m = 0, h = 0;
#if defined(__SSE2__)
    for (int b = 0; b < 4; b++) {
        /* x + 1 < 0x21 as signed bytes: below 0x20, DEL (0x80) and above 0x7F (negative) */
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * b));
        __m128i sp =
            _mm_or_si128(_mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8(1)), _mm_set1_epi8(0x21)),
                         _mm_cmpeq_epi8(x, _mm_set1_epi8('=')));
        m |= (uint64_t)(unsigned)_mm_movemask_epi8(sp) << (16 * b);
        h |= (uint64_t)(unsigned)_mm_movemask_epi8(x) << (16 * b);
    }
#else
    for (unsigned j = 0; j < 64; j++) {
        m |= (uint64_t)(qp_class[p[j]] != QP_SAFE && p[j] != ' ') << j;
        h |= (uint64_t)(p[j] >> 7) << j;
    }
#endif
    if (avail < 64) m |= ~0ull << avail;
    *high = h;
    return m;
}

/* Copies n <= 64 bytes from p to d. Whole 16-byte blocks are moved when the input has them:
 * the output has room for a block past any point that is a block before the end of the input,
 * since every input byte writes at least one output byte. */
static inline void qp_copy(char *d, const unsigned char *p, size_t n, const unsigned char *end) {
#if defined(__SSE2__)
    if (n <= 16 && end - p >= 16) {
        _mm_storeu_si128((__m128i *)(void *)d, _mm_loadu_si128((const __m128i *)(const void *)p));
        return;
    }
    if (n > 16) { /* blocks, the last one overlapping the one before */
        for (size_t i = 0; i + 16 < n; i += 16)
            _mm_storeu_si128((__m128i *)(void *)(d + i),
                             _mm_loadu_si128((const __m128i *)(const void *)(p + i)));
        _mm_storeu_si128((__m128i *)(void *)(d + n - 16),
                         _mm_loadu_si128((const __m128i *)(const void *)(p + n - 16)));
        return;
    }
#else
    (void)end;
#endif
    memcpy(d, p, n);
}

/* 1 when the byte at p, starting a line, is encoded although printable: a '.' or the 'F' of
 * "From ", so that bodies survive SMTP dot-stuffing and mbox "From " quoting. */
static inline int qp_line_start_special(const unsigned char *p, const unsigned char *end) {
    return *p == '.' || (*p == 'F' && end - p >= 5 && memcmp(p, "From ", 5) == 0);
}

/* Writes "=XY" for each of the n bytes at p; returns the new end of the output. */
static inline char *qp_put_encoded(char *d, const unsigned char *p, size_t n) {
    for (; n >= 4; n -= 4, p += 4, d += 12) {
        memcpy(d, qp_enc[p[0]], 4); /* "=XY" and a byte the next write covers */
        memcpy(d + 3, qp_enc[p[1]], 4);
        memcpy(d + 6, qp_enc[p[2]], 4);
        memcpy(d + 9, qp_enc[p[3]], 4);
    }
    for (; n; n--, p++, d += 3) memcpy(d, qp_enc[*p], 4);
    return d;
}

/* Encodes `len` bytes; see mailbars_qp_encode. MB_QP_TERMINATE makes the output end in CRLF,
 * with a soft break when the input did not end in a line break (decoders then add nothing).
 * The rules, byte by byte: a line break (text mode) is written as CRLF; a literal byte (printable
 * ASCII but '=', or a space or tab not followed by a line break or the end, and not a '.' or
 * "From " starting a line) takes one column, with a soft break first when the line has 75; any
 * other byte is "=XY", with a soft break first when it would pass column 75.
 * The input is classified 64 bytes at a time into a mask of the bytes that end a literal run;
 * runs of literal bytes are copied whole, line by line, and runs of encoded bytes are written
 * from the table. A space is copied with its run and taken back when a line break or the end
 * follows it. The start-of-line rule is applied where a line starts before a literal byte: at
 * the start, after a line break and after a soft break inside a literal run. */
int mb_qp_encode(const char *src, size_t len, unsigned flags, mailbars_buf *out) {
    const unsigned char *p = (const unsigned char *)src, *end = p + len, *base = p;
    const int text = (flags & MB_QP_TEXT) != 0;
    if (len > SIZE_MAX / 4 - 64) return MAILBARS_ERR_NOMEM;
    /* Worst case: 3 characters per byte plus a 3-byte soft break per 25 encoded bytes. */
    if (mailbars_buf_reserve(out, len * 3 + len / 8 + 16) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    char *d = out->data + out->len, *const start = d;
    size_t col = 0;
    uint64_t high = 0, m = len ? qp_special_mask(p, len < 64 ? len : 64, &high) : 0;
    if (len && qp_line_start_special(p, end)) d = qp_put_encoded(d, p++, 1), col = 3;
    while (p < end) {
        size_t j = (size_t)(p - base);
        if (j >= 64) {
            size_t avail = (size_t)(end - p);
            base = p;
            j = 0;
            m = qp_special_mask(p, avail < 64 ? avail : 64, &high);
        }
        uint64_t rest = m >> j;
        if (!(rest & 1)) {
            /* literal bytes up to the next special one or the end of the block, line by line */
            size_t n = rest ? (size_t)__builtin_ctzll(rest) : 64 - j;
            for (;;) {
                if (col >= QP_ROOM) {
                    memcpy(d, "=\r\n", 3), d += 3, col = 0;
                    if (qp_line_start_special(p, end)) {
                        d = qp_put_encoded(d, p++, 1), col = 3;
                        if (!--n) break;
                    }
                }
                size_t k = QP_ROOM - col < n ? QP_ROOM - col : n;
                qp_copy(d, p, k, end);
                p += k, d += k, col += k;
                if (!(n -= k)) break;
            }
            continue;
        }
        unsigned c = *p, k = qp_class[c];
        if (k == QP_BRK && text) {
            if (d > start && d[-1] == ' ') { /* the space before the break is encoded */
                d--, col--;
                if (col + 3 > QP_ROOM) memcpy(d, "=\r\n", 3), d += 3;
                memcpy(d, "=20", 3), d += 3;
            }
            p += (c == '\r' && end - p >= 2 && p[1] == '\n') ? 2 : 1;
            memcpy(d, "\r\n", 2);
            d += 2, col = 0;
            if (p < end && qp_line_start_special(p, end)) d = qp_put_encoded(d, p++, 1), col = 3;
            continue;
        }
        if (k == QP_WS && end - p >= 2 && !(text && qp_class[p[1]] == QP_BRK)) {
            /* a tab that is not trailing */
            if (col >= QP_ROOM) memcpy(d, "=\r\n", 3), d += 3, col = 0;
            *d++ = (char)c;
            p++, col++;
            continue;
        }
        /* this byte (whatever its class) and the QP_ENC bytes right after it: the run of
         * bytes above 0x7F from the masks (all QP_ENC, none past the end), then byte by byte
         * among the special ones (a run reaching the end of the block takes all of it) */
        size_t specials = ~rest ? (size_t)__builtin_ctzll(~rest) : 64, n = 1;
        if (specials > (size_t)(end - p)) specials = (size_t)(end - p); /* the set tail bits */
        uint64_t hr = ~(high >> j);
        if (c > 0x7F) n = hr ? (size_t)__builtin_ctzll(hr) : 64;
        while (n < specials && qp_class[p[n]] == QP_ENC) n++;
        if (col + 3 * n <= QP_ROOM) { /* all on this line */
            d = qp_put_encoded(d, p, n);
            p += n, col += 3 * n;
            continue;
        }
        while (n) { /* as many as fit each line */
            if (col + 3 > QP_ROOM) memcpy(d, "=\r\n", 3), d += 3, col = 0;
            size_t f = (QP_ROOM - col) / 3;
            if (f > n) f = n;
            d = qp_put_encoded(d, p, f);
            p += f, n -= f, col += 3 * f;
        }
    }
    if (d > start && d[-1] == ' ') { /* a space ending the text is encoded */
        d--, col--;
        if (col + 3 > QP_ROOM) memcpy(d, "=\r\n", 3), d += 3, col = 0;
        memcpy(d, "=20", 3), d += 3, col += 3;
    }
    if ((flags & MB_QP_TERMINATE) && col > 0) {
        memcpy(d, "=\r\n", 3);
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
