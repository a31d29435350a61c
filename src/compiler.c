/* The bytecode compiler: turns the AST into the immutable program tables of a template.
 * Decisions handlebars.js makes at run time that depend only on the registered helpers
 * (helper vs. context lookup, known helpers) are made here once, since the environment is
 * fixed when a template is compiled. */
#include "ast.h"
#include "program.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A growable vector of fixed-size items, allocated through the hook. */
typedef struct vec {
    void *items;
    uint32_t len, cap;
} vec;

/* Reserves one more item of `size` bytes and returns its index, or -1 on failure. */
static int64_t vec_push(vec *v, size_t size) {
    if (v->len == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        void *n = mb_realloc(v->items, (size_t)cap * size);
        if (!n) return -1;
        v->items = n;
        v->cap = cap;
    }
    memset((char *)v->items + (size_t)v->len * size, 0, size);
    return v->len++;
}

/* Block-param names declared by one program level. */
typedef struct bp_level {
    const ast_str *names;
    size_t n;
} bp_level;

typedef struct comp {
    mailbars_template *t;
    const mailbars_compile_ctx *cctx;
    unsigned flags;
    mailbars_error *err;
    vec progs, texts, paths, consts, calls, psites;
    bp_level *bp;
    size_t nbp, capbp;
    size_t depth, max_depth;
    int saw_data; /* an @ path was compiled */
    int not_utf8; /* a source (template or partial) is not valid UTF-8 */
    int failed;   /* status once an error is recorded */
} comp;

/* Code of the program being compiled. */
typedef struct pcode {
    vec code;
    vec inlines;
    mailbars_buf text; /* pending static text, merged across adjacent content */
    uint32_t sp, max_sp;
} pcode;

/* Records a compile error with handlebars.js's " - LINE:COL" suffix when a location is known. */
static int comp_fail(comp *c, int code, const ast_loc *loc, const char *fmt, ...) MB_PRINTF(4, 5);
static int comp_fail(comp *c, int code, const ast_loc *loc, const char *fmt, ...) {
    if (c->failed) return c->failed;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (loc)
        mb_error(c->err, code, loc->line, loc->column + 1, "%s - %d:%d", msg, loc->line,
                 loc->column);
    else
        mb_error(c->err, code, 0, 0, "%s", msg);
    c->failed = code;
    return code;
}

static int nomem(comp *c) {
    return comp_fail(c, MAILBARS_ERR_NOMEM, NULL, "out of memory");
}

static const char *tstrdup(comp *c, const char *s, size_t n) {
    const char *d = mb_arena_strndup(&c->t->arena, s ? s : "", n);
    if (!d) nomem(c);
    return d;
}

static int64_t add_text(comp *c, const char *s, size_t n) {
    const char *d = tstrdup(c, s, n);
    if (!d) return -1;
    int64_t i = vec_push(&c->texts, sizeof(mb_text));
    if (i < 0) return nomem(c), -1;
    ((mb_text *)c->texts.items)[i] = (mb_text){d, n};
    return i;
}

static int emit_raw(comp *c, pcode *p, uint8_t op, uint8_t flags, uint16_t a, uint32_t b) {
    int64_t i = vec_push(&p->code, sizeof(mb_insn));
    if (i < 0) return nomem(c);
    ((mb_insn *)p->code.items)[i] = (mb_insn){op, flags, a, b};
    return MAILBARS_OK;
}

/* Emits the pending static text as one TEXT instruction. */
static int flush_text(comp *c, pcode *p) {
    if (!p->text.len) return MAILBARS_OK;
    int64_t ti = add_text(c, p->text.data, p->text.len);
    mailbars_buf_reset(&p->text);
    if (ti < 0) return c->failed;
    return emit_raw(c, p, OP_TEXT, 0, 0, (uint32_t)ti);
}

static int emit(comp *c, pcode *p, uint8_t op, uint8_t flags, uint16_t a, uint32_t b) {
    if (flush_text(c, p)) return c->failed;
    return emit_raw(c, p, op, flags, a, b);
}

static void push_sp(pcode *p, uint32_t n) {
    p->sp += n;
    if (p->sp > p->max_sp) p->max_sp = p->sp;
}

static int append_text(comp *c, pcode *p, const char *s, size_t n) {
    if (mailbars_buf_append(&p->text, s, n) != MAILBARS_OK) return nomem(c);
    return MAILBARS_OK;
}

/* Emits an instruction that fails the render with `msg` when (and only when) it runs. */
static int emit_error(comp *c, pcode *p, int code, const char *msg) {
    int64_t ti = add_text(c, msg, strlen(msg));
    if (ti < 0) return c->failed;
    return emit(c, p, OP_ERROR, 0, (uint16_t)code, (uint32_t)ti);
}

/* ---- paths ---- */

/* Finds `name` among the block params of enclosing programs: handlebars.js's
 * blockParamIndex (every program nesting level counts as one level). */
static int bp_lookup(const comp *c, const char *name, size_t len, uint16_t *depth,
                     uint16_t *index) {
    for (size_t d = 0; d < c->nbp; d++) {
        const bp_level *l = &c->bp[c->nbp - 1 - d];
        for (size_t i = 0; i < l->n; i++)
            if (l->names[i].len == len && !memcmp(l->names[i].s, name, len)) {
                *depth = (uint16_t)d;
                *index = (uint16_t)i;
                return 1;
            }
    }
    return 0;
}

