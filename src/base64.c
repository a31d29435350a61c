/* Base64 (RFC 2045 6.8): table-driven encoder with CRLF line breaks (and an AVX-512 VBMI one
 * chosen at run time), whitespace-tolerant decoder. Output space is reserved once, exactly, and
 * written through a raw pointer. */
#include "mime_internal.h"
#include "cpu.h"
#include <pthread.h>
#if MB_HAVE_AVX512
#include <immintrin.h>
#endif

static const char b64_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Rounds a requested line length down to whole 4-character groups (0 = unbroken). */
static size_t b64_line(size_t line_len) {
    if (line_len == 0) return 0;
    line_len -= line_len % 4;
    return line_len ? line_len : 4;
}

/* Exact output size: 4 characters per 3 input bytes, plus CRLF between full lines. */
size_t mb_base64_encoded_len(size_t len, size_t line_len) {
    size_t chars = (len + 2) / 3 * 4;
    line_len = b64_line(line_len);
    if (line_len == 0 || chars == 0) return chars;
    return chars + (chars - 1) / line_len * 2;
}

/* Two output characters for every 12-bit value, built once. */
static char b64_pair[4096][2];
static pthread_once_t b64_pair_once = PTHREAD_ONCE_INIT;

static void b64_pair_init(void) {
    for (int v = 0; v < 4096; v++) {
        b64_pair[v][0] = b64_alphabet[v >> 6];
        b64_pair[v][1] = b64_alphabet[v & 63];
    }
}

/* Encodes 3 bytes into 4 characters (two table lookups). */
static inline void b64_quad(const unsigned char *s, char *d) {
    uint32_t v = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];
    memcpy(d, b64_pair[v >> 12], 2);
    memcpy(d + 2, b64_pair[v & 4095], 2);
}

#if MB_HAVE_AVX512
/* For each 3-byte group b0 b1 b2, the bytes b1 b0 b2 b1 of its 32-bit lane. */
static const unsigned char b64_spread[64] = {
    1,  0,  2,  1,  4,  3,  5,  4,  7,  6,  8,  7,  10, 9,  11, 10, 13, 12, 14, 13, 16, 15,
    17, 16, 19, 18, 20, 19, 22, 21, 23, 22, 25, 24, 26, 25, 28, 27, 29, 28, 31, 30, 32, 31,
    34, 33, 35, 34, 37, 36, 38, 37, 40, 39, 41, 40, 43, 42, 44, 43, 46, 45, 47, 46};

/* 48 bytes (the low ones of `in`) into 64 characters: spread each group into a 32-bit lane,
 * pull its four 6-bit fields to the bottom of four bytes (bit offsets 10, 4, 22, 16 per lane),
 * then look them up in the alphabet (vpermb ignores the top two index bits). */
MB_TARGET_AVX512 static inline __m512i b64_block_avx512(__m512i in) {
    const __m512i spread = _mm512_loadu_si512(b64_spread);
    const __m512i shifts = _mm512_set1_epi64(0x3036242a1016040aLL);
    const __m512i alphabet = _mm512_loadu_si512(b64_alphabet);
    __m512i lanes = _mm512_permutexvar_epi8(spread, in);
    return _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(shifts, lanes), alphabet);
}

/* n input bytes (a multiple of 3) into n / 3 * 4 characters at d, touching no byte outside
 * s[0, n) or the characters: whole 48-byte blocks, then one block ending at n that overlaps
 * the previous one; a span under 48 bytes is loaded and stored under masks. */
MB_TARGET_AVX512 static inline char *b64_span_avx512(const unsigned char *s, size_t n, char *d) {
    const __mmask64 m48 = 0xFFFFFFFFFFFFull;
    size_t chars = n / 3 * 4;
    if (n < 48) {
        __m512i v = _mm512_maskz_loadu_epi8(_bzhi_u64(~0ull, (unsigned)n), s);
        _mm512_mask_storeu_epi8(d, _bzhi_u64(~0ull, (unsigned)chars), b64_block_avx512(v));
        return d + chars;
    }
    size_t i = 0;
    for (; n - i >= 48; i += 48)
        _mm512_storeu_si512(d + i / 3 * 4, b64_block_avx512(_mm512_maskz_loadu_epi8(m48, s + i)));
    if (i < n)
        _mm512_storeu_si512(d + chars - 64,
                            b64_block_avx512(_mm512_maskz_loadu_epi8(m48, s + n - 48)));
    return d + chars;
}

/* The scalar loop's work for the first `full` bytes (whole groups) of len: lines of per_line
 * bytes, CRLF after each full line that more input follows. A MIME line (57 bytes, 76
 * characters) with 73 bytes of input from its start, for plain 64-byte loads, is a block for
 * characters 0..63 and one for 12..75, whose last 14 go out with the CRLF in one 16-byte store:
 * stores, not blocks, bound the speed here. */
