/* Shared bits of the libFuzzer harnesses: an always-on check macro (assert() is compiled out
 * in RelWithDebInfo builds), input splitting, and checks of generated mail text. */
#ifndef MAILBARS_FUZZ_COMMON_H
#define MAILBARS_FUZZ_COMMON_H

#include "mailbars.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fails the run (a crash libFuzzer records) when `cond` is false, whatever NDEBUG says. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Input sections are separated by this byte (ASCII record separator). */
#define FUZZ_SEP '\x1e'

/* One section of the input: a pointer into the fuzzer's buffer and its length. */
typedef struct fuzz_span {
    const char *p;
    size_t n;
} fuzz_span;

/* Splits [p, p+n) at FUZZ_SEP into at most `max` spans; the last span takes the rest.
 * Missing sections are empty. Returns how many separators were found. */
static inline size_t fuzz_split(const char *p, size_t n, fuzz_span *out, size_t max) {
    size_t k = 0, found = 0;
    for (size_t i = 0; i < max; i++) out[i] = (fuzz_span){p + n, 0};
    const char *start = p, *end = p + n;
    while (k + 1 < max) {
        const char *s = memchr(start, FUZZ_SEP, (size_t)(end - start));
        if (!s) break;
        out[k++] = (fuzz_span){start, (size_t)(s - start)};
        start = s + 1;
        found++;
    }
    out[k] = (fuzz_span){start, (size_t)(end - start)};
    return found;
}

/* A NUL-terminated copy of a span (the fuzzer's buffer is not terminated). */
static inline char *fuzz_strdup(fuzz_span s) {
    char *d = malloc(s.n + 1);
    if (!d) abort();
    if (s.n) memcpy(d, s.p, s.n);
    d[s.n] = 0;
    return d;
}

/* 1 when the header line [l, l+len) starts with one of the fields the builder writes. */
static inline int fuzz_known_field(const char *l, size_t len) {
    static const char *const fields[] = {
        "From:", "To:",         "Cc:",           "Reply-To:",     "Subject:",
        "Date:", "Message-ID:", "MIME-Version:", "Content-Type:", "Content-Transfer-Encoding:",
        NULL};
    for (size_t f = 0; fields[f]; f++) {
        size_t fl = strlen(fields[f]);
        if (len >= fl && memcmp(l, fields[f], fl) == 0) return 1;
    }
    return 0;
}

/* Checks a complete RFC 5322 message: only CRLF line breaks, only 7-bit bytes, no NUL, every
 * line <= 998 octets, and every header line (top level and in MIME parts) is either a
 * continuation or a field the builder writes, so no input can inject a header. */
static inline void fuzz_check_message(const char *m, size_t n) {
    char boundary[128] = "";
    size_t blen = 0;
    const char *bp = NULL;
    /* The multipart boundary, from the top-level header block. */
    const char *hend = NULL;
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(m + i, "\r\n\r\n", 4) == 0) {
            hend = m + i;
            break;
        }
    FUZZ_CHECK(hend != NULL);
    const char *ct = m;
    for (const char *p = m; p + 16 < hend; p++)
        if (memcmp(p, "\r\nContent-Type: ", 16) == 0) ct = p;
    for (const char *p = ct; p + 10 < hend; p++)
        if (memcmp(p, "boundary=\"", 10) == 0) {
            bp = p + 10;
            break;
        }
    if (bp) {
        const char *q = memchr(bp, '"', (size_t)(hend - bp));
        FUZZ_CHECK(q && (size_t)(q - bp) + 2 < sizeof boundary);
        boundary[0] = boundary[1] = '-';
        memcpy(boundary + 2, bp, (size_t)(q - bp));
        blen = (size_t)(q - bp) + 2;
        boundary[blen] = 0;
    }
    int in_headers = 1;
    size_t line = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)m[i];
        FUZZ_CHECK(c != 0 && c < 0x80);
        if (c == '\r') FUZZ_CHECK(i + 1 < n && m[i + 1] == '\n');
        if (c != '\n') continue;
        FUZZ_CHECK(i > 0 && m[i - 1] == '\r');
        const char *l = m + line;
        size_t len = i - 1 - line; /* without CRLF */
        FUZZ_CHECK(len <= 998);
        if (in_headers) {
            if (len == 0) {
                in_headers = 0;
            } else if (l[0] != ' ' && l[0] != '\t') {
                if (!fuzz_known_field(l, len))
                    fprintf(stderr, "unexpected header line: %.*s\n", (int)len, l);
                FUZZ_CHECK(fuzz_known_field(l, len));
            }
        } else if (blen && len == blen && memcmp(l, boundary, blen) == 0) {
            in_headers = 1; /* a part's headers follow a delimiter line */
        }
        line = i + 1;
    }
    FUZZ_CHECK(n >= 2 && m[n - 2] == '\r' && m[n - 1] == '\n');
}

#endif
