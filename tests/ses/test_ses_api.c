/* Unit tests of the SES layer and the bulk driver through the public API: deep merge, data and
 * name limits, template shapes and their errors, SES rendering semantics, requests, check
 * diagnostics with file positions, and bulk ordering with failure records. */
#include "mailbars.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* Compares a string result with the expected text. */
static void check_str(const char *what, const char *got, size_t len, const char *want) {
    int ok = got && strlen(want) == len && !memcmp(got, want, len);
    CHECK(ok, "%s: got [%.*s], want [%s]", what, got ? (int)len : 6, got ? got : "(null)", want);
}

static json_t *J(const char *s) {
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    if (!v) printf("bad test JSON: %s: %s\n", s, e.text);
    return v;
}

static void test_merge(void) {
    json_t *d = J("{\"a\":1,\"b\":{\"c\":2,\"d\":{\"x\":1,\"y\":2}},\"arr\":[1,2],\"s\":\"x\"}");
    json_t *r = J("{\"b\":{\"c\":5,\"d\":{\"y\":3}},\"arr\":[9],\"e\":null,\"s\":{\"o\":1}}");
    json_t *want = J("{\"a\":1,\"b\":{\"c\":5,\"d\":{\"x\":1,\"y\":3}},\"arr\":[9],\"e\":null,"
                     "\"s\":{\"o\":1}}");
    json_t *dcopy = json_deep_copy(d), *rcopy = json_deep_copy(r);
    json_t *m = mailbars_ses_merge(d, r);
    CHECK(json_equal(m, want), "deep merge: objects key by key, arrays and scalars replace");
    CHECK(json_equal(d, dcopy) && json_equal(r, rcopy), "merge leaves its inputs unchanged");
    json_decref(m);
    json_t *empty = json_object();
    m = mailbars_ses_merge(d, empty);
    CHECK(json_equal(m, d), "{} replacement means the defaults alone");
    json_decref(m);
    m = mailbars_ses_merge(d, NULL);
    CHECK(json_equal(m, d), "absent replacement means the defaults alone");
    json_decref(m);
    m = mailbars_ses_merge(NULL, NULL);
    CHECK(json_is_object(m) && json_object_size(m) == 0, "no data at all is {}");
    json_decref(m);
    m = mailbars_ses_merge(NULL, r);
    CHECK(json_equal(m, r), "no defaults: the replacement alone");
    json_decref(m);
    json_decref(empty);
    json_decref(d);
    json_decref(r);
    json_decref(want);
    json_decref(dcopy);
    json_decref(rcopy);
}

static void test_data_and_names(void) {
    mailbars_error e;
    json_t *v =
        mailbars_ses_parse_data("{\n  \"a\": 1,\n  \"b\" 2\n}", 21, "TemplateData", NULL, &e);
    CHECK(!v && e.code == MAILBARS_ERR_JSON && e.line == 3 && e.column == 7,
          "bad TemplateData gives line 3 column 7, got %d %d:%d %s", e.code, e.line, e.column,
          e.message);
    CHECK(strstr(e.message, "TemplateData: line 3, column 7") != NULL, "message names it: %s",
          e.message);
    v = mailbars_ses_parse_data("[1,2]", 5, "TemplateData", NULL, &e);
    CHECK(!v && e.code == MAILBARS_ERR_SES_SHAPE &&
              !strcmp(e.message, "TemplateData must be a JSON object"),
          "array data: %s", e.message);
    size_t n = MAILBARS_SES_MAX_DATA_CHARS + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = 0;
    v = mailbars_ses_parse_data(big, n, "TemplateData", NULL, &e);
    CHECK(!v && e.code == MAILBARS_ERR_SES_LIMIT, "262,145 characters are too many: %s", e.message);
    v = mailbars_ses_parse_data(big + 1, n - 1, "TemplateData", NULL, &e);
    CHECK(v == NULL, "262,144 characters that are not an object still fail");
    big[1] = '{';
    v = mailbars_ses_parse_data(big + 1, n - 1, "TemplateData", NULL, &e);
    CHECK(v && json_is_object(v), "262,144 characters are allowed");
    json_decref(v);
    free(big);
    /* characters, not bytes: 100,000 three-byte characters are 300,000 bytes but fit */
    size_t cn = 100000;
    char *cjk = malloc(cn * 3 + 16);
    size_t o = 0;
    memcpy(cjk, "{\"k\":\"", 6), o = 6;
    for (size_t i = 0; i < cn; i++) memcpy(cjk + o, "\xe5\xa5\xbd", 3), o += 3;
    memcpy(cjk + o, "\"}", 2), o += 2;
    v = mailbars_ses_parse_data(cjk, o, NULL, NULL, &e);
    CHECK(v != NULL, "the data limit counts characters, not bytes");
    json_decref(v);
    free(cjk);

    CHECK(mailbars_ses_check_name("My_Template-1", &e) == MAILBARS_OK, "valid name");
    CHECK(mailbars_ses_check_name("my template", &e) == MAILBARS_ERR_SES_LIMIT,
          "a space is not allowed");
    CHECK(mailbars_ses_check_name("", &e) == MAILBARS_ERR_SES_LIMIT, "empty name");
    char name[70];
    memset(name, 'a', 65);
    name[65] = 0;
    CHECK(mailbars_ses_check_name(name, &e) == MAILBARS_ERR_SES_LIMIT, "65 characters");
    name[64] = 0;
    CHECK(mailbars_ses_check_name(name, &e) == MAILBARS_OK, "64 characters");
}

