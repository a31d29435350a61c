/* The VM's fast paths against handlebars.js' output: lookups by remembered key position
 * (objects of changing shapes, near-miss keys of every length class, objects past the scan
 * limit, NUL in keys), `each` bodies run inline (with values that force the general path
 * mid-list), and short-string escaping. fast_paths.jsonl holds each case with the output
 * handlebars.js 4.7.10 gave for it. Every case renders three times on one state, in forward and
 * reverse order, so each runs with cold hints and with hints left by other cases. All of it
 * runs twice: with jansson's values read directly (jsonread.h) and through jansson's API. */
#include "jsonread.h"
#include "mailbars.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tcase {
    mailbars_template *tpl;
    json_t *data;
    const char *want;
    size_t want_len;
    json_t *root;
} tcase;

static int failures, checks;

/* Renders case c and compares; `round` names the pass in messages. */
static void run_case(mailbars_render_state *st, const tcase *c, size_t i, int round) {
    mailbars_error err;
    checks++;
    int rc = mailbars_render(st, c->tpl, c->data, NULL, &err);
    size_t len;
    const char *out = mailbars_render_output(st, &len);
    if (rc || len != c->want_len || memcmp(out, c->want, len)) {
        failures++;
        fprintf(stderr, "case %zu round %d: rc %d (%s)\n  got  [%.*s]\n  want [%s]\n", i + 1, round,
                rc, rc ? err.message : "", (int)len, out, c->want);
    }
}

/* The smallest value of limit `which` that lets `tpl` render `data` (searched up to 100,000),
 * and through *code the status one below it gives. */
static uint64_t min_limit(const char *tpl, const char *data, mailbars_limit which, int *code) {
    mailbars_error err;
    mailbars_template *t = mailbars_compile(NULL, tpl, strlen(tpl), NULL, &err);
    json_t *d = json_loads(data, 0, NULL);
    uint64_t lo = 1, hi = 100000;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        mailbars_render_ctx *rc = mailbars_render_ctx_new();
        mailbars_render_ctx_set_limit(rc, which, mid);
        mailbars_render_state *st = mailbars_render_state_new(rc);
        if (mailbars_render(st, t, d, NULL, &err) == MAILBARS_OK)
            hi = mid;
        else
            lo = mid + 1, *code = err.code;
        mailbars_render_state_free(st);
        mailbars_render_ctx_free(rc);
    }
    json_decref(d);
    mailbars_template_free(t);
    return lo;
}

/* Inline `each` bodies spend steps and call depth exactly as exec does: the same template
 * needs the same limits whether its items take the inline route (strings) or exec (numbers). */
static void test_limits_match(void) {
    const char *tpl =
        "{{#each xs}}<{{#if a}}{{n}}{{#unless b}}!{{/unless}}{{else}}-{{/if}}>{{/each}}";
    const char *strs = "{\"xs\":[{\"a\":1,\"n\":\"x\"},{\"a\":0,\"n\":\"y\"},"
                       "{\"a\":1,\"b\":1,\"n\":\"z\"}]}";
    const char *nums = "{\"xs\":[{\"a\":1,\"n\":1},{\"a\":0,\"n\":2},"
                       "{\"a\":1,\"b\":1,\"n\":3}]}";
    const mailbars_limit which[] = {MAILBARS_LIMIT_STEPS, MAILBARS_LIMIT_CALL_DEPTH};
    for (int k = 0; k < 2; k++) {
        int c1 = 0, c2 = 0;
        uint64_t a = min_limit(tpl, strs, which[k], &c1), b = min_limit(tpl, nums, which[k], &c2);
        checks++;
        if (a != b || c1 != c2 || !c1) {
            failures++;
            fprintf(stderr,
                    "limit %d: inline route needs %llu (status %d), exec %llu (status %d)\n",
                    (int)which[k], (unsigned long long)a, c1, (unsigned long long)b, c2);
        }
    }
}

/* Every case of the file three times both ways round, then keys with a NUL inside. */
static void run_all(mailbars_render_state *st, tcase *cases, size_t n) {
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < n; i++) run_case(st, &cases[i], i, round);
        for (size_t i = n; i-- > 0;) run_case(st, &cases[i], i, round);
    }
    /* keys with a NUL inside: "a\0b" must not answer for "a" */
    {
        mailbars_error err;
        const char *src = "{{#each xs}}{{a}}.{{/each}}";
        mailbars_template *t = mailbars_compile(NULL, src, strlen(src), NULL, &err);
        /* jansson's parser refuses NUL in keys; its API takes them */
        json_t *d = json_object(), *xs = json_array(), *o1 = json_object(), *o2 = json_object(),
               *o3 = json_object();
        json_object_setn_new(o1, "a\0b", 3, json_string("no"));
        json_object_set_new(o1, "a", json_string("yes"));
        json_object_setn_new(o2, "a\0", 2, json_string("no"));
        json_object_set_new(o3, "a", json_string("ok"));
        json_array_append_new(xs, o1);
        json_array_append_new(xs, o2);
        json_array_append_new(xs, o3);
        json_object_set_new(d, "xs", xs);
        tcase c = {t, d, "yes..ok.", 8, NULL};
        for (int round = 0; round < 3; round++) run_case(st, &c, n, round);
        json_decref(d);
        mailbars_template_free(t);
    }
}

