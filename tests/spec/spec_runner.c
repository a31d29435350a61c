/* Spec runner: renders every case of the handlebars.js spec (jbboehr/handlebars-spec JSON) and
 * of mustache/spec with mailbars and compares the output byte for byte (or the error message).
 *
 *   spec_runner [-v] [--filter TEXT] [--list-ports] --skips SKIPS.txt SPEC_DIR SUITE...
 *
 * SUITE is "handlebars" (every SPEC_DIR/handlebars JSON file except parser.json and tokenizer.json,
 * which the parser test covers) or "mustache" (every SPEC_DIR/mustache JSON file). The files are
 * read in place. Cases listed in SKIPS.txt are still rendered, to check they do not crash, but
 * their result does not count. Helpers written in JavaScript are replaced by the native ports of
 * spec_helpers.c, found by the case's file, description, it and helper name.
 * Prints a summary per file and "N passed, M failed, K skipped"; exits 1 on any failure. */
#include "spec_helpers.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- command line and counters ---- */

static int verbose;
static const char *filter;

typedef struct counts {
    int passed, failed, skipped;
} counts;

static counts total;

/* ---- skip list: "file|description|it|number  # reason", "*" matches any field ---- */

typedef struct skip_entry {
    char *fields[4];
    char *reason;
    int used;
    int line;
} skip_entry;

static skip_entry *skips;
static size_t nskips;

/* Copies the n bytes at s into a new NUL-terminated string. */
static char *dup_n(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

/* Reads the skip list; returns 0 on success. Descriptions may contain '#', so the reason starts
 * at the first '#' after the fourth field (the number, which is digits or "*"). */
static int load_skips(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open skip list %s\n", path);
        return -1;
    }
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (len == 0 || line[0] == '#') continue;
        skip_entry e = {0};
        e.line = lineno;
        const char *p = line;
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++) {
            const char *bar = strchr(p, '|');
            if (!bar)
                ok = 0;
            else
                e.fields[i] = dup_n(p, (size_t)(bar - p)), p = bar + 1;
        }
        if (!ok) {
            fprintf(stderr, "%s:%d: expected file|description|it|number  # reason\n", path, lineno);
            for (int i = 0; i < 3; i++) free(e.fields[i]);
            fclose(f);
            return -1;
        }
        size_t nl = strcspn(p, " \t#");
        e.fields[3] = dup_n(p, nl);
        const char *hash = strchr(p + nl, '#');
        const char *reason = hash ? hash + 1 : "";
        while (*reason == ' ') reason++;
        e.reason = dup_n(reason, strlen(reason));
        skip_entry *grown = realloc(skips, (nskips + 1) * sizeof *skips);
        if (!grown) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        skips = grown;
        skips[nskips++] = e;
    }
    fclose(f);
    return 0;
}

/* Frees the skip list. */
static void free_skips(void) {
    for (size_t i = 0; i < nskips; i++) {
        for (int k = 0; k < 4; k++) free(skips[i].fields[k]);
        free(skips[i].reason);
    }
    free(skips);
}

/* The skip entry that covers a case, or NULL. */
static skip_entry *find_skip(const char *file, const char *desc, const char *it,
                             const char *number) {
    const char *v[4] = {file, desc, it, number};
    for (size_t i = 0; i < nskips; i++) {
        int match = 1;
        for (int k = 0; k < 4 && match; k++)
            match = strcmp(skips[i].fields[k], "*") == 0 || strcmp(skips[i].fields[k], v[k]) == 0;
        if (match) return &skips[i];
    }
    return NULL;
}

/* ---- one case ---- */

typedef struct spec_case {
    const char *file; /* "handlebars/basic" */
    const char *stem; /* "basic": the key for helper ports */
    const char *desc, *it, *number;
    json_t *tpl;         /* string */
    json_t *data;        /* NULL when absent (undefined) */
    json_t *helpers;     /* object or NULL */
    json_t *partials;    /* object or NULL */
    json_t *decorators;  /* object or NULL */
    json_t *compile;     /* compileOptions object or NULL */
    json_t *runtime;     /* runtimeOptions object or NULL */
    json_t *expected;    /* string or NULL */
    json_t *exception;   /* true, string or NULL */
    unsigned base_flags; /* flags every case of the suite gets (compat for mustache) */
} spec_case;

/* Whether v holds a JavaScript-only value: a function ("!code"), or a sparse array. */
static int has_js_value(json_t *v) {
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        if (json_object_get(v, "!code") || json_object_get(v, "!sparsearray") ||
            json_object_get(v, "__tag__"))
            return 1;
        json_object_foreach(v, k, x) if (has_js_value(x)) return 1;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (has_js_value(x)) return 1;
    }
    return 0;
}

