/*
 * mailbars-bench: render throughput of the benchmark corpus and of full SES messages.
 *
 *   mailbars-bench --corpus DIR [--case NAME]... [--runs N] [--min-time S]
 *       Compiles every case of DIR (NAME.json: template, data, partials, expected) once,
 *       checks one render against `expected`, then times renders with one reused render
 *       state and prints one JSON line per case:
 *       {"case":…,"ns_per_render":…,"output_bytes":…,…}
 *   mailbars-bench --mime --corpus DIR --recipients FILE.jsonl [--threads N] [--limit N]
 *       Full messages for the two SES workloads (ses-preferences, ses-newsletter): subject,
 *       text and HTML rendered, From/To set, MIME assembled with quoted-printable bodies.
 *       Prints one JSON line per workload with messages/s and MB/s.
 *
 * Only the public API (mailbars.h) is used. Timing: each run repeats the work until at least
 * --min-time seconds have passed; the figure reported is the median over --runs runs.
 */
#include "mailbars.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------
 * Small utilities
 * ------------------------------------------------------------------------------------------- */

/* Prints a message to stderr and exits with status 1: the benchmark cannot go on. */
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mailbars-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Monotonic time in nanoseconds. */
static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* qsort comparator for doubles. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts the array in place). */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* malloc that exits on failure (the benchmark's own setup data, not the library's). */
static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

/* Writes `s` (len bytes) as a JSON string literal to `f`. */
static void print_json_string(FILE *f, const char *s) {
    json_t *j = json_string(s);
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    fputs(d ? d : "\"\"", f);
    free(d);
    json_decref(j);
}

/* ---------------------------------------------------------------------------------------------
 * Allocation counter: the library's allocator hook counts every allocation, so the benchmark
 * can report allocations per render in the timed loop (the steady state should make none).
 * ------------------------------------------------------------------------------------------- */

static atomic_ulong g_allocs;

/* Counting malloc for mailbars_set_allocator. */
static void *count_malloc(size_t n) {
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return malloc(n);
}

/* Counting realloc for mailbars_set_allocator. */
static void *count_realloc(void *p, size_t n) {
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return realloc(p, n);
}

/* Counting malloc for jansson (values a helper or the engine might create). */
static void *count_json_malloc(size_t n) {
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    return malloc(n);
}

/* ---------------------------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------------------------- */

typedef struct options {
    const char *corpus;
    const char *recipients;
    const char **cases; /* --case filters (NULL-terminated), or NULL for all */
    int ncases;
    int runs;
    double min_time; /* seconds */
    double warmup;   /* seconds of untimed renders before the timed runs */
    int mime;
    int threads;
    long limit;        /* recipients to use (0: all) */
    int print_message; /* --mime: print the first recipient's message and exit */
    int no_prefetch;   /* --mime: render without mailbars_ses_prefetch */
} options;

/* Prints the usage text. */
static void usage(FILE *f) {
    fputs("usage: mailbars-bench --corpus DIR [--case NAME]... [--runs N] [--min-time S]\n"
          "                      [--warmup S]\n"
          "       mailbars-bench --mime --corpus DIR --recipients FILE.jsonl [--threads N]\n"
          "                      [--limit N] [--runs N] [--min-time S] [--warmup S]\n"
          "                      [--print-message] [--no-prefetch]\n"
          "Prints one JSON line per case (ns_per_render) or per MIME workload (messages/s).\n"
          "Defaults: --runs 5 --min-time 0.5 --warmup 0.5 --threads 1.\n",
          f);
}