static const char *k_mytemplate =
    "{\"Template\":{\"TemplateName\":\"MyTemplate\",\"SubjectPart\":\"Greetings, {{name}}!\","
    "\"TextPart\":\"Dear {{name}},\\r\\nYour favorite animal is {{favoriteanimal}}.\","
    "\"HtmlPart\":\"<h1>Hello {{name}},</h1><p>Your favorite animal is "
    "{{favoriteanimal}}.</p>\"}}";

/* Renders parts and checks them, or the failure. */
static void expect_render(const mailbars_ses_template *t, const char *data, const char *subject,
                          const char *text, const char *html, const char *fail_part,
                          const char *fail_msg) {
    mailbars_ses_render_state *st = mailbars_ses_render_state_new();
    json_t *d = J(data);
    const char *s, *x, *h;
    size_t sl, xl, hl;
    mailbars_error e;
    int rc = mailbars_ses_render_parts(st, t, d, &s, &sl, &x, &xl, &h, &hl, &e);
    if (fail_msg) {
        CHECK(rc != MAILBARS_OK && !strcmp(e.message, fail_msg) && !strcmp(e.part, fail_part),
              "expected failure [%s] in %s, got rc %d [%s] in %s", fail_msg, fail_part, rc,
              e.message, e.part);
    } else {
        CHECK(rc == MAILBARS_OK, "render failed: %s (%s)", e.message, e.part);
        if (!rc) {
            if (subject) check_str("subject", s, sl, subject);
            if (text) check_str("text", x, xl, text);
            if (html) check_str("html", h, hl, html);
        }
    }
    json_decref(d);
    mailbars_ses_render_state_free(st);
}

/* Bodies put into a message are valid UTF-8: template text that is not stops the render with
 * MAILBARS_ERR_UTF8 naming the part (only text built from valid sources skips the check),
 * while valid multi-byte text in template and data goes through as it is. */
static void test_utf8_bodies(void) {
    mailbars_error e;
    mailbars_ses_render_state *st = mailbars_ses_render_state_new();
    mailbars_message *msg = mailbars_message_new();
    mailbars_message_set_encoding(msg, MAILBARS_ENC_QUOTED_PRINTABLE);
    json_t *d = J("{\"who\":\"\u5c71\u7530 caf\u00e9\"}");
    const char *bad[][3] = {{"s", "t\xff{{who}}", NULL},
                            {"s", "t", "<p>{{who}}\xe3\x81</p>"},
                            {"s", NULL, "\xed\xa0\x80 {{who}}"}};
    const char *part[] = {"text", "html", "html"};
    for (int i = 0; i < 3; i++) {
        mailbars_ses_template *t =
            mailbars_ses_template_new("U", bad[i][0], bad[i][1], bad[i][2], NULL, &e);
        CHECK(t != NULL, "template %d builds: %s", i, e.message);
        if (!t) continue;
        int rc = mailbars_ses_render(st, t, d, msg, &e);
        CHECK(rc == MAILBARS_ERR_UTF8 && !strcmp(e.part, part[i]),
              "invalid UTF-8 in template %d: rc %d part [%s] %s", i, rc, e.part, e.message);
        mailbars_ses_template_free(t);
    }
    mailbars_ses_template *t =
        mailbars_ses_template_new("U", "\xe4\xbb\xb6 {{who}}", "\xe6\x96\x87 {{who}}",
                                  "<p>\xf0\x9f\x98\x80 {{who}}</p>", NULL, &e);
    CHECK(t && mailbars_ses_render(st, t, d, msg, &e) == MAILBARS_OK, "valid UTF-8: %s", e.message);
    mailbars_buf out = {0};
    if (t && mailbars_message_add_address(msg, MAILBARS_FROM, "a@example.com", 13, &e) == 0 &&
        mailbars_message_write(msg, &out, &e) == 0)
        CHECK(strstr(out.data, "=E6=96=87 =E5=B1=B1=E7=94=B0 caf=C3=A9") != NULL, "text body: %s",
              out.data);
    else
        CHECK(0, "message: %s", e.message);
    mailbars_buf_free(&out);
    mailbars_ses_template_free(t);
    json_decref(d);
    mailbars_message_free(msg);
    mailbars_ses_render_state_free(st);
}

/* mailbars_ses_prefetch is only a hint: messages rendered with it, over a window of parsed
 * recipients that moves on by one, are byte for byte those rendered without it; odd windows
 * (empty, NULL entries, values that are not objects) are accepted and change nothing. */
