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

/* Input bytes a block needs past its start, else the rest is copied into a zero-padded buffer:
 * a literal run may end 16 bytes past the block's 63 (at 79), and a copy reads up to 80 bytes from
 * wherever it starts inside the run (32 when it starts past 47). */
#define QP_SLACK 128

/* Output room reserved beyond the worst case: a copy writes 32 bytes from wherever it starts (80
 * when it keeps more than 32), a run of encoded bytes up to 10 characters more than it keeps,
 * and the line's end (`lend`) is 75 past a line's start. */
#define QP_OVERRUN 96

/* Bit j set when byte j of the 16 at p is literal in a run: 0x20 to 0x7E (space included), not
 * '='. */
static inline unsigned qp_literal16(const unsigned char *p) {
#if defined(__SSE2__)
    /* x + 1 > 0x20 as signed bytes: 0x20 to 0x7E */
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    return (unsigned)_mm_movemask_epi8(
        _mm_andnot_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('=')),
                         _mm_cmpgt_epi8(_mm_add_epi8(x, _mm_set1_epi8(1)), _mm_set1_epi8(0x20))));
#else
    unsigned lit = 0;
    for (unsigned j = 0; j < 16; j++)
        lit |= (unsigned)(qp_class[p[j]] == QP_SAFE || p[j] == ' ') << j;
    return lit;
#endif
}

/* Bit j set when byte j of the 64 at p ends a run of literal bytes: it is below 0x20, above
 * 0x7E, or '='; in *high, when it is above 0x7F. All 64 bytes are read: the caller keeps the
 * block inside the input, or inside the zero-padded copy of its tail (a zero byte stops a run). */
static inline uint64_t qp_special_mask(const unsigned char *p, uint64_t *high) {
    uint64_t lit = 0, h = 0;
    for (int b = 0; b < 4; b++) {
        lit |= (uint64_t)qp_literal16(p + 16 * b) << (16 * b);
#if defined(__SSE2__)
        h |= (uint64_t)(unsigned)_mm_movemask_epi8(
                 _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * b)))
             << (16 * b);
#else
        for (unsigned j = 0; j < 16; j++) h |= (uint64_t)(p[16 * b + j] >> 7) << (16 * b + j);
#endif
    }
    *high = h;
    return ~lit;
}

/* How many of the 16 bytes at p are literal before the first one that is not (16 if all are):
 * a literal run reaching a block's end is followed this far, so that it is copied at once. */
static inline size_t qp_literal_prefix16(const unsigned char *p) {
    return (size_t)__builtin_ctz(~qp_literal16(p));
}

/* Copies n bytes (up to 80) from p to d. With SSE2 it moves 32 bytes, or 80 when n is above 32,
 * whatever n, without a loop: the input has them (QP_SLACK) and so has the output (QP_OVERRUN). */
static inline void qp_copy(char *d, const unsigned char *p, size_t n) {
#if defined(__SSE2__)
    _mm_storeu_si128((__m128i *)(void *)d, _mm_loadu_si128((const __m128i *)(const void *)p));
    _mm_storeu_si128((__m128i *)(void *)(d + 16),
                     _mm_loadu_si128((const __m128i *)(const void *)(p + 16)));
    if (n > 32) {
        _mm_storeu_si128((__m128i *)(void *)(d + 32),
                         _mm_loadu_si128((const __m128i *)(const void *)(p + 32)));
        _mm_storeu_si128((__m128i *)(void *)(d + 48),
                         _mm_loadu_si128((const __m128i *)(const void *)(p + 48)));
        _mm_storeu_si128((__m128i *)(void *)(d + 64),
                         _mm_loadu_si128((const __m128i *)(const void *)(p + 64)));
    }
#else
    memcpy(d, p, n);
#endif
}

/* 1 when the byte at p, starting a line, is encoded although printable: a '.' or the 'F' of
 * "From ", so that bodies survive SMTP dot-stuffing and mbox "From " quoting. */