/* Parses argv into *o; exits with usage on errors. */
static void parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->runs = 5;
    o->min_time = 0.5;
    o->warmup = 0.5;
    o->threads = 1;
    o->cases = xmalloc(sizeof(char *) * (size_t)(argc + 1));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--mime")) {
            o->mime = 1;
        } else if (!strcmp(a, "--print-message")) {
            o->print_message = 1;
        } else if (!strcmp(a, "--no-prefetch")) {
            o->no_prefetch = 1;
        } else if (!v) {
            usage(stderr);
            die("option %s needs a value", a);
        } else if (!strcmp(a, "--corpus")) {
            o->corpus = v, i++;
        } else if (!strcmp(a, "--recipients")) {
            o->recipients = v, i++;
        } else if (!strcmp(a, "--case")) {
            o->cases[o->ncases++] = v, i++;
        } else if (!strcmp(a, "--runs")) {
            o->runs = atoi(v), i++;
        } else if (!strcmp(a, "--min-time")) {
            o->min_time = atof(v), i++;
        } else if (!strcmp(a, "--warmup")) {
            o->warmup = atof(v), i++;
        } else if (!strcmp(a, "--threads")) {
            o->threads = atoi(v), i++;
        } else if (!strcmp(a, "--limit")) {
            o->limit = atol(v), i++;
        } else {
            usage(stderr);
            die("unknown option %s", a);
        }
    }
    o->cases[o->ncases] = NULL;
    if (!o->corpus) {
        usage(stderr);
        die("--corpus DIR is required");
    }
    if (o->mime && !o->recipients) die("--mime needs --recipients FILE.jsonl");
    if (o->runs < 1) o->runs = 1;
    if (o->min_time < 0) o->min_time = 0;
    if (o->threads < 1) o->threads = 1;
}