static void test_prefetch(void) {
    mailbars_error e;
    mailbars_ses_template *t = mailbars_ses_template_new(
        "P", "Hi {{user.name}}", "{{#each items}}{{this.n}} {{/each}}{{user.city}}",
        "<p>{{user.name}}</p>", NULL, &e);
    CHECK(t != NULL, "template builds: %s", e.message);
    if (!t) return;
    enum { N = 40 };
    json_t *data[N + 3] = {0};
    for (int i = 0; i < N; i++) {
        char js[256];
        snprintf(js, sizeof js,
                 "{\"user\":{\"name\":\"u%d\",\"city\":\"c%d\"},"
                 "\"items\":[{\"n\":%d},{\"n\":%d}],\"unused\":[1,2,3]}",
                 i, i, i, i + 1);
        data[i] = J(js);
    }
    mailbars_ses_render_state *a = mailbars_ses_render_state_new(),
                              *b = mailbars_ses_render_state_new();
    int same = 0;
    for (int i = 0; i < N; i++) {
        const char *s1, *x1, *h1, *s2, *x2, *h2;
        size_t sn1, xn1, hn1, sn2, xn2, hn2;
        mailbars_ses_prefetch(t, &data[i + 1], (size_t)(N - i - 1)); /* the NULLs past N too */
        int r1 = mailbars_ses_render_parts(a, t, data[i], &s1, &sn1, &x1, &xn1, &h1, &hn1, &e);
        int r2 = mailbars_ses_render_parts(b, t, data[i], &s2, &sn2, &x2, &xn2, &h2, &hn2, &e);
        same += r1 == MAILBARS_OK && r2 == MAILBARS_OK && sn1 == sn2 && xn1 == xn2 && hn1 == hn2 &&
                !memcmp(s1, s2, sn1) && !memcmp(x1, x2, xn1) && !memcmp(h1, h2, hn1);
    }
    CHECK(same == N, "%d of %d renders alike with and without the hint", same, N);
    json_t *odd[4] = {NULL, J("[1,{\"a\":2}]"), json_string("s"), J("{}")};
    char *before = json_dumps(odd[1], 0);
    mailbars_ses_prefetch(t, odd, 4);
    mailbars_ses_prefetch(t, odd + 1, 3);
    mailbars_ses_prefetch(t, odd + 2, 2);
    mailbars_ses_prefetch(t, NULL, 3);
    mailbars_ses_prefetch(t, odd, 0);
    mailbars_ses_prefetch(NULL, odd, 4);
    char *after = json_dumps(odd[1], 0);
    CHECK(before && after && !strcmp(before, after), "odd windows change nothing");
    free(before), free(after);
    for (int i = 1; i < 4; i++) json_decref(odd[i]);
    for (int i = 0; i < N; i++) json_decref(data[i]);
    mailbars_ses_render_state_free(a);
    mailbars_ses_render_state_free(b);
    mailbars_ses_template_free(t);
}