MB_TARGET_AVX512 static char *b64_encode_avx512(const unsigned char *s, size_t full, size_t len,
                                                size_t per_line, char *d) {
    size_t i = 0;
    if (per_line == 57) {
        const __m128i crlf = _mm_set1_epi16(0x0a0d);
        for (; len - i >= 73; i += 57, d += 78) {
            __m512i a = b64_block_avx512(_mm512_loadu_si512(s + i));
            __m512i b = b64_block_avx512(_mm512_loadu_si512(s + i + 9));
            _mm512_storeu_si512(d, a);
            _mm_storeu_si128((__m128i *)(d + 62),
                             _mm_alignr_epi8(crlf, _mm512_extracti32x4_epi32(b, 3), 2));
        }
    }
    for (; full - i >= per_line; i += per_line) {
        d = b64_span_avx512(s + i, per_line, d);
        if (i + per_line < len) *d++ = '\r', *d++ = '\n';
    }
    if (i < full) d = b64_span_avx512(s + i, full - i, d);
    return d;
}
#endif

/* Base64 with CRLF between lines of `line_len` characters (rounded down to a multiple of 4);
 * no line break after the last line. The AVX-512 path writes exactly the same bytes. */
int mailbars_base64_encode(const void *src, size_t len, size_t line_len, mailbars_buf *out) {
    const unsigned char *s = src;
    pthread_once(&b64_pair_once, b64_pair_init);
    size_t total = mb_base64_encoded_len(len, line_len);
    if (mailbars_buf_reserve(out, total) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    char *d = out->data + out->len;
    line_len = b64_line(line_len);
    size_t per_line = line_len ? line_len / 4 * 3 : (size_t)-1; /* input bytes per line */
    size_t full = len / 3 * 3;
    size_t i = 0;
#if MB_HAVE_AVX512
    if (mb_cpu_features() & MB_CPU_AVX512) {
        d = b64_encode_avx512(s, full, len, per_line, d);
        i = full;
    }
#endif
    while (i < full) {
        size_t end = full - i > per_line ? i + per_line : full;
        for (; i < end; i += 3, d += 4) b64_quad(s + i, d);
        if (i < len && i % per_line == 0) *d++ = '\r', *d++ = '\n';
    }
    if (i < len) {
        unsigned char tail[3] = {s[i], i + 1 < len ? s[i + 1] : 0, 0};
        b64_quad(tail, d);
        if (len - i == 1) d[2] = '=';
        d[3] = '=';
        d += 4;
    }
    out->len = (size_t)(d - out->data);
    out->data[out->len] = 0;
    return MAILBARS_OK;
}

/* Decoding table: 0..63 for alphabet characters, 64 for whitespace, 65 for '=', 255 invalid. */
static const unsigned char b64_dec[256] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 64,  64,  255, 255, 64,  255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 64,  255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 62,  255, 255, 255, 63,  52,  53,  54,  55,  56,  57,  58,  59,  60,
    61,  255, 255, 255, 65,  255, 255, 255, 0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,
    11,  12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25,  255, 255, 255, 255,
    255, 255, 26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,  41,  42,
    43,  44,  45,  46,  47,  48,  49,  50,  51,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255,
};

/* Decodes base64, skipping whitespace. Padding may only end the data; a lone trailing
 * character or any other byte is MAILBARS_ERR_ARGUMENT (out is then unchanged). */
int mailbars_base64_decode(const char *src, size_t len, mailbars_buf *out) {
    if (mailbars_buf_reserve(out, len / 4 * 3 + 3) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    size_t start = out->len;
    unsigned char *d = (unsigned char *)out->data + out->len;
    uint32_t acc = 0;
    int n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned v = b64_dec[(unsigned char)src[i]];
        if (v < 64) {
            if (pad) goto bad;
            acc = acc << 6 | v;
            if (++n == 4) {
                *d++ = (unsigned char)(acc >> 16);
                *d++ = (unsigned char)(acc >> 8);
                *d++ = (unsigned char)acc;
                n = 0;
                acc = 0;
            }
        } else if (v == 64) {
            continue;
        } else if (v == 65) {
            pad++;
            if (n + pad > 4 || n < 2) goto bad;
        } else {
            goto bad;
        }
    }
    if (n == 1 || (pad && n + pad != 4)) goto bad;
    if (n == 2) *d++ = (unsigned char)(acc >> 4);
    if (n == 3) {
        *d++ = (unsigned char)(acc >> 10);
        *d++ = (unsigned char)(acc >> 2);
    }
    out->len = (size_t)((char *)d - out->data);
    out->data[out->len] = 0;
    return MAILBARS_OK;
bad:
    out->len = start;
    out->data[start] = 0;
    return MAILBARS_ERR_ARGUMENT;
}
