/* Allocation-failure test: the allocator hook fails the k-th allocation, for k = 0, 1, 2, …
 * until a run completes without reaching k, over compile, render, a MIME message build and an
 * SES render. Every call that hits the failure must return an error (MAILBARS_ERR_NOMEM) and
 * leave nothing allocated: the hook counts live blocks and the count must return to its
 * baseline after every run (LeakSanitizer checks the same in the sanitizer build).
 * jansson allocates through its own hook and is left alone. */
#include "mailbars.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_passed, g_failed;

/* Records one check. */
static void check(int ok, const char *what, long k) {
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL: %s (k=%ld)\n", what, k);
    }
}

/* ---- the failing, counting allocator ---- */

static long g_fail_at = -1; /* index of the allocation to fail; -1: none */
static long g_count;        /* allocations attempted since the run began */
static long g_live;         /* blocks currently allocated through the hook */
static int g_hit;           /* 1 once the failure was injected this run */

/* True when this allocation is the one to fail. */
static int should_fail(void) {
    long n = g_count++;
    if (n == g_fail_at) {
        g_hit = 1;
        return 1;
    }
    return 0;
}

/* malloc through the hook. */
static void *t_malloc(size_t n) {
    if (should_fail()) return NULL;
    void *p = malloc(n);
    if (p) g_live++;
    return p;
}

/* realloc through the hook; realloc(NULL) counts as a new block. */
static void *t_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    void *q = realloc(p, n);
    if (q && !p) g_live++;
    return q;
}

/* free through the hook. */
static void t_free(void *p) {
    if (p) g_live--;
    free(p);
}

/* ---- scenarios: each returns MAILBARS_OK and fills `out`, or the first error ---- */

static const char k_template[] =
    "{{#*inline \"row\"}}<li>{{name}}{{#if @first}} (first){{/if}}</li>{{/inline}}"
    "{{> header title=(shout title)}}\n"
    "{{#each people as |p i|}}{{> row p}}{{i}}:{{p.name}};{{/each}}\n"
    "{{#with boss}}{{name}}{{else}}none{{/with}}{{#unless x}}u{{/unless}}"
    "{{lookup people 0}} {{{raw}}}{{&raw}}{{raw}} \\{{esc}}{{!c}}{{!-- long --}}\n"
    "{{#> layout}}inside {{shout (lookup boss \"name\") suffix=\"!\"}}{{/layout}}\n"
    "{{#twice}}ab{{/twice}}{{log \"x\"}}{{#each boss}}{{@key}}={{this}}{{/each}}\n"
    "{{#if x}}x{{else if boss}}b{{else}}n{{/if}}{{^people}}empty{{/people}}";

static const char k_data[] = "{\"title\":\"Hi\",\"people\":[{\"name\":\"Ann\"},{\"name\":\"Bo\"}],"
                             "\"boss\":{\"name\":\"Cy\",\"age\":3},\"raw\":\"<b>\"}";

/* {{shout s suffix=…}}: upper-cases its argument and appends the suffix. */
static int h_shout(mailbars_call *call, void *ud) {
    (void)ud;
    mailbars_buf b = {0};
    int rc = mailbars_value_to_string(mailbars_call_arg(call, 0), &b);
    json_t *suf = json_object_get(mailbars_call_hash(call), "suffix");
    if (!rc && json_is_string(suf))
        rc = mailbars_buf_append(&b, json_string_value(suf), json_string_length(suf));
    for (size_t i = 0; !rc && i < b.len; i++)
        if (b.data[i] >= 'a' && b.data[i] <= 'z') b.data[i] -= 32;
    if (!rc) rc = mailbars_call_write(call, b.data ? b.data : "", b.len);
    mailbars_buf_free(&b);
    return rc;
}

