/* fuzz_render: compile + render with fuzzed template, data and options, under tight limits.
 * Input: byte 0 = low compile flags, byte 1 = options (high flags, render mode), then
 * template \x1e JSON data \x1e partials \x1e JSON @data variables (see register_partials). */
#include "fuzz_common.h"

/* {{echo a}}: returns its first argument (a subexpression passes it on unchanged). */
static int h_echo(mailbars_call *call, void *ud) {
    (void)ud;
    json_t *a = mailbars_call_arg(call, 0);
    return mailbars_call_return(call, a ? json_incref(a) : NULL);
}

/* {{#blk x}}: renders fn with x and block params (x, @index-like 0), else the inverse;
 * also reads the hash and @data so those paths run. */
static int h_blk(mailbars_call *call, void *ud) {
    (void)ud;
    json_t *a = mailbars_call_arg(call, 0);
    (void)mailbars_call_hash(call);
    (void)mailbars_call_data(call, "index");
    (void)mailbars_call_context(call);
    if (!mailbars_call_is_block(call)) return mailbars_call_write_escaped(call, "<blk>", 5);
    if (!mailbars_value_is_truthy(a)) return mailbars_call_inverse(call, a, NULL, NULL, 0, NULL);
    json_t *zero = json_integer(0);
    json_t *frame = json_pack("{s:s}", "who", "blk");
    json_t *bp[2] = {a, zero};
    mailbars_buf *cap = NULL;
    int rc = mailbars_call_fn(call, a, frame, bp, 2, &cap);
    if (!rc && cap) rc = mailbars_call_write(call, cap->data ? cap->data : "", cap->len);
    json_decref(zero);
    json_decref(frame);
    return rc;
}

/* {{raw x}}: returns its argument's string form unescaped (a SafeString). */
static int h_raw(mailbars_call *call, void *ud) {
    (void)ud;
    mailbars_buf b = {0};
    int rc = mailbars_value_to_string(mailbars_call_arg(call, 0), &b);
    if (!rc) rc = mailbars_call_return_safe(call, b.data ? b.data : "", b.len);
    mailbars_buf_free(&b);
    return rc;
}

/* {{fail}}: a helper error. */
static int h_fail(mailbars_call *call, void *ud) {
    (void)ud;
    return mailbars_call_error(call, "fail helper");
}

/* A streaming sink that appends every chunk to a buffer. */
static int sink(void *ud, const char *p, size_t n) {
    return mailbars_buf_append(ud, p, n) ? 1 : 0;
}

/* Registers the partials section: "name\x1fsource\x1fname\x1fsource…", or, without any
 * \x1f, the whole section as the source of partial "p". */
static void register_partials(mailbars_env *env, fuzz_span s, unsigned opt) {
    if (!memchr(s.p, '\x1f', s.n)) {
        if (s.n || (opt & 0x04)) mailbars_env_register_partial(env, "p", s.p, s.n);
        return;
    }
    const char *p = s.p, *end = s.p + s.n;
    while (p < end) {
        const char *a = memchr(p, '\x1f', (size_t)(end - p));
        if (!a) break;
        const char *b = memchr(a + 1, '\x1f', (size_t)(end - a - 1));
        if (!b) b = end;
        char *name = fuzz_strdup((fuzz_span){p, (size_t)(a - p)});
        mailbars_env_register_partial(env, name, a + 1, (size_t)(b - a - 1));
        free(name);
        p = b < end ? b + 1 : end;
    }
}

