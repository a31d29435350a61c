/* The AST printer in the exact format of handlebars.js 4.7's PrintVisitor (compiler/printer.js),
 * including its padding bookkeeping (a Program lowers the padding by one when it ends). */
#include "ast.h"

typedef struct printer {
    mailbars_buf *out;
    int padding;
    int rc;
} printer;

/* Appends bytes, remembering the first failure. */
static void put(printer *p, const char *s, size_t n) {
    if (p->rc == MAILBARS_OK && n) p->rc = mailbars_buf_append(p->out, s, n);
}

/* Appends a NUL-terminated string. */
static void puts_(printer *p, const char *s) {
    put(p, s, strlen(s));
}

/* Appends an AST string. */
static void put_str(printer *p, const ast_str *s) {
    put(p, s->s, s->len);
}

/* The indentation pad() puts in front of a line. */
static void indent(printer *p) {
    for (int i = 0; i < p->padding; i++) put(p, "  ", 2);
}

static void print_expr(printer *p, const ast_node *n);

/* SubExpression(): `path [p1, p2] HASH{...}` (shared by mustaches, blocks and subexpressions). */
static void print_call(printer *p, const ast_node *path, const ast_list *params,
                       const ast_node *hash) {
    print_expr(p, path);
    puts_(p, " [");
    for (size_t i = 0; i < params->len; i++) {
        if (i) puts_(p, ", ");
        print_expr(p, params->items[i]);
    }
    puts_(p, "]");
    if (hash) {
        puts_(p, " ");
        print_expr(p, hash);
    }
}

/* Expressions: paths, literals, subexpressions and hashes. */
static void print_expr(printer *p, const ast_node *n) {
    char num[32];
    if (!n) {
        puts_(p, "undefined");
        return;
    }
    switch (n->type) {
    case AST_PATH:
        if (n->u.path.data) puts_(p, "@");
        puts_(p, "PATH:");
        for (size_t i = 0; i < n->u.path.n_parts; i++) {
            if (i) puts_(p, "/");
            put_str(p, &n->u.path.parts[i]);
        }
        break;
    case AST_STRING:
        puts_(p, "\"");
        put_str(p, &n->u.string.value);
        puts_(p, "\"");
        break;
    case AST_NUMBER:
        puts_(p, "NUMBER{");
        put(p, num, mb_format_number(n->u.number.value, num));
        puts_(p, "}");
        break;
    case AST_BOOLEAN: puts_(p, n->u.boolean.value ? "BOOLEAN{true}" : "BOOLEAN{false}"); break;
    case AST_UNDEFINED: puts_(p, "UNDEFINED"); break;
    case AST_NULL: puts_(p, "NULL"); break;
    case AST_SUBEXPR: print_call(p, n->u.sexpr.path, &n->u.sexpr.params, n->u.sexpr.hash); break;
    case AST_HASH:
        puts_(p, "HASH{");
        for (size_t i = 0; i < n->u.hash.len; i++) {
            if (i) puts_(p, ", ");
            put_str(p, &n->u.hash.keys[i]);
            puts_(p, "=");
            print_expr(p, n->u.hash.values[i]);
        }
        puts_(p, "}");
        break;
    default: puts_(p, "undefined"); break;
    }
}

/* A partial's `name.original` as JavaScript would stringify it. */
static void print_partial_name(printer *p, const ast_node *n) {
    char num[32];
    switch (n->type) {
    case AST_PATH: put_str(p, &n->u.path.original); break;
    case AST_STRING: put_str(p, &n->u.string.value); break;
    case AST_NUMBER: put(p, num, mb_format_number(n->u.number.value, num)); break;
    case AST_BOOLEAN: puts_(p, n->u.boolean.value ? "true" : "false"); break;
    case AST_NULL: puts_(p, "null"); break;
    default: puts_(p, "undefined"); break;
    }
}