/* handlebars.js's scopedId: the path starts with `.` or `this`. */
static int path_scoped(const ast_node *n) {
    return n->u.path.scoped;
}

/* simpleId: one segment, not scoped, no ../ */
static int path_simple(const ast_node *n) {
    return n->type == AST_PATH && n->u.path.n_parts == 1 && !path_scoped(n) && !n->u.path.depth;
}

/* Compiles a path expression into the path table. `head` marks the position handlebars.js
 * flags as path.strict (the head of a mustache, block or subexpression). */
static int64_t add_path(comp *c, const ast_node *n, int head) {
    int64_t pi = vec_push(&c->paths, sizeof(mb_path));
    if (pi < 0) return nomem(c), -1;
    mb_path p = {0};
    const ast_str *parts = n->u.path.parts;
    size_t np = n->u.path.n_parts;
    p.original = tstrdup(c, n->u.path.original.s, n->u.path.original.len);
    p.line = n->loc.line;
    p.column = n->loc.column;
    p.depth = (uint16_t)n->u.path.depth;
    if (np && !n->u.path.depth && !path_scoped(n) &&
        bp_lookup(c, parts[0].s, parts[0].len, &p.bp_depth, &p.bp_index)) {
        p.kind = PATH_BLOCKPARAM;
        parts++, np--;
    } else if (!np) {
        p.kind = PATH_THIS;
    } else if (n->u.path.data) {
        p.kind = PATH_DATA;
        c->saw_data = 1;
    } else {
        p.kind = PATH_CTX;
        p.compat = (c->flags & MAILBARS_COMPAT) && !path_scoped(n) && !n->u.path.depth;
    }
    if (p.kind != PATH_BLOCKPARAM) {
        p.strict_chain = (c->flags & (MAILBARS_STRICT | MAILBARS_ASSUME_OBJECTS)) != 0;
        p.strict_terminal = (c->flags & MAILBARS_STRICT) && head && np > 0;
    }
    p.nparts = (uint32_t)np;
    p.fast = p.kind == PATH_CTX && !p.depth && !p.compat && !p.strict_chain && !p.strict_terminal;
    p.fast_up = p.kind == PATH_CTX && p.depth && !p.compat && !p.strict_chain && !p.strict_terminal;
    if (np) {
        p.parts = mb_arena_alloc(&c->t->arena, np * sizeof *p.parts);
        if (!p.parts) return nomem(c), -1;
        for (size_t i = 0; i < np; i++) {
            p.parts[i].key = tstrdup(c, parts[i].s, parts[i].len);
            p.parts[i].len = parts[i].len;
            p.parts[i].hint = 0;
        }
    }
    if (c->failed) return -1;
    ((mb_path *)c->paths.items)[pi] = p;
    return pi;
}

/* The name handlebars.js gives a literal used where a path is expected
 * (transformLiteralToPath): its `original` as a string. */
static int literal_name(const ast_node *n, char *buf, size_t size, const char **s, size_t *len) {
    switch (n->type) {
    case AST_STRING: *s = n->u.string.value.s, *len = n->u.string.value.len; return 1;
    case AST_NUMBER: *len = mb_format_number(n->u.number.value, buf), *s = buf; return 1;
    case AST_BOOLEAN: *s = n->u.boolean.value ? "true" : "false", *len = strlen(*s); return 1;
    case AST_UNDEFINED: *s = "undefined", *len = 9; return 1;
    case AST_NULL: *s = "null", *len = 4; return 1;
    default: (void)size; return 0;
    }
}

/* Turns a literal in head position into a one-segment path node (in the AST arena). */
static const ast_node *as_path(comp *c, mb_arena *a, const ast_node *n) {
    char buf[40];
    const char *s;
    size_t len;
    if (!literal_name(n, buf, sizeof buf, &s, &len)) return n;
    ast_node *p = mb_arena_alloc(a, sizeof *p);
    ast_str *part = mb_arena_alloc(a, sizeof *part);
    char *copy = mb_arena_strndup(a, s, len);
    if (!p || !part || !copy) return nomem(c), NULL;
    *part = (ast_str){copy, len};
    p->type = AST_PATH;
    p->loc = n->loc;
    p->u.path.parts = part;
    p->u.path.n_parts = 1;
    p->u.path.original = *part;
    return p;
}

/* ---- helpers classification ---- */

static int is_known(const comp *c, const char *name, size_t len) {
    for (size_t i = 0; i < c->cctx->nknown; i++)
        if (strlen(c->cctx->known[i]) == len && !memcmp(c->cctx->known[i], name, len)) return 1;
    return 0;
}

enum { SX_SIMPLE, SX_AMBIGUOUS, SX_HELPER };

/* handlebars.js's classifySexpr, resolved against the environment. */
static int classify(const comp *c, const ast_node *path, size_t nparams, const ast_node *hash,
                    int sexpr) {
    int simple = path_simple(path);
    uint16_t d, i;
    int is_bp = simple && bp_lookup(c, path->u.path.parts[0].s, path->u.path.parts[0].len, &d, &i);
    int helper = !is_bp && (sexpr || nparams || hash);
    int eligible = !is_bp && (helper || simple);
    if (eligible && !helper) {
        const ast_str *nm = &path->u.path.parts[0];
        if (mb_env_find_helper(c->t->env, nm->s, nm->len) || is_known(c, nm->s, nm->len))
            helper = 1;
        else if (c->flags & MAILBARS_KNOWN_HELPERS_ONLY)
            eligible = 0;
    }
    return helper ? SX_HELPER : eligible ? SX_AMBIGUOUS : SX_SIMPLE;
}