static void test_templates(void) {
    mailbars_error e;
    mailbars_ses_template *t =
        mailbars_ses_template_parse(k_mytemplate, strlen(k_mytemplate), NULL, &e);
    CHECK(t != NULL, "MyTemplate parses: %s", e.message);
    if (!t) return;
    CHECK(!strcmp(mailbars_ses_template_name(t), "MyTemplate"), "name");
    expect_render(t, "{\"name\":\"Alejandro\",\"favoriteanimal\":\"alligator\"}",
                  "Greetings, Alejandro!", "Dear Alejandro,\r\nYour favorite animal is alligator.",
                  "<h1>Hello Alejandro,</h1><p>Your favorite animal is alligator.</p>", NULL, NULL);
    expect_render(t, "{\"name\":\"<b>Tom & Jerry</b>\",\"favoriteanimal\":\"\\\"cat\\\"\"}",
                  "Greetings, <b>Tom & Jerry</b>!", NULL, NULL, NULL, NULL);
    expect_render(t, "{\"name\":\"Alejandro\"}", NULL, NULL, NULL, "text",
                  "Attribute 'favoriteanimal' is not present in the rendering data.");
    expect_render(t, "{\"favoriteanimal\":\"x\"}", NULL, NULL, NULL, "subject",
                  "Attribute 'name' is not present in the rendering data.");
    expect_render(t, "{\"name\":null,\"favoriteanimal\":\"x\"}", NULL, NULL, NULL, "subject",
                  "Attribute 'name' is not present in the rendering data.");
    mailbars_ses_template_free(t);

    /* the inner object and SES v2 give the same template */
    const char *inner = "{\"TemplateName\":\"T1\",\"SubjectPart\":\"Hi {{a.b}}\","
                        "\"TextPart\":\"{{#if missing}}yes{{else}}no{{/if}} {{a.b}}\"}";
    t = mailbars_ses_template_parse(inner, strlen(inner), NULL, &e);
    CHECK(t != NULL, "inner object parses: %s", e.message);
    if (t) {
        expect_render(t, "{\"a\":{\"b\":\"x\"}}", "Hi x", "no x", NULL, NULL, NULL);
        expect_render(t, "{\"a\":{}}", NULL, NULL, NULL, "subject",
                      "Attribute 'a.b' is not present in the rendering data.");
        mailbars_ses_template_free(t);
    }
    const char *v2 =
        "{\"TemplateName\":\"V2\",\"TemplateContent\":{\"Subject\":\"S {{x}}\","
        "\"Html\":\"<a href=\\\"{{amazonSESUnsubscribeUrl}}\\\">u</a>{{ses:openTracker}}"
        "{{x}}\"}}";
    t = mailbars_ses_template_parse(v2, strlen(v2), NULL, &e);
    CHECK(t != NULL, "SES v2 parses: %s", e.message);
    if (t) {
        expect_render(t, "{\"x\":\"<i>\"}", "S <i>", NULL,
                      "<a href=\"{{amazonSESUnsubscribeUrl}}\">u</a>{{ses:openTracker}}<i>", NULL,
                      NULL);
        mailbars_ses_template_free(t);
    }
    /* escaping on request */
    mailbars_ses_options o;
    memset(&o, 0, sizeof o);
    o.escape = 1;
    t = mailbars_ses_template_parse(v2, strlen(v2), &o, &e);
    if (t) {
        expect_render(t, "{\"x\":\"<i>\"}", "S &lt;i&gt;", NULL, NULL, NULL, NULL);
        mailbars_ses_template_free(t);
    }
    /* handlebars profile: escaping and no missing-value failures */
    memset(&o, 0, sizeof o);
    o.profile = MAILBARS_PROFILE_HANDLEBARS;
    t = mailbars_ses_template_parse(inner, strlen(inner), &o, &e);
    if (t) {
        expect_render(t, "{}", "Hi ", "no ", NULL, NULL, NULL);
        mailbars_ses_template_free(t);
    }

    /* shapes and their errors */
    const char *bad =
        "{\"Template\":{\"TemplateName\":\"x\",\"SubjectPart\":5,\"TextPart\":\"t\"}}";
    t = mailbars_ses_template_parse(bad, strlen(bad), NULL, &e);
    CHECK(!t && e.code == MAILBARS_ERR_SES_SHAPE &&
              !strcmp(e.message, "Template.SubjectPart must be a string"),
          "wrong type names the field: %s", e.message);
    const char *nobody = "{\"Template\":{\"TemplateName\":\"x\",\"SubjectPart\":\"s\"}}";
    t = mailbars_ses_template_parse(nobody, strlen(nobody), NULL, &e);
    CHECK(!t && e.code == MAILBARS_ERR_SES_SHAPE &&
              !strcmp(e.message, "Template.TextPart or Template.HtmlPart is required"),
          "no body: %s", e.message);
    const char *badjson = "{\n  \"Template\": {\n    \"TextPart\": \"x\",\n  }\n}";
    t = mailbars_ses_template_parse(badjson, strlen(badjson), NULL, &e);
    CHECK(!t && e.code == MAILBARS_ERR_JSON && e.line == 4 && e.column == 3,
          "bad JSON position: %d:%d %s", e.line, e.column, e.message);
    const char *badname = "{\"TemplateName\":\"has space\",\"TextPart\":\"x\"}";
    t = mailbars_ses_template_parse(badname, strlen(badname), NULL, &e);
    CHECK(!t && e.code == MAILBARS_ERR_SES_LIMIT, "bad name: %s", e.message);
    const char *helper = "{\"TextPart\":\"{{upper name}}\"}";
    t = mailbars_ses_template_parse(helper, strlen(helper), NULL, &e);
    CHECK(!t && e.code == MAILBARS_ERR_SES_INVALID_TEMPLATE && !strcmp(e.part, "text") &&
              e.line == 1 && e.column == 1,
          "unknown helper is InvalidTemplate: %d %s %d:%d %s", e.code, e.part, e.line, e.column,
          e.message);
    const char *scoped =
        "{\"TextPart\":\"{{> p}}\",\"HtmlPart\":\"{{#* inline \\\"p\\\"}}x{{/inline}}"
        "{{> p}}\"}";
    t = mailbars_ses_template_parse(scoped, strlen(scoped), NULL, &e);
    CHECK(!t && e.code == MAILBARS_ERR_SES_INVALID_TEMPLATE && !strcmp(e.part, "text") &&
              strstr(e.message, "defined in the html part"),
          "partials are scoped to their part: %s %s", e.part, e.message);
    const char *inl = "{\"TextPart\":\"{{#* inline \\\"p\\\"}}[{{x}}]{{/inline}}{{> p}}{{> p}}\"}";
    t = mailbars_ses_template_parse(inl, strlen(inl), NULL, &e);
    CHECK(t != NULL, "inline partial in its own part: %s", e.message);
    if (t) {
        expect_render(t, "{\"x\":1}", "", "[1][1]", NULL, NULL, NULL);
        mailbars_ses_template_free(t);
    }
}