/* 1 when case `name` is selected by the --case filters. */
static int case_selected(const options *o, const char *name) {
    if (o->ncases == 0) return 1;
    for (int i = 0; i < o->ncases; i++)
        if (!strcmp(o->cases[i], name)) return 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Helpers the corpus cases `arguments` and `subexpression` need (SOURCE.md describes them):
 *   foo     ignores its arguments, returns ""
 *   echo v  returns "foo " followed by String(v) (a plain string: escaped in {{ }})
 *   header  returns "Colors"
 * None of them allocates per call.
 * ------------------------------------------------------------------------------------------- */

static json_t *g_colors; /* the string "Colors", created once */

/* Helper `foo`: renders nothing. */
static int helper_foo(mailbars_call *call, void *ud) {
    (void)ud;
    return mailbars_call_return_safe(call, "", 0);
}

/* Helper `echo`: "foo " + String(v), escaped like any plain string result. The scratch buffer
 * (userdata) belongs to the thread's case and is reused, so there is no allocation. */
static int helper_echo(mailbars_call *call, void *ud) {
    mailbars_buf *scratch = ud;
    json_t *v = mailbars_call_arg(call, 0);
    int rc = mailbars_call_write_escaped(call, "foo ", 4);
    if (rc) return rc;
    if (json_is_string(v))
        return mailbars_call_write_escaped(call, json_string_value(v), json_string_length(v));
    mailbars_buf_reset(scratch);
    if ((rc = mailbars_value_to_string(v, scratch))) return rc;
    return mailbars_call_write_escaped(call, scratch->data ? scratch->data : "", scratch->len);
}

/* Helper `header`: returns the string "Colors" (a shared value; the call steals a reference). */
static int helper_header(mailbars_call *call, void *ud) {
    (void)ud;
    return mailbars_call_return(call, json_incref(g_colors));
}

/* ---------------------------------------------------------------------------------------------
 * Corpus
 * ------------------------------------------------------------------------------------------- */

static const char *const PART_NAMES[3] = {"subject", "html", "text"};

typedef struct bench_case {
    char *name;
    json_t *root;        /* the whole case file */
    json_t *data;        /* borrowed from root */
    int nparts;          /* 1 (plain template) or 3 (subject, html, text) */
    const char *src[3];  /* template sources, borrowed from root */
    const char *want[3]; /* expected outputs */
    size_t want_len[3];
    mailbars_env *env;
    mailbars_template *tpl[3];
    mailbars_buf scratch; /* for the echo helper */
} bench_case;

/* qsort comparator for file names. */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists DIR's *.json files, sorted by name. Returns the count; *out is a malloc'd array. */
static int list_corpus(const char *dir, char ***out) {
    DIR *d = opendir(dir);
    if (!d) die("cannot open corpus directory %s: %s", dir, strerror(errno));
    int n = 0, cap = 32;
    char **names = xmalloc(sizeof(char *) * (size_t)cap);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
        if (n == cap) {
            cap *= 2;
            names = realloc(names, sizeof(char *) * (size_t)cap);
            if (!names) die("out of memory");
        }
        names[n] = xmalloc(l - 4);
        memcpy(names[n], e->d_name, l - 5);
        names[n][l - 5] = 0;
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

/* Reads DIR/NAME.json into *c (sources, data, expected outputs); exits on a malformed file. */
static void load_case(const char *dir, const char *name, bench_case *c) {
    memset(c, 0, sizeof *c);
    size_t pl = strlen(dir) + strlen(name) + 8;
    char *path = xmalloc(pl);
    snprintf(path, pl, "%s/%s.json", dir, name);
    json_error_t je;
    c->root = json_load_file(path, 0, &je);
    if (!c->root) die("%s:%d: %s", path, je.line, je.text);
    free(path);
    c->name = strdup(name);
    c->data = json_object_get(c->root, "data");
    json_t *t = json_object_get(c->root, "template"), *x = json_object_get(c->root, "expected");
    if (json_is_string(t)) {
        c->nparts = 1;
        c->src[0] = json_string_value(t);
        if (!json_is_string(x)) die("%s: expected must be a string", name);
        c->want[0] = json_string_value(x);
        c->want_len[0] = json_string_length(x);
    } else if (json_is_object(t)) {
        c->nparts = 3;
        for (int i = 0; i < 3; i++) {
            json_t *s = json_object_get(t, PART_NAMES[i]), *w = json_object_get(x, PART_NAMES[i]);
            if (!json_is_string(s) || !json_is_string(w))
                die("%s: template/expected lack the %s part", name, PART_NAMES[i]);
            c->src[i] = json_string_value(s);
            c->want[i] = json_string_value(w);
            c->want_len[i] = json_string_length(w);
        }
    } else {
        die("%s: template must be a string or {subject, html, text}", name);
    }
}

/* Builds the case's environment (partials, helpers) and compiles its template(s) once. */
static void compile_case(bench_case *c) {
    mailbars_error err;
    c->env = mailbars_env_new();
    if (!c->env) die("out of memory");
    const char *pname;
    json_t *psrc;
    json_object_foreach(json_object_get(c->root, "partials"), pname, psrc) {
        if (mailbars_env_register_partial(c->env, pname, json_string_value(psrc),
                                          json_string_length(psrc)))
            die("%s: cannot register partial %s", c->name, pname);
    }
    json_t *helpers = json_object_get(c->root, "helpers");
    const char *hname;
    json_t *hdesc;
    json_object_foreach(helpers, hname, hdesc) {
        mailbars_helper_fn fn = !strcmp(hname, "foo")      ? helper_foo
                                : !strcmp(hname, "echo")   ? helper_echo
                                : !strcmp(hname, "header") ? helper_header
                                                           : NULL;
        if (!fn) die("%s: no C port of helper %s", c->name, hname);
        if (mailbars_env_register_helper(c->env, hname, fn, &c->scratch))
            die("%s: cannot register helper %s", c->name, hname);
    }
    for (int i = 0; i < c->nparts; i++) {
        c->tpl[i] = mailbars_compile(c->env, c->src[i], strlen(c->src[i]), NULL, &err);
        if (!c->tpl[i])
            die("%s%s%s: compile error %s (%d:%d): %s", c->name, c->nparts > 1 ? "." : "",
                c->nparts > 1 ? PART_NAMES[i] : "", mailbars_status_name(err.code), err.line,
                err.column, err.message);
    }
}

/* Releases what load_case and compile_case built. */
static void free_case(bench_case *c) {
    for (int i = 0; i < 3; i++) mailbars_template_free(c->tpl[i]);
    mailbars_env_free(c->env);
    mailbars_buf_free(&c->scratch);
    json_decref(c->root);
    free(c->name);
}

/* Prints where two outputs first differ, with some context, to stderr. */
static void report_mismatch(const char *what, const char *got, size_t gl, const char *want,
                            size_t wl) {
    size_t i = 0;
    while (i < gl && i < wl && got[i] == want[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr,
            "MISMATCH %s: output differs from expected at byte %zu (got %zu bytes, "
            "expected %zu)\n  got:      ",
            what, i, gl, wl);
    json_t *g = json_stringn(got + from, (gl - from) > 100 ? 100 : gl - from);
    json_t *w = json_stringn(want + from, (wl - from) > 100 ? 100 : wl - from);
    json_dumpf(g, stderr, JSON_ENCODE_ANY);
    fputs("\n  expected: ", stderr);
    json_dumpf(w, stderr, JSON_ENCODE_ANY);
    fputc('\n', stderr);
    json_decref(g);
    json_decref(w);
}

/* Renders every part once and compares with `expected`. Returns the total output bytes, or
 * SIZE_MAX on a mismatch or a render error (the run then stops with status 2): timing a wrong
 * answer is meaningless. */
static size_t verify_case(mailbars_render_state *st, bench_case *c) {
    size_t total = 0;
    mailbars_error err;
    for (int i = 0; i < c->nparts; i++) {
        char what[200];
        snprintf(what, sizeof what, "%s%s%s", c->name, c->nparts > 1 ? "." : "",
                 c->nparts > 1 ? PART_NAMES[i] : "");
        int rc = mailbars_render(st, c->tpl[i], c->data, NULL, &err);
        if (rc) {
            fprintf(stderr, "mailbars-bench: %s: render error %s: %s\n", what,
                    mailbars_status_name(rc), err.message);
            return SIZE_MAX;
        }
        size_t len;
        const char *out = mailbars_render_output(st, &len);
        if (len != c->want_len[i] || memcmp(out, c->want[i], len) != 0) {
            report_mismatch(what, out, len, c->want[i], c->want_len[i]);
            return SIZE_MAX;
        }
        total += len;
    }
    return total;
}

/* One render of the case (every part). Returns 0 or a status. */
static inline int render_once(mailbars_render_state *st, const bench_case *c) {
    for (int i = 0; i < c->nparts; i++) {
        int rc = mailbars_render(st, c->tpl[i], c->data, NULL, NULL);
        if (rc) return rc;
    }
    return 0;
}

/* Times the case: a batch size is calibrated to about 1 ms, then each of `runs` runs repeats
 * batches until min_time has passed. Fills per-run ns/render into ns[] and returns the
 * allocations counted per render over all timed runs. */
static double time_case(mailbars_render_state *st, const bench_case *c, const options *o,
                        double *ns) {
    long batch = 1;
    for (;;) {
        double t0 = now_ns();
        for (long k = 0; k < batch; k++)
            if (render_once(st, c)) die("%s: render failed while timing", c->name);
        double dt = now_ns() - t0;
        if (dt >= 1e6 || batch >= (1L << 30)) break;
        batch *= dt > 1e4 ? (long)(1e6 / dt) + 1 : 100;
    }
    /* warm-up: untimed, as long as the Node side's (which needs it for its JIT) */
    for (double t0 = now_ns(); now_ns() - t0 < o->warmup * 1e9;)
        for (long k = 0; k < batch; k++) render_once(st, c);
    unsigned long a0 = atomic_load(&g_allocs);
    double total_iters = 0;
    for (int r = 0; r < o->runs; r++) {
        long iters = 0;
        double t0 = now_ns(), dt;
        do {
            for (long k = 0; k < batch; k++) render_once(st, c);
            iters += batch;
            dt = now_ns() - t0;
        } while (dt < o->min_time * 1e9);
        ns[r] = dt / (double)iters;
        total_iters += (double)iters;
    }
    return (double)(atomic_load(&g_allocs) - a0) / total_iters;
}

/* --corpus mode: every selected case compiled, verified, timed, one JSON line each. */
static int run_corpus(const options *o) {
    char **names;
    int n = list_corpus(o->corpus, &names), done = 0;
    mailbars_render_state *st = mailbars_render_state_new(NULL);
    if (!st) die("out of memory");
    double *ns = xmalloc(sizeof(double) * (size_t)o->runs);
    for (int i = 0; i < o->ncases; i++) {
        int found = 0;
        for (int k = 0; k < n && !found; k++) found = !strcmp(names[k], o->cases[i]);
        if (!found) die("no case %s in %s", o->cases[i], o->corpus);
    }
    for (int k = 0; k < n; k++) {
        if (!case_selected(o, names[k])) continue;
        bench_case c;
        load_case(o->corpus, names[k], &c);
        compile_case(&c);
        size_t bytes = verify_case(st, &c);
        if (bytes == SIZE_MAX) {
            free_case(&c);
            for (int m = 0; m < n; m++) free(names[m]);
            free(names);
            free(ns);
            mailbars_render_state_free(st);
            return 2;
        }
        double allocs = time_case(st, &c, o, ns);
        double lo = ns[0], hi = ns[0];
        for (int r = 1; r < o->runs; r++) {
            if (ns[r] < lo) lo = ns[r];
            if (ns[r] > hi) hi = ns[r];
        }
        double med = median(ns, o->runs);
        printf("{\"case\":");
        print_json_string(stdout, c.name);
        printf(",\"ns_per_render\":%.1f,\"output_bytes\":%zu,\"runs\":%d,\"min_ns\":%.1f,"
               "\"max_ns\":%.1f,\"allocs_per_render\":%.3g}\n",
               med, bytes, o->runs, lo, hi, allocs);
        fflush(stdout);
        free_case(&c);
        done++;
    }
    for (int k = 0; k < n; k++) free(names[k]);
    free(names);
    free(ns);
    mailbars_render_state_free(st);
    if (done == 0) die("no case selected in %s", o->corpus);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * --mime: full SES messages
 * ------------------------------------------------------------------------------------------- */

static const char *const MIME_WORKLOADS[2] = {"ses-preferences", "ses-newsletter"};

typedef struct recipient {
    json_t *data; /* the recipient's template data */
    char *to;     /* "\"First Last\" <email>" built from the corpus `mime.to` pattern */
    size_t to_len;
} recipient;

typedef struct workload {
    const char *name;
    mailbars_ses_template *tpl;
    char *from;
    const char *to_pattern; /* e.g. "{contact.firstName} {contact.lastName} <{contact.email}>" */
} workload;

/* Looks up a dotted path ("contact.firstName") in `data`; NULL when absent. */
static json_t *dotted_get(json_t *data, const char *path, size_t len) {
    json_t *v = data;
    const char *p = path, *end = path + len;
    while (v && p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t l = dot ? (size_t)(dot - p) : (size_t)(end - p);
        v = json_object_getn(v, p, l);
        p += l + 1;
    }
    return v;
}

/* Appends String(v) of a data value to a growing buffer (missing/null: nothing). */
static void append_value(mailbars_buf *b, json_t *v) {
    if (v && mailbars_value_to_string(v, b)) die("out of memory");
}

/* Expands the `mime.to` pattern for one recipient: `{path}` is replaced by the value at path.
 * The display-name part (before " <") is quoted as an RFC 5322 quoted-string, so names such as
 * "Smith & Sons" or "O'Brien" are one phrase, as nodemailer's {name, address} form gives. */
static char *expand_to(const char *pattern, json_t *data, size_t *len_out) {
    mailbars_buf name = {0}, addr = {0}, out = {0};
    const char *lt = strstr(pattern, "<");
    const char *p = pattern;
    for (mailbars_buf *b = &name; *p; p++) {
        if (p == lt) {
            b = &addr;
            continue;
        }
        if (*p == '>' && b == &addr) continue;
        if (*p == '{') {
            const char *q = strchr(p, '}');
            if (!q) die("bad mime.to pattern %s", pattern);
            append_value(b, dotted_get(data, p + 1, (size_t)(q - p - 1)));
            p = q;
            continue;
        }
        if (mailbars_buf_append(b, p, 1)) die("out of memory");
    }
    while (name.len && name.data[name.len - 1] == ' ') name.data[--name.len] = 0;
    while (name.len && name.data[0] == ' ') memmove(name.data, name.data + 1, name.len--);
    if (name.len) {
        mailbars_buf_append(&out, "\"", 1);
        for (size_t i = 0; i < name.len; i++) {
            if (name.data[i] == '"' || name.data[i] == '\\') mailbars_buf_append(&out, "\\", 1);
            mailbars_buf_append(&out, name.data + i, 1);
        }
        mailbars_buf_append(&out, "\" <", 3);
        mailbars_buf_append(&out, addr.data ? addr.data : "", addr.len);
        mailbars_buf_append(&out, ">", 1);
    } else {
        mailbars_buf_append(&out, addr.data ? addr.data : "", addr.len);
    }
    mailbars_buf_free(&name);
    mailbars_buf_free(&addr);
    *len_out = out.len;
    return out.data;
}

/* Loads up to `limit` (0: all) recipients from a JSON Lines file. */
static recipient *load_recipients(const char *path, long limit, long *count) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s: %s", path, strerror(errno));
    long n = 0, cap = 1024;
    recipient *r = xmalloc(sizeof *r * (size_t)cap);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t l;
    while ((limit == 0 || n < limit) && (l = getline(&line, &lcap, f)) > 0) {
        if (l <= 1) continue;
        json_error_t je;
        json_t *d = json_loadb(line, (size_t)l, 0, &je);
        if (!json_is_object(d)) die("%s:%ld: not a JSON object: %s", path, n + 1, je.text);
        if (n == cap) {
            cap *= 2;
            r = realloc(r, sizeof *r * (size_t)cap);
            if (!r) die("out of memory");
        }
        r[n].data = d;
        r[n].to = NULL;
        n++;
    }
    free(line);
    fclose(f);
    if (n == 0) die("%s: no recipients", path);
    *count = n;
    return r;
}

typedef struct mime_worker {
    const workload *w;
    recipient *rcpt;
    long first, count; /* the slice of recipients this thread renders */
    int prefetch;      /* call mailbars_ses_prefetch before each message */
    double min_time_ns;
    double start_ns; /* common start (set before the threads are released) */
    /* results */
    long messages;
    double bytes;
    double elapsed_ns;
    int failed;
    mailbars_error err;
} mime_worker;

/* Builds one complete message for recipient `r` into `out`. Returns 0 or a status (err set). */
static int build_message(mailbars_ses_render_state *st, mailbars_message *msg, const workload *w,
                         const recipient *r, mailbars_buf *out, mailbars_error *err) {
    int rc;
    mailbars_message_reset(msg);
    mailbars_buf_reset(out);
    if ((rc = mailbars_message_add_address(msg, MAILBARS_FROM, w->from, strlen(w->from), err)))
        return rc;
    if ((rc = mailbars_message_add_address(msg, MAILBARS_TO, r->to, r->to_len, err))) return rc;
    if ((rc = mailbars_ses_render(st, w->tpl, r->data, msg, err))) return rc;
    return mailbars_message_write(msg, out, err);
}

/* Thread body: renders its slice of recipients again and again until min_time has passed
 * (at least one full pass). Each thread has its own render state, message and buffer. */
static void *mime_thread(void *arg) {
    mime_worker *mw = arg;
    mailbars_ses_render_state *st = mailbars_ses_render_state_new();
    mailbars_message *msg = mailbars_message_new();
    mailbars_buf out = {0};
    if (!st || !msg) die("out of memory");
    mailbars_message_set_encoding(msg, MAILBARS_ENC_QUOTED_PRINTABLE);
    /* the slice's data in render order, followed by its first three again: the renders after
     * the last one of a pass are the first ones of the next pass */
    json_t **order = xmalloc(sizeof *order * (size_t)(mw->count + 3));
    for (long i = 0; i < mw->count + 3; i++) order[i] = mw->rcpt[mw->first + i % mw->count].data;
    double t0 = now_ns(), dt;
    do {
        for (long i = 0; i < mw->count; i++) {
            const recipient *r = &mw->rcpt[mw->first + i];
            if (mw->prefetch) mailbars_ses_prefetch(mw->w->tpl, &order[i + 1], 3);
            if (build_message(st, msg, mw->w, r, &out, &mw->err)) {
                mw->failed = 1;
                goto done;
            }
            mw->bytes += (double)out.len;
            mw->messages++;
        }
        dt = now_ns() - t0;
    } while (dt < mw->min_time_ns);
done:
    mw->elapsed_ns = now_ns() - t0;
    free(order);
    mailbars_buf_free(&out);
    mailbars_message_free(msg);
    mailbars_ses_render_state_free(st);
    return NULL;
}

/* One timed run of a workload on `threads` threads: returns messages/s (wall clock) and
 * fills *mbps (MB/s of message bytes) and *allocs (allocations per message). */
static double mime_run(const workload *w, recipient *rcpt, long n, int threads, int prefetch,
                       double min_time, double *mbps, double *bytes_per_msg,
                       double *allocs_per_msg) {
    mime_worker *mws = xmalloc(sizeof *mws * (size_t)threads);
    pthread_t *tids = xmalloc(sizeof *tids * (size_t)threads);
    long per = n / threads, extra = n % threads, first = 0;
    for (int t = 0; t < threads; t++) {
        memset(&mws[t], 0, sizeof mws[t]);
        mws[t].w = w;
        mws[t].rcpt = rcpt;
        mws[t].first = first;
        mws[t].count = per + (t < extra);
        mws[t].prefetch = prefetch;
        mws[t].min_time_ns = min_time * 1e9;
        first += mws[t].count;
    }
    unsigned long a0 = atomic_load(&g_allocs);
    double t0 = now_ns();
    for (int t = 0; t < threads; t++)
        if (pthread_create(&tids[t], NULL, mime_thread, &mws[t])) die("pthread_create failed");
    long msgs = 0;
    double bytes = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        if (mws[t].failed)
            die("%s: message failed: %s: %s (part %s)", w->name,
                mailbars_status_name(mws[t].err.code), mws[t].err.message, mws[t].err.part);
        msgs += mws[t].messages;
        bytes += mws[t].bytes;
    }
    double wall = now_ns() - t0;
    free(mws);
    free(tids);
    *mbps = bytes / (wall / 1e9) / 1e6;
    *bytes_per_msg = bytes / (double)msgs;
    /* includes each thread's set-up (state, message, buffer growth): a few per thread */
    *allocs_per_msg = (double)(atomic_load(&g_allocs) - a0) / (double)msgs;
    return (double)msgs / (wall / 1e9);
}

/* Sanity check of one message: it must carry both bodies as quoted-printable and the From.
 * With `print` the message is written to stdout. */
static void check_message(const workload *w, recipient *r, int print) {
    mailbars_ses_render_state *st = mailbars_ses_render_state_new();
    mailbars_message *msg = mailbars_message_new();
    mailbars_buf out = {0};
    mailbars_error err;
    if (!st || !msg) die("out of memory");
    mailbars_message_set_encoding(msg, MAILBARS_ENC_QUOTED_PRINTABLE);
    if (build_message(st, msg, w, r, &out, &err))
        die("%s: message failed: %s: %s (part %s)", w->name, mailbars_status_name(err.code),
            err.message, err.part);
    const char *need[] = {"Content-Transfer-Encoding: quoted-printable",
                          "text/plain",
                          "text/html",
                          "From: ",
                          "To: ",
                          "Subject: ",
                          "MIME-Version: 1.0"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if (!strstr(out.data, need[i])) die("%s: message lacks \"%s\"", w->name, need[i]);
    if (print) fwrite(out.data, 1, out.len, stdout);
    mailbars_buf_free(&out);
    mailbars_message_free(msg);
    mailbars_ses_render_state_free(st);
}

/* --mime mode: both SES workloads, one JSON line each. */
static int run_mime(const options *o) {
    long n;
    recipient *rcpt = load_recipients(o->recipients, o->limit, &n);
    double *mps = xmalloc(sizeof(double) * (size_t)o->runs);
    double *mbs = xmalloc(sizeof(double) * (size_t)o->runs);
    int done = 0;
    for (int k = 0; k < 2; k++) {
        if (!case_selected(o, MIME_WORKLOADS[k])) continue;
        bench_case c;
        load_case(o->corpus, MIME_WORKLOADS[k], &c);
        json_t *mime = json_object_get(c.root, "mime");
        workload w = {0};
        w.name = MIME_WORKLOADS[k];
        w.from = strdup(json_string_value(json_object_get(mime, "from")));
        w.to_pattern = json_string_value(json_object_get(mime, "to"));
        if (!w.to_pattern) die("%s: no mime.to pattern", w.name);
        mailbars_ses_options so = {0};
        so.profile = MAILBARS_PROFILE_HANDLEBARS; /* handlebars.js semantics, as the Node side */
        mailbars_error err;
        w.tpl = mailbars_ses_template_new(w.name, c.src[0], c.src[2], c.src[1], &so, &err);
        if (!w.tpl)
            die("%s: template error in %s (%d:%d): %s", w.name, err.part, err.line, err.column,
                err.message);
        for (long i = 0; i < n; i++) {
            free(rcpt[i].to);
            rcpt[i].to = expand_to(w.to_pattern, rcpt[i].data, &rcpt[i].to_len);
        }
        check_message(&w, &rcpt[0], o->print_message);
        double bpm = 0, lo = 0, hi = 0, apm = 0, junk;
        if (!o->print_message && o->warmup > 0) /* untimed warm-up run */
            mime_run(&w, rcpt, n, o->threads, !o->no_prefetch, o->warmup, &junk, &junk, &junk);
        for (int r = 0; r < o->runs && !o->print_message; r++) {
            mps[r] = mime_run(&w, rcpt, n, o->threads, !o->no_prefetch, o->min_time, &mbs[r], &bpm,
                              &apm);
            if (r == 0 || mps[r] < lo) lo = mps[r];
            if (r == 0 || mps[r] > hi) hi = mps[r];
        }
        if (!o->print_message) {
            double med = median(mps, o->runs), medmb = median(mbs, o->runs);
            printf("{\"workload\":");
            print_json_string(stdout, w.name);
            printf(",\"threads\":%d,\"recipients\":%ld,\"messages_per_s\":%.1f,"
                   "\"mb_per_s\":%.2f,\"bytes_per_message\":%.0f,\"runs\":%d,"
                   "\"min_messages_per_s\":%.1f,\"max_messages_per_s\":%.1f,"
                   "\"allocs_per_message\":%.3g,\"prefetch\":%s}\n",
                   o->threads, n, med, medmb, bpm, o->runs, lo, hi, apm,
                   o->no_prefetch ? "false" : "true");
        }
        fflush(stdout);
        mailbars_ses_template_free(w.tpl);
        free(w.from);
        free_case(&c);
        done++;
    }
    for (long i = 0; i < n; i++) {
        json_decref(rcpt[i].data);
        free(rcpt[i].to);
    }
    free(rcpt);
    free(mps);
    free(mbs);
    if (!done) die("no workload selected");
    return 0;
}

/* Entry point: parse options, install the counting allocator, run the chosen mode. */
int main(int argc, char **argv) {
    options o;
    parse_args(argc, argv, &o);
    mailbars_set_allocator(count_malloc, count_realloc, free);
    json_set_alloc_funcs(count_json_malloc, free);
    g_colors = json_string("Colors");
    int rc = o.mime ? run_mime(&o) : run_corpus(&o);
    json_decref(g_colors);
    free(o.cases);
    return rc;
}
