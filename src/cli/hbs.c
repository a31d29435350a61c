/* mailbars hbs: renders a bare Handlebars template, or batches of cases in the JSON Lines
 * protocol of the handlebars.js oracle (../shared/oracle/hbs-oracle.js), so the two can be
 * compared byte for byte (tests/diff). Uses only the public API. */
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Numbers behave as JavaScript doubles; strings may hold NUL as in JavaScript. */
#define HBS_JSON_FLAGS (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/* One boolean compile option: its handlebars.js name, its CLI spelling and its flag. */
typedef struct hbs_flag_opt {
    const char *js_name;
    const char *cli_name;
    unsigned flag;
} hbs_flag_opt;

static const hbs_flag_opt HBS_FLAGS[] = {
    {"noEscape", "--no-escape", MAILBARS_NO_ESCAPE},
    {"strict", "--strict", MAILBARS_STRICT},
    {"compat", "--compat", MAILBARS_COMPAT},
    {"knownHelpersOnly", "--known-helpers-only", MAILBARS_KNOWN_HELPERS_ONLY},
    {"assumeObjects", "--assume-objects", MAILBARS_ASSUME_OBJECTS},
    {"preventIndent", "--prevent-indent", MAILBARS_PREVENT_INDENT},
    {"ignoreStandalone", "--ignore-standalone", MAILBARS_IGNORE_STANDALONE},
    {"explicitPartialContext", "--explicit-partial-context", MAILBARS_EXPLICIT_PARTIAL_CONTEXT},
};
#define HBS_NFLAGS (sizeof HBS_FLAGS / sizeof HBS_FLAGS[0])

/* Prints the subcommand's help. */
static void hbs_usage(FILE *f) {
    fprintf(f,
            "usage: mailbars hbs [OPTIONS] TEMPLATE.hbs [DATA.json|-]\n"
            "       mailbars hbs --jsonl\n"
            "\n"
            "Renders a Handlebars template (handlebars.js 4.7 semantics) with JSON data and\n"
            "prints the text on stdout. Without DATA the context is undefined.\n"
            "\n"
            "options:\n"
            "  --no-escape                 noEscape: {{x}} is not HTML-escaped\n"
            "  --strict                    strict: a missing value is an error\n"
            "  --compat                    compat: Mustache-style recursive lookup\n"
            "  --known-helpers-only        knownHelpersOnly\n"
            "  --assume-objects            assumeObjects\n"
            "  --prevent-indent            preventIndent: partials are not indented\n"
            "  --ignore-standalone         ignoreStandalone: standalone lines are kept\n"
            "  --explicit-partial-context  explicitPartialContext\n"
            "  --no-data                   data: false (no @data variables)\n"
            "  --partial NAME=FILE         registers a partial (repeatable)\n"
            "  --runtime-data FILE.json    an object of custom @data variables\n"
            "  --jsonl                     batch mode: one case per stdin line, in the\n"
            "                              oracle's protocol {\"template\",\"data\",\"partials\",\n"
            "                              \"options\",\"runtimeData\"}; one result per line\n"
            "  -h, --help                  show this help\n"
            "\n"
            "exit status: 0 ok, 1 render error, 2 invalid template or data\n"
            "(FILE:LINE:COL: error: ...), 64 usage, 74 unreadable file.\n");
}

/* JavaScript truthiness of a JSON value (options are read as handlebars.js reads them:
 * false, null, 0, NaN and "" are false; arrays and objects, even empty, are true). */
static int hbs_js_truthy(const json_t *v) {
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return 0;
    case JSON_TRUE:
    case JSON_OBJECT:
    case JSON_ARRAY: return 1;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: {
        double d = json_real_value(v);
        return d == d && d != 0.0;
    }
    }
    return 0;
}