static inline int qp_line_start_special(const unsigned char *p, const unsigned char *end) {
    unsigned c = *p; /* c | 0x68 is 0x6E for both '.' and 'F' (and a few others): one test */
    return (c | 0x68) == 0x6E &&
           (c == '.' || (c == 'F' && end - p >= 5 && memcmp(p, "From ", 5) == 0));
}

/* Writes the '.' or 'F' at p, starting a line, as "=2E" or "=46" (without the table, so that
 * the literal-run paths do not need its address); returns the new end of the output. */
static inline char *qp_put_line_start(char *d, const unsigned char *p) {
    memcpy(d, *p == '.' ? "=2E" : "=46", 3);
    return d + 3;
}

/* Writes "=XY" for the byte at p; returns the new end of the output. */
static inline char *qp_put_encoded1(char *d, const unsigned char *p) {
    memcpy(d, qp_enc[*p], 4); /* "=XY" and a byte the next write covers */
    return d + 3;
}

/* Writes "=XY" for each of the n bytes at p (a run above 0x7F); returns the new end of the
 * output. It works in whole groups of four, without a loop for the rest: up to 3 bytes past the
 * run are read (the block's slack has them) and up to 10 characters past the end are written
 * (QP_OVERRUN), which later writes cover. */
static inline char *qp_put_encoded(char *d, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i += 4) {
        memcpy(d + 3 * i, qp_enc[p[i]], 4);
        memcpy(d + 3 * i + 3, qp_enc[p[i + 1]], 4);
        memcpy(d + 3 * i + 6, qp_enc[p[i + 2]], 4);
        memcpy(d + 3 * i + 9, qp_enc[p[i + 3]], 4);
    }
    return d + 3 * n;
}

/* Writes n literal bytes at p that do not all fit on the current line (its 75th column is at
 * *lend): as many as fit, then each further line after a soft break, with the start-of-line rule
 * applied after each soft break. */
static MB_ALWAYS_INLINE inline char *qp_put_literal_lines(char *d, const unsigned char *p, size_t n,
                                                          const unsigned char *end, char **lend) {
    char *e = *lend;
    for (;;) { /* here n > e - d */
        size_t k = (size_t)(e - d);
        qp_copy(d, p, k);
        p += k, d += k, n -= k;
        memcpy(d, "=\r\n", 3), d += 3, e = d + QP_ROOM;
        if (qp_line_start_special(p, end)) d = qp_put_line_start(d, p++), n--;
        if (n <= (size_t)(e - d)) { /* the rest fits (or nothing is left) */
            qp_copy(d, p, n);
            d += n;
            break;
        }
    }
    *lend = e;
    return d;
}

/* Writes "=XY" for the n bytes at p (a run above 0x7F) that do not all fit the line (its 75th
 * column is at *lend): as many as fit (maybe none), then a soft break before each further line of
 * up to 25. */
static MB_ALWAYS_INLINE inline char *qp_put_encoded_lines(char *d, const unsigned char *p, size_t n,
                                                          char **lend) {
    size_t f = (size_t)(*lend - d) / 3; /* here f < n */
    d = qp_put_encoded(d, p, f);
    p += f, n -= f;
    for (;;) {
        memcpy(d, "=\r\n", 3), d += 3;
        if (n <= QP_ROOM / 3) break;
        d = qp_put_encoded(d, p, QP_ROOM / 3);
        p += QP_ROOM / 3, n -= QP_ROOM / 3;
    }
    *lend = d + QP_ROOM;
    return qp_put_encoded(d, p, n);
}

/* The output position and the line's 75th column (`lend`) after a helper that may break lines. */
typedef struct {
    char *d, *lend;
} qp_out;

/* Writes the n literal bytes at p: copied at once when they fit the line, else split. Returned
 * by value so that the caller keeps both pointers in registers. */
static inline qp_out qp_put_literal(char *d, const unsigned char *p, size_t n,
                                    const unsigned char *end, char *lend) {
    if (MB_LIKELY((size_t)(lend - d) >= n)) {
        qp_copy(d, p, n);
        return (qp_out){d + n, lend};
    }
    d = qp_put_literal_lines(d, p, n, end, &lend);
    return (qp_out){d, lend};
}