static void test_requests(void) {
    mailbars_error e, w;
    const char *bulk =
        "{\"Source\":\"Mary Major <mary.major@example.com>\",\"Template\":\"MyTemplate\","
        "\"Destinations\":[{\"Destination\":{\"ToAddresses\":[\"a@example.com\"]},"
        "\"ReplacementTemplateData\":\"{\\\"name\\\":\\\"Anaya\\\",\\\"deep\\\":{\\\"y\\\":2}}\"},"
        "{\"Destination\":{\"ToAddresses\":[\"b@example.com\"],\"CcAddresses\":[\"c@example.com\"]}"
        ","
        "\"ReplacementTemplateData\":\"{}\"},"
        "{\"Destination\":{\"ToAddresses\":[\"d@example.com\"]},"
        "\"ReplacementTemplateData\":\"{oops}\"}],"
        "\"DefaultTemplateData\":\"{\\\"name\\\":\\\"friend\\\",\\\"animal\\\":\\\"unknown\\\","
        "\\\"deep\\\":{\\\"x\\\":1}}\"}";
    mailbars_ses_request *r = mailbars_ses_request_parse(bulk, strlen(bulk), NULL, &w, &e);
    CHECK(r != NULL, "SendBulkTemplatedEmail parses: %s", e.message);
    if (!r) return;
    CHECK(mailbars_ses_request_kind_of(r) == MAILBARS_REQ_SEND_BULK_TEMPLATED, "kind");
    CHECK(mailbars_ses_request_count(r) == 3, "3 destinations");
    CHECK(!strcmp(mailbars_ses_request_template_name(r), "MyTemplate"), "template name");
    CHECK(!strcmp(mailbars_ses_request_source(r), "Mary Major <mary.major@example.com>"), "source");
    mailbars_ses_destination d;
    CHECK(mailbars_ses_request_destination(r, 0, &d, &e) == MAILBARS_OK, "dest 0");
    json_t *want = J("{\"name\":\"Anaya\",\"animal\":\"unknown\",\"deep\":{\"x\":1,\"y\":2}}");
    CHECK(json_equal(d.data, want), "destination 0 merged over the defaults");
    json_decref(want);
    json_decref(d.data);
    CHECK(mailbars_ses_request_destination(r, 1, &d, &e) == MAILBARS_OK, "dest 1");
    want = J("{\"name\":\"friend\",\"animal\":\"unknown\",\"deep\":{\"x\":1}}");
    CHECK(json_equal(d.data, want) && json_array_size(d.cc) == 1, "{} gives the defaults alone");
    json_decref(want);
    json_decref(d.data);
    int rc = mailbars_ses_request_destination(r, 2, &d, &e);
    CHECK(rc == MAILBARS_ERR_JSON &&
              strstr(e.message, "Destinations[2].ReplacementTemplateData: line 1, column 2"),
          "bad replacement data names the field: %s", e.message);
    mailbars_ses_request_free(r);

    /* 51 destinations: a warning, or an error with strict limits */
    mailbars_buf b = {0};
    mailbars_buf_append(&b, "{\"Template\":\"T\",\"Destinations\":[", 32);
    for (int i = 0; i < 51; i++) {
        const char *one = "{\"Destination\":{\"ToAddresses\":[\"a@example.com\"]}}";
        if (i) mailbars_buf_append(&b, ",", 1);
        mailbars_buf_append(&b, one, strlen(one));
    }
    mailbars_buf_append(&b, "]}", 2);
    r = mailbars_ses_request_parse(b.data, b.len, NULL, &w, &e);
    CHECK(r && w.code == MAILBARS_ERR_SES_LIMIT && strstr(w.message, "51 destinations"),
          "51 destinations warn: %s", w.message);
    mailbars_ses_request_free(r);
    mailbars_ses_options o;
    memset(&o, 0, sizeof o);
    o.strict_limits = 1;
    r = mailbars_ses_request_parse(b.data, b.len, &o, &w, &e);
    CHECK(!r && e.code == MAILBARS_ERR_SES_LIMIT, "51 destinations fail with strict limits");
    mailbars_buf_free(&b);

    const char *v2 =
        "{\"FromEmailAddress\":\"x@example.com\",\"DefaultContent\":{\"Template\":{"
        "\"TemplateName\":\"MyTemplate\",\"TemplateData\":\"{\\\"a\\\":{\\\"b\\\":1,\\\"c\\\":2}}"
        "\"}},"
        "\"BulkEmailEntries\":[{\"Destination\":{\"ToAddresses\":[\"a@example.com\"]},"
        "\"ReplacementEmailContent\":{\"ReplacementTemplate\":{\"ReplacementTemplateData\":"
        "\"{\\\"a\\\":{\\\"c\\\":3}}\"}}},{\"Destination\":{\"ToAddresses\":[\"b@example.com\"]}}]"
        "}";
    r = mailbars_ses_request_parse(v2, strlen(v2), NULL, &w, &e);
    CHECK(r && mailbars_ses_request_kind_of(r) == MAILBARS_REQ_SEND_BULK_V2 &&
              mailbars_ses_request_count(r) == 2,
          "SES v2 SendBulkEmail parses: %s", e.message);
    if (r) {
        mailbars_ses_request_destination(r, 0, &d, &e);
        want = J("{\"a\":{\"b\":1,\"c\":3}}");
        CHECK(json_equal(d.data, want), "v2 replacement merged");
        json_decref(want);
        json_decref(d.data);
        mailbars_ses_request_destination(r, 1, &d, &e);
        want = J("{\"a\":{\"b\":1,\"c\":2}}");
        CHECK(json_equal(d.data, want), "v2 entry without replacement: defaults");
        json_decref(want);
        json_decref(d.data);
        mailbars_ses_request_free(r);
    }
    const char *tr =
        "{\"TemplateName\":\"MyTemplate\",\"TemplateData\":\"{\\\"name\\\":\\\"A\\\"}\"}";
    r = mailbars_ses_request_parse(tr, strlen(tr), NULL, &w, &e);
    CHECK(r && mailbars_ses_request_kind_of(r) == MAILBARS_REQ_TEST_RENDER, "TestRenderTemplate");
    mailbars_ses_request_free(r);
    const char *badreq = "{\"Destinations\":{}}";
    r = mailbars_ses_request_parse(badreq, strlen(badreq), NULL, &w, &e);
    CHECK(!r && !strcmp(e.message, "Destinations must be an array"), "shape: %s", e.message);
}

/* Finds the 1-based line and column of the n-th occurrence of needle in text. */
static void find_pos(const char *text, const char *needle, int nth, int *line, int *col) {
    const char *p = text;
    for (int i = 0; i < nth; i++) p = strstr(i ? p + 1 : p, needle);
    *line = 1;
    const char *ls = text;
    for (const char *q = text; q < p; q++)
        if (*q == '\n') (*line)++, ls = q + 1;
    *col = (int)(p - ls) + 1;
}

