/* Bump allocator with chunk reuse: see arena.h. */
#include "arena.h"

struct mb_arena_chunk {
    mb_arena_chunk *next;
    size_t size;
    max_align_t data[];
};

void mb_arena_init(mb_arena *a) {
    memset(a, 0, sizeof *a);
}

void *mb_arena_alloc(mb_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->used + n > a->head->size) {
        size_t size = a->head ? a->head->size * 2 : 4096;
        while (size < n) size *= 2;
        if (a->limit && a->total + size > a->limit) return NULL;
        mb_arena_chunk *c = mb_malloc(sizeof *c + size);
        if (!c) return NULL;
        c->next = a->head;
        c->size = size;
        a->head = c;
        a->used = 0;
        a->total += size;
    }
    void *p = (char *)a->head->data + a->used;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *mb_arena_strndup(mb_arena *a, const char *s, size_t n) {
    char *d = mb_arena_alloc(a, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void mb_arena_reset(mb_arena *a) {
    if (!a->head) return;
    mb_arena_chunk *keep = a->head, *c = keep->next;
    while (c) {
        mb_arena_chunk *n = c->next;
        mb_free(c);
        c = n;
    }
    keep->next = NULL;
    a->used = 0;
    a->total = keep->size;
}

void mb_arena_free(mb_arena *a) {
    mb_arena_chunk *c = a->head;
    while (c) {
        mb_arena_chunk *n = c->next;
        mb_free(c);
        c = n;
    }
    mb_arena_init(a);
}