static int compile_expr(comp *c, pcode *p, mb_arena *a, const ast_node *n);
static int64_t compile_program(comp *c, mb_arena *a, const ast_node *prog);

/* Pushes the values of a hash and returns its keys. A literal `undefined` value is left out,
 * as handlebars.js's objectLiteral drops it. */
static int compile_hash(comp *c, pcode *p, mb_arena *a, const ast_node *hash, const char ***keys,
                        uint32_t *nhash) {
    *keys = NULL;
    *nhash = 0;
    if (!hash || !hash->u.hash.len) return MAILBARS_OK;
    const char **k = mb_arena_alloc(&c->t->arena, hash->u.hash.len * sizeof *k);
    if (!k) return nomem(c);
    uint32_t n = 0;
    for (size_t i = 0; i < hash->u.hash.len; i++) {
        if (hash->u.hash.values[i]->type == AST_UNDEFINED) continue;
        k[n++] = tstrdup(c, hash->u.hash.keys[i].s, hash->u.hash.keys[i].len);
        if (compile_expr(c, p, a, hash->u.hash.values[i])) return c->failed;
    }
    *keys = k;
    *nhash = n;
    return c->failed;
}

/* Pushes params then hash values; returns the hash key array through *keys. */
static int push_args(comp *c, pcode *p, mb_arena *a, const ast_list *params, const ast_node *hash,
                     const char ***keys, uint32_t *nhash) {
    for (size_t i = 0; i < params->len; i++)
        if (compile_expr(c, p, a, params->items[i])) return c->failed;
    return compile_hash(c, p, a, hash, keys, nhash);
}

/* Creates a call site for a helper invocation. The helper is looked up by the first path
 * segment for known helpers, else by the whole original (handlebars.js does the same). */
static int64_t add_call(comp *c, const ast_node *path, size_t nparams, const char **keys,
                        uint32_t nhash, int64_t fn, int64_t inverse, int is_block) {
    int64_t ci = vec_push(&c->calls, sizeof(mb_callsite));
    if (ci < 0) return nomem(c), -1;
    mb_callsite cs = {0};
    const ast_str *nm = path->u.path.n_parts ? &path->u.path.parts[0] : &path->u.path.original;
    const mb_helper *h = NULL;
    if (path_simple(path)) h = mb_env_find_helper(c->t->env, nm->s, nm->len);
    cs.name = tstrdup(c, path->u.path.original.s, path->u.path.original.len);
    cs.helper = h;
    cs.nparams = (uint32_t)nparams;
    cs.nhash = nhash;
    cs.hash_keys = keys;
    cs.fn = (int32_t)fn;
    cs.inverse = (int32_t)inverse;
    cs.is_block = (uint8_t)is_block;
    cs.name_path = -1;
    if (!h && path->type == AST_PATH) {
        /* the name is also looked up in the context (strictly in strict mode) */
        int64_t pi = add_path(c, path, (c->flags & MAILBARS_STRICT) != 0);
        if (pi < 0) return -1;
        cs.name_path = (int32_t)pi;
    }
    ((mb_callsite *)c->calls.items)[ci] = cs;
    return c->failed ? -1 : ci;
}

static int check_known_only(comp *c, const ast_node *path) {
    if (!(c->flags & MAILBARS_KNOWN_HELPERS_ONLY)) return MAILBARS_OK;
    const ast_str *nm = path->u.path.n_parts ? &path->u.path.parts[0] : &path->u.path.original;
    if (path_simple(path) &&
        (mb_env_find_helper(c->t->env, nm->s, nm->len) || is_known(c, nm->s, nm->len)))
        return MAILBARS_OK;
    return comp_fail(c, MAILBARS_ERR_COMPILE, &path->loc,
                     "You specified knownHelpersOnly, but used the unknown helper %s",
                     path->u.path.original.s);
}

/* Compiles a subexpression or helper head with params: pushes args, then emits `op`. */
static int compile_helper_call(comp *c, pcode *p, mb_arena *a, const ast_node *path,
                               const ast_list *params, const ast_node *hash, uint8_t op,
                               uint8_t flags, int64_t fn, int64_t inverse) {
    if (check_known_only(c, path)) return c->failed;
    const char **keys = NULL;
    uint32_t nhash = 0;
    uint32_t sp0 = p->sp;
    if (push_args(c, p, a, params, hash, &keys, &nhash)) return c->failed;
    int64_t ci = add_call(c, path, params->len, keys, nhash, fn, inverse, op == OP_CALL_BLOCK);
    if (ci < 0) return c->failed;
    p->sp = sp0;
    if (op == OP_CALL) push_sp(p, 1);
    return emit(c, p, op, flags, 0, (uint32_t)ci);
}