/* The encoder proper (see mb_qp_encode) from d on; returns where the output ends. Inlined twice
 * with `text` a constant, so that neither mode tests it per line break. */
static MB_ALWAYS_INLINE inline char *qp_encode_mode(const unsigned char *p,
                                                    const unsigned char *end, char *d,
                                                    unsigned flags, const int text) {
    char *const start = d;
    char *lend = d + QP_ROOM;
    unsigned char tail[2 * QP_SLACK];
    if (text && p < end && (*p == '\n' || *p == '\r')) { /* so that d > start at each later one */
        p += (*p == '\r' && end - p >= 2 && p[1] == '\n') ? 2 : 1;
        memcpy(d, "\r\n", 2);
        d += 2, lend = d + QP_ROOM;
    }
    if (p < end && qp_line_start_special(p, end)) d = qp_put_encoded1(d, p++);
    /* the last start of a block that has QP_SLACK bytes (none in a short input), then of one
     * with a byte in the tail copy */
    const unsigned char *last = (size_t)(end - p) >= QP_SLACK ? end - QP_SLACK : NULL;
    for (;;) {
        if (last) {
            do {
                const unsigned char *const b = p;
                uint64_t high, m = qp_special_mask(b, &high) | 1ull << 63;
                high &= ~(1ull << 63);
                size_t j = 0, n;         /* the next byte is b[j]; the block ends at 63 */
                if (m & 1) goto special; /* no literal run first (often: a run ended at the peek) */
                for (;;) {
                    n = (size_t)(unsigned)__builtin_ctzll(m >> j); /* literal bytes, maybe none */
                    if (j + n == 63) { /* the run goes on past the block? it ends the block */
                        n += qp_literal_prefix16(b + 63);
                        qp_out o = qp_put_literal(d, b + j, n, end, lend);
                        d = o.d, lend = o.lend, j += n;
                        break;
                    }
                    qp_out o = qp_put_literal(d, b + j, n, end, lend);
                    d = o.d, lend = o.lend, j += n;
                special:;
                    unsigned c = b[j]; /* j < 63 */
                    if (c == '=') {
                        if (lend - d < 3) memcpy(d, "=\r\n", 3), d += 3, lend = d + QP_ROOM;
                        memcpy(d, "=3D", 4); /* and a byte the next write covers */
                        d += 3, j++;
                    } else if (c > 0x7F) {
                        if (b[j + 1] > 0x7F && b[j + 2] <= 0x7F && lend - d >= 6) {
                            /* a run of two (a two-byte UTF-8 letter) that fits: the usual case */
                            memcpy(d, qp_enc[c], 4);
                            memcpy(d + 3, qp_enc[b[j + 1]], 4);
                            d += 6, j += 2;
                        } else { /* the run of bytes above 0x7F (it stops at 63: bit 63 is clear) */
                            n = (size_t)(unsigned)__builtin_ctzll(~(high >> j));
                            if ((size_t)(lend - d) >= 3 * n)
                                d = qp_put_encoded(d, b + j, n);
                            else
                                d = qp_put_encoded_lines(d, b + j, n, &lend);
                            j += n;
                        }
                    } else if (text && (c == '\n' || c == '\r')) {
                        if (d[-1] == ' ') { /* the space before the break is encoded (d > start) */
                            d--;
                            if (lend - d < 3) memcpy(d, "=\r\n", 3), d += 3;
                            memcpy(d, "=20", 3), d += 3;
                        }
                        j += (c == '\r' && end - (b + j) >= 2 && b[j + 1] == '\n') ? 2 : 1;
                        memcpy(d, "\r\n", 2);
                        d += 2, lend = d + QP_ROOM;
                        /* b[j] is readable: inside the block's slack, or the tail's zero padding */
                        if (qp_line_start_special(b + j, end)) d = qp_put_line_start(d, b + j++);
                    } else if (c == '\t' && end - (b + j) >= 2 &&
                               !(text && qp_class[b[j + 1]] == QP_BRK)) {
                        /* a tab that is not trailing */
                        if (d >= lend) memcpy(d, "=\r\n", 3), d += 3, lend = d + QP_ROOM;
                        *d++ = (char)c;
                        j++;
                    } else { /* DEL, any other control byte (line breaks too, in binary mode) */
                        if (b + j >= end) break; /* the padding past the tail */
                        if (lend - d < 3) memcpy(d, "=\r\n", 3), d += 3, lend = d + QP_ROOM;
                        d = qp_put_encoded1(d, b + j++);
                    }
                    if (MB_UNLIKELY(j >= 63)) break;
                }
                p = b + j;
            } while (p <= last);
        }
        if (p >= end || last == end - 1) break; /* done, or the tail was */
        size_t rest = (size_t)(end - p);        /* the tail, into the padded buffer */
        memset(tail, 0, sizeof tail);
        memcpy(tail, p, rest);
        p = tail, end = tail + rest, last = end - 1;
    }
    if (d > start && d[-1] == ' ') { /* a space ending the text is encoded */
        d--;
        if (lend - d < 3) memcpy(d, "=\r\n", 3), d += 3, lend = d + QP_ROOM;
        memcpy(d, "=20", 3), d += 3;
    }
    if ((flags & MB_QP_TERMINATE) && d + QP_ROOM != lend) {
        memcpy(d, "=\r\n", 3);
        d += 3;
    }
    return d;
}

