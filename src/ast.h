/* The Handlebars AST, shaped like handlebars.js's (Program, MustacheStatement, BlockStatement,
 * PathExpression, ...). The parser (parser.c) builds it in an arena, after the lexer
 * (lexer.c); whitespace control and standalone-line stripping have already been applied to
 * CONTENT nodes when mb_parse returns, as Handlebars.parse does. The compiler consumes it. */
#ifndef MAILBARS_AST_H
#define MAILBARS_AST_H

#include "arena.h"
#include <stdbool.h>

typedef enum ast_type {
    AST_PROGRAM,
    AST_CONTENT,
    AST_MUSTACHE,        /* {{x}} {{{x}}} {{&x}} */
    AST_BLOCK,           /* {{#x}}..{{/x}}, {{^x}}..{{/x}} (program NULL, inverse set) */
    AST_PARTIAL,         /* {{> name ctx k=v}} */
    AST_PARTIAL_BLOCK,   /* {{#> name}}..{{/name}} */
    AST_COMMENT,         /* {{! }} {{!-- --}} */
    AST_DECORATOR,       /* {{* name}} */
    AST_DECORATOR_BLOCK, /* {{#* inline "n"}}..{{/inline}} */
    AST_PATH,
    AST_SUBEXPR,
    AST_STRING,
    AST_NUMBER,
    AST_BOOLEAN,
    AST_UNDEFINED,
    AST_NULL,
    AST_HASH,
} ast_type;

/* line is 1-based, column 0-based, as in handlebars.js's `loc`. */
typedef struct ast_loc {
    int line, column, end_line, end_column;
} ast_loc;

typedef struct ast_strip {
    bool open, close; /* `~` on the opening / closing side of a tag */
} ast_strip;

typedef struct ast_str {
    const char *s; /* NUL-terminated, in the arena */
    size_t len;
} ast_str;

typedef struct ast_node ast_node;

typedef struct ast_list {
    ast_node **items;
    size_t len;
} ast_list;

struct ast_node {
    ast_type type;
    ast_loc loc;
    union {
        struct {
            ast_list body;
            ast_str *block_params; /* `as |a b|` names, or NULL */
            size_t n_block_params;
            bool chained; /* the inverse program of an {{else if}} chain */
        } program;
        struct {
            ast_str value;    /* after whitespace control */
            ast_str original; /* as in the source */
        } content;
        /* AST_MUSTACHE and AST_DECORATOR */
        struct {
            ast_node *path; /* PATH, or a literal (STRING, NUMBER, ...) */
            ast_list params;
            ast_node *hash; /* AST_HASH or NULL */
            bool escaped;   /* {{x}} true; {{{x}}} and {{&x}} false */
            ast_strip strip;
        } mustache;
        /* AST_BLOCK, AST_PARTIAL_BLOCK (path = partial name) and AST_DECORATOR_BLOCK */
        struct {
            ast_node *path;
            ast_list params;
            ast_node *hash;
            ast_node *program; /* AST_PROGRAM or NULL */
            ast_node *inverse; /* AST_PROGRAM or NULL */
            ast_strip open_strip, inverse_strip, close_strip;
        } block;
        struct {
            ast_node *name;  /* PATH, STRING, NUMBER... or SUBEXPR for {{> (dyn)}} */
            ast_list params; /* at most one: the context */
            ast_node *hash;
            ast_str indent; /* whitespace before a standalone partial, else empty */
            ast_strip strip;
        } partial;
        struct {
            ast_str value; /* text between the delimiters, without {{! / {{!-- and --}} */
            ast_strip strip;
        } comment;
        struct {
            bool data;      /* @name */
            int depth;      /* number of ../ */
            ast_str *parts; /* segments without this/./.. (literal [x] segments unbracketed) */
            size_t n_parts;
            ast_str original; /* e.g. "../foo/bar", "this.x", "@root.a" */
            bool scoped;      /* starts with this or ./ : never a helper */
        } path;
        struct {
            ast_node *path;
            ast_list params;
            ast_node *hash;
        } sexpr;
        struct {
            ast_str value;
        } string;
        struct {
            double value;
            ast_str original;
        } number;
        struct {
            bool value;
        } boolean;
        struct {
            ast_str *keys;
            ast_node **values;
            size_t len;
        } hash;
    } u;
};

/* Parser options (a subset of the compile flags, see mailbars.h). */
typedef struct mb_parse_opts {
    bool ignore_standalone; /* MAILBARS_IGNORE_STANDALONE */
    size_t max_nesting;     /* MAILBARS_LIMIT_NESTING: 0 = unlimited */
} mb_parse_opts;

/* Parses a template into a PROGRAM node allocated in `a`. On error returns NULL and fills err
 * with code MAILBARS_ERR_PARSE (or a limit code), 1-based line/column, and handlebars.js's
 * message text ("Parse error on line 1:\n...", "foo doesn't match bar - 1:5",
 * "Invalid path: foo/. - 1:2"). */
ast_node *mb_parse(mb_arena *a, const char *src, size_t len, const mb_parse_opts *opts,
                   mailbars_error *err);

/* Writes the AST in the exact format of handlebars.js's Handlebars.print (PrintVisitor). */
int mb_ast_print(const ast_node *program, mailbars_buf *out);

/* Tokens, named as the handlebars.js jison lexer names them (for the tokenizer spec). */
typedef struct mb_token_info {
    const char *name; /* "OPEN", "ID", "CONTENT", ... (static) */
    const char *text; /* the token text as jison yields it (NUL-terminated, in the arena) */
    size_t len;
} mb_token_info;

/* Tokenizes `src` into an array in `a`; *count receives its length. */
mb_token_info *mb_tokenize(mb_arena *a, const char *src, size_t len, size_t *count,
                           mailbars_error *err);

#endif