/* Pushes the value of an expression (param, hash value, subexpression). */
static int compile_expr(comp *c, pcode *p, mb_arena *a, const ast_node *n) {
    if (++c->depth > c->max_depth && c->max_depth) {
        return comp_fail(c, MAILBARS_ERR_LIMIT_NESTING, &n->loc,
                         "template nesting exceeds the limit of %zu", c->max_depth);
    }
    int rc = MAILBARS_OK;
    switch (n->type) {
    case AST_PATH: {
        int64_t pi = add_path(c, n, 0);
        if (pi < 0) break;
        push_sp(p, 1);
        rc = emit(c, p, OP_PUSH_PATH, 0, 0, (uint32_t)pi);
        break;
    }
    case AST_SUBEXPR: {
        const ast_node *path = as_path(c, a, n->u.sexpr.path);
        if (!path) break;
        if (path->type != AST_PATH) {
            rc = comp_fail(c, MAILBARS_ERR_COMPILE, &n->loc, "Invalid subexpression head");
            break;
        }
        rc = compile_helper_call(c, p, a, path, &n->u.sexpr.params, n->u.sexpr.hash, OP_CALL, 0, -1,
                                 -1);
        break;
    }
    case AST_UNDEFINED:
        push_sp(p, 1);
        rc = emit(c, p, OP_PUSH_UNDEF, 0, 0, 0);
        break;
    case AST_STRING:
    case AST_NUMBER:
    case AST_BOOLEAN:
    case AST_NULL: {
        json_t *v;
        if (n->type == AST_STRING)
            v = json_stringn_nocheck(n->u.string.value.s, n->u.string.value.len);
        else if (n->type == AST_NUMBER) {
            double d = n->u.number.value;
            v = (fabs(d) < 9007199254740992.0 && d == (double)(long long)d &&
                 !(d == 0 && signbit(d)))
                    ? json_integer((json_int_t)d)
                    : json_real(d);
        } else if (n->type == AST_BOOLEAN)
            v = json_boolean(n->u.boolean.value);
        else
            v = json_null();
        int64_t ki = v ? vec_push(&c->consts, sizeof(json_t *)) : -1;
        if (ki < 0) {
            json_decref(v);
            rc = nomem(c);
            break;
        }
        ((json_t **)c->consts.items)[ki] = v;
        push_sp(p, 1);
        rc = emit(c, p, OP_PUSH_CONST, 0, 0, (uint32_t)ki);
        break;
    }
    default: rc = comp_fail(c, MAILBARS_ERR_COMPILE, &n->loc, "unexpected expression");
    }
    c->depth--;
    return rc ? rc : c->failed;
}

static int is_passthrough(const comp *c, const ast_node *m) {
    const ast_node *path = m->u.mustache.path;
    if (m->u.mustache.params.len || m->u.mustache.hash || !path_simple(path)) return 0;
    for (size_t i = 0; i < c->cctx->npassthrough; i++)
        if (!strcmp(c->cctx->passthrough[i], path->u.path.original.s)) return 1;
    return 0;
}

static int compile_mustache(comp *c, pcode *p, mb_arena *a, const ast_node *m) {
    if (is_passthrough(c, m)) {
        const ast_str *o = &m->u.mustache.path->u.path.original;
        const char *open = m->u.mustache.escaped ? "{{" : "{{{",
                   *close = m->u.mustache.escaped ? "}}" : "}}}";
        if (append_text(c, p, open, strlen(open)) || append_text(c, p, o->s, o->len) ||
            append_text(c, p, close, strlen(close)))
            return c->failed;
        return MAILBARS_OK;
    }
    const ast_node *path = as_path(c, a, m->u.mustache.path);
    if (!path) return c->failed;
    uint8_t flags = 0;
    if (m->u.mustache.escaped && !(c->flags & MAILBARS_NO_ESCAPE)) flags |= OUTF_ESCAPE;
    if (c->flags & MAILBARS_MISSING_IS_ERROR) flags |= OUTF_MISSING;
    int kind = classify(c, path, m->u.mustache.params.len, m->u.mustache.hash, 0);
    if (kind == SX_HELPER)
        return compile_helper_call(c, p, a, path, &m->u.mustache.params, m->u.mustache.hash,
                                   OP_CALL_OUT, flags & OUTF_ESCAPE, -1, -1);
    if (kind == SX_AMBIGUOUS && c->t->helper_missing) flags |= OUTF_AMBIG;
    int64_t pi = add_path(c, path, 1);
    if (pi < 0) return c->failed;
    return emit(c, p, OP_OUT_PATH, flags, 0, (uint32_t)pi);
}

/* Registers `{{#*inline "name"}}` in the current program. */
static int compile_inline(comp *c, pcode *p, mb_arena *a, const ast_node *b) {
    const ast_node *path = b->u.block.path;
    if (path->type != AST_PATH || path->u.path.n_parts != 1 ||
        strcmp(path->u.path.parts[0].s, "inline")) {
        return emit_error(c, p, MAILBARS_ERR_RENDER, "Unsupported decorator");
    }
    /* the name is the first argument as a string (handlebars.js: props.partials[args[0]]) */
    char nbuf[40];
    const char *nm = "undefined";
    size_t nlen = 9;
    if (b->u.block.params.len) {
        const ast_node *a0 = b->u.block.params.items[0];
        if (a0->type == AST_PATH)
            nm = a0->u.path.original.s, nlen = a0->u.path.original.len;
        else
            literal_name(a0, nbuf, sizeof nbuf, &nm, &nlen);
    }
    int64_t prog = b->u.block.program ? compile_program(c, a, b->u.block.program) : -1;
    if (prog < 0 && c->failed) return c->failed;
    if (prog < 0) {
        /* an empty inline partial: compile an empty program */
        ast_node empty = {.type = AST_PROGRAM};
        prog = compile_program(c, a, &empty);
        if (prog < 0) return c->failed;
    }
    int64_t ii = vec_push(&p->inlines, sizeof(mb_inline));
    if (ii < 0) return nomem(c);
    ((mb_inline *)p->inlines.items)[ii] = (mb_inline){tstrdup(c, nm, nlen), nlen, (int32_t)prog};
    return c->failed;
}