static void test_check(void) {
    const char *src = "{\n"
                      "  \"Template\": {\n"
                      "    \"TemplateName\": \"Broken\",\n"
                      "    \"SubjectPart\": \"Hi {{name}}\",\n"
                      "    \"HtmlPart\": \"<p>\\\"{{upper name}}\\\"</p>\\n<p>{{> footer}}</p>\"\n"
                      "  }\n"
                      "}\n";
    mailbars_ses_diags d = {0};
    json_t *sample = J("{\"other\":1}");
    int rc = mailbars_ses_check(src, strlen(src), sample, NULL, &d);
    CHECK(rc == MAILBARS_OK, "check runs");
    int l, c;
    int seen_helper = 0, seen_partial = 0, seen_text = 0, seen_missing = 0;
    for (size_t i = 0; i < d.len; i++) {
        mailbars_ses_diag *x = &d.items[i];
        if (strstr(x->message, "unknown helper 'upper'")) {
            seen_helper = 1;
            find_pos(src, "{{upper", 1, &l, &c);
            CHECK(x->severity == MAILBARS_SEV_ERROR && !strcmp(x->part, "html") && x->line == 1 &&
                      x->column == 5 && x->file_line == l && x->file_column == c,
                  "helper position html 1:5 file %d:%d, got %d:%d file %d:%d", l, c, x->line,
                  x->column, x->file_line, x->file_column);
            CHECK(x->source_line && !strcmp(x->source_line, "<p>\"{{upper name}}\"</p>"),
                  "quoted line: %s", x->source_line ? x->source_line : "(null)");
        }
        if (strstr(x->message, "partial 'footer' is not defined")) {
            seen_partial = 1;
            find_pos(src, "{{> footer", 1, &l, &c);
            CHECK(x->line == 2 && x->column == 4 && x->file_line == l && x->file_column == c,
                  "partial position html 2:4 file %d:%d, got %d:%d file %d:%d", l, c, x->line,
                  x->column, x->file_line, x->file_column);
        }
        if (strstr(x->message, "no text part")) seen_text = x->severity == MAILBARS_SEV_WARNING;
        if (strstr(x->message, "Attribute 'name' is not present") && !strcmp(x->part, "subject")) {
            seen_missing = 1;
            find_pos(src, "{{name}}", 1, &l, &c);
            CHECK(x->file_line == l && x->file_column == c, "missing attribute position");
        }
    }
    CHECK(seen_helper && seen_partial && seen_text && seen_missing,
          "every problem reported: helper %d partial %d text %d missing %d (of %zu)", seen_helper,
          seen_partial, seen_text, seen_missing, d.len);
    CHECK(mailbars_ses_diags_errors(&d) >= 3, "errors counted");
    mailbars_ses_diags_free(&d);
    json_decref(sample);

    const char *badjson =
        "{\n  \"Template\": {\n    \"TextPart\": \"x\"\n    \"HtmlPart\": \"y\"\n}";
    rc = mailbars_ses_check(badjson, strlen(badjson), NULL, NULL, &d);
    CHECK(d.len == 1 && d.items[0].file_line == 4 && d.items[0].file_column == 5 &&
              d.items[0].code == MAILBARS_ERR_JSON,
          "bad JSON at 4:5, got %zu %d:%d", d.len, d.len ? d.items[0].file_line : 0,
          d.len ? d.items[0].file_column : 0);
    mailbars_ses_diags_free(&d);
    /* columns count characters even after multi-byte ones and escapes (\u00e9, a surrogate
     * pair, CRLF line breaks) */
    const char *uni = "{\"TemplateName\":\"U\",\"SubjectPart\":\"s\",\"TextPart\":"
                      "\"a\\r\\nh\\u00e9llo \\ud83d\\ude00 {{foo bar}}\"}";
    rc = mailbars_ses_check(uni, strlen(uni), NULL, NULL, &d);
    find_pos(uni, "{{foo", 1, &l, &c);
    CHECK(d.len == 1 && d.items[0].line == 2 && d.items[0].column == 9 &&
              d.items[0].file_line == 1 && d.items[0].file_column == c,
          "non-ASCII: text 2:9 and file column %d, got %d:%d file %d:%d", c,
          d.len ? d.items[0].line : 0, d.len ? d.items[0].column : 0,
          d.len ? d.items[0].file_line : 0, d.len ? d.items[0].file_column : 0);
    mailbars_ses_diags_free(&d);
    /* a clean template: nothing to say */
    rc = mailbars_ses_check(k_mytemplate, strlen(k_mytemplate), NULL, NULL, &d);
    CHECK(d.len == 0, "MyTemplate is clean (%zu: %s)", d.len, d.len ? d.items[0].message : "");
    mailbars_ses_diags_free(&d);
}

typedef struct seen {
    size_t n;
    size_t order_errors;
    char failures[8][512];
    size_t failure_index[8];
    size_t nf;
    int has_to;
} seen;

static int sink(void *ud, const mailbars_bulk_result *r) {
    seen *s = ud;
    s->n++;
    if (r->index != s->n) s->order_errors++;
    if (r->status != MAILBARS_OK && s->nf < 8) {
        snprintf(s->failures[s->nf], sizeof s->failures[0], "%s", r->error->message);
        s->failure_index[s->nf++] = r->index;
    } else if (r->status == MAILBARS_OK) {
        char want[64];
        snprintf(want, sizeof want, "Subject: Greetings, R%zu!", r->index);
        if (!r->message || !strstr(r->message, want)) s->order_errors++;
        if (r->index == 2 && strstr(r->message, "To: x2@example.com")) s->has_to = 1;
    }
    return 0;
}