/* {{#twice}}…{{/twice}}: renders its block twice through a capture buffer. */
static int h_twice(mailbars_call *call, void *ud) {
    (void)ud;
    for (int i = 0; i < 2; i++) {
        mailbars_buf *cap = NULL;
        int rc = mailbars_call_fn(call, mailbars_call_context(call), NULL, NULL, 0, &cap);
        if (!rc)
            rc = mailbars_call_write(call, cap && cap->data ? cap->data : "", cap ? cap->len : 0);
        if (rc) return rc;
    }
    return MAILBARS_OK;
}

/* An environment with the partials and helpers the template uses. */
static int make_env(mailbars_env **out) {
    *out = NULL;
    mailbars_env *env = mailbars_env_new();
    if (!env) return MAILBARS_ERR_NOMEM;
    int rc = mailbars_env_register_helper(env, "shout", h_shout, NULL);
    if (!rc) rc = mailbars_env_register_helper(env, "twice", h_twice, NULL);
    if (!rc) rc = mailbars_env_register_partial(env, "header", "<h1>{{title}}</h1>", 18);
    if (!rc) rc = mailbars_env_register_partial(env, "layout", "[{{> @partial-block}}]", 22);
    if (rc) {
        mailbars_env_free(env);
        return rc;
    }
    *out = env;
    return MAILBARS_OK;
}

/* Compile: environment, context and template, all freed again. Output: the disassembly. */
static int sc_compile(mailbars_buf *out) {
    mailbars_env *env;
    int rc = make_env(&env);
    if (rc) return rc;
    mailbars_compile_ctx *cctx = mailbars_compile_ctx_new();
    if (!cctx) rc = MAILBARS_ERR_NOMEM;
    if (!rc) rc = mailbars_compile_ctx_add_known_helper(cctx, "shout");
    mailbars_error err;
    mailbars_template *tpl = NULL;
    if (!rc) {
        tpl = mailbars_compile(env, k_template, strlen(k_template), cctx, &err);
        if (!tpl) rc = err.code ? err.code : -1;
    }
    if (!rc) rc = mailbars_template_disassemble(tpl, out);
    mailbars_template_free(tpl);
    mailbars_compile_ctx_free(cctx);
    mailbars_env_free(env);
    return rc;
}

static mailbars_env *g_env;
static mailbars_template *g_tpl;
static json_t *g_data;

/* Render: a fresh state, the template rendered twice (the second reuses the state). */
static int sc_render(mailbars_buf *out) {
    mailbars_render_ctx *rctx = mailbars_render_ctx_new();
    if (!rctx) return MAILBARS_ERR_NOMEM;
    mailbars_render_state *st = mailbars_render_state_new(rctx);
    mailbars_render_ctx_free(rctx);
    if (!st) return MAILBARS_ERR_NOMEM;
    mailbars_error err;
    int rc = mailbars_render(st, g_tpl, g_data, NULL, &err);
    if (!rc) rc = mailbars_render_buf(st, g_tpl, g_data, NULL, out, &err);
    if (!rc) {
        size_t n;
        const char *s = mailbars_render_output(st, &n);
        rc = mailbars_buf_append(out, s, n);
    }
    mailbars_render_state_free(st);
    if (!rc) {
        size_t n = 0;
        char *s = mailbars_render_string(g_tpl, g_data, &n, &err);
        if (!s) return err.code ? err.code : -1;
        rc = mailbars_buf_append(out, s, n);
        mailbars_free(s);
    }
    return rc;
}

