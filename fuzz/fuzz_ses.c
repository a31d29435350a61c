/* fuzz_ses: SES template JSON and request JSON -> parse, check (lint), render each destination
 * into a MIME message, which must be well formed.
 * Input: byte 0 = options (profile, escape, strict limits, charset, encoding), then
 * template JSON \x1e request JSON \x1e sample data JSON for check. */
#include "fuzz_common.h"

/* Renders every destination (at most a few) of `req` with `t` into messages and checks them. */
static void render_request(const mailbars_ses_template *t, const mailbars_ses_request *req,
                           unsigned opt) {
    (void)mailbars_ses_request_kind_of(req);
    FUZZ_CHECK(mailbars_ses_request_template_name(req) != NULL);
    (void)mailbars_ses_request_source(req);
    (void)mailbars_ses_request_reply_to(req);
    (void)mailbars_ses_request_inline_template(req);
    size_t count = mailbars_ses_request_count(req);
    mailbars_ses_render_state *st = mailbars_ses_render_state_new();
    mailbars_message *msg = mailbars_message_new();
    FUZZ_CHECK(st && msg);
    mailbars_message_set_date(msg, 1700000000, 60);
    mailbars_message_set_message_id(msg, "fuzz@example.com");
    if (opt & 0x20) mailbars_message_set_charset(msg, "ISO-8859-1", NULL);
    mailbars_message_set_encoding(msg, (mailbars_encoding)((opt >> 6) % 3));
    for (size_t i = 0; i < count && i < 4; i++) {
        mailbars_ses_destination d = {0};
        mailbars_error err;
        if (mailbars_ses_request_destination(req, i, &d, &err) != MAILBARS_OK) {
            FUZZ_CHECK(err.code != MAILBARS_OK);
            continue;
        }
        mailbars_message_reset(msg);
        mailbars_message_add_address(msg, MAILBARS_FROM, "a@example.com", 13, NULL);
        int rc = mailbars_ses_render(st, t, d.data, msg, &err);
        if (rc == MAILBARS_OK) {
            mailbars_buf out = {0};
            if (mailbars_message_write(msg, &out, &err) == MAILBARS_OK)
                fuzz_check_message(out.data, out.len);
            else
                FUZZ_CHECK(err.code != MAILBARS_OK);
            mailbars_buf_free(&out);
        } else {
            FUZZ_CHECK(err.code == rc);
            json_t *rec = mailbars_ses_failure_record(t, &err);
            json_decref(rec);
        }
        json_decref(d.data);
    }
    mailbars_message_free(msg);
    mailbars_ses_render_state_free(st);
}

/* Bulk sink: every message must be well formed, every failure must carry its code; results
 * arrive in order. */
static int bulk_sink(void *ud, const mailbars_bulk_result *r) {
    size_t *next = ud;
    FUZZ_CHECK(r->index == ++*next);
    if (r->status == MAILBARS_OK)
        fuzz_check_message(r->message, r->message_len);
    else
        FUZZ_CHECK(r->error && r->error->code == r->status);
    return 0;
}

/* Runs the bulk driver (one worker thread) over a request of a few destinations. */
static void bulk_request(const mailbars_ses_template *t, const mailbars_ses_request *req,
                         unsigned opt) {
    if (mailbars_ses_request_count(req) > 3) return;
    mailbars_bulk_options bo = {.threads = 1,
                                .queue = 2,
                                .fixed_date = 1,
                                .date = 1700000000,
                                .message_id = "bulk@example.com",
                                .charset = (opt & 0x20) ? "ISO-8859-1" : NULL,
                                .encoding = (mailbars_encoding)((opt >> 6) % 3)};
    size_t next = 0;
    mailbars_error err;
    int rc = mailbars_bulk_run_request(t, req, &bo, bulk_sink, &next, &err);
    if (rc == MAILBARS_OK) FUZZ_CHECK(next == mailbars_ses_request_count(req));
}

/* Tight limits for every stage, so one input stays fast; made once, never freed. */
static const mailbars_render_ctx *fuzz_limits(void) {
    static mailbars_render_ctx *lim;
    if (!lim && (lim = mailbars_render_ctx_new())) {
        mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_STEPS, 200000);
        mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_OUTPUT, 1 << 16);
        mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_ITERATIONS, 20000);
        mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_JSON_DEPTH, 32);
        mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_NESTING, 64);
    }
    return lim;
}

/* Parses, lints and renders the fuzzed SES inputs. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned opt = data[0];
    fuzz_span sp[3];
    fuzz_split((const char *)data + 1, size - 1, sp, 3);
    mailbars_ses_options o = {.profile =
                                  (opt & 1) ? MAILBARS_PROFILE_HANDLEBARS : MAILBARS_PROFILE_SES,
                              .escape = (opt >> 1) & 1,
                              .strict_limits = (opt >> 2) & 1,
                              .limits = fuzz_limits()};
    mailbars_error err, warn;

    /* Lint both documents (check reports, never fails except on memory). */
    json_error_t je;
    json_t *sample = json_loadb(sp[2].p, sp[2].n, JSON_ALLOW_NUL, &je);
    for (int k = 0; k < 2; k++) {
        mailbars_ses_diags diags = {0};
        FUZZ_CHECK(mailbars_ses_check(sp[k].p, sp[k].n, (opt & 0x08) ? sample : NULL, &o, &diags) ==
                   MAILBARS_OK);
        FUZZ_CHECK(mailbars_ses_diags_errors(&diags) <= diags.len);
        for (size_t i = 0; i < diags.len; i++)
            FUZZ_CHECK(memchr(diags.items[i].message, 0, sizeof diags.items[i].message));
        mailbars_ses_diags_free(&diags);
    }

    mailbars_ses_template *t = mailbars_ses_template_parse(sp[0].p, sp[0].n, &o, &err);
    if (!t)
        FUZZ_CHECK(err.code != MAILBARS_OK);
    else
        FUZZ_CHECK(mailbars_ses_template_name(t) != NULL);

    mailbars_ses_request *req = mailbars_ses_request_parse(sp[1].p, sp[1].n, &o, &warn, &err);
    if (!req) FUZZ_CHECK(err.code != MAILBARS_OK);
    if (req && !t) {
        /* A request may carry its own template (SES v2 inline content). */
        json_t *inl = mailbars_ses_request_inline_template(req);
        if (inl) t = mailbars_ses_template_from_json(inl, &o, &err);
    }
    if (req && t) render_request(t, req, opt);
    if (req && t && (opt & 0x10)) bulk_request(t, req, opt);

    /* TemplateData strings and deep merge on the raw sections. */
    json_t *d1 = mailbars_ses_parse_data(sp[1].p, sp[1].n, "TemplateData", o.limits, &err);
    json_t *m = mailbars_ses_merge(sample, d1);
    FUZZ_CHECK(m != NULL);
    if (t && (opt & 0x10)) {
        mailbars_ses_render_state *st = mailbars_ses_render_state_new();
        const char *s, *x, *h;
        size_t sn, xn, hn;
        json_t *window[3] = {m, d1, sample}; /* any data, NULL included, may be hinted */
        mailbars_ses_prefetch(t, window, 3);
        int rc = mailbars_ses_render_parts(st, t, m, &s, &sn, &x, &xn, &h, &hn, &err);
        if (rc) FUZZ_CHECK(err.code == rc);
        mailbars_ses_render_state_free(st);
    }
    json_decref(m);
    json_decref(d1);
    json_decref(sample);
    mailbars_ses_request_free(req);
    mailbars_ses_template_free(t);
    return 0;
}