static void test_bulk(void) {
    mailbars_error e;
    mailbars_ses_template *t =
        mailbars_ses_template_parse(k_mytemplate, strlen(k_mytemplate), NULL, &e);
    if (!t) return;
    FILE *f = tmpfile();
    size_t n = 500;
    for (size_t i = 1; i <= n; i++) {
        if (i == 7)
            fprintf(f, "{\"name\": oops}\n");
        else if (i == 9)
            fprintf(f, "{\"name\":\"R9\"}\n");
        else if (i == 2)
            fprintf(f, "{\"data\":{\"name\":\"R2\"},\"to\":[\"x2@example.com\"]}\n");
        else
            fprintf(f, "{\"name\":\"R%zu\"}\n", i);
        if (i == 3) fprintf(f, "\n   \n");
    }
    rewind(f);
    json_t *defaults = J("{\"favoriteanimal\":\"cat\"}");
    json_t *d9 = NULL;
    (void)d9;
    mailbars_bulk_options o;
    memset(&o, 0, sizeof o);
    o.threads = 4;
    o.queue = 5;
    seen s;
    memset(&s, 0, sizeof s);
    /* record 9 lacks favoriteanimal only when the defaults are absent: run twice */
    int rc = mailbars_bulk_run_jsonl(t, f, defaults, &o, sink, &s, &e);
    CHECK(rc == MAILBARS_OK && s.n == n && s.order_errors == 0,
          "bulk: %zu results in order (rc %d, %zu order errors)", s.n, rc, s.order_errors);
    CHECK(s.nf == 1 && s.failure_index[0] == 7 &&
              strstr(s.failures[0], "line 9, column 10: invalid JSON"),
          "malformed line gives one failure naming its line: %zu [%s]", s.nf, s.failures[0]);
    CHECK(s.has_to, "envelope record gives To");
    rewind(f);
    memset(&s, 0, sizeof s);
    o.threads = 1;
    rc = mailbars_bulk_run_jsonl(t, f, NULL, &o, sink, &s, &e);
    CHECK(rc == MAILBARS_OK && s.n == n && s.nf == 8 &&
              !strcmp(s.failures[0],
                      "Attribute 'favoriteanimal' is not present in the rendering data."),
          "without defaults every record fails with SES's message: %zu %zu [%s]", s.n, s.nf,
          s.failures[0]);
    fclose(f);
    json_decref(defaults);
    mailbars_ses_template_free(t);
}

/* Limits set through mailbars_ses_options.limits reach every stage: JSON parsing (documents,
 * TemplateData, bulk records), compiling each part and rendering it. */
