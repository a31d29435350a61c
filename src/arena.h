/* A bump allocator: many small allocations, one release. Used for ASTs at compile time and
 * for per-render scratch (reset, not freed, between renders). */
#ifndef MAILBARS_ARENA_H
#define MAILBARS_ARENA_H

#include "internal.h"

typedef struct mb_arena_chunk mb_arena_chunk;
typedef struct mb_arena {
    mb_arena_chunk *head; /* current chunk; older ones follow `next` */
    size_t used;          /* bytes used in head */
    size_t limit;         /* 0 = unlimited, else total bytes allowed */
    size_t total;         /* bytes allocated in all chunks */
} mb_arena;

void mb_arena_init(mb_arena *a);
/* 8-byte aligned, zeroed. NULL on allocation failure. */
void *mb_arena_alloc(mb_arena *a, size_t n);
char *mb_arena_strndup(mb_arena *a, const char *s, size_t n);
/* Forgets every allocation but keeps the largest chunk for reuse. */
void mb_arena_reset(mb_arena *a);
void mb_arena_free(mb_arena *a);

#endif