static int compile_block(comp *c, pcode *p, mb_arena *a, const ast_node *b) {
    if (b->type == AST_DECORATOR_BLOCK) return compile_inline(c, p, a, b);
    int64_t fn = -1, inv = -1;
    if (b->u.block.program && (fn = compile_program(c, a, b->u.block.program)) < 0)
        return c->failed;
    if (b->u.block.inverse && (inv = compile_program(c, a, b->u.block.inverse)) < 0)
        return c->failed;
    const ast_node *path = as_path(c, a, b->u.block.path);
    if (!path) return c->failed;
    const ast_list *params = &b->u.block.params;
    int kind = classify(c, path, params->len, b->u.block.hash, 0);
    const mb_helper *h = NULL;
    if (kind != SX_SIMPLE && path_simple(path))
        h = mb_env_find_helper(c->t->env, path->u.path.parts[0].s, path->u.path.parts[0].len);
    if (kind == SX_HELPER || (kind == SX_AMBIGUOUS && h)) {
        /* dedicated instructions for the built-ins in their ordinary one-argument shape */
        int fast = h && params->len == 1 &&
                   (h->builtin == MB_BUILTIN_EACH || h->builtin == MB_BUILTIN_WITH ||
                    ((h->builtin == MB_BUILTIN_IF || h->builtin == MB_BUILTIN_UNLESS) &&
                     !b->u.block.hash));
        if (fast) {
            if (compile_expr(c, p, a, params->items[0])) return c->failed;
            int64_t ci = add_call(c, path, 1, NULL, 0, fn, inv, 1);
            if (ci < 0) return c->failed;
            p->sp--;
            if (b->u.block.program) {
                ((mb_callsite *)c->calls.items)[ci].fn_block_params =
                    (uint16_t)b->u.block.program->u.program.n_block_params;
            }
            uint8_t op = h->builtin == MB_BUILTIN_EACH   ? OP_EACH
                         : h->builtin == MB_BUILTIN_WITH ? OP_WITH
                         : h->builtin == MB_BUILTIN_IF   ? OP_IF
                                                         : OP_UNLESS;
            return emit(c, p, op, 0, 0, (uint32_t)ci);
        }
        int rc =
            compile_helper_call(c, p, a, path, params, b->u.block.hash, OP_CALL_BLOCK, 0, fn, inv);
        if (!rc && b->u.block.program)
            ((mb_callsite *)c->calls.items)[c->calls.len - 1].fn_block_params =
                (uint16_t)b->u.block.program->u.program.n_block_params;
        return rc;
    }
    /* a section over data: blockHelperMissing */
    int64_t pi = add_path(c, path, 1);
    if (pi < 0) return c->failed;
    push_sp(p, 1);
    if (emit(c, p, OP_PUSH_PATH, 0, 0, (uint32_t)pi)) return c->failed;
    p->sp--;
    int64_t ci = add_call(c, path, 0, NULL, 0, fn, inv, 1);
    if (ci < 0) return c->failed;
    mb_callsite *cs = &((mb_callsite *)c->calls.items)[ci];
    if (b->u.block.program)
        cs->fn_block_params = (uint16_t)b->u.block.program->u.program.n_block_params;
    /* only an ambiguous section ({{#x}}, x not a helper) is a separate JS statement */
    return emit(c, p, OP_SECTION, kind == SX_AMBIGUOUS ? OUTF_EXPLICIT : 0, 0, (uint32_t)ci);
}

static int compile_partial(comp *c, pcode *p, mb_arena *a, const ast_node *n) {
    int is_block = n->type == AST_PARTIAL_BLOCK;
    const ast_node *name = is_block ? n->u.block.path : n->u.partial.name;
    const ast_list *params = is_block ? &n->u.block.params : &n->u.partial.params;
    const ast_node *hash = is_block ? n->u.block.hash : n->u.partial.hash;
    if (params->len > 1)
        return comp_fail(c, MAILBARS_ERR_COMPILE, &n->loc,
                         "Unsupported number of partial arguments: %zu", params->len);
    int64_t block = -1;
    if (is_block && n->u.block.program && (block = compile_program(c, a, n->u.block.program)) < 0)
        return c->failed;
    mb_partial_site ps = {0};
    ps.block = (int32_t)block;
    ps.line = n->loc.line;
    ps.column = n->loc.column;
    uint32_t sp0 = p->sp;
    char buf[40];
    const char *s;
    size_t len;
    if (name->type == AST_SUBEXPR && !params->len &&
        (c->flags & MAILBARS_EXPLICIT_PARTIAL_CONTEXT)) {
        /* handlebars.js pushes the undefined context before the dynamic name and then pops them
         * the other way round: the name's value becomes the context, the name "undefined" */
        ps.name = "undefined";
        ps.name_len = 9;
        if (compile_expr(c, p, a, name)) return c->failed;
        ps.has_context = 1;
        name = NULL;
    } else if (name->type == AST_SUBEXPR) {
        if (compile_expr(c, p, a, name)) return c->failed;
    } else if (name->type == AST_PATH) {
        ps.name = tstrdup(c, name->u.path.original.s, name->u.path.original.len);
        ps.name_len = name->u.path.original.len;
    } else if (literal_name(name, buf, sizeof buf, &s, &len)) {
        ps.name = tstrdup(c, s, len);
        ps.name_len = len;
    }
    if (!name) {
        /* the context is already pushed */
    } else if (params->len) {
        if (compile_expr(c, p, a, params->items[0])) return c->failed;
        ps.has_context = 1;
    } else if (c->flags & MAILBARS_EXPLICIT_PARTIAL_CONTEXT) {
        ps.explicit_ctx = 1;
    }
    if (compile_hash(c, p, a, hash, &ps.hash_keys, &ps.nhash)) return c->failed;
    if (!is_block && n->u.partial.indent.len) {
        if (c->flags & MAILBARS_PREVENT_INDENT) {
            if (append_text(c, p, n->u.partial.indent.s, n->u.partial.indent.len)) return c->failed;
        } else {
            ps.indent = tstrdup(c, n->u.partial.indent.s, n->u.partial.indent.len);
            ps.indent_len = n->u.partial.indent.len;
        }
    }
    p->sp = sp0;
    int64_t si = vec_push(&c->psites, sizeof(mb_partial_site));
    if (si < 0) return nomem(c);
    ((mb_partial_site *)c->psites.items)[si] = ps;
    return emit(c, p, OP_PARTIAL, 0, 0, (uint32_t)si);
}

