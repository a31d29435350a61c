/* The check that turns on jsonread.h's direct reads: jansson 2.14 by its header and by the
 * library loaded, and every mirrored field equal to what the public API returns on probe
 * values (objects with keys of several lengths, an empty one, after a delete; arrays; strings
 * with an embedded NUL). */
#include "jsonread.h"
#include <pthread.h>
#include <string.h>

int mb_jr_direct;

static int g_checked; /* 0: not yet, 1: direct reads hold, 2: they do not */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* Every field of the mirror against the API for one object. */
static int object_matches(json_t *o) {
    struct mb_jr_object *x = (struct mb_jr_object *)o;
    if (x->size != json_object_size(o)) return 0;
    void *it = json_object_iter(o);
    void *mine = x->ordered.next == &x->ordered ? NULL : x->ordered.next;
    if (mine != it) return 0;
    for (; it; it = json_object_iter_next(o, it)) {
        struct mb_jr_pair *p = MB_JR_PAIR(it);
        struct mb_jr_list *n = p->ordered.next;
        if (p->key != json_object_iter_key(it) || p->key_len != json_object_iter_key_len(it) ||
            p->value != json_object_iter_value(it) ||
            (n == &x->ordered ? NULL : (void *)n) != json_object_iter_next(o, it))
            return 0;
    }
    /* the bucket array that mb_jr_warm reads: a bucket is empty (both ends at the list head)
     * or starts and ends at pairs of this object */
    const struct mb_jr_list *const *b = x->buckets;
    if (x->order > 20 || ((size_t)1 << x->order) < x->size) return 0;
    for (size_t k = 0; k < (size_t)1 << x->order; k++) {
        if (b[2 * k] == &x->list) {
            if (b[2 * k + 1] != &x->list) return 0;
            continue;
        }
        int first = 0, last = 0;
        for (it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
            first |= (const void *)b[2 * k] == (const void *)MB_JR_PAIR(it);
            last |= (const void *)b[2 * k + 1] == (const void *)MB_JR_PAIR(it);
        }
        if (!first || !last) return 0;
    }
    return 1;
}

static int string_matches(json_t *s) {
    const struct mb_jr_string *x = (const struct mb_jr_string *)s;
    return x->value == json_string_value(s) && x->length == json_string_length(s);
}

static int array_matches(json_t *a) {
    const struct mb_jr_array *x = (const struct mb_jr_array *)a;
    if (x->entries != json_array_size(a)) return 0;
    for (size_t i = 0; i < x->entries; i++)
        if (x->table[i] != json_array_get(a, i)) return 0;
    return 1;
}

/* 1: the mirror holds; 2: it does not; 0: the probes could not be built (out of memory). */
static int probe(void) {
#if JANSSON_MAJOR_VERSION == 2 && JANSSON_MINOR_VERSION == 14
    const char *v = jansson_version_str();
    if (strncmp(v, "2.14", 4) != 0 || (v[4] != 0 && v[4] != '.')) return 2;
    static const char *const keys[] = {"", "a", "key", "eight8ch", "a key of twenty chars"};
    const size_t nkeys = sizeof keys / sizeof *keys;
    int result = 0;
    json_t *o = json_object(), *empty = json_object(), *a = json_array(), *a0 = json_array();
    json_t *s = json_stringn("a\0b", 3), *s0 = json_string("");
    if (!o || !empty || !a || !a0 || !s || !s0) goto done;
    for (size_t i = 0; i < nkeys; i++) {
        json_t *val = json_integer((json_int_t)i);
        if (!val || json_object_set_new(o, keys[i], val) || json_array_append(a, val)) goto done;
    }
    result = object_matches(o) && object_matches(empty) && array_matches(a) && array_matches(a0) &&
                     string_matches(s) && string_matches(s0)
                 ? 1
                 : 2;
    if (result == 1 && (json_object_del(o, "key") || !object_matches(o))) result = 2;
done:
    json_decref(o), json_decref(empty), json_decref(a), json_decref(a0);
    json_decref(s), json_decref(s0);
    return result;
#else
    return 2;
#endif
}

