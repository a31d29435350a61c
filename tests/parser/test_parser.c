/* Front-end tests: handlebars-spec parser.json (AST print or error text) and tokenizer.json
 * (jison token names and texts), read in place, plus positions, nesting limits and NUL bytes.
 * Usage: test_parser PARSER_JSON TOKENIZER_JSON */
#include "ast.h"
#include <stdio.h>
#include <stdlib.h>

static int passed, failed;

/* Records one check; prints a description on failure. */
static void result(bool ok, const char *what, const char *detail) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    fprintf(stderr, "FAIL: %s\n%s\n", what, detail ? detail : "");
}

/* The message an exception spec means: "/re/" with backslashes removed, or exact text. */
static bool exception_matches(const json_t *exc, const char *msg, int code) {
    if (code == MAILBARS_OK) return false;
    if (json_is_true(exc)) return true;
    const char *want = json_string_value(exc);
    if (!want) return false;
    size_t n = strlen(want);
    if (n >= 2 && want[0] == '/' && want[n - 1] == '/') {
        char pat[512];
        size_t k = 0;
        for (size_t i = 1; i + 1 < n && k + 1 < sizeof pat; i++)
            if (want[i] != '\\') pat[k++] = want[i];
        pat[k] = 0;
        return strstr(msg, pat) != NULL;
    }
    return strcmp(msg, want) == 0;
}

/* One parser.json case: print the AST or check the error. */
static bool run_parser_case(const json_t *c, char *detail, size_t dsize) {
    const json_t *tpl = json_object_get(c, "template");
    const json_t *exc = json_object_get(c, "exception");
    const char *expected = json_string_value(json_object_get(c, "expected"));
    mb_arena a;
    mb_arena_init(&a);
    mailbars_error err;
    mailbars_error_clear(&err);
    mb_parse_opts opts = {false, 0};
    ast_node *root = mb_parse(&a, json_string_value(tpl), json_string_length(tpl), &opts, &err);
    bool ok;
    if (exc) {
        ok = !root && exception_matches(exc, err.message, err.code);
        snprintf(detail, dsize, "  template: %s\n  got error: %s", json_string_value(tpl),
                 root ? "(none)" : err.message);
    } else {
        mailbars_buf out = {0};
        ok = root && mb_ast_print(root, &out) == MAILBARS_OK && expected &&
             out.len == strlen(expected) && memcmp(out.data, expected, out.len) == 0;
        snprintf(detail, dsize, "  template: %s\n  want: %s\n  got:  %s%s", json_string_value(tpl),
                 expected ? expected : "?",
                 root ? (out.data ? out.data : "") : "error: ", root ? "" : err.message);
        mailbars_buf_free(&out);
    }
    mb_arena_free(&a);
    return ok;
}

/* One tokenizer.json case: names and texts must match exactly. */
static bool run_tokenizer_case(const json_t *c, char *detail, size_t dsize) {
    const json_t *tpl = json_object_get(c, "template");
    const json_t *want = json_object_get(c, "expected");
    mb_arena a;
    mb_arena_init(&a);
    mailbars_error err;
    mailbars_error_clear(&err);
    size_t n = 0;
    mb_token_info *toks =
        mb_tokenize(&a, json_string_value(tpl), json_string_length(tpl), &n, &err);
    bool ok = toks && n == json_array_size(want);
    size_t off = (size_t)snprintf(detail, dsize, "  template: %s\n  got:", json_string_value(tpl));
    for (size_t i = 0; toks && i < n; i++) {
        if (off < dsize)
            off +=
                (size_t)snprintf(detail + off, dsize - off, " %s(%s)", toks[i].name, toks[i].text);
        if (i >= json_array_size(want)) continue;
        const json_t *w = json_array_get(want, i);
        const json_t *wt = json_object_get(w, "text");
        if (strcmp(toks[i].name, json_string_value(json_object_get(w, "name"))) != 0 ||
            toks[i].len != json_string_length(wt) ||
            memcmp(toks[i].text, json_string_value(wt), toks[i].len) != 0)
            ok = false;
    }
    mb_arena_free(&a);
    return ok;
}

/* Runs every case of one spec file; returns false when the file cannot be read. */
static bool run_file(const char *path, bool tokenizer) {
    json_error_t jerr;
    json_t *cases = json_load_file(path, 0, &jerr);
    if (!json_is_array(cases)) {
        fprintf(stderr, "cannot read %s: %s\n", path, jerr.text);
        failed++;
        json_decref(cases);
        return false;
    }
    int before_pass = passed, before_fail = failed;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        char detail[4096], what[600];
        bool ok = tokenizer ? run_tokenizer_case(c, detail, sizeof detail)
                            : run_parser_case(c, detail, sizeof detail);
        snprintf(what, sizeof what, "%s - %s %s", json_string_value(json_object_get(c, "it")),
                 json_string_value(json_object_get(c, "description")),
                 json_string_value(json_object_get(c, "number")) ?: "");
        result(ok, what, detail);
    }
    printf("%s: %d passed, %d failed\n", path, passed - before_pass, failed - before_fail);
    json_decref(cases);
    return true;
}