static int compile_statement(comp *c, pcode *p, mb_arena *a, const ast_node *n) {
    switch (n->type) {
    case AST_CONTENT: return append_text(c, p, n->u.content.value.s, n->u.content.value.len);
    case AST_COMMENT: return MAILBARS_OK;
    case AST_MUSTACHE: return compile_mustache(c, p, a, n);
    case AST_BLOCK:
    case AST_DECORATOR_BLOCK: return compile_block(c, p, a, n);
    case AST_PARTIAL:
    case AST_PARTIAL_BLOCK: return compile_partial(c, p, a, n);
    case AST_DECORATOR: return emit_error(c, p, MAILBARS_ERR_RENDER, "Unsupported decorator");
    default: return comp_fail(c, MAILBARS_ERR_COMPILE, &n->loc, "unexpected statement");
    }
}

/* handlebars.js joins the appends after the last separate `buffer +=` statement as
 * `return buffer + a + b`, so there adjacent numbers concatenate instead of adding up. */
static void mark_final_run(pcode *p) {
    mb_insn *code = p->code.items;
    uint32_t last = UINT32_MAX;
    for (uint32_t i = 0; i < p->code.len; i++)
        if (code[i].op == OP_SECTION && (code[i].flags & OUTF_EXPLICIT)) last = i;
    if (last == UINT32_MAX) return;
    for (uint32_t i = last + 1; i < p->code.len; i++) code[i].flags |= OUTF_NOSUM;
}

/* Whether `each` may run program p inline (vm.c simple_run): text; output of a plain path
 * (from `this` or ../), of `this`, or of an escaped @index; and {{#if x}}/{{#unless x}} on a
 * plain path whose programs are simple too (they were compiled before p). */
static int is_simple(const comp *c, const mb_prog *p) {
    const mb_path *paths = c->paths.items;
    const mb_callsite *calls = c->calls.items;
    const mb_prog *progs = c->progs.items;
    for (uint32_t k = 0; k < p->ncode; k++) {
        const mb_insn *in = &p->code[k];
        if (in->op == OP_TEXT || (in->op == OP_END && k + 1 == p->ncode)) continue;
        if (in->op == OP_OUT_PATH) {
            const mb_path *pa = &paths[in->b];
            if (pa->fast || pa->fast_up || (pa->kind == PATH_THIS && !pa->depth) ||
                (mb_path_is_index(pa) && (in->flags & OUTF_ESCAPE)))
                continue;
            return 0;
        }
        if (in->op == OP_PUSH_PATH && (paths[in->b].fast || paths[in->b].fast_up) &&
            k + 1 < p->ncode && (in[1].op == OP_IF || in[1].op == OP_UNLESS)) {
            const mb_callsite *cs = &calls[in[1].b];
            if ((cs->fn >= 0 && !progs[cs->fn].simple) ||
                (cs->inverse >= 0 && !progs[cs->inverse].simple))
                return 0;
            k++;
            continue;
        }
        return 0;
    }
    return 1;
}

/* Compiles one Program node into a new program; returns its index or -1. */
static int64_t compile_program(comp *c, mb_arena *a, const ast_node *prog) {
    if (c->failed) return -1;
    if (c->max_depth && ++c->depth > c->max_depth) {
        comp_fail(c, MAILBARS_ERR_LIMIT_NESTING, &prog->loc,
                  "template nesting exceeds the limit of %zu", c->max_depth);
        return -1;
    }
    int64_t idx = vec_push(&c->progs, sizeof(mb_prog));
    if (idx < 0) return nomem(c), -1;
    if (c->nbp == c->capbp) {
        size_t cap = c->capbp ? c->capbp * 2 : 16;
        bp_level *nb = mb_realloc(c->bp, cap * sizeof *nb);
        if (!nb) return nomem(c), -1;
        c->bp = nb;
        c->capbp = cap;
    }
    c->bp[c->nbp++] = (bp_level){prog->u.program.block_params, prog->u.program.n_block_params};
    pcode p = {0};
    for (size_t i = 0; i < prog->u.program.body.len && !c->failed; i++)
        compile_statement(c, &p, a, prog->u.program.body.items[i]);
    if (!c->failed) emit(c, &p, OP_END, 0, 0, 0);
    mark_final_run(&p);
    c->nbp--;
    if (c->max_depth) c->depth--;
    mailbars_buf_free(&p.text);
    mb_prog *dst = &((mb_prog *)c->progs.items)[idx];
    dst->code = p.code.items;
    dst->ncode = p.code.len;
    dst->inlines = p.inlines.items;
    dst->ninline = p.inlines.len;
    dst->max_stack = p.max_sp;
    dst->simple = !dst->ninline && !c->failed && is_simple(c, dst);
    return c->failed ? -1 : idx;
}