/* Whether v is an encoded JavaScript function. */
static int is_code(json_t *v) {
    return json_is_object(v) && json_object_get(v, "!code");
}

/* Whether an error message satisfies the spec's `exception`: true accepts any message, "/re/"
 * (backslashes removed) must occur in it, anything else must equal it. */
static int exception_matches(json_t *exc, const char *msg) {
    if (!json_is_string(exc)) return 1;
    const char *want = json_string_value(exc);
    size_t n = strlen(want);
    if (n >= 2 && want[0] == '/' && want[n - 1] == '/') {
        char *lit = dup_n(want + 1, n - 2);
        size_t o = 0;
        for (size_t i = 0; lit[i]; i++)
            if (lit[i] != '\\') lit[o++] = lit[i];
        lit[o] = 0;
        int ok = strstr(msg, lit) != NULL;
        free(lit);
        return ok;
    }
    return strcmp(want, msg) == 0;
}

/* Compile flags from handlebars.js compileOptions; registers knownHelpers. Fills why and
 * returns -1 for options mailbars does not have (stringParams, trackIds). */
static int apply_compile_options(const spec_case *c, mailbars_compile_ctx *cctx, char *why,
                                 size_t whylen) {
    static const struct {
        const char *name;
        unsigned flag;
    } bools[] = {
        {"strict", MAILBARS_STRICT},
        {"assumeObjects", MAILBARS_ASSUME_OBJECTS},
        {"compat", MAILBARS_COMPAT},
        {"knownHelpersOnly", MAILBARS_KNOWN_HELPERS_ONLY},
        {"preventIndent", MAILBARS_PREVENT_INDENT},
        {"ignoreStandalone", MAILBARS_IGNORE_STANDALONE},
        {"explicitPartialContext", MAILBARS_EXPLICIT_PARTIAL_CONTEXT},
        {"noEscape", MAILBARS_NO_ESCAPE},
    };
    unsigned flags = c->base_flags;
    const char *key;
    json_t *v;
    json_object_foreach(c->compile, key, v) {
        int known = 0;
        for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
            if (strcmp(key, bools[i].name) == 0) {
                known = 1;
                if (json_is_true(v)) flags |= bools[i].flag;
            }
        if (known) continue;
        if (strcmp(key, "data") == 0) {
            if (json_is_false(v)) flags |= MAILBARS_NO_DATA;
        } else if (strcmp(key, "knownHelpers") == 0) {
            const char *name;
            json_t *on;
            json_object_foreach(v, name, on) if (json_is_true(on))
                mailbars_compile_ctx_add_known_helper(cctx, name);
        } else if (json_is_true(v)) {
            snprintf(why, whylen, "compile option %s needs JavaScript", key);
            return -1;
        }
    }
    mailbars_compile_ctx_set_flags(cctx, flags);
    return 0;
}

/* Registers the case's helpers (native ports) and partials in env. Fills why and returns -1
 * when something needs JavaScript that has no port; `lenient` leaves such things out. */
static int setup_env(const spec_case *c, mailbars_env *env, int lenient, char *why, size_t whylen) {
    const char *name;
    json_t *v;
    json_object_foreach(c->helpers, name, v) {
        if (!is_code(v)) continue; /* a non-function "helper" is never called in JS either */
        const spec_port *port = spec_find_helper(c->stem, c->desc, c->it, name);
        if (!port) {
            if (lenient) continue;
            snprintf(why, whylen, "no native port for helper '%s'", name);
            return -1;
        }
        mailbars_env_register_helper(env, name, port->fn, (void *)port);
    }
    json_object_foreach(c->partials, name, v) {
        if (json_is_string(v)) {
            mailbars_env_register_partial(env, name, json_string_value(v), json_string_length(v));
            continue;
        }
        const spec_port *port = spec_find_partial(c->stem, c->desc, c->it, name);
        if (port) {
            mailbars_env_register_partial(env, name, port->arg, strlen(port->arg));
        } else if (!lenient) {
            snprintf(why, whylen, "partial '%s' is a JavaScript function", name);
            return -1;
        }
    }
    if (!lenient && json_object_size(c->decorators) > 0) {
        snprintf(why, whylen, "custom decorators need JavaScript");
        return -1;
    }
    if (!lenient && (has_js_value(c->data) || has_js_value(c->runtime))) {
        snprintf(why, whylen, "the data holds a JavaScript function or sparse array");
        return -1;
    }
    return 0;
}

