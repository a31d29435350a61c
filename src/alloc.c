/* The allocator hook and the growable buffer every stage writes into. */
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>

static mailbars_malloc_fn g_malloc = malloc;
static mailbars_realloc_fn g_realloc = realloc;
static mailbars_free_fn g_free = free;

void mailbars_set_allocator(mailbars_malloc_fn m, mailbars_realloc_fn r, mailbars_free_fn f) {
    g_malloc = m ? m : malloc;
    g_realloc = r ? r : realloc;
    g_free = f ? f : free;
}

void *mb_malloc(size_t n) {
    return g_malloc(n ? n : 1);
}

/* calloc through the hook, with the multiplication checked for overflow. */
void *mb_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = mb_malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void *mb_realloc(void *p, size_t n) {
    return g_realloc(p, n ? n : 1);
}

void mb_free(void *p) {
    if (p) g_free(p);
}

void mailbars_free(void *p) {
    mb_free(p);
}

char *mb_strndup(const char *s, size_t n) {
    char *d = mb_malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void mailbars_buf_init(mailbars_buf *b) {
    b->data = NULL;
    b->len = b->cap = 0;
}

void mailbars_buf_free(mailbars_buf *b) {
    mb_free(b->data);
    mailbars_buf_init(b);
}

void mailbars_buf_reset(mailbars_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

/* Grows geometrically so appends are amortised O(1); keeps room for the trailing NUL. */
int mailbars_buf_reserve(mailbars_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len - 1) return MAILBARS_ERR_NOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return MAILBARS_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = mb_realloc(b->data, cap);
    if (!d) return MAILBARS_ERR_NOMEM;
    b->data = d;
    b->cap = cap;
    return MAILBARS_OK;
}

int mailbars_buf_append(mailbars_buf *b, const void *data, size_t len) {
    if (b->len + len + 1 > b->cap && mailbars_buf_reserve(b, len) != MAILBARS_OK)
        return MAILBARS_ERR_NOMEM;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
    return MAILBARS_OK;
}

int mb_buf_printf(mailbars_buf *b, const char *fmt, ...) {
    va_list ap;
    char tmp[256];
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return MAILBARS_ERR_INTERNAL;
    if ((size_t)n < sizeof tmp) return mailbars_buf_append(b, tmp, (size_t)n);
    if (mailbars_buf_reserve(b, (size_t)n) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MAILBARS_OK;
}