/* Compiles and renders the input three ways (state output, reused state, stream) and checks
 * the results agree. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    unsigned flags = (unsigned)data[0] | ((unsigned)(data[1] & 0x03) << 8);
    unsigned opt = data[1];
    fuzz_span sp[4];
    fuzz_split((const char *)data + 2, size - 2, sp, 4);

    mailbars_env *env = mailbars_env_new();
    FUZZ_CHECK(env);
    mailbars_env_register_helper(env, "echo", h_echo, NULL);
    mailbars_env_register_helper(env, "blk", h_blk, NULL);
    mailbars_env_register_helper(env, "raw", h_raw, NULL);
    mailbars_env_register_helper(env, "fail", h_fail, NULL);
    register_partials(env, sp[2], opt);
    mailbars_env_register_partial(env, "q", "[{{this}}]", 10);

    mailbars_compile_ctx *cctx = mailbars_compile_ctx_new();
    FUZZ_CHECK(cctx);
    mailbars_compile_ctx_set_flags(cctx, flags);
    mailbars_compile_ctx_set_limit(cctx, MAILBARS_LIMIT_NESTING, 64);
    if (opt & 0x08) mailbars_compile_ctx_add_known_helper(cctx, "echo");
    if (opt & 0x10) mailbars_compile_ctx_add_passthrough(cctx, "amazonSESUnsubscribeUrl");

    mailbars_render_ctx *rctx = mailbars_render_ctx_new();
    FUZZ_CHECK(rctx);
    mailbars_render_ctx_set_limit(rctx, MAILBARS_LIMIT_STEPS, 200000);
    mailbars_render_ctx_set_limit(rctx, MAILBARS_LIMIT_OUTPUT, 1u << 16);
    mailbars_render_ctx_set_limit(rctx, MAILBARS_LIMIT_ITERATIONS, 20000);
    mailbars_render_ctx_set_limit(rctx, MAILBARS_LIMIT_PARTIAL_DEPTH, 24);
    mailbars_render_ctx_set_limit(rctx, MAILBARS_LIMIT_CALL_DEPTH, 48);

    json_error_t je;
    json_t *ctxdata = json_loadb(sp[1].p, sp[1].n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    json_t *vars = json_loadb(sp[3].p, sp[3].n, JSON_ALLOW_NUL, &je);
    if (vars && !json_is_object(vars)) {
        json_decref(vars);
        vars = NULL;
    }

    mailbars_error err;
    mailbars_template *tpl = mailbars_compile(env, sp[0].p, sp[0].n, cctx, &err);
    if (!tpl) {
        FUZZ_CHECK(err.code != MAILBARS_OK);
    } else {
        mailbars_render_state *st = mailbars_render_state_new(rctx);
        FUZZ_CHECK(st);
        int rc1 = mailbars_render(st, tpl, ctxdata, vars, &err);
        size_t n1 = 0;
        const char *o1 = mailbars_render_output(st, &n1);
        char *copy = NULL;
        if (rc1 == MAILBARS_OK) {
            FUZZ_CHECK(o1 && o1[n1] == 0);
            FUZZ_CHECK(n1 <= (1u << 16));
            copy = malloc(n1 + 1);
            FUZZ_CHECK(copy);
            memcpy(copy, o1, n1);
        } else {
            FUZZ_CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
        }
        /* The same state again: same status, same bytes. */
        int rc2 = mailbars_render(st, tpl, ctxdata, vars, &err);
        FUZZ_CHECK(rc2 == rc1);
        if (rc1 == MAILBARS_OK) {
            size_t n2 = 0;
            const char *o2 = mailbars_render_output(st, &n2);
            FUZZ_CHECK(n2 == n1 && memcmp(o2, copy, n1) == 0);
        }
        /* Streaming gives the same bytes. */
        if (opt & 0x20) {
            mailbars_buf sb = {0};
            int rc3 = mailbars_render_stream(st, tpl, ctxdata, vars, sink, &sb, &err);
            FUZZ_CHECK(rc3 == rc1);
            if (rc1 == MAILBARS_OK)
                FUZZ_CHECK(sb.len == n1 && (n1 == 0 || !memcmp(sb.data, copy, n1)));
            mailbars_buf_free(&sb);
        }
        /* Appending to a caller buffer keeps what was there. */
        if (opt & 0x40) {
            mailbars_buf ab = {0};
            FUZZ_CHECK(mailbars_buf_append(&ab, "x", 1) == MAILBARS_OK);
            int rc4 = mailbars_render_buf(st, tpl, ctxdata, vars, &ab, &err);
            FUZZ_CHECK(rc4 == rc1);
            FUZZ_CHECK(ab.data[0] == 'x');
            if (rc1 == MAILBARS_OK) FUZZ_CHECK(ab.len == n1 + 1 && !memcmp(ab.data + 1, copy, n1));
            mailbars_buf_free(&ab);
        }
        free(copy);
        mailbars_render_state_free(st);
        mailbars_template_free(tpl);
    }
    json_decref(ctxdata);
    json_decref(vars);
    mailbars_render_ctx_free(rctx);
    mailbars_compile_ctx_free(cctx);
    mailbars_env_free(env);
    return 0;
}