/* Parses and compiles one source into a program of `c`; returns its index or -1. */
static int64_t compile_source(comp *c, const char *src, size_t len) {
    mb_arena a;
    mb_arena_init(&a);
    if (mb_utf8_check((const unsigned char *)src, len) < len) c->not_utf8 = 1;
    if (c->cctx->limits[MAILBARS_LIMIT_TEMPLATE_SIZE] &&
        len > c->cctx->limits[MAILBARS_LIMIT_TEMPLATE_SIZE]) {
        comp_fail(c, MAILBARS_ERR_LIMIT_TEMPLATE_SIZE, NULL,
                  "template of %zu bytes exceeds the limit of %llu bytes", len,
                  (unsigned long long)c->cctx->limits[MAILBARS_LIMIT_TEMPLATE_SIZE]);
        return -1;
    }
    mb_parse_opts po = {.ignore_standalone = (c->flags & MAILBARS_IGNORE_STANDALONE) != 0,
                        .max_nesting = (size_t)c->cctx->limits[MAILBARS_LIMIT_NESTING]};
    ast_node *root = mb_parse(&a, src, len, &po, c->err);
    int64_t idx = -1;
    uint32_t ps0 = c->psites.len;
    c->saw_data = 0;
    if (!root) {
        c->failed = c->err ? c->err->code : MAILBARS_ERR_PARSE;
        if (!c->failed) c->failed = MAILBARS_ERR_PARSE;
    } else {
        idx = compile_program(c, &a, root);
    }
    /* with data: false, handlebars.js passes no @data to partials from a source without @ */
    for (uint32_t i = ps0; i < c->psites.len; i++)
        ((mb_partial_site *)c->psites.items)[i].no_data =
            (c->flags & MAILBARS_NO_DATA) && !c->saw_data && !c->t->main_uses_data;
    mb_arena_free(&a);
    return idx;
}

static int partial_cmp(const void *x, const void *y) {
    const mb_partial_entry *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->name, b->name, n);
    return r ? r : (a->len > b->len) - (a->len < b->len);
}

/* Moves the vectors into the template. */
static void comp_finish(comp *c) {
    mailbars_template *t = c->t;
    t->progs = c->progs.items, t->nprogs = c->progs.len;
    t->texts = c->texts.items, t->ntexts = c->texts.len;
    t->paths = c->paths.items, t->npaths = c->paths.len;
    t->consts = c->consts.items, t->nconsts = c->consts.len;
    t->calls = c->calls.items, t->ncalls = c->calls.len;
    t->psites = c->psites.items, t->npsites = c->psites.len;
    mb_free(c->bp);
}

mailbars_template *mailbars_compile(const mailbars_env *env, const char *src, size_t len,
                                    const mailbars_compile_ctx *cctx, mailbars_error *err) {
    mailbars_error_clear(err);
    if (!src && len) {
        mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "template source is NULL");
        return NULL;
    }
    mailbars_template *t = mb_calloc(1, sizeof *t);
    if (!t) {
        mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    mb_arena_init(&t->arena);
    comp c = {0};
    c.t = t;
    c.cctx = cctx ? cctx : mb_default_compile_ctx();
    c.flags = c.cctx->flags;
    c.err = err;
    /* the parser enforces MAILBARS_LIMIT_NESTING on blocks and subexpressions; this cap only
     * bounds the compiler's own recursion (programs plus expressions) on the C stack */
    c.max_depth =
        4 * (size_t)(c.cctx->limits[MAILBARS_LIMIT_NESTING] ? c.cctx->limits[MAILBARS_LIMIT_NESTING]
                                                            : 2000) +
        64;
    t->flags = c.flags;
    t->env = env;
    if (env) {
        const mb_helper *hm = mb_env_find_helper(env, "helperMissing", 13);
        const mb_helper *bhm = mb_env_find_helper(env, "blockHelperMissing", 18);
        t->helper_missing = hm && hm->builtin != MB_BUILTIN_HELPER_MISSING ? hm : NULL;
        t->block_helper_missing =
            bhm && bhm->builtin != MB_BUILTIN_BLOCK_HELPER_MISSING ? bhm : NULL;
    }
    int64_t main = compile_source(&c, src ? src : "", len);
    t->main_uses_data = (uint8_t)c.saw_data;
    if (main >= 0) {
        t->main = (uint32_t)main;
        /* registered partials: compiled now with the same options; an error is kept and
         * reported only if the partial is used, as handlebars.js compiles them lazily */
        size_t n = 0;
        for (const struct mb_env_partial *ep = env ? env->partials : NULL; ep; ep = ep->next) n++;
        if (n) {
            t->partials = mb_calloc(n, sizeof *t->partials);
            if (!t->partials) nomem(&c);
        }
        for (const struct mb_env_partial *ep = env ? env->partials : NULL; ep && !c.failed;
             ep = ep->next) {
            mb_partial_entry *pe = &t->partials[t->npartials++];
            pe->name = tstrdup(&c, ep->name, strlen(ep->name));
            pe->len = strlen(ep->name);
            mailbars_error perr;
            mailbars_error_clear(&perr);
            c.err = &perr;
            int64_t pi = compile_source(&c, ep->src, ep->len);
            c.err = err;
            pe->program = (int32_t)pi;
            if (pi < 0) {
                if (c.failed == MAILBARS_ERR_NOMEM) break;
                c.failed = 0;
                pe->error = mb_arena_alloc(&t->arena, sizeof *pe->error);
                if (!pe->error) {
                    nomem(&c);
                    break;
                }
                *pe->error = perr;
                snprintf(pe->error->part, sizeof pe->error->part, "%s", ep->name);
            }
        }
        if (!c.failed && t->npartials)
            qsort(t->partials, t->npartials, sizeof *t->partials, partial_cmp);
    }
    comp_finish(&c);
    t->src_utf8 = (uint8_t)!c.not_utf8;
    for (uint32_t i = 0; i < t->npsites && !c.failed; i++)
        if (t->psites[i].name)
            t->psites[i].entry = mb_find_partial(t, t->psites[i].name, t->psites[i].name_len);
    if (c.failed || main < 0) {
        if (err && !err->code)
            mb_error(err, c.failed ? c.failed : MAILBARS_ERR_COMPILE, 0, 0, NULL);
        mailbars_template_free(t);
        return NULL;
    }
    return t;
}

