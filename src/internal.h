/* Shared internals of libmailbars: allocation, error filling, small utilities. */
#ifndef MAILBARS_INTERNAL_H
#define MAILBARS_INTERNAL_H

#include "mailbars.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define MB_LIKELY(x) __builtin_expect(!!(x), 1)
#define MB_ALWAYS_INLINE __attribute__((always_inline))
#define MB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MB_LIKELY(x) (x)
#define MB_ALWAYS_INLINE
#define MB_UNLIKELY(x) (x)
#define MB_PRINTF(a, b)
#endif

/* The allocator hook (alloc.c). mb_malloc(0) returns a unique non-NULL pointer or NULL. */
void *mb_malloc(size_t n);
void *mb_calloc(size_t count, size_t size);
void *mb_realloc(void *p, size_t n);
void mb_free(void *p);
char *mb_strndup(const char *s, size_t n);

/* Fills err (if non-NULL) with code, position and a formatted message; returns code. */
int mb_error(mailbars_error *err, int code, int line, int column, const char *fmt, ...)
    MB_PRINTF(5, 6);
int mb_verror(mailbars_error *err, int code, int line, int column, const char *fmt, va_list ap);

/* Appends a NUL-terminated string. */
static inline int mb_buf_puts(mailbars_buf *b, const char *s) {
    return mailbars_buf_append(b, s, strlen(s));
}
/* Appends one byte. */
static inline int mb_buf_putc(mailbars_buf *b, char c) {
    if (MB_LIKELY(b->len + 1 < b->cap)) {
        b->data[b->len++] = c;
        b->data[b->len] = 0;
        return MAILBARS_OK;
    }
    return mailbars_buf_append(b, &c, 1);
}
int mb_buf_printf(mailbars_buf *b, const char *fmt, ...) MB_PRINTF(2, 3);

/* JavaScript Number -> String (shortest round-trip). `out` needs 32 bytes; returns length. */
size_t mb_format_number(double d, char *out);

/* handlebars.js escaping: the class table (0 = safe, else an index into the replacement
 * texts) and a scanner returning the length of the leading run that needs no escaping. */
extern const unsigned char mb_esc_class[256];
extern const char *const mb_esc_text[8];
extern const unsigned char mb_esc_len[8];
size_t mb_escape_scan(const unsigned char *p, size_t n);

#if defined(__SSE2__)
#include <emmintrin.h>
/* Bit i set when p[i] (of 16 bytes) needs escaping. */
static inline unsigned mb_esc_mask16(__m128i v) {
    const __m128i amp = _mm_set1_epi8('&'), quot = _mm_set1_epi8('"'), apos = _mm_set1_epi8('\''),
                  bt = _mm_set1_epi8('`'), lo = _mm_set1_epi8('<' - 1), hi = _mm_set1_epi8('>' + 1);
    /* < = > are contiguous: one signed range test (they are below 0x80) */
    __m128i m = _mm_and_si128(_mm_cmpgt_epi8(v, lo), _mm_cmplt_epi8(v, hi));
    m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, amp), _mm_cmpeq_epi8(v, quot)));
    m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, apos), _mm_cmpeq_epi8(v, bt)));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* 1 with *x set when j is a jansson integer that JavaScript holds exactly (|x| <= 2^53), so
 * that String(x) is its decimal digits; past that JavaScript sees the nearest double. */
static inline int mb_js_int(const json_t *j, json_int_t *x) {
    if (!j || !json_is_integer(j)) return 0;
    *x = json_integer_value(j);
    return *x <= 9007199254740992LL && *x >= -9007199254740992LL;
}

/* Decimal form of an integer; `out` needs 21 bytes; returns the length. */
size_t mb_format_int(int64_t v, char *out);

/* Checks JSON text against MAILBARS_LIMIT_JSON_SIZE and MAILBARS_LIMIT_JSON_DEPTH of `limits`
 * (NULL: the defaults) before it is parsed: returns MAILBARS_OK, or the limit's code with err
 * filled (`what` names the text in the message; the position is where the depth is exceeded). */
int mb_json_check_limits(const char *s, size_t len, const char *what,
                         const mailbars_render_ctx *limits, mailbars_error *err);

/* handlebars.js Utils.isEmpty: falsy but not 0, or an empty array; NULL is undefined. */
int mb_value_is_empty(const json_t *v);

/* UTF-8 validation: returns the byte offset of the first invalid sequence, or len if valid. */
size_t mb_utf8_check(const unsigned char *s, size_t len);

/* mailbars_message_set_text (k = 0) or _set_html (k = 1) for text held in `b`, without a copy:
 * the message takes b's buffer and gives b its previous one (empty or stale: reset it before
 * use). On failure (invalid UTF-8, err filled) b is left as it was. `utf8_known`: the text is
 * valid UTF-8 by construction (mb_render_utf8_known), so the check is skipped; builds with
 * MAILBARS_VERIFY_UTF8_KNOWN (sanitizer and fuzz builds) check anyway and abort on a claim
 * that is wrong. */
int mb_message_take_part(mailbars_message *m, int k, mailbars_buf *b, int utf8_known,
                         mailbars_error *err);

#endif