void mb_jr_init(void) {
    if (__atomic_load_n(&g_checked, __ATOMIC_ACQUIRE)) return;
    pthread_mutex_lock(&g_lock);
    if (!g_checked) {
        int r = probe();
        if (r) {
            __atomic_store_n(&mb_jr_direct, r == 1, __ATOMIC_RELAXED);
            __atomic_store_n(&g_checked, r, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&g_lock);
}

void mb_jr_force(int direct) {
    mb_jr_init();
    mb_jr_direct = direct && g_checked == 1;
}

/* Asks for an object's bucket array or an array's element table, a line at a time (up to 4
 * lines); anything else has neither. */
static void warm_table(const json_t *v) {
    const void *p = NULL;
    size_t n = 0;
    if (json_is_object(v)) {
        const struct mb_jr_object *x = (const struct mb_jr_object *)v;
        p = x->buckets, n = x->order < 7 ? (size_t)16 << x->order : 0;
    } else if (json_is_array(v)) {
        const struct mb_jr_array *a = (const struct mb_jr_array *)v;
        p = a->table, n = a->entries * sizeof(json_t *);
    }
    for (size_t o = 0; o < n && o < 256; o += 64) __builtin_prefetch((const char *)p + o);
}

/* 1 when the pair's key is one of keys[0..nkeys) (no keys: every key is). */
static int warm_wanted(const struct mb_jr_pair *pr, const mb_jr_rootkey *keys, size_t nkeys) {
    if (!keys) return 1;
    for (size_t i = 0; i < nkeys; i++)
        if (keys[i].len == pr->key_len && !memcmp(keys[i].key, pr->key, pr->key_len)) return 1;
    return 0;
}

/* One level of mb_jr_warm: asks for the lines of the objects' pairs (through their bucket
 * arrays, which hold the first and last pair of every bucket: every pair but the middle ones
 * of buckets of three or more, without a list to follow) and the arrays' elements, then
 * for the values of those pairs (of the pairs named in `keys`, if given), then for the
 * strings' bytes and the next level's bucket arrays and element tables; objects and arrays
 * found go in `next`. Each step touches only lines the step before asked for, many at a time. */
static size_t warm_level(const json_t *const *cur, size_t nc, const json_t **next, size_t cap,
                         unsigned *budget, const mb_jr_rootkey *keys, size_t nkeys) {
    const struct mb_jr_pair *pairs[128];
    const json_t *vals[128];
    size_t np = 0, nv = 0, nn = 0;
    for (size_t i = 0; i < nc; i++) {
        if (json_is_object(cur[i])) {
            const struct mb_jr_object *x = (const struct mb_jr_object *)cur[i];
            const struct mb_jr_list *const *b = x->buckets; /* first, last per bucket */
            size_t nb = x->order < 7 ? (size_t)1 << x->order : 0;
            for (size_t k = 0; k < nb && np < 128 && *budget; k++) {
                const struct mb_jr_list *first = b[2 * k];
                if (first == &x->list) continue; /* empty */
                __builtin_prefetch(first);
                pairs[np++] = (const struct mb_jr_pair *)(const void *)first, (*budget)--;
                const struct mb_jr_list *last = b[2 * k + 1]; /* a bucket of two or more */
                if (last != first && np < 128 && *budget) {
                    __builtin_prefetch(last);
                    pairs[np++] = (const struct mb_jr_pair *)(const void *)last, (*budget)--;
                }
            }
        } else if (json_is_array(cur[i])) {
            const struct mb_jr_array *a = (const struct mb_jr_array *)cur[i];
            for (size_t k = 0; k < a->entries && k < 16 && nv < 128 && *budget; k++) {
                __builtin_prefetch(a->table[k]);
                vals[nv++] = a->table[k], (*budget)--;
            }
        }
    }
    for (size_t i = 0; i < np && nv < 128; i++) {
        if (!warm_wanted(pairs[i], keys, nkeys)) continue;
        __builtin_prefetch(pairs[i]->value);
        vals[nv++] = pairs[i]->value;
    }
    for (size_t i = 0; i < nv; i++) {
        const json_t *v = vals[i];
        if (json_is_string(v)) {
            __builtin_prefetch(((const struct mb_jr_string *)v)->value);
        } else if ((json_is_object(v) || json_is_array(v)) && nn < cap) {
            warm_table(v);
            next[nn++] = v;
        }
    }
    return nn;
}

void mb_jr_ahead(const json_t *root, int renders) {
    if (mb_jr_direct != 1 || !root) return;
    if (renders >= 2) { /* the header, which may cross a line */
        __builtin_prefetch(root);
        /* an integer: root may be a smaller value than an object */
        __builtin_prefetch((const void *)((uintptr_t)root + sizeof(struct mb_jr_object) - 1));
    } else {
        warm_table(root); /* reads the header asked for a render ago */
    }
}

/* Largest stretch of heap warm_span asks for, in bytes. */
#define WARM_SPAN_MAX 65536

/* jansson's parser allocates a document in order: an object before its values, a value before
 * the pair that holds it. A parsed object therefore lies, with everything under it, between its
 * own address and its last pair, and that pair's address is in the root's bucket array. When
 * that stretch is at most WARM_SPAN_MAX bytes, every line of it is asked for at once: one trip
 * to memory where the walk makes one per step. Returns 0 (nothing asked for but the root's own
 * lines) when the root is not an object, has no pairs or too many buckets to scan, or its
 * pairs lie too far apart (data put together piece by piece); the walk does it then. */
static int warm_span(const json_t *root) {
    if (!json_is_object(root)) return 0;
    const struct mb_jr_object *x = (const struct mb_jr_object *)root;
    const struct mb_jr_list *const *b = x->buckets;
    size_t nb = x->order < 7 ? (size_t)1 << x->order : 0;
    uintptr_t lo = (uintptr_t)root, hi = lo;
    size_t found = 0;
    for (size_t k = 0; k < 2 * nb; k++) { /* the first and the last pair of each bucket */
        if (b[k] == &x->list) continue;
        uintptr_t q = (uintptr_t)b[k];
        lo = q < lo ? q : lo, hi = q > hi ? q : hi, found++;
    }
    if (!found || hi - lo > WARM_SPAN_MAX) return 0;
    /* integers, not pointers: the stretch is not one C object; a prefetch never faults */
    for (uintptr_t q = lo & ~(uintptr_t)63; q <= hi + sizeof(struct mb_jr_pair) + 64; q += 64)
        __builtin_prefetch((const void *)q);
    return 1;
}

int mb_jr_warm(const json_t *root, const mb_jr_rootkey *keys, size_t nkeys) {
    if (mb_jr_direct != 1 || !root) return 0;
    const json_t *a[32], *b[32], **cur = a, **next = b;
    size_t nc = 1;
    unsigned budget = 256;
    a[0] = root;
    warm_table(root);
    if (warm_span(root)) return 1;
    for (int depth = 0; depth < 3 && nc && budget; depth++) {
        nc = warm_level(cur, nc, next, 32, &budget, depth ? NULL : keys, nkeys);
        const json_t **t = cur;
        cur = next, next = t;
    }
    return 0;
}