void mailbars_template_free(mailbars_template *t) {
    if (!t) return;
    for (uint32_t i = 0; i < t->nprogs; i++) {
        mb_free(t->progs[i].code);
        mb_free(t->progs[i].inlines);
    }
    for (uint32_t i = 0; i < t->nconsts; i++) json_decref(t->consts[i]);
    mb_free(t->progs);
    mb_free(t->texts);
    mb_free(t->paths);
    mb_free(t->consts);
    mb_free(t->calls);
    mb_free(t->psites);
    mb_free(t->partials);
    mb_arena_free(&t->arena);
    mb_free(t);
}

const char *const mb_opcode_names[OP__COUNT] = {
#define X(name, operands, doc) #name,
#include "opcodes.def"
#undef X
};

/* Appends a printable, quoted form of static text (for the listing). */
static int put_quoted(mailbars_buf *out, const char *s, size_t n) {
    int rc = mb_buf_putc(out, '"');
    for (size_t i = 0; i < n && i < 40 && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        rc = ch == '\n'             ? mb_buf_puts(out, "\\n")
             : ch < 32 || ch == '"' ? mb_buf_printf(out, "\\x%02x", ch)
                                    : mb_buf_putc(out, (char)ch);
    }
    if (!rc && n > 40) rc = mb_buf_puts(out, "...");
    return rc ? rc : mb_buf_putc(out, '"');
}

int mailbars_template_disassemble(const mailbars_template *t, mailbars_buf *out) {
    if (!t || !out) return MAILBARS_ERR_ARGUMENT;
    int rc = MAILBARS_OK;
    for (uint32_t pi = 0; pi < t->nprogs && !rc; pi++) {
        const mb_prog *pr = &t->progs[pi];
        rc = mb_buf_printf(out, "program %u%s (stack %u)\n", pi, pi == t->main ? " main" : "",
                           pr->max_stack);
        for (uint32_t k = 0; k < pr->ninline && !rc; k++)
            rc = mb_buf_printf(out, "  inline \"%s\" -> program %d\n", pr->inlines[k].name,
                               pr->inlines[k].program);
        for (uint32_t i = 0; i < pr->ncode && !rc; i++) {
            const mb_insn *in = &pr->code[i];
            rc = mb_buf_printf(out, "  %04u %-10s", i, mb_opcode_names[in->op]);
            switch (in->op) {
            case OP_TEXT:
            case OP_ERROR:
                if (!rc) rc = put_quoted(out, t->texts[in->b].s, t->texts[in->b].len);
                break;
            case OP_OUT_PATH:
            case OP_PUSH_PATH:
                if (!rc) rc = mb_buf_printf(out, "%s", t->paths[in->b].original);
                break;
            case OP_PUSH_CONST:
                if (!rc) rc = mailbars_value_to_string(t->consts[in->b], out);
                break;
            case OP_CALL:
            case OP_CALL_OUT:
            case OP_CALL_BLOCK:
            case OP_SECTION:
            case OP_IF:
            case OP_UNLESS:
            case OP_WITH:
            case OP_EACH: {
                const mb_callsite *cs = &t->calls[in->b];
                if (!rc)
                    rc = mb_buf_printf(out, "%s params=%u hash=%u fn=%d inverse=%d", cs->name,
                                       cs->nparams, cs->nhash, cs->fn, cs->inverse);
                break;
            }
            case OP_PARTIAL: {
                const mb_partial_site *ps = &t->psites[in->b];
                if (!rc)
                    rc = mb_buf_printf(out, "%s%s block=%d", ps->name ? ps->name : "(dynamic)",
                                       ps->has_context ? " ctx" : "", ps->block);
                break;
            }
            default: break;
            }
            if (!rc && (in->flags & OUTF_ESCAPE)) rc = mb_buf_puts(out, " escape");
            if (!rc && (in->flags & OUTF_MISSING)) rc = mb_buf_puts(out, " missing-error");
            if (!rc) rc = mb_buf_putc(out, '\n');
        }
    }
    for (uint32_t i = 0; i < t->npartials && !rc; i++)
        rc = mb_buf_printf(out, "partial \"%s\" -> program %d\n", t->partials[i].name,
                           t->partials[i].program);
    return rc;
}