/* Builds a result line object {"ok":false,"error":msg}. */
static json_t *hbs_fail(const char *msg) {
    return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

/* Reads the "options" member of a case into compile flags and known helpers, as the oracle
 * does: unknown names are an error. Returns NULL on success or a failure result. */
static json_t *hbs_case_options(json_t *opts, mailbars_compile_ctx *cctx) {
    unsigned flags = 0;
    const char *key;
    json_t *v;
    char msg[600];

    if (!opts || json_is_null(opts)) {
        mailbars_compile_ctx_set_flags(cctx, 0);
        return NULL;
    }
    if (!json_is_object(opts)) return hbs_fail("\"options\" must be an object");
    json_object_foreach(opts, key, v) {
        size_t i;
        for (i = 0; i < HBS_NFLAGS; i++)
            if (!strcmp(key, HBS_FLAGS[i].js_name)) break;
        if (i < HBS_NFLAGS) {
            if (hbs_js_truthy(v)) flags |= HBS_FLAGS[i].flag;
        } else if (!strcmp(key, "data")) {
            if (!hbs_js_truthy(v)) flags |= MAILBARS_NO_DATA;
        } else if (!strcmp(key, "knownHelpers")) {
            const char *name;
            json_t *known;
            if (!json_is_object(v)) continue;
            json_object_foreach(v, name, known) {
                if (hbs_js_truthy(known) &&
                    mailbars_compile_ctx_add_known_helper(cctx, name) != MAILBARS_OK)
                    return hbs_fail("out of memory");
            }
        } else {
            snprintf(msg, sizeof msg, "unknown option: %s", key);
            return hbs_fail(msg);
        }
    }
    mailbars_compile_ctx_set_flags(cctx, flags);
    return NULL;
}

/* Registers the "partials" member of a case. Returns NULL on success or a failure result. */
static json_t *hbs_case_partials(json_t *partials, mailbars_env *env) {
    const char *name;
    json_t *src;
    char msg[600];

    if (!partials || json_is_null(partials)) return NULL;
    if (!json_is_object(partials))
        return hbs_fail("\"partials\" must be an object of name -> template string");
    json_object_foreach(partials, name, src) {
        if (!json_is_string(src)) {
            snprintf(msg, sizeof msg, "partial \"%s\" must be a string", name);
            return hbs_fail(msg);
        }
        if (mailbars_env_register_partial(env, name, json_string_value(src),
                                          json_string_length(src)) != MAILBARS_OK)
            return hbs_fail("out of memory");
    }
    return NULL;
}

/* Runs one parsed case and returns its result object (never NULL unless out of memory). */
static json_t *hbs_run_case(json_t *in, mailbars_render_state *st) {
    mailbars_env *env = NULL;
    mailbars_compile_ctx *cctx = NULL;
    mailbars_template *tpl = NULL;
    mailbars_error err;
    json_t *res = NULL, *tsrc, *data, *rdata;

    mailbars_error_clear(&err);
    if (!json_is_object(in)) return hbs_fail("input must be a JSON object");
    tsrc = json_object_get(in, "template");
    if (!json_is_string(tsrc)) return hbs_fail("\"template\" must be a string");

    env = mailbars_env_new();
    cctx = mailbars_compile_ctx_new();
    if (!env || !cctx) {
        res = hbs_fail("out of memory");
        goto done;
    }
    if ((res = hbs_case_options(json_object_get(in, "options"), cctx))) goto done;
    if ((res = hbs_case_partials(json_object_get(in, "partials"), env))) goto done;

    tpl = mailbars_compile(env, json_string_value(tsrc), json_string_length(tsrc), cctx, &err);
    if (!tpl) {
        res = hbs_fail(err.message[0] ? err.message : mailbars_status_message(err.code));
        goto done;
    }
    /* Absent data is undefined (NULL); runtimeData is used when it is an object (null or
     * absent: only @root, as handlebars.js initData does). */
    data = json_object_get(in, "data");
    rdata = json_object_get(in, "runtimeData");
    if (!json_is_object(rdata)) rdata = NULL;
    if (mailbars_render(st, tpl, data, rdata, &err) != MAILBARS_OK) {
        res = hbs_fail(err.message[0] ? err.message : mailbars_status_message(err.code));
    } else {
        size_t len;
        const char *out = mailbars_render_output(st, &len);
        json_t *s = json_stringn(out ? out : "", out ? len : 0);
        res = s ? json_pack("{s:b,s:o}", "ok", 1, "output", s)
                : hbs_fail("mailbars produced output that is not valid UTF-8");
    }
done:
    mailbars_template_free(tpl);
    mailbars_compile_ctx_free(cctx);
    mailbars_env_free(env);
    return res;
}

/* Writes one result line. JSON text may hold U+0085, U+2028 and U+2029 raw, which some line
 * readers split on: they are written as \u escapes, as the oracle does. */
static void hbs_write_result(json_t *res) {
    char *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
    if (!text) {
        fputs("{\"ok\":false,\"error\":\"out of memory\"}\n", stdout);
        fflush(stdout);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
            printf("\\u%04x", p[2] == 0xA8 ? 0x2028 : 0x2029);
            p += 2;
        } else if (p[0] == 0xC2 && p[1] == 0x85) {
            fputs("\\u0085", stdout);
            p += 1;
        } else {
            putchar(*p);
        }
    }
    putchar('\n');
    fflush(stdout);
    free(text);
}