/* mb_jr_warm only reads: on data of every shape (empty, deep, wide, long arrays, big objects
 * whose bucket arrays have grown, after deletes) it must leave the data as it was, and under
 * ASan it must read nothing it should not. */
static void test_warm(void) {
    json_error_t je;
    static const char *const docs[] = {
        "{}",
        "[]",
        "\"s\"",
        "3",
        "null",
        "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":\"deep\"}}}},\"x\":[[[[1]]]]}",
        "{\"s\":\"a\\u0000b\",\"arr\":[{},[],\"x\",{\"k\":\"v\"},1,2.5,true,null]}"};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        json_t *d = json_loads(docs[i], JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
        char *before = json_dumps(d, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        /* only an object with pairs can be asked for as one stretch (whether it is depends
         * on where the allocator put them); anything else is walked */
        int span = mb_jr_warm(d, NULL, 0);
        checks++;
        if (span && !(d && json_is_object(d) && json_object_size(d) > 0)) failures++;
        mb_jr_warm(d, (const mb_jr_rootkey[]){{"a", 1}, {"arr", 3}}, 2);
        char *after = json_dumps(d, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        checks++;
        if (!d || !before || !after || strcmp(before, after)) failures++;
        free(before), free(after);
        json_decref(d);
    }
    json_t *big = json_object(), *arr = json_array();
    char key[16];
    for (int i = 0; i < 500; i++) { /* buckets beyond what warm scans, collisions */
        snprintf(key, sizeof key, "k%d", i);
        json_object_set_new(big, key, i % 3 ? json_string(key) : json_pack("{s:[i]}", "n", i));
        json_array_append_new(arr, json_string(key));
    }
    for (int i = 0; i < 500; i += 7) {
        snprintf(key, sizeof key, "k%d", i);
        json_object_del(big, key);
    }
    json_object_set(big, "arr", arr);
    size_t size = json_object_size(big);
    checks++; /* too many buckets to scan for a stretch: walked */
    if (mb_jr_warm(big, NULL, 0) != 0) failures++;
    mb_jr_warm(big, (const mb_jr_rootkey[]){{"arr", 3}, {"k1", 2}}, 2);
    /* pairs put in apart, 100 KB of other values allocated between them (whether they land
     * far apart is the allocator's choice: glibc's puts them 100 KB apart, and the data is
     * walked; ASan's groups allocations by size): the data is left as it was */
    json_t *apart = json_pack("{s:s}", "a", "x"), *fill = json_array();
    char kb[1024];
    memset(kb, 'f', sizeof kb - 1), kb[sizeof kb - 1] = 0;
    for (int i = 0; i < 100; i++) json_array_append_new(fill, json_string(kb));
    json_object_set_new(apart, "b", json_string("y"));
    checks++;
    mb_jr_warm(apart, NULL, 0);
    if (!apart || json_array_size(fill) != 100 || json_object_size(apart) != 2 ||
        strcmp(json_string_value(json_object_get(apart, "b")), "y"))
        failures++;
    json_decref(fill), json_decref(apart);
    mb_jr_warm(arr, NULL, 0);
    mb_jr_warm(NULL, NULL, 0);
    checks++;
    if (json_object_size(big) != size || json_array_size(arr) != 500) failures++;
    json_decref(arr);
    json_decref(big);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_fast_paths fast_paths.jsonl\n");
        return 64;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 74;
    }
    tcase cases[64];
    size_t n = 0;
    char line[1 << 14];
    while (n < 64 && fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *root = json_loads(line, JSON_ALLOW_NUL, &je); /* integers stay integers */
        if (!root) {
            fprintf(stderr, "%s:%d: %s\n", argv[1], je.line, je.text);
            return 1;
        }
        json_t *tpl = json_object_get(root, "template"), *want = json_object_get(root, "expected");
        mailbars_error err;
        cases[n].tpl =
            mailbars_compile(NULL, json_string_value(tpl), json_string_length(tpl), NULL, &err);
        if (!cases[n].tpl) {
            fprintf(stderr, "case %zu: %s\n", n + 1, err.message);
            return 1;
        }
        cases[n].data = json_object_get(root, "data");
        cases[n].want = json_string_value(want);
        cases[n].want_len = json_string_length(want);
        cases[n].root = root;
        n++;
    }
    fclose(f);
    mailbars_render_state *st = mailbars_render_state_new(NULL);
#if JANSSON_MAJOR_VERSION == 2 && JANSSON_MINOR_VERSION == 14
    /* the check in jsonread.c must accept the jansson it was written for */
    checks++;
    if (mb_jr_direct != 1) {
        failures++;
        fprintf(stderr, "direct reads are off with jansson %s\n", jansson_version_str());
    }
#endif
    for (int direct = 1; direct >= 0; direct--) {
        mb_jr_force(direct);
        run_all(st, cases, n);
    }
    mb_jr_force(1);
    mailbars_render_state_free(st);
    test_limits_match();
    test_warm();
    for (size_t i = 0; i < n; i++) {
        mailbars_template_free(cases[i].tpl);
        json_decref(cases[i].root);
    }
    printf("fast paths: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