/* MIME: a message in ISO-8859-1 with encoded headers, text and HTML bodies. */
static int sc_message(mailbars_buf *out) {
    mailbars_message *m = mailbars_message_new();
    if (!m) return MAILBARS_ERR_NOMEM;
    mailbars_error err;
    static const char subj[] = "Gr\xc3\xbc\xc3\x9f"
                               "e aus K\xc3\xb6ln, a long subject line "
                               "that has to be folded \xc3\xa0 la fa\xc3\xa7on";
    static const char from[] = "Ren\xc3\xa9 M\xc3\xbcller <rene@example.com>";
    static const char to[] = "\"Doe, Jane\" <jane@example.com>, bob@b\xc3\xbc"
                             "cher.example";
    static const char text[] = "Caf\xc3\xa9 cr\xc3\xa8me\nline two with trailing space \n"
                               ".dot\nFrom here";
    static const char html[] = "<p>Caf\xc3\xa9</p>";
    int rc = mailbars_message_set_charset(m, "ISO-8859-1", &err);
    if (!rc) rc = mailbars_message_add_address(m, MAILBARS_FROM, from, strlen(from), &err);
    if (!rc) rc = mailbars_message_add_address(m, MAILBARS_TO, to, strlen(to), &err);
    if (!rc) rc = mailbars_message_add_address(m, MAILBARS_REPLY_TO, "r@example.com", 13, &err);
    if (!rc) rc = mailbars_message_set_subject(m, subj, strlen(subj), &err);
    if (!rc) rc = mailbars_message_set_text(m, text, strlen(text), &err);
    if (!rc) rc = mailbars_message_set_html(m, html, strlen(html), &err);
    mailbars_message_set_date(m, 1700000000, 120);
    if (!rc) rc = mailbars_message_set_boundary(m, "=_b1");
    if (!rc) rc = mailbars_message_set_message_id(m, "id.1@example.com");
    if (!rc) rc = mailbars_message_write(m, out, &err);
    if (!rc) {
        /* a second message through the same builder, base64 this time */
        mailbars_message_reset(m);
        mailbars_message_set_encoding(m, MAILBARS_ENC_BASE64);
        rc = mailbars_message_add_address(m, MAILBARS_TO, "x@example.com", 13, &err);
        if (!rc) rc = mailbars_message_set_text(m, text, strlen(text), &err);
        if (!rc) rc = mailbars_message_write(m, out, &err);
    }
    mailbars_message_free(m);
    return rc;
}

/* SES: a template set from JSON rendered into a message. */
static int sc_ses(mailbars_buf *out) {
    static const char tj[] =
        "{\"Template\":{\"TemplateName\":\"T\",\"SubjectPart\":\"Hi {{name}}\","
        "\"TextPart\":\"{{#each items}}{{this}} {{/each}}{{> foot}}{{#*inline "
        "\\\"foot\\\"}}f{{/inline}}\","
        "\"HtmlPart\":\"<b>{{name}}</b>\"}}";
    mailbars_error err;
    mailbars_ses_template *t = mailbars_ses_template_parse(tj, strlen(tj), NULL, &err);
    if (!t) return err.code ? err.code : -1;
    int rc = MAILBARS_OK;
    mailbars_ses_render_state *st = mailbars_ses_render_state_new();
    mailbars_message *m = mailbars_message_new();
    if (!st || !m) rc = MAILBARS_ERR_NOMEM;
    json_t *d = json_pack("{s:s,s:[i,i]}", "name", "Zo\xc3\xab", "items", 1, 2);
    if (!rc) {
        mailbars_message_set_date(m, 0, 0);
        rc = mailbars_message_set_message_id(m, "s@example.com");
        if (!rc) rc = mailbars_message_set_boundary(m, "=_s");
    }
    if (!rc) rc = mailbars_message_add_address(m, MAILBARS_TO, "a@example.com", 13, &err);
    if (!rc) rc = mailbars_ses_render(st, t, d, m, &err);
    if (!rc) rc = mailbars_message_write(m, out, &err);
    json_decref(d);
    mailbars_message_free(m);
    mailbars_ses_render_state_free(st);
    mailbars_ses_template_free(t);
    return rc;
}

/* Runs `sc` once without failures (the reference output and the baseline of long-lived
 * allocations), then with allocation k failing for k = 0, 1, … until a run never reaches k. */