/* Encodes `len` bytes; see mailbars_qp_encode. MB_QP_TERMINATE makes the output end in CRLF,
 * with a soft break when the input did not end in a line break (decoders then add nothing).
 * The rules, byte by byte: a line break (text mode) is written as CRLF; a literal byte (printable
 * ASCII but '=', or a space or tab not followed by a line break or the end, and not a '.' or
 * "From " starting a line) takes one column, with a soft break first when the line has 75; any
 * other byte is "=XY", with a soft break first when it would pass column 75.
 * The column is kept as the output position of the line's 75th (`lend`), so that "fits" is one
 * comparison. The input is taken in blocks of 63 bytes, classified through a mask of the bytes
 * that end a literal run (bit 63 always set, so every run ends inside the mask). Within a block,
 * each run of literal bytes is copied whole (a run reaching the block's end is followed 16 bytes
 * further) and the special byte after it is handled at once, without going back through the
 * mask: a '=' or a run of bytes above 0x7F (from the second mask; a run of two, the usual UTF-8
 * letter, tested directly) is written from the table, a control byte (line break, tab, other)
 * goes the slower way; runs that do not fit the line are split by helpers. The next block starts
 * where the last event stopped. The last bytes of the input (fewer than QP_SLACK) are copied
 * into a zero-padded buffer, so blocks and block copies never read past the input; a zero byte
 * past the end stops runs like any control byte. A space is copied with its run and taken back
 * when a line break or the end follows it (a line break starting the input is written first,
 * so that there is always a character before one). The start-of-line rule is applied where a
 * line starts before a literal byte: at the start, after a line break and after a soft break
 * inside a literal run. The loop is inlined once per mode (text, binary). */
int mb_qp_encode(const char *src, size_t len, unsigned flags, mailbars_buf *out) {
    const unsigned char *p = (const unsigned char *)src;
    if (len > SIZE_MAX / 4 - 64) return MAILBARS_ERR_NOMEM;
    /* Worst case: 3 characters per byte plus a 3-byte soft break per 25 encoded bytes. */
    if (mailbars_buf_reserve(out, len * 3 + len / 8 + 16 + QP_OVERRUN) != MAILBARS_OK)
        return MAILBARS_ERR_NOMEM;
    char *d = out->data + out->len;
    d = (flags & MB_QP_TEXT) ? qp_encode_mode(p, p + len, d, flags, 1)
                             : qp_encode_mode(p, p + len, d, flags, 0);
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