/* 1 when a line is only whitespace (the oracle skips such lines without a result). */
static int hbs_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n\v\f", s[i]) || s[i] == 0) return 0;
    return 1;
}

/* Batch mode: one case per stdin line, one result per stdout line, in order. */
static int hbs_jsonl(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    mailbars_render_state *st = mailbars_render_state_new(NULL);
    if (!st) {
        fprintf(stderr, "mailbars hbs: out of memory\n");
        return EXIT_RENDER;
    }
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        json_error_t jerr;
        json_t *in, *res;
        char msg[300];

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (hbs_blank(line, len)) continue;
        in = json_loadb(line, len, HBS_JSON_FLAGS, &jerr);
        if (!in) {
            snprintf(msg, sizeof msg, "invalid JSON input: %s at line %d column %d", jerr.text,
                     jerr.line, jerr.column);
            res = hbs_fail(msg);
        } else {
            res = hbs_run_case(in, st);
        }
        hbs_write_result(res);
        json_decref(res);
        json_decref(in);
    }
    free(line);
    mailbars_render_state_free(st);
    return EXIT_OK;
}

/* Reads a JSON file ("-" = stdin). Returns NULL after printing FILE:LINE:COL diagnostics
 * (*rc = EXIT_INVALID) or a read error (*rc = EXIT_IOERR). */
static json_t *hbs_load_json(const char *path, int *rc) {
    mailbars_buf b;
    json_error_t jerr;
    json_t *v;

    mailbars_buf_init(&b);
    if ((*rc = cli_read_file(path, &b)) != EXIT_OK) {
        mailbars_buf_free(&b);
        return NULL;
    }
    v = json_loadb(b.data, b.len, HBS_JSON_FLAGS, &jerr);
    if (!v) {
        fprintf(stderr, "%s:%d:%d: error: %s\n", path, jerr.line > 0 ? jerr.line : 1,
                jerr.column > 0 ? jerr.column : 1, jerr.text);
        *rc = EXIT_INVALID;
    }
    mailbars_buf_free(&b);
    return v;
}

/* Registers one --partial NAME=FILE. Returns an exit code. */
static int hbs_add_partial(mailbars_env *env, const char *arg) {
    const char *eq = strchr(arg, '=');
    mailbars_buf src;
    char name[256];
    int rc;

    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof name) {
        fprintf(stderr, "mailbars hbs: --partial wants NAME=FILE, got '%s'\n", arg);
        return EXIT_USAGE;
    }
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = 0;
    mailbars_buf_init(&src);
    rc = cli_read_file(eq + 1, &src);
    if (rc == EXIT_OK && mailbars_env_register_partial(env, name, src.data, src.len)) {
        fprintf(stderr, "mailbars hbs: out of memory\n");
        rc = EXIT_RENDER;
    }
    mailbars_buf_free(&src);
    return rc;
}

/* The file that a compile error points into: a partial's file when err.part names one. */
static const char *hbs_error_file(const mailbars_error *err, char **argv, int argc,
                                  const char *tpl_path) {
    size_t plen = strlen(err->part);
    if (!plen) return tpl_path;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--partial") && !strncmp(argv[i + 1], err->part, plen) &&
            argv[i + 1][plen] == '=')
            return argv[i + 1] + plen + 1;
    return tpl_path;
}