static void sweep(const char *name, int (*sc)(mailbars_buf *)) {
    mailbars_buf ref = {0};
    g_fail_at = -1;
    g_count = 0;
    int rc = sc(&ref); /* the first run also fills process-wide caches (PCRE2, IDNA) */
    mailbars_buf_reset(&ref);
    g_count = 0;
    rc = sc(&ref);
    check(rc == MAILBARS_OK, name, -1);
    if (rc) printf("  %s: reference run failed with %d (%s)\n", name, rc, mailbars_status_name(rc));
    long baseline = g_live, total = g_count;
    int bad_code = 0, bad_leak = 0, bad_out = 0, recovered = 0;
    long k = 0;
    for (;; k++) {
        mailbars_buf out = {0};
        g_fail_at = k;
        g_count = 0;
        g_hit = 0;
        int r = sc(&out);
        g_fail_at = -1;
        int hit = g_hit;
        if (hit && r == MAILBARS_OK) {
            /* the failure was absorbed (e.g. an optional cache): the output must be intact */
            recovered++;
            if (out.len != ref.len || memcmp(out.data, ref.data, ref.len)) {
                if (!bad_out)
                    printf(
                        "  %s: k=%ld succeeded with different output:\n%.*s\n  expected:\n%.*s\n",
                        name, k, (int)out.len, out.data ? out.data : "", (int)ref.len,
                        ref.data ? ref.data : "");
                bad_out++;
            }
        } else if (hit && r != MAILBARS_ERR_NOMEM) {
            if (!bad_code)
                printf("  %s: k=%ld returned %d (%s), not ERR_NOMEM\n", name, k, r,
                       mailbars_status_name(r));
            bad_code++;
        }
        mailbars_buf_free(&out);
        if (g_live != baseline) {
            if (!bad_leak) printf("  %s: k=%ld left %ld blocks\n", name, k, g_live - baseline);
            bad_leak++;
            baseline = g_live;
        }
        if (!hit) break;
    }
    printf("%s: %ld allocations in a full run, %ld failure points, %d absorbed, "
           "%d wrong codes, %d leaks, %d wrong outputs\n",
           name, total, k, recovered, bad_code, bad_leak, bad_out);
    check(k >= total && k > 0, "every allocation was failed once", k);
    check(bad_code == 0, "an injected failure gives ERR_NOMEM", k);
    check(bad_leak == 0, "nothing leaks after a failure", k);
    check(bad_out == 0, "an absorbed failure keeps the output intact", k);
    mailbars_buf_free(&ref);
}

/* Runs every scenario under the failing allocator. */
int main(void) {
    mailbars_set_allocator(t_malloc, t_realloc, t_free);
    g_data = json_loads(k_data, 0, NULL);
    check(g_data != NULL, "test data parses", -1);

    sweep("compile", sc_compile);

    /* the render sweep uses a template compiled without failures */
    mailbars_error err;
    check(make_env(&g_env) == MAILBARS_OK, "environment", -1);
    g_tpl = mailbars_compile(g_env, k_template, strlen(k_template), NULL, &err);
    check(g_tpl != NULL, "template compiles", -1);
    if (!g_tpl) printf("  compile: %s\n", err.message);
    if (g_tpl) {
        char *s = mailbars_render_string(g_tpl, g_data, NULL, &err);
        static const char want[] =
            "<h1>HI</h1>\n<li>Ann (first)</li>0:Ann;<li>Bo</li>1:Bo;\nCyu[object Object] "
            "<b><b>&lt;b&gt; {{esc}}\n[inside CY!]\nababname=Cyage=3\nb";
        int same = s && strcmp(s, want) == 0;
        if (!same)
            printf("  render output: [%s]\n  expected:      [%s]\n", s ? s : err.message, want);
        check(same, "render output is exact", -1);
        mailbars_free(s);
        sweep("render", sc_render);
    }
    mailbars_template_free(g_tpl);
    mailbars_env_free(g_env);

    sweep("message", sc_message);
    sweep("ses", sc_ses);
    json_decref(g_data);
    mailbars_set_allocator(NULL, NULL, NULL);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