/* Parses src (length n) and returns the error (code 0 when it parsed). */
static mailbars_error parse_err(const char *src, size_t n, size_t max_nesting) {
    mb_arena a;
    mb_arena_init(&a);
    mailbars_error err;
    mailbars_error_clear(&err);
    mb_parse_opts opts = {false, max_nesting};
    ast_node *root = mb_parse(&a, src, n, &opts, &err);
    if (root) err.code = 0;
    mb_arena_free(&a);
    return err;
}

/* Parses and prints src; returns the printed AST in a static buffer ("ERROR: msg" on error). */
static const char *print_of(const char *src, size_t n, bool ignore_standalone) {
    static char text[4096];
    mb_arena a;
    mb_arena_init(&a);
    mailbars_error err;
    mailbars_error_clear(&err);
    mb_parse_opts opts = {ignore_standalone, 0};
    ast_node *root = mb_parse(&a, src, n, &opts, &err);
    if (!root) {
        snprintf(text, sizeof text, "ERROR: %s", err.message);
    } else {
        mailbars_buf out = {0};
        mb_ast_print(root, &out);
        snprintf(text, sizeof text, "%s", out.data ? out.data : "");
        mailbars_buf_free(&out);
    }
    mb_arena_free(&a);
    return text;
}

/* Parses src and compares the printed AST (or "ERROR: message") with want. */
static void check_print(const char *src, size_t n, bool ignore_standalone, const char *want) {
    const char *got = print_of(src, n, ignore_standalone);
    char detail[8192];
    snprintf(detail, sizeof detail, "  template: %s\n  want: %s\n  got:  %s", src, want, got);
    result(strcmp(got, want) == 0, "print", detail);
}

/* Parses src and checks the error code, 1-based position and message. */
static void check_error(const char *src, int code, int line, int column, const char *msg) {
    mailbars_error e = parse_err(src, strlen(src), 0);
    char detail[1200];
    snprintf(detail, sizeof detail, "  template: %s\n  got: code %d at %d:%d: %s", src, e.code,
             e.line, e.column, e.message);
    result(e.code == code && e.line == line && e.column == column && strcmp(e.message, msg) == 0,
           "error position", detail);
}

/* Error messages and their positions (1-based line and column). */
static void test_positions(void) {
    check_error("{{#a}}\n  {{/b}}", MAILBARS_ERR_PARSE, 1, 4, "a doesn't match b - 1:3");
    check_error("x\n  {{foo/../bar}}", MAILBARS_ERR_PARSE, 2, 5, "Invalid path: foo/.. - 2:4");
    check_error("{{#hellos}}{{foo text/this/foo}}{{/hellos}}", MAILBARS_ERR_PARSE, 1, 18,
                "Invalid path: text/this - 1:17");
    check_error("{{foo}", MAILBARS_ERR_PARSE, 1, 6,
                "Parse error on line 1:\n{{foo}\n-----^\nExpecting 'CLOSE_RAW_BLOCK', 'CLOSE', "
                "'CLOSE_UNESCAPED', 'OPEN_SEXPR', 'CLOSE_SEXPR', 'ID', 'OPEN_BLOCK_PARAMS', "
                "'STRING', 'NUMBER', 'BOOLEAN', 'UNDEFINED', 'NULL', 'DATA', 'SEP', got 'INVALID'");
    check_error("hello\nmy\n{{foo}", MAILBARS_ERR_PARSE, 3, 6,
                "Parse error on line 3:\nhellomy{{foo}\n------------^\nExpecting "
                "'CLOSE_RAW_BLOCK', 'CLOSE', 'CLOSE_UNESCAPED', 'OPEN_SEXPR', 'CLOSE_SEXPR', "
                "'ID', 'OPEN_BLOCK_PARAMS', 'STRING', 'NUMBER', 'BOOLEAN', 'UNDEFINED', 'NULL', "
                "'DATA', 'SEP', got 'INVALID'");
    check_error("foo{{^}}", MAILBARS_ERR_PARSE, 1, 4,
                "Parse error on line 1:\nfoo{{^}}\n---^\nExpecting 'EOF', got 'INVERSE'");
    check_error("{{#a}}", MAILBARS_ERR_PARSE, 1, 7,
                "Parse error on line 1:\n{{#a}}\n------^\nExpecting 'COMMENT', 'CONTENT', "
                "'OPEN_RAW_BLOCK', 'OPEN_BLOCK', 'OPEN_INVERSE', 'OPEN_INVERSE_CHAIN', "
                "'INVERSE', 'OPEN_ENDBLOCK', 'OPEN', 'OPEN_UNESCAPED', 'OPEN_PARTIAL', "
                "'OPEN_PARTIAL_BLOCK', got 'EOF'");
    check_error("{{foo\n bar=}}", MAILBARS_ERR_PARSE, 2, 6,
                "Parse error on line 2:\n{{foo bar=}}\n----------^\nExpecting 'OPEN_SEXPR', 'ID', "
                "'STRING', 'NUMBER', 'BOOLEAN', 'UNDEFINED', 'NULL', 'DATA', got 'CLOSE'");
    check_error("{{#* foo}}\n{{^}}{{/foo}}", MAILBARS_ERR_PARSE, 2, 1,
                "Unexpected inverse block on decorator");
    check_error("{{!-- open", MAILBARS_ERR_PARSE, 1, 1,
                "Lexical error on line 1. Unrecognized text.\n{{!-{{!-- open\n----^");
}