enum { RESULT_PASS, RESULT_FAIL };

/* Runs one case; `got` receives the output or error text and `why` the reason of a failure.
 * In lenient mode (skipped cases) the case only has to run without crashing. */
static int run_case(const spec_case *c, int lenient, mailbars_buf *got, char *why, size_t whylen) {
    int result = RESULT_FAIL;
    mailbars_error err;
    mailbars_error_clear(&err);
    why[0] = 0;
    spec_helpers_reset();
    mailbars_env *env = mailbars_env_new();
    mailbars_compile_ctx *cctx = mailbars_compile_ctx_new();
    mailbars_render_state *st = NULL;
    mailbars_template *tpl = NULL;
    if (!env || !cctx) {
        snprintf(why, whylen, "out of memory");
        goto done;
    }
    if (setup_env(c, env, lenient, why, whylen) != 0) goto done;
    if (apply_compile_options(c, cctx, why, whylen) != 0 && !lenient) goto done;

    tpl = mailbars_compile(env, json_string_value(c->tpl), json_string_length(c->tpl), cctx, &err);
    int failed = tpl == NULL;
    if (tpl) {
        json_t *rt_data = json_object_get(c->runtime, "data");
        st = mailbars_render_state_new(NULL);
        if (!st) {
            snprintf(why, whylen, "out of memory");
            goto done;
        }
        int rc = mailbars_render(st, tpl, c->data, json_is_object(rt_data) ? rt_data : NULL, &err);
        if (rc == MAILBARS_OK) {
            size_t len = 0;
            const char *out = mailbars_render_output(st, &len);
            mailbars_buf_append(got, out ? out : "", len);
        } else {
            failed = 1;
            if (err.code == 0) err.code = rc;
        }
    }
    if (failed) {
        mailbars_buf_append(got, "error: ", 7);
        mailbars_buf_append(got, err.message, strlen(err.message));
        if (err.message[0] == 0) {
            const char *m = mailbars_status_message(err.code);
            mailbars_buf_append(got, m, strlen(m));
        }
    }
    if (spec_helpers_assert_failure()) {
        snprintf(why, whylen, "%s", spec_helpers_assert_failure());
    } else if (c->exception) {
        if (!failed)
            snprintf(why, whylen, "expected an error");
        else if (!exception_matches(c->exception, err.message))
            snprintf(why, whylen, "wrong error message");
        else
            result = RESULT_PASS;
    } else if (failed) {
        snprintf(why, whylen, "unexpected error");
    } else if (!json_is_string(c->expected) || got->len != json_string_length(c->expected) ||
               memcmp(got->data ? got->data : "", json_string_value(c->expected), got->len) != 0) {
        snprintf(why, whylen, "output differs");
    } else {
        result = RESULT_PASS;
    }
done:
    mailbars_render_state_free(st);
    mailbars_template_free(tpl);
    mailbars_compile_ctx_free(cctx);
    mailbars_env_free(env);
    return result;
}

/* Prints v as a JSON string literal (shows whitespace and control characters). */
static void print_json_string(FILE *f, const char *s, size_t len) {
    json_t *v = json_stringn_nocheck(s, len);
    char *t = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    fputs(t ? t : "?", f);
    free(t);
    json_decref(v);
}

/* Prints one failed case in full. */
static void report_failure(const spec_case *c, const mailbars_buf *got, const char *why) {
    printf("FAIL %s|%s|%s|%s: %s\n", c->file, c->desc, c->it, c->number, why);
    if (!verbose) return;
    printf("  template: ");
    print_json_string(stdout, json_string_value(c->tpl), json_string_length(c->tpl));
    printf("\n  expected: ");
    if (c->exception) {
        char *t = json_dumps(c->exception, JSON_ENCODE_ANY);
        printf("error %s", t ? t : "?");
        free(t);
    } else if (json_is_string(c->expected)) {
        print_json_string(stdout, json_string_value(c->expected), json_string_length(c->expected));
    }
    printf("\n  got:      ");
    print_json_string(stdout, got->data ? got->data : "", got->len);
    printf("\n");
}

