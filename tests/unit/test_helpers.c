/* Custom helpers through the public API: blocks captured by helpers nested deeper than the
 * render state's first set of capture buffers (each capture must stay where it is while more
 * are taken), SafeString results written out and used as subexpression values, and no
 * allocation per render once the state is warm, counted through both allocator hooks (the
 * library's and jansson's). */
#include "mailbars.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
static long g_allocs; /* allocations through either hook */

static void *count_malloc(size_t n) {
    g_allocs++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
    g_allocs++;
    return realloc(p, n);
}

/* {{#twice}}…{{/twice}}: its block twice, each through a capture buffer. */
static int h_twice(mailbars_call *call, void *ud) {
    (void)ud;
    for (int i = 0; i < 2; i++) {
        mailbars_buf *cap = NULL;
        int rc = mailbars_call_fn(call, mailbars_call_context(call), NULL, NULL, 0, &cap);
        if (!rc) rc = mailbars_call_write(call, cap->data ? cap->data : "", cap->len);
        if (rc) return rc;
    }
    return MAILBARS_OK;
}

/* {{bold s}}: "<b>" + s + "</b>" as a SafeString (not escaped again). */
static int h_bold(mailbars_call *call, void *ud) {
    mailbars_buf *b = ud;
    json_t *s = mailbars_call_arg(call, 0);
    mailbars_buf_reset(b);
    int rc = mailbars_buf_append(b, "<b>", 3);
    if (!rc && json_is_string(s))
        rc = mailbars_buf_append(b, json_string_value(s), json_string_length(s));
    if (!rc) rc = mailbars_buf_append(b, "</b>", 4);
    /* the last result wins: the first one must not show */
    if (!rc) rc = mailbars_call_return_safe(call, "wrong", 5);
    return rc ? rc : mailbars_call_return_safe(call, b->data, b->len);
}

/* {{len s}}: the length of a string, returned as a JSON number. */
static int h_len(mailbars_call *call, void *ud) {
    (void)ud;
    json_t *s = mailbars_call_arg(call, 0);
    return mailbars_call_return(
        call, json_integer(json_is_string(s) ? (json_int_t)json_string_length(s) : -1));
}

static void expect(mailbars_env *env, mailbars_render_state *st, const char *src, json_t *data,
                   const char *want) {
    mailbars_error err;
    checks++;
    mailbars_template *t = mailbars_compile(env, src, strlen(src), NULL, &err);
    if (!t) {
        failures++;
        fprintf(stderr, "%s: compile: %s\n", src, err.message);
        return;
    }
    for (int round = 0; round < 2; round++) {
        int rc = mailbars_render(st, t, data, NULL, &err);
        size_t n;
        const char *out = mailbars_render_output(st, &n);
        if (rc || n != strlen(want) || memcmp(out, want, n)) {
            failures++;
            fprintf(stderr, "%s (round %d): rc %d %s\n  got  [%.*s]\n  want [%s]\n", src, round, rc,
                    rc ? err.message : "", (int)n, out, want);
            break;
        }
    }
    mailbars_template_free(t);
}

/* Allocations made by `runs` renders of src on a warm state. */
static long allocs_per_renders(mailbars_env *env, mailbars_render_state *st, const char *src,
                               json_t *data, int runs) {
    mailbars_error err;
    mailbars_template *t = mailbars_compile(env, src, strlen(src), NULL, &err);
    if (!t) return -1;
    for (int i = 0; i < 3; i++) mailbars_render(st, t, data, NULL, &err); /* warm up */
    long before = g_allocs;
    for (int i = 0; i < runs; i++)
        if (mailbars_render(st, t, data, NULL, &err)) return -1;
    long n = g_allocs - before;
    mailbars_template_free(t);
    return n;
}

int main(void) {
    mailbars_set_allocator(count_malloc, count_realloc, free);
    json_set_alloc_funcs(count_malloc, free);
    mailbars_buf scratch = {0};
    mailbars_env *env = mailbars_env_new();
    if (mailbars_env_register_helper(env, "twice", h_twice, NULL) ||
        mailbars_env_register_helper(env, "bold", h_bold, &scratch) ||
        mailbars_env_register_helper(env, "len", h_len, NULL)) {
        fprintf(stderr, "cannot register helpers\n");
        return 1;
    }
    mailbars_render_state *st = mailbars_render_state_new(NULL);
    json_t *data = json_pack("{s:s, s:[s,s]}", "name", "a&b", "xs", "p", "q");

    /* 7 captures held at once: past the first 4 buffers of the state */
    char src[512] = "", want[256] = "";
    for (int i = 0; i < 7; i++) strcat(src, "{{#twice}}");
    strcat(src, "x");
    for (int i = 0; i < 7; i++) strcat(src, "{{/twice}}");
    memset(want, 'x', 128);
    expect(env, st, src, data, want);
    /* captures inside captures, with SafeString results taken at every level */
    expect(env, st,
           "{{#twice}}{{#twice}}{{#twice}}{{#twice}}{{#twice}}{{bold name}}{{/twice}}"
           "{{/twice}}{{/twice}}{{/twice}}{{/twice}}",
           data,
           "<b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b>"
           "<b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b>"
           "<b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b>"
           "<b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b><b>a&b</b>");
    /* a SafeString as a subexpression's value: a string of its own, not escaped by {{ }} */
    expect(env, st, "{{len (bold name)}} {{bold (bold name)}}", data, "10 <b><b>a&b</b></b>");
    expect(env, st, "{{#each xs}}[{{bold this}}]{{/each}}", data, "[<b>p</b>][<b>q</b>]");
    /* {{{ }}} and {{ }} alike leave a SafeString as it is */
    expect(env, st, "{{{bold name}}}|{{bold name}}", data, "<b>a&b</b>|<b>a&b</b>");

    /* steady state: SafeString results and captures allocate nothing per render */
    long n = allocs_per_renders(env, st,
                                "{{#each xs}}{{bold this}}{{#twice}}{{bold ../name}}"
                                "{{/twice}}{{/each}}",
                                data, 100);
    checks++;
    if (n != 0) {
        failures++;
        fprintf(stderr, "100 warm renders with helpers made %ld allocations\n", n);
    }

    json_decref(data);
    mailbars_render_state_free(st);
    mailbars_env_free(env);
    mailbars_buf_free(&scratch);
    printf("helpers: %d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