static void test_limits(void) {
    mailbars_error e;
    mailbars_render_ctx *lim = mailbars_render_ctx_new();
    mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_JSON_DEPTH, 2);
    json_t *v = mailbars_json_parse("[[\n[1]]]", 8, "x.json", lim, &e);
    CHECK(!v && e.code == MAILBARS_ERR_LIMIT_JSON_DEPTH && e.line == 2 && e.column == 1 &&
              strstr(e.message, "x.json: line 2, column 1"),
          "json_parse: depth 3 over a limit of 2 at 2:1: %d %d:%d %s", e.code, e.line, e.column,
          e.message);
    v = mailbars_json_parse("[[1]]", 5, NULL, lim, &e);
    CHECK(v && json_is_array(v) && e.code == 0, "json_parse: depth 2 is allowed");
    json_decref(v);
    v = mailbars_json_parse("[[\n[1]]]", 8, NULL, NULL, &e);
    CHECK(v != NULL, "json_parse: NULL limits are the defaults");
    json_decref(v);
    v = mailbars_json_parse("{\"a\":\n tru}", 12, NULL, NULL, &e);
    CHECK(!v && e.code == MAILBARS_ERR_JSON && e.line == 2 && e.column == 2,
          "json_parse: invalid JSON with its position: %d %d:%d %s", e.code, e.line, e.column,
          e.message);
    mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_JSON_SIZE, 4);
    v = mailbars_json_parse("[1,2]", 5, NULL, lim, &e);
    CHECK(!v && e.code == MAILBARS_ERR_LIMIT_JSON_SIZE, "json_parse: size limit: %s", e.message);
    mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_JSON_SIZE, 0);

    /* TemplateData inside a request: the document is 5 deep, its data 6 */
    mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_JSON_DEPTH, 5);
    mailbars_ses_options o;
    memset(&o, 0, sizeof o);
    o.limits = lim;
    const char *req = "{\"Template\":\"T\",\"Source\":\"a@example.com\",\"Destinations\":["
                      "{\"Destination\":{\"ToAddresses\":[\"b@example.com\"]},"
                      "\"ReplacementTemplateData\":\"{\\\"a\\\":[[[[[1]]]]]}\"}]}";
    mailbars_error w;
    mailbars_ses_request *r = mailbars_ses_request_parse(req, strlen(req), &o, &w, &e);
    CHECK(r != NULL, "request parses: %s", e.message);
    mailbars_ses_destination d;
    int rc = r ? mailbars_ses_request_destination(r, 0, &d, &e) : -1;
    CHECK(rc == MAILBARS_ERR_LIMIT_JSON_DEPTH &&
              strstr(e.message, "Destinations[0].ReplacementTemplateData"),
          "request data over the JSON depth limit: %d %s", rc, e.message);
    mailbars_ses_request_free(r);
    r = mailbars_ses_request_parse(req, strlen(req), NULL, &w, &e);
    rc = r ? mailbars_ses_request_destination(r, 0, &d, &e) : -1;
    CHECK(rc == MAILBARS_OK, "the same request with default limits: %d %s", rc, e.message);
    if (rc == MAILBARS_OK) json_decref(d.data);
    mailbars_ses_request_free(r);

    /* compile: nesting */
    mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_NESTING, 2);
    mailbars_ses_template *t = mailbars_ses_template_new(
        "N", "s", "{{#if a}}{{#if b}}{{#if c}}x{{/if}}{{/if}}{{/if}}", NULL, &o, &e);
    CHECK(!t && e.code == MAILBARS_ERR_LIMIT_NESTING && !strcmp(e.part, "text"),
          "nesting limit applies to the parts: %d %s %s", e.code, e.part, e.message);
    mailbars_ses_template_free(t);

    /* render: output bytes, per template; the same render state then renders another
     * template with the defaults */
    mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_OUTPUT, 10);
    t = mailbars_ses_template_new("O", "s", "{{name}}{{name}}", NULL, &o, &e);
    mailbars_ses_template *t2 =
        mailbars_ses_template_new("D", "s", "{{name}}{{name}}", NULL, NULL, &e);
    mailbars_ses_render_state *st = mailbars_ses_render_state_new();
    json_t *data = J("{\"name\":\"abcdefgh\"}");
    const char *tx = NULL;
    size_t tl = 0;
    rc = t && t2 && st
             ? mailbars_ses_render_parts(st, t, data, NULL, NULL, &tx, &tl, NULL, NULL, &e)
             : -1;
    CHECK(rc == MAILBARS_ERR_LIMIT_OUTPUT && !strcmp(e.part, "text"),
          "output limit applies to the render: %d %s", rc, e.message);
    rc = t && t2 && st
             ? mailbars_ses_render_parts(st, t2, data, NULL, NULL, &tx, &tl, NULL, NULL, &e)
             : -1;
    CHECK(rc == MAILBARS_OK && tl == 16, "a template with default limits on the same state: %d",
          rc);
    json_decref(data);
    mailbars_ses_render_state_free(st);
    mailbars_ses_template_free(t);
    mailbars_ses_template_free(t2);

    /* bulk records: the template's JSON limits; the deep record fails alone */
    mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_OUTPUT, 0);
    mailbars_render_ctx_set_limit(lim, MAILBARS_LIMIT_JSON_DEPTH, 3);
    t = mailbars_ses_template_parse(k_mytemplate, strlen(k_mytemplate), &o, &e);
    mailbars_render_ctx_free(lim); /* the template holds a copy */
    FILE *f = tmpfile();
    fprintf(f, "{\"name\":\"R1\",\"favoriteanimal\":\"x\"}\n"
               "{\"name\":\"R2\",\"favoriteanimal\":{\"a\":[[1]]}}\n"
               "{\"name\":\"R3\",\"favoriteanimal\":[[1]]}\n");
    rewind(f);
    mailbars_bulk_options bo;
    memset(&bo, 0, sizeof bo);
    bo.threads = 2;
    seen s;
    memset(&s, 0, sizeof s);
    rc = t ? mailbars_bulk_run_jsonl(t, f, NULL, &bo, sink, &s, &e) : -1;
    CHECK(rc == MAILBARS_OK && s.n == 3 && s.nf == 1 && s.failure_index[0] == 2 &&
              strstr(s.failures[0], "deeper than the limit of 3"),
          "bulk: the record over the JSON depth limit fails alone: %d %zu %zu [%s]", rc, s.n, s.nf,
          s.failures[0]);
    fclose(f);
    mailbars_ses_template_free(t);
}

/* The 500 KB template limit: an error above it, a check warning close to it. */
static void test_size_limit(void) {
    mailbars_error e;
    size_t n = MAILBARS_SES_MAX_TEMPLATE_BYTES + 1;
    char *text = malloc(n + 1);
    memset(text, 'x', n);
    text[n] = 0;
    mailbars_ses_template *t = mailbars_ses_template_new("Big", "s", text, NULL, NULL, &e);
    CHECK(!t && e.code == MAILBARS_ERR_SES_LIMIT && strstr(e.message, "500 KB"),
          "a template over 500 KB is refused: %s", e.message);
    text[n - 2] = 0; /* subject "s" + 511,999 bytes = 512,000: allowed */
    t = mailbars_ses_template_new("Big", "s", text, NULL, NULL, &e);
    CHECK(t != NULL, "exactly 500 KB is allowed: %s", e.message);
    mailbars_ses_template_free(t);
    json_t *j = json_pack("{s:s, s:s}", "TemplateName", "Big", "TextPart", text + 10000);
    char *src = json_dumps(j, 0);
    mailbars_ses_diags d = {0};
    mailbars_ses_check(src, strlen(src), NULL, NULL, &d);
    int near = 0;
    for (size_t i = 0; i < d.len; i++)
        near |= d.items[i].severity == MAILBARS_SEV_WARNING &&
                strstr(d.items[i].message, "close to SES's 500 KB limit") != NULL;
    CHECK(near && mailbars_ses_diags_errors(&d) == 0, "check warns near the size limit");
    mailbars_ses_diags_free(&d);
    free(src);
    json_decref(j);
    free(text);
}

int main(void) {
    test_utf8_bodies();
    test_prefetch();
    test_merge();
    test_data_and_names();
    test_templates();
    test_requests();
    test_check();
    test_bulk();
    test_size_limit();
    test_limits();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