/* Runs a case unless filtered out, applies the skip list, and counts the result. */
static void process_case(const spec_case *c, counts *fc) {
    char id[2048];
    snprintf(id, sizeof id, "%s|%s|%s|%s", c->file, c->desc, c->it, c->number);
    if (filter && !strstr(id, filter)) return;
    if (!json_is_string(c->tpl)) return;
    skip_entry *skip = find_skip(c->file, c->desc, c->it, c->number);
    mailbars_buf got = {0};
    char why[600];
    int r = run_case(c, skip != NULL, &got, why, sizeof why);
    if (skip) {
        skip->used = 1;
        fc->skipped++;
        if (verbose && r == RESULT_PASS)
            printf("note: skipped case passes: %s (skip list line %d)\n", id, skip->line);
    } else if (r == RESULT_PASS) {
        fc->passed++;
    } else {
        fc->failed++;
        report_failure(c, &got, why);
    }
    mailbars_buf_free(&got);
}

/* ---- files ---- */

/* The .json files of a directory, sorted; returns the count (names freed by the caller). */
static size_t list_json(const char *dir, char ***out) {
    DIR *d = opendir(dir);
    size_t n = 0;
    char **names = NULL;
    *out = NULL;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown) break;
        names = grown;
        names[n++] = dup_n(e->d_name, len - 5);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    *out = names;
    return n;
}

/* Loads a JSON file, reporting errors. */
static json_t *load_json(const char *path) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) fprintf(stderr, "%s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
    return root;
}

/* Prints a file's counts and adds them to the total. */
static void finish_file(const char *file, const counts *fc) {
    printf("%-32s %4d passed, %d failed, %d skipped\n", file, fc->passed, fc->failed, fc->skipped);
    total.passed += fc->passed;
    total.failed += fc->failed;
    total.skipped += fc->skipped;
}

/* Prints each helper port in use, with the JS source it stands for (whitespace removed), as
 * tab-separated lines, so a script can check that one port never stands for two sources. */
static void list_ports(const spec_case *c) {
    const char *name;
    json_t *v;
    json_object_foreach(c->helpers, name, v) {
        if (!is_code(v)) continue;
        const spec_port *p = spec_find_helper(c->stem, c->desc, c->it, name);
        const char *js = json_string_value(json_object_get(v, "javascript"));
        if (!js) js = json_string_value(json_object_get(v, "php"));
        printf("%s|%s|%s|%s\t%s\t%s\t", c->file, c->desc, c->it, name, p ? p->cname : "-",
               p ? p->arg : "-");
        for (const char *s = js ? js : ""; *s; s++)
            if (*s != ' ' && *s != '\n' && *s != '\t' && *s != '\r') putchar(*s);
        putchar('\n');
    }
}

/* Runs every case of one handlebars-spec file. */
static int run_handlebars_file(const char *spec_dir, const char *stem, int listing) {
    char path[4096], file[256];
    snprintf(path, sizeof path, "%s/handlebars/%s.json", spec_dir, stem);
    snprintf(file, sizeof file, "handlebars/%s", stem);
    json_t *root = load_json(path);
    if (!json_is_array(root)) {
        json_decref(root);
        return -1;
    }
    counts fc = {0};
    size_t i;
    json_t *jc;
    json_array_foreach(root, i, jc) {
        spec_case c = {0};
        c.file = file;
        c.stem = stem;
        c.desc = json_string_value(json_object_get(jc, "description"));
        c.it = json_string_value(json_object_get(jc, "it"));
        c.number = json_string_value(json_object_get(jc, "number"));
        if (!c.desc) c.desc = "";
        if (!c.it) c.it = "";
        if (!c.number) c.number = "00";
        c.tpl = json_object_get(jc, "template");
        c.data = json_object_get(jc, "data");
        c.helpers = json_object_get(jc, "helpers");
        c.partials = json_object_get(jc, "partials");
        c.decorators = json_object_get(jc, "decorators");
        c.compile = json_object_get(jc, "compileOptions");
        c.runtime = json_object_get(jc, "runtimeOptions");
        c.expected = json_object_get(jc, "expected");
        c.exception = json_object_get(jc, "exception");
        if (json_is_false(c.exception)) c.exception = NULL;
        if (listing)
            list_ports(&c);
        else
            process_case(&c, &fc);
    }
    if (!listing) finish_file(file, &fc);
    json_decref(root);
    return 0;
}

/* Where handlebars.js 4.7.10 knowingly differs from mustache/spec, the expectation is what
 * handlebars.js does (checked with ../shared/oracle/hbs-oracle.js, compat: true). */
static const struct {
    const char *stem, *name;
    const char *expected;  /* NULL when an error is expected */
    const char *exception; /* exact message */
} mustache_oracle[] = {
    /* handlebars.js throws for a missing partial instead of rendering nothing */
    {"partials", "Failed Lookup", NULL, "The partial text could not be found"},
    /* handlebars.js indents every line of the partial's output, including lines that came
     * from interpolated data */
    {"partials", "Standalone Indentation", "\\\n |\n <\n ->\n |\n/\n", NULL},
};