int cmd_hbs(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL};
    const char *rdata_path = NULL;
    int npos = 0, jsonl = 0, rc = EXIT_OK;
    unsigned flags = 0;
    mailbars_env *env = NULL;
    mailbars_compile_ctx *cctx = NULL;
    mailbars_template *tpl = NULL;
    mailbars_render_state *st = NULL;
    mailbars_buf src;
    mailbars_error err;
    json_t *data = NULL, *rdata = NULL;

    mailbars_buf_init(&src);
    mailbars_error_clear(&err);
    env = mailbars_env_new();
    cctx = mailbars_compile_ctx_new();
    if (!env || !cctx) {
        fprintf(stderr, "mailbars hbs: out of memory\n");
        rc = EXIT_RENDER;
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t k;
        for (k = 0; k < HBS_NFLAGS; k++)
            if (!strcmp(a, HBS_FLAGS[k].cli_name)) break;
        if (k < HBS_NFLAGS) {
            flags |= HBS_FLAGS[k].flag;
        } else if (!strcmp(a, "--no-data")) {
            flags |= MAILBARS_NO_DATA;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            hbs_usage(stdout);
            goto done;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = 1;
        } else if (!strcmp(a, "--partial") || !strcmp(a, "--runtime-data")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mailbars hbs: %s needs an argument\n", a);
                rc = EXIT_USAGE;
                goto done;
            }
            if (!strcmp(a, "--runtime-data")) {
                rdata_path = argv[++i];
            } else if ((rc = hbs_add_partial(env, argv[++i])) != EXIT_OK) {
                goto done;
            }
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "mailbars hbs: unknown option '%s'\n", a);
            hbs_usage(stderr);
            rc = EXIT_USAGE;
            goto done;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "mailbars hbs: too many arguments\n");
            hbs_usage(stderr);
            rc = EXIT_USAGE;
            goto done;
        }
    }
    if (jsonl) {
        if (npos > 0) {
            fprintf(stderr, "mailbars hbs: --jsonl reads cases from stdin and takes no files\n");
            rc = EXIT_USAGE;
        } else {
            rc = hbs_jsonl();
        }
        goto done;
    }
    if (npos < 1) {
        hbs_usage(stderr);
        rc = EXIT_USAGE;
        goto done;
    }
    if ((rc = cli_read_file(pos[0], &src)) != EXIT_OK) goto done;
    if (pos[1] && !(data = hbs_load_json(pos[1], &rc))) goto done;
    if (rdata_path) {
        if (!(rdata = hbs_load_json(rdata_path, &rc))) goto done;
        if (!json_is_object(rdata)) {
            fprintf(stderr, "%s:1:1: error: runtime data must be a JSON object\n", rdata_path);
            rc = EXIT_INVALID;
            goto done;
        }
    }
    mailbars_compile_ctx_set_flags(cctx, flags);
    tpl = mailbars_compile(env, src.data, src.len, cctx, &err);
    if (!tpl) {
        fprintf(stderr, "%s:%d:%d: error: %s\n", hbs_error_file(&err, argv, argc, pos[0]),
                err.line > 0 ? err.line : 1, err.column > 0 ? err.column : 1,
                err.message[0] ? err.message : mailbars_status_message(err.code));
        rc = err.code == MAILBARS_ERR_NOMEM ? EXIT_RENDER : EXIT_INVALID;
        goto done;
    }
    st = mailbars_render_state_new(NULL);
    if (!st) {
        fprintf(stderr, "mailbars hbs: out of memory\n");
        rc = EXIT_RENDER;
        goto done;
    }
    if (mailbars_render(st, tpl, data, rdata, &err) != MAILBARS_OK) {
        /* a partial is parsed when first used, as in handlebars.js: its syntax errors are
         * still an invalid template, reported against the partial's file */
        if (err.code == MAILBARS_ERR_PARSE || err.code == MAILBARS_ERR_COMPILE) {
            fprintf(stderr, "%s:%d:%d: error: %s\n", hbs_error_file(&err, argv, argc, pos[0]),
                    err.line > 0 ? err.line : 1, err.column > 0 ? err.column : 1,
                    err.message[0] ? err.message : mailbars_status_message(err.code));
            rc = EXIT_INVALID;
        } else {
            fprintf(stderr, "mailbars hbs: %s\n",
                    err.message[0] ? err.message : mailbars_status_message(err.code));
            rc = EXIT_RENDER;
        }
        goto done;
    }
    {
        size_t len;
        const char *out = mailbars_render_output(st, &len);
        if (len && fwrite(out, 1, len, stdout) != len) rc = EXIT_IOERR;
        if (fflush(stdout) != 0) rc = EXIT_IOERR;
    }
done:
    mailbars_render_state_free(st);
    mailbars_template_free(tpl);
    mailbars_compile_ctx_free(cctx);
    mailbars_env_free(env);
    json_decref(data);
    json_decref(rdata);
    mailbars_buf_free(&src);
    return rc;
}