/* 100,000 nested blocks: a clean limit error with and without a configured limit. */
static void test_deep_nesting(void) {
    size_t depth = 100000;
    size_t n = depth * 6;
    char *src = malloc(n + 1);
    if (!src) abort();
    for (size_t i = 0; i < depth; i++) memcpy(src + i * 6, "{{#a}}", 6);
    src[n] = 0;
    mailbars_error e = parse_err(src, n, 1000);
    char detail[700];
    snprintf(detail, sizeof detail, "  got code %d at %d:%d: %s", e.code, e.line, e.column,
             e.message);
    result(e.code == MAILBARS_ERR_LIMIT_NESTING && e.line == 1 && e.column == 6001,
           "100000 nested blocks, limit 1000", detail);
    e = parse_err(src, n, 0);
    snprintf(detail, sizeof detail, "  got code %d: %s", e.code, e.message);
    result(e.code == MAILBARS_ERR_LIMIT_NESTING, "100000 nested blocks, no limit", detail);
    /* subexpressions count too */
    char *s2 = malloc(depth * 3 + 8);
    if (!s2) abort();
    size_t k = 3;
    memcpy(s2, "{{a", 3);
    for (size_t i = 0; i < depth; i++) memcpy(s2 + k, " (b", 3), k += 3;
    e = parse_err(s2, k, 0);
    result(e.code == MAILBARS_ERR_LIMIT_NESTING, "100000 nested subexpressions", e.message);
    e = parse_err(s2, 3 + 3 * 50, 0);
    result(e.code == MAILBARS_ERR_PARSE && strstr(e.message, "got 'INVALID'"),
           "50 open subexpressions reach EOF", e.message);
    free(s2);
    /* a limit that is not exceeded */
    e = parse_err(src, 6 * 3, 3);
    result(e.code == MAILBARS_ERR_PARSE, "3 open blocks within limit 3 reach EOF", e.message);
    free(src);
    /* exactly at the limit: parses; one below: fails */
    mailbars_buf nb = {0};
    for (int i = 0; i < 1000; i++) mailbars_buf_append(&nb, "{{#a}}", 6);
    for (int i = 0; i < 1000; i++) mailbars_buf_append(&nb, "{{/a}}", 6);
    e = parse_err(nb.data, nb.len, 1000);
    result(e.code == 0, "1000 nested blocks within limit 1000", e.message);
    e = parse_err(nb.data, nb.len, 999);
    result(e.code == MAILBARS_ERR_LIMIT_NESTING, "1000 nested blocks beyond limit 999", e.message);
    mailbars_buf_free(&nb);
    /* else-if chains nest as well */
    mailbars_buf b = {0};
    mailbars_buf_append(&b, "{{#if a}}", 9);
    for (int i = 0; i < 5000; i++) mailbars_buf_append(&b, "{{else if b}}", 13);
    mailbars_buf_append(&b, "{{/if}}", 7);
    e = parse_err(b.data, b.len, 0);
    result(e.code == MAILBARS_ERR_LIMIT_NESTING, "5000-link else-if chain", e.message);
    e = parse_err(b.data, 9 + 13 * 10, 0);
    result(e.code == MAILBARS_ERR_PARSE, "short chain parses up to EOF", e.message);
    mailbars_buf_free(&b);
}

/* A NUL byte in content is a lexical error (handlebars.js's content rule is [^\x00]), but it is
 * fine inside comments and string literals; invalid UTF-8 is ordinary content; the input is
 * length-delimited. */