/* Runs every test of one mustache/spec file (with compat, as handlebars.js runs them). */
static int run_mustache_file(const char *spec_dir, const char *stem) {
    char path[4096], file[256];
    snprintf(path, sizeof path, "%s/mustache/%s.json", spec_dir, stem);
    snprintf(file, sizeof file, "mustache/%s", stem);
    json_t *root = load_json(path);
    json_t *tests = json_object_get(root, "tests");
    if (!json_is_array(tests)) {
        json_decref(root);
        return -1;
    }
    counts fc = {0};
    size_t i;
    json_t *jt;
    json_array_foreach(tests, i, jt) {
        spec_case c = {0};
        c.file = file;
        c.stem = stem;
        c.desc = stem;
        c.it = json_string_value(json_object_get(jt, "name"));
        if (!c.it) c.it = "";
        c.number = "00";
        c.tpl = json_object_get(jt, "template");
        c.data = json_object_get(jt, "data");
        c.partials = json_object_get(jt, "partials");
        c.expected = json_object_get(jt, "expected");
        c.base_flags = MAILBARS_COMPAT;
        json_t *override = NULL;
        for (size_t k = 0; k < sizeof mustache_oracle / sizeof mustache_oracle[0]; k++)
            if (strcmp(mustache_oracle[k].stem, stem) == 0 &&
                strcmp(mustache_oracle[k].name, c.it) == 0) {
                if (mustache_oracle[k].expected) {
                    override = json_string(mustache_oracle[k].expected);
                    c.expected = override;
                } else {
                    override = json_string(mustache_oracle[k].exception);
                    c.exception = override;
                    c.expected = NULL;
                }
            }
        process_case(&c, &fc);
        json_decref(override);
    }
    finish_file(file, &fc);
    json_decref(root);
    return 0;
}

/* Runs one suite ("handlebars" or "mustache"). */
static int run_suite(const char *spec_dir, const char *suite, int listing) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", spec_dir, suite);
    char **names;
    size_t n = list_json(dir, &names);
    int rc = n ? 0 : -1;
    if (!n) fprintf(stderr, "no spec files in %s\n", dir);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(suite, "handlebars") == 0) {
            if (strcmp(names[i], "parser") != 0 && strcmp(names[i], "tokenizer") != 0 &&
                run_handlebars_file(spec_dir, names[i], listing) != 0)
                rc = -1;
        } else if (strcmp(suite, "mustache") == 0) {
            if (!listing && run_mustache_file(spec_dir, names[i]) != 0) rc = -1;
        } else {
            fprintf(stderr, "unknown suite %s\n", suite);
            rc = -1;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Prints how to call the runner. */
static void usage(void) {
    fprintf(stderr, "usage: spec_runner [-v] [--filter TEXT] [--list-ports] --skips SKIPS.txt "
                    "SPEC_DIR handlebars|mustache...\n");
}

int main(int argc, char **argv) {
    const char *skips_path = NULL, *spec_dir = NULL;
    int listing = 0, first_suite = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "--list-ports") == 0)
            listing = 1;
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strcmp(argv[i], "--skips") == 0 && i + 1 < argc)
            skips_path = argv[++i];
        else if (argv[i][0] == '-') {
            usage();
            return 2;
        } else if (!spec_dir)
            spec_dir = argv[i];
        else if (!first_suite)
            first_suite = i;
    }
    if (!spec_dir || !first_suite) {
        usage();
        return 2;
    }
    if (skips_path && load_skips(skips_path) != 0) return 2;
    int rc = 0;
    for (int i = first_suite; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 || strcmp(argv[i], "--skips") == 0) {
            i++;
            continue;
        }
        if (argv[i][0] == '-' || argv[i] == spec_dir) continue;
        if (run_suite(spec_dir, argv[i], listing) != 0) rc = 2;
    }
    if (!listing) {
        for (size_t i = 0; i < nskips; i++)
            if (!skips[i].used && !filter)
                for (int s = first_suite; s < argc; s++)
                    if (strncmp(skips[i].fields[0], argv[s], strlen(argv[s])) == 0 &&
                        skips[i].fields[0][strlen(argv[s])] == '/')
                        printf("warning: skip list line %d matches no case\n", skips[i].line);
        printf("%d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped);
    }
    free_skips();
    if (total.failed > 0) rc = 1;
    return rc;
}
