/* Reads of jansson values for the VM's hot paths. Each lookup through jansson's API costs a
 * call per step (iterator, key, key length, value, string, length); with jansson 2.14, whose
 * private layouts are mirrored below, the same reads are plain loads. jsonread.c checks the
 * mirror against the public API once per process, on probe values, and only then turns the
 * direct reads on; any other jansson, or a failed check, keeps every read on the API. */
#ifndef MAILBARS_JSONREAD_H
#define MAILBARS_JSONREAD_H

#include "internal.h"
#include <stddef.h>

/* jansson 2.14's json_string_t, json_array_t, json_object_t and hashtable pair. */
struct mb_jr_list {
    struct mb_jr_list *prev, *next;
};
struct mb_jr_pair {
    struct mb_jr_list list, ordered; /* an object iterator points at `ordered` */
    size_t hash;
    json_t *value;
    size_t key_len;
    char key[1];
};
struct mb_jr_object {
    json_t json;
    size_t size;
    void *buckets;
    size_t order;
    struct mb_jr_list list, ordered; /* the insertion-order list's head */
};
struct mb_jr_array {
    json_t json;
    size_t size, entries;
    json_t **table;
};
struct mb_jr_string {
    json_t json;
    char *value;
    size_t length;
};

/* 1 once the mirror is checked (direct reads); anything else: the API. */
extern int mb_jr_direct;

/* Runs the check once per process (thread-safe); a check that could not allocate its probes
 * is retried on the next call. */
void mb_jr_init(void);

/* A key of the root object that a template reads. */
typedef struct mb_jr_rootkey {
    const char *key;
    size_t len;
} mb_jr_rootkey;

/* Starts loading the data under root that a render is likely to read. Direct reads only, and
 * a hint: nothing is changed, nothing waited for but the loads themselves. jansson allocates
 * every pair, value and string apart, and a render that meets them one at a time waits on each
 * miss in turn. A parsed document lies in one stretch of the heap, which is asked for whole
 * when it is small (up to 64 KB); otherwise the data is walked three levels deep, at most 256
 * values, a level at a time so that the misses of a level overlap: of the root's keys, only
 * those in keys[0..nkeys) (keys NULL: all). Used before a message's parts are rendered.
 * Returns 1 when the stretch was asked for whole, 0 otherwise (for tests). */
int mb_jr_warm(const json_t *root, const mb_jr_rootkey *keys, size_t nkeys);

/* What mb_jr_warm reads first, asked for ahead of it (mailbars_ses_prefetch): two renders
 * ahead, the root's header; one render ahead, the bucket array or element table it points to
 * (reading the header asked for a render earlier). Direct reads only. */
void mb_jr_ahead(const json_t *root, int renders);

/* For tests: 1 forces direct reads (only after a passing check), 0 forces the API. */
void mb_jr_force(int direct);

#define MB_JR_PAIR(it) ((struct mb_jr_pair *)((char *)(it)-offsetof(struct mb_jr_pair, ordered)))

/* json_string_value / json_string_length of a string. */
static inline const char *mb_jr_str(const json_t *s) {
    return MB_LIKELY(mb_jr_direct == 1) ? ((const struct mb_jr_string *)s)->value
                                        : json_string_value(s);
}
static inline size_t mb_jr_strlen(const json_t *s) {
    return MB_LIKELY(mb_jr_direct == 1) ? ((const struct mb_jr_string *)s)->length
                                        : json_string_length(s);
}

/* json_array_size / json_array_get of an array (i < size). */
static inline size_t mb_jr_arrsize(const json_t *a) {
    return MB_LIKELY(mb_jr_direct == 1) ? ((const struct mb_jr_array *)a)->entries
                                        : json_array_size(a);
}
static inline json_t *mb_jr_arrget(const json_t *a, size_t i) {
    return MB_LIKELY(mb_jr_direct == 1) ? ((const struct mb_jr_array *)a)->table[i]
                                        : json_array_get(a, i);
}

/* json_object_size, json_object_iter and json_object_iter_next of an object. */
static inline size_t mb_jr_objsize(const json_t *o) {
    return MB_LIKELY(mb_jr_direct == 1) ? ((const struct mb_jr_object *)o)->size
                                        : json_object_size(o);
}
static inline void *mb_jr_iter(json_t *o) {
    if (MB_LIKELY(mb_jr_direct == 1)) {
        struct mb_jr_object *x = (struct mb_jr_object *)o;
        return x->ordered.next == &x->ordered ? NULL : x->ordered.next;
    }
    return json_object_iter(o);
}
static inline void *mb_jr_next(json_t *o, void *it) {
    if (MB_LIKELY(mb_jr_direct == 1)) {
        struct mb_jr_list *n = ((struct mb_jr_list *)it)->next;
        return n == &((struct mb_jr_object *)o)->ordered ? NULL : n;
    }
    return json_object_iter_next(o, it);
}

/* json_object_iter_key, _key_len and _value. */
static inline const char *mb_jr_key(void *it) {
    return MB_LIKELY(mb_jr_direct == 1) ? MB_JR_PAIR(it)->key : json_object_iter_key(it);
}
static inline size_t mb_jr_keylen(void *it) {
    return MB_LIKELY(mb_jr_direct == 1) ? MB_JR_PAIR(it)->key_len : json_object_iter_key_len(it);
}
static inline json_t *mb_jr_value(void *it) {
    return MB_LIKELY(mb_jr_direct == 1) ? MB_JR_PAIR(it)->value : json_object_iter_value(it);
}

#endif