static void test_bytes(void) {
    mb_arena a;
    mb_arena_init(&a);
    mailbars_error err;
    mb_parse_opts opts = {false, 0};
    ast_node *root = mb_parse(&a, "a\0b{{x}}\0c", 10, &opts, &err);
    result(!root && err.code == MAILBARS_ERR_PARSE && err.line == 1 &&
               strncmp(err.message, "Lexical error on line 1.", 24) == 0,
           "NUL in content is a lexical error", err.message);
    root = mb_parse(&a, "{{! a\0b }}{{\"x\0y\"}}z", 20, &opts, &err);
    bool ok = root && root->u.program.body.len == 3;
    result(ok, "NUL inside a comment or a string literal is accepted", root ? NULL : err.message);
    /* not NUL-terminated: the parser must stop at len */
    root = mb_parse(&a, "{{x}}{{y}}", 5, &opts, &err);
    result(root && root->u.program.body.len == 1, "length-delimited input", NULL);
    root = mb_parse(&a, "\xff\xfe{{\xc3}}", 7, &opts, &err);
    result(root != NULL, "invalid UTF-8", err.message);
    root = mb_parse(&a, NULL, 0, &opts, &err);
    result(root && root->u.program.body.len == 0, "empty template", NULL);
    mb_arena_free(&a);
}

/* Whitespace control and other AST details not covered by parser.json. */
static void test_whitespace(void) {
    const char *t1 = "{{#a}}\n  x\n{{/a}}\n";
    check_print(t1, strlen(t1), false,
                "BLOCK:\n  PATH:a []\n  PROGRAM:\n    CONTENT[ '  x\n' ]\nCONTENT[ '' ]\n");
    check_print(t1, strlen(t1), true,
                "BLOCK:\n  PATH:a []\n  PROGRAM:\n    CONTENT[ '\n  x\n' ]\nCONTENT[ '\n' ]\n");
    const char *t2 = " {{~a~}} ";
    check_print(t2, strlen(t2), false, "CONTENT[ '' ]\n{{ PATH:a [] }}\nCONTENT[ '' ]\n");
    const char *t3 = "x\n  {{> p}}\ny";
    check_print(t3, strlen(t3), false, "CONTENT[ 'x\n' ]\n{{> PARTIAL:p }}\nCONTENT[ 'y' ]\n");
    const char *t4 = "{{{{raw}}}} {{x}} {{{{/raw}}}}";
    check_print(t4, strlen(t4), false,
                "BLOCK:\n  PATH:raw []\n  PROGRAM:\n    CONTENT[ ' {{x}} ' ]\n");
    const char *t5 = "{{foo (bar 1 a=b) c=(d)}}";
    check_print(t5, strlen(t5), false,
                "{{ PATH:foo [PATH:bar [NUMBER{1}] HASH{a=PATH:b}] HASH{c=PATH:d []} }}\n");
    const char *t7 = "{{#a as |[a] b|}}{{/a}}";
    check_print(t7, strlen(t7), false,
                "BLOCK:\n  PATH:a []\n  PROGRAM:\n    BLOCK PARAMS: [ [a] b ]\n");
    const char *t8 = "{{#a as |[a] [b]|}}{{/a}}";
    check_print(t8, strlen(t8), false, "ERROR: token.substring is not a function");
    const char *t9 = "{{{{raw}}}}{{{{z}}}}q{{{{/z}}}{{{{/raw}}}}";
    check_print(t9, strlen(t9), false,
                "ERROR: Parse error on line 1:\n...{{{/z}}}{{{{/raw}}}}\n-----------------------^\n"
                "Expecting 'EOF', 'COMMENT', 'CONTENT', 'END_RAW_BLOCK', 'OPEN_RAW_BLOCK', "
                "'OPEN_BLOCK', 'OPEN_INVERSE', 'OPEN_INVERSE_CHAIN', 'INVERSE', 'OPEN_ENDBLOCK', "
                "'OPEN', 'OPEN_UNESCAPED', 'OPEN_PARTIAL', 'OPEN_PARTIAL_BLOCK', got '1'");
    const char *t6 = "{{#> (x)}}{{/undefined}}";
    check_print(t6, strlen(t6), false, "{{> PARTIAL BLOCK:undefined PROGRAM:\n }}\n");
}

/* Runs both spec files, then the extra checks; exits 1 on any failure. */
int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s parser.json tokenizer.json\n", argv[0]);
        return 2;
    }
    run_file(argv[1], false);
    run_file(argv[2], true);
    int before_pass = passed, before_fail = failed;
    test_positions();
    test_deep_nesting();
    test_bytes();
    test_whitespace();
    printf("extra checks: %d passed, %d failed\n", passed - before_pass, failed - before_fail);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