/* ` param hash` of a partial: only the first param is printed. */
static void print_partial_args(printer *p, const ast_list *params, const ast_node *hash) {
    if (params->len) {
        puts_(p, " ");
        print_expr(p, params->items[0]);
    }
    if (hash) {
        puts_(p, " ");
        print_expr(p, hash);
    }
}

static void print_program(printer *p, const ast_node *prog);

/* One statement of a program body. */
static void print_statement(printer *p, const ast_node *n) {
    switch (n->type) {
    case AST_CONTENT:
        indent(p);
        puts_(p, "CONTENT[ '");
        put_str(p, &n->u.content.value);
        puts_(p, "' ]\n");
        break;
    case AST_COMMENT:
        indent(p);
        puts_(p, "{{! '");
        put_str(p, &n->u.comment.value);
        puts_(p, "' }}\n");
        break;
    case AST_MUSTACHE:
    case AST_DECORATOR:
        indent(p);
        puts_(p, n->type == AST_DECORATOR ? "{{ DIRECTIVE " : "{{ ");
        print_call(p, n->u.mustache.path, &n->u.mustache.params, n->u.mustache.hash);
        puts_(p, " }}\n");
        break;
    case AST_PARTIAL:
        indent(p);
        puts_(p, "{{> PARTIAL:");
        print_partial_name(p, n->u.partial.name);
        print_partial_args(p, &n->u.partial.params, n->u.partial.hash);
        puts_(p, " }}\n");
        break;
    case AST_BLOCK:
    case AST_DECORATOR_BLOCK:
        indent(p);
        puts_(p, n->type == AST_DECORATOR_BLOCK ? "DIRECTIVE BLOCK:\n" : "BLOCK:\n");
        p->padding++;
        indent(p);
        print_call(p, n->u.block.path, &n->u.block.params, n->u.block.hash);
        puts_(p, "\n");
        if (n->u.block.program) {
            indent(p);
            puts_(p, "PROGRAM:\n");
            p->padding++;
            print_program(p, n->u.block.program);
            p->padding--;
        }
        if (n->u.block.inverse) {
            if (n->u.block.program) p->padding++;
            indent(p);
            puts_(p, "{{^}}\n");
            p->padding++;
            print_program(p, n->u.block.inverse);
            p->padding--;
            if (n->u.block.program) p->padding--;
        }
        p->padding--;
        break;
    case AST_PARTIAL_BLOCK: {
        /* pad('{{> ' + content + ' }}') happens after the program is printed, with the
         * padding as it is then: build the content aside first. */
        mailbars_buf content = {0};
        mailbars_buf *saved = p->out;
        p->out = &content;
        puts_(p, "PARTIAL BLOCK:");
        print_partial_name(p, n->u.block.path);
        print_partial_args(p, &n->u.block.params, n->u.block.hash);
        puts_(p, " ");
        indent(p);
        puts_(p, "PROGRAM:\n");
        p->padding++;
        print_program(p, n->u.block.program);
        p->padding--;
        p->out = saved;
        indent(p);
        puts_(p, "{{> ");
        put(p, content.data, content.len);
        puts_(p, " }}\n");
        mailbars_buf_free(&content);
        break;
    }
    default: break;
    }
}

/* Program(): block params line, the statements, then padding--. */
static void print_program(printer *p, const ast_node *prog) {
    if (prog->u.program.block_params) {
        indent(p);
        puts_(p, "BLOCK PARAMS: [");
        for (size_t i = 0; i < prog->u.program.n_block_params; i++) {
            puts_(p, " ");
            put_str(p, &prog->u.program.block_params[i]);
        }
        puts_(p, " ]\n");
    }
    for (size_t i = 0; i < prog->u.program.body.len; i++)
        print_statement(p, prog->u.program.body.items[i]);
    p->padding--;
}

/* Handlebars.print(): the whole program, from padding 0. */
int mb_ast_print(const ast_node *program, mailbars_buf *out) {
    printer p = {out, 0, MAILBARS_OK};
    if (program) print_program(&p, program);
    return p.rc;
}
