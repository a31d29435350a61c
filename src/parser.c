/* The Handlebars parser: a recursive-descent equivalent of handlebars.js 4.7's LALR grammar
 * (src/handlebars.yy) and its AST helpers (compiler/helpers.js). Parse errors reproduce the
 * jison message ("Parse error on line N:", the source excerpt, "Expecting ..., got 'X'"): each
 * decision point knows which token set the LALR automaton would list in that situation. */
#include "lexer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Recursion bound when the caller sets no (or a larger) nesting limit: blocks, else-chains and
 * subexpressions recurse here, in whitespace control and in the compiler. */
#define MB_PARSE_HARD_NESTING 2000

typedef uint32_t tmask;
#define TB(t) ((tmask)1u << (t))

/* Token sets of the LALR states, in jison's terms. */
#define S_HN                                                                                       \
    (TB(TK_ID) | TB(TK_STRING) | TB(TK_NUMBER) | TB(TK_BOOLEAN) | TB(TK_UNDEFINED) | TB(TK_NULL) | \
     TB(TK_DATA))
#define S_PARAM (S_HN | TB(TK_OPEN_SEXPR))
#define S_HASH_CONT                                                                                \
    (TB(TK_CLOSE_RAW_BLOCK) | TB(TK_CLOSE) | TB(TK_CLOSE_UNESCAPED) | TB(TK_CLOSE_SEXPR) |         \
     TB(TK_ID) | TB(TK_OPEN_BLOCK_PARAMS))
#define S_AFTER_HN (S_HASH_CONT | S_PARAM)
#define S_AFTER_ID (S_AFTER_HN | TB(TK_SEP))
#define S_STMT                                                                                     \
    (TB(TK_COMMENT) | TB(TK_CONTENT) | TB(TK_OPEN_RAW_BLOCK) | TB(TK_OPEN_BLOCK) |                 \
     TB(TK_OPEN_INVERSE) | TB(TK_OPEN) | TB(TK_OPEN_UNESCAPED) | TB(TK_OPEN_PARTIAL) |             \
     TB(TK_OPEN_PARTIAL_BLOCK))
#define S_ENDERS (TB(TK_OPEN_INVERSE_CHAIN) | TB(TK_INVERSE) | TB(TK_OPEN_ENDBLOCK))
#define S_STMT_ALL (S_STMT | S_ENDERS | TB(TK_EOF))

/* Which construct owns a program: decides the tokens that may end it. */
enum { CTX_ROOT, CTX_BLOCK, CTX_INVERSE, CTX_CHAIN, CTX_ELSE, CTX_PARTIAL_BLOCK, CTX__COUNT };

static const tmask ctx_pre[CTX__COUNT] = {
    S_STMT | TB(TK_EOF),
    S_STMT | S_ENDERS,
    S_STMT | TB(TK_INVERSE) | TB(TK_OPEN_ENDBLOCK),
    S_STMT | S_ENDERS,
    S_STMT | TB(TK_OPEN_ENDBLOCK),
    S_STMT | TB(TK_OPEN_ENDBLOCK),
};
static const tmask ctx_post[CTX__COUNT] = {
    TB(TK_EOF),
    S_ENDERS,
    TB(TK_INVERSE) | TB(TK_OPEN_ENDBLOCK),
    S_ENDERS,
    TB(TK_OPEN_ENDBLOCK),
    TB(TK_OPEN_ENDBLOCK),
};

/* Mustache-like constructs: what may start the name, continue after the name or a param, and
 * follow a hash; the closing token; whether `as |x|` is allowed. */
enum { K_MUSTACHE, K_UNESCAPED, K_BLOCK, K_RAW, K_PARTIAL, K_SEXPR, K__COUNT };
static const struct {
    tmask first, loop, after_hash;
    mb_tok_type close;
    bool block_params;
} kinds[K__COUNT] = {
    {S_HN, TB(TK_CLOSE) | S_PARAM, TB(TK_CLOSE), TK_CLOSE, false},
    {S_HN, TB(TK_CLOSE_UNESCAPED) | S_PARAM, TB(TK_CLOSE_UNESCAPED), TK_CLOSE_UNESCAPED, false},
    {S_HN, TB(TK_CLOSE) | TB(TK_OPEN_BLOCK_PARAMS) | S_PARAM,
     TB(TK_CLOSE) | TB(TK_OPEN_BLOCK_PARAMS), TK_CLOSE, true},
    {S_HN, TB(TK_CLOSE_RAW_BLOCK) | S_PARAM, TB(TK_CLOSE_RAW_BLOCK), TK_CLOSE_RAW_BLOCK, false},
    {S_PARAM, TB(TK_CLOSE) | S_PARAM, TB(TK_CLOSE), TK_CLOSE, false},
    {S_HN, TB(TK_CLOSE_SEXPR) | S_PARAM, TB(TK_CLOSE_SEXPR), TK_CLOSE_SEXPR, false},
};

typedef struct parser {
    mb_arena *a;
    mb_lexer lx;
    mb_tok la[2]; /* lookahead tokens */
    int nla;
    mb_tok last; /* last consumed ("shifted") token */
    bool shifted;
    mailbars_error *err;
    size_t depth, max_depth;
} parser;

/* A growable node array in the arena. */
typedef struct nvec {
    ast_node **items;
    size_t len, cap;
} nvec;

/* The pieces between a mustache's delimiters. */
typedef struct call {
    ast_node *path;
    nvec params;
    ast_node *hash;
    ast_str *bp;
    size_t n_bp;
    mb_tok open, close;
} call;

/* What follows a block's program: `{{else}}...` or an `{{else if}}` chain. */
typedef struct inverse_part {
    bool present, chain;
    ast_loc at; /* the {{else}} token */
    ast_strip strip;
    ast_node *program;
} inverse_part;

/* Reports an allocation failure. */
static int nomem(parser *p) {
    return mb_error(p->err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
}

/* Makes sure `n` lookahead tokens are available. */
static int fill(parser *p, int n) {
    while (p->nla < n) {
        int rc = mb_lexer_next(&p->lx, &p->la[p->nla], p->err);
        if (rc != MAILBARS_OK) return rc;
        p->nla++;
    }
    return MAILBARS_OK;
}

/* Consumes the current lookahead token. */
static void shift(parser *p) {
    p->last = p->la[0];
    p->shifted = true;
    p->la[0] = p->la[1];
    p->nla--;
}

/* Appends a node to an arena vector, doubling it when full. */
static int nvec_push(parser *p, nvec *v, ast_node *n) {
    if (v->len == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 4;
        if (nc > SIZE_MAX / sizeof(ast_node *)) return nomem(p);
        ast_node **ni = mb_arena_alloc(p->a, nc * sizeof *ni);
        if (!ni) return nomem(p);
        if (v->len) memcpy(ni, v->items, v->len * sizeof *ni);
        v->items = ni;
        v->cap = nc;
    }
    v->items[v->len++] = n;
    return MAILBARS_OK;
}

/* The vector as an AST list. */
static ast_list to_list(const nvec *v) {
    return (ast_list){v->items, v->len};
}

/* A zeroed node of type t in the arena. */
static ast_node *new_node(parser *p, ast_type t, ast_loc loc) {
    ast_node *n = mb_arena_alloc(p->a, sizeof *n);
    if (n) {
        n->type = t;
        n->loc = loc;
    }
    return n;
}

/* A NUL-terminated arena copy of s[0..n). */
static int mkstr(parser *p, const char *s, size_t n, ast_str *out) {
    char *d = mb_arena_strndup(p->a, s, n);
    if (!d) return nomem(p);
    out->s = d;
    out->len = n;
    return MAILBARS_OK;
}

/* A location from the start of `from` to the end of the last consumed token. */
static ast_loc span(const ast_loc *from, const parser *p) {
    return (ast_loc){from->line, from->column, p->last.loc.end_line, p->last.loc.end_column};
}

/* handlebars.js stripFlags(open, close): `~` as third char of the opener, or third from the
 * end of the closer. */
static ast_strip strip_flags(const mb_tok *open, const mb_tok *close) {
    ast_strip s;
    s.open = open->end - open->start > 2 && open->text[2] == '~';
    s.close = close->end - close->start >= 3 && close->text[close->len - 3] == '~';
    return s;
}

/* Reports jison's parse error for the current lookahead when it is not in `expected`. */
static int parse_error(parser *p, tmask expected) {
    const mb_tok *t = &p->la[0];
    int line = p->shifted ? p->last.loc.end_line : 1;
    mailbars_buf b = {0};
    int rc = mb_buf_printf(&b, "Parse error on line %d:\n", line);
    rc |= mb_lexer_show_position(&p->lx, t->start, t->end, &b);
    rc |= mailbars_buf_append(&b, "\nExpecting ", 11);
    bool first = true;
    for (int k = 0; k <= TK_SEP; k++) {
        if (!(expected & TB(k))) continue;
        rc |= mb_buf_printf(&b, "%s'%s'", first ? "" : ", ", mb_tok_name((mb_tok_type)k));
        first = false;
    }
    rc |= mb_buf_printf(&b, ", got '%s'", mb_tok_name(t->type));
    if (rc) {
        mailbars_buf_free(&b);
        return nomem(p);
    }
    int col =
        t->loc.line == line ? t->loc.column + 1 : (p->shifted ? p->last.loc.end_column + 1 : 1);
    mb_error(p->err, MAILBARS_ERR_PARSE, line, col, "%s", b.data);
    mailbars_buf_free(&b);
    return MAILBARS_ERR_PARSE;
}

/* Requires the lookahead to be in `set`; 0 when it is. */
static int expect(parser *p, tmask set) {
    int rc = fill(p, 1);
    if (rc) return rc;
    return (TB(p->la[0].type) & set) ? MAILBARS_OK : parse_error(p, set);
}

/* Enters one level of block/subexpression nesting, failing beyond the limit. */
static int enter(parser *p, const mb_tok *at) {
    if (++p->depth > p->max_depth)
        return mb_error(p->err, MAILBARS_ERR_LIMIT_NESTING, at->loc.line, at->loc.column + 1,
                        "Nesting depth limit of %zu exceeded - %d:%d", p->max_depth, at->loc.line,
                        at->loc.column);
    return MAILBARS_OK;
}

/* handlebars.js id(): strips the brackets of a `[literal]` segment (only when no line
 * terminator is inside, as `.` in /^\[.*\]$/ would require). */
static void id_text(const char *s, size_t n, const char **out, size_t *out_len) {
    *out = s;
    *out_len = n;
    if (n < 2 || s[0] != '[' || s[n - 1] != ']') return;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\r') return;
        if (c == 0xE2 && i + 2 < n - 1 && (unsigned char)s[i + 1] == 0x80 &&
            ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
            return;
    }
    *out = s + 1;
    *out_len = n - 2;
}

static int parse_sexpr(parser *p, ast_node **out);

/* A literal helperName/param (STRING, NUMBER, BOOLEAN, UNDEFINED, NULL) from the lookahead. */
static int parse_literal(parser *p, ast_node **out) {
    mb_tok t = p->la[0];
    static const ast_type types[] = {
        [TK_STRING] = AST_STRING,       [TK_NUMBER] = AST_NUMBER, [TK_BOOLEAN] = AST_BOOLEAN,
        [TK_UNDEFINED] = AST_UNDEFINED, [TK_NULL] = AST_NULL,
    };
    ast_node *n = new_node(p, types[t.type], t.loc);
    if (!n) return nomem(p);
    int rc = MAILBARS_OK;
    if (t.type == TK_STRING) {
        rc = mkstr(p, t.text, t.len, &n->u.string.value);
    } else if (t.type == TK_NUMBER) {
        rc = mkstr(p, t.text, t.len, &n->u.number.original);
        if (!rc) n->u.number.value = strtod(n->u.number.original.s, NULL);
    } else if (t.type == TK_BOOLEAN) {
        n->u.boolean.value = t.len == 4;
    }
    if (rc) return rc;
    shift(p);
    *out = n;
    return MAILBARS_OK;
}

/* `this\b` anywhere or a leading `.`: handlebars.js AST.helpers.scopedId. */
static bool scoped_id(const ast_str *original) {
    const char *s = original->s;
    size_t n = original->len;
    if (n && s[0] == '.') return true;
    for (size_t i = 0; i + 4 <= n; i++) {
        if (memcmp(s + i, "this", 4) != 0) continue;
        if (i + 4 == n) return true;
        unsigned char c = (unsigned char)s[i + 4];
        bool word =
            (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!word) return true;
    }
    return false;
}

/* One segment of a path being parsed. */
typedef struct seg {
    const char *text;
    size_t len;
    char sep; /* '.' or '/' before it, 0 for the first */
} seg;

/* A path (`a.b/c`, `../x`, `@root.y`, `[lit].z`) from the lookahead, then handlebars.js
 * preparePath(). `param_pos`: a lone ID here could also have been a hash key. */
static int parse_path(parser *p, bool param_pos, ast_node **out) {
    mb_tok first = p->la[0];
    bool data = first.type == TK_DATA;
    int rc;
    if (data) {
        shift(p);
        if ((rc = expect(p, TB(TK_ID)))) return rc;
    }
    /* collect segments: text and the separator before each (small paths stay on the stack) */
    seg local[8], *segs = local;
    size_t cap = 8, n = 0;
    for (;;) {
        if (n == cap) {
            seg *ns = mb_arena_alloc(p->a, cap * 2 * sizeof *ns);
            if (!ns) return nomem(p);
            memcpy(ns, segs, n * sizeof *ns);
            segs = ns;
            cap *= 2;
        }
        segs[n].text = p->la[0].text;
        segs[n].len = p->la[0].len;
        segs[n].sep = n ? p->last.text[0] : 0;
        n++;
        shift(p);
        if ((rc = fill(p, 1))) return rc;
        if (p->la[0].type == TK_SEP) {
            shift(p);
            if ((rc = expect(p, TB(TK_ID)))) return rc;
            continue;
        }
        tmask ok = S_AFTER_ID | (param_pos && n == 1 && !data ? TB(TK_EQUALS) : 0);
        if ((rc = expect(p, ok))) return rc;
        break;
    }
    ast_loc loc = span(&first.loc, p);
    ast_node *node = new_node(p, AST_PATH, loc);
    if (!node) return nomem(p);
    /* original: '@'? + segments (brackets stripped) joined by their separators */
    size_t olen = data ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const char *part;
        size_t plen;
        id_text(segs[i].text, segs[i].len, &part, &plen);
        olen += plen + (i > 0);
    }
    char *orig = mb_arena_alloc(p->a, olen + 1);
    ast_str *parts = mb_arena_alloc(p->a, n * sizeof *parts);
    if (!orig || !parts) return nomem(p);
    size_t o = 0, nparts = 0;
    int depth = 0;
    if (data) orig[o++] = '@';
    for (size_t i = 0; i < n; i++) {
        const char *part;
        size_t plen;
        id_text(segs[i].text, segs[i].len, &part, &plen);
        bool literal = plen != segs[i].len;
        if (i > 0) orig[o++] = segs[i].sep;
        memcpy(orig + o, part, plen);
        o += plen;
        bool dots = plen == 2 && memcmp(part, "..", 2) == 0;
        if (!literal && (dots || (plen == 1 && part[0] == '.') ||
                         (plen == 4 && memcmp(part, "this", 4) == 0))) {
            if (nparts > 0)
                return mb_error(p->err, MAILBARS_ERR_PARSE, loc.line, loc.column + 1,
                                "Invalid path: %.*s - %d:%d", (int)(o > 300 ? 300 : o), orig,
                                loc.line, loc.column);
            if (dots) depth++;
        } else {
            if ((rc = mkstr(p, part, plen, &parts[nparts]))) return rc;
            nparts++;
        }
    }
    orig[o] = 0;
    node->u.path.original = (ast_str){orig, o};
    node->u.path.data = data;
    node->u.path.depth = depth;
    node->u.path.parts = parts;
    node->u.path.n_parts = nparts;
    node->u.path.scoped = scoped_id(&node->u.path.original);
    *out = node;
    return MAILBARS_OK;
}

/* A helperName or param: path, literal or subexpression, then the check of what may follow. */
static int parse_expr(parser *p, bool param_pos, ast_node **out) {
    int rc;
    switch (p->la[0].type) {
    case TK_ID:
    case TK_DATA: return parse_path(p, param_pos, out);
    case TK_OPEN_SEXPR: rc = parse_sexpr(p, out); break;
    default: rc = parse_literal(p, out); break;
    }
    if (rc) return rc;
    return expect(p, S_AFTER_HN);
}

/* `key=value ...`; the lookahead is the first key, known to be followed by EQUALS. */
static int parse_hash(parser *p, ast_node **out) {
    ast_loc start = p->la[0].loc;
    size_t cap = 4, n = 0;
    ast_str *keys = mb_arena_alloc(p->a, cap * sizeof *keys);
    ast_node **vals = mb_arena_alloc(p->a, cap * sizeof *vals);
    if (!keys || !vals) return nomem(p);
    int rc;
    for (;;) {
        /* lookahead: the key ID; shifted, then EQUALS */
        mb_tok key = p->la[0];
        shift(p);
        if ((rc = expect(p, TB(TK_EQUALS)))) return rc;
        shift(p);
        if ((rc = expect(p, S_PARAM))) return rc;
        ast_node *v;
        if ((rc = parse_expr(p, false, &v))) return rc;
        if (n == cap) {
            ast_str *nk = mb_arena_alloc(p->a, cap * 2 * sizeof *nk);
            ast_node **nv = mb_arena_alloc(p->a, cap * 2 * sizeof *nv);
            if (!nk || !nv) return nomem(p);
            memcpy(nk, keys, n * sizeof *nk);
            memcpy(nv, vals, n * sizeof *nv);
            keys = nk, vals = nv, cap *= 2;
        }
        const char *k;
        size_t kl;
        id_text(key.text, key.len, &k, &kl);
        if ((rc = mkstr(p, k, kl, &keys[n]))) return rc;
        vals[n++] = v;
        if ((rc = expect(p, S_HASH_CONT))) return rc;
        if (p->la[0].type != TK_ID) break;
    }
    ast_node *h = new_node(p, AST_HASH, span(&start, p));
    if (!h) return nomem(p);
    h->u.hash.keys = keys;
    h->u.hash.values = vals;
    h->u.hash.len = n;
    *out = h;
    return MAILBARS_OK;
}

/* `as |a b|`; the lookahead is OPEN_BLOCK_PARAMS. */
static int parse_block_params(parser *p, call *c) {
    int rc;
    mb_tok open = p->la[0];
    shift(p);
    if ((rc = expect(p, TB(TK_ID)))) return rc;
    size_t cap = 2;
    c->bp = mb_arena_alloc(p->a, cap * sizeof *c->bp);
    if (!c->bp) return nomem(p);
    for (;;) {
        if (c->n_bp == cap) {
            ast_str *nb = mb_arena_alloc(p->a, cap * 2 * sizeof *nb);
            if (!nb) return nomem(p);
            memcpy(nb, c->bp, c->n_bp * sizeof *nb);
            c->bp = nb, cap *= 2;
        }
        /* handlebars.js applies id() to the array of names: they keep their brackets */
        if ((rc = mkstr(p, p->la[0].text, p->la[0].len, &c->bp[c->n_bp]))) return rc;
        c->n_bp++;
        shift(p);
        if ((rc = expect(p, TB(TK_ID) | TB(TK_CLOSE_BLOCK_PARAMS)))) return rc;
        if (p->la[0].type == TK_CLOSE_BLOCK_PARAMS) break;
    }
    /* ...and when the names joined with ',' look like `[...]`, id() calls substring() on the
     * array, which throws a TypeError */
    const ast_str *f = &c->bp[0], *l = &c->bp[c->n_bp - 1];
    if (f->s[0] == '[' && l->s[l->len - 1] == ']') {
        bool terminator = false;
        for (size_t i = 0; i < c->n_bp && !terminator; i++) {
            const char *dummy;
            size_t dl;
            id_text(c->bp[i].s, c->bp[i].len, &dummy, &dl);
            terminator = c->bp[i].s[0] == '[' && dl == c->bp[i].len;
        }
        if (!terminator)
            return mb_error(p->err, MAILBARS_ERR_PARSE, open.loc.line, open.loc.column + 1,
                            "token.substring is not a function");
    }
    shift(p);
    return expect(p, TB(TK_CLOSE));
}

/* The inside of a mustache-like construct after its opener (already in c->open): name, params,
 * hash, block params and the closing token (consumed into c->close). */
static int parse_call(parser *p, int kind, call *c) {
    int rc;
    if ((rc = expect(p, kinds[kind].first))) return rc;
    if ((rc = parse_expr(p, false, &c->path))) return rc;
    for (;;) {
        if ((rc = fill(p, 1))) return rc;
        mb_tok_type t = p->la[0].type;
        if (t == TK_ID) {
            if ((rc = fill(p, 2))) return rc;
            if (p->la[1].type == TK_EQUALS) break;
        }
        if (!(TB(t) & S_PARAM)) break;
        ast_node *param;
        if ((rc = parse_expr(p, true, &param))) return rc;
        if ((rc = nvec_push(p, &c->params, param))) return rc;
    }
    if (p->la[0].type == TK_ID) {
        if ((rc = parse_hash(p, &c->hash))) return rc;
        if ((rc = expect(p, kinds[kind].after_hash))) return rc;
    } else if ((rc = expect(p, kinds[kind].loop))) {
        return rc;
    }
    if (kinds[kind].block_params && p->la[0].type == TK_OPEN_BLOCK_PARAMS) {
        if ((rc = parse_block_params(p, c))) return rc;
    }
    c->close = p->la[0];
    shift(p);
    return MAILBARS_OK;
}

/* `( helper params hash )`; the lookahead is OPEN_SEXPR. */
static int parse_sexpr(parser *p, ast_node **out) {
    call c = {0};
    c.open = p->la[0];
    int rc = enter(p, &c.open);
    if (rc) return rc;
    shift(p);
    if ((rc = parse_call(p, K_SEXPR, &c))) return rc;
    ast_node *n = new_node(p, AST_SUBEXPR, span(&c.open.loc, p));
    if (!n) return nomem(p);
    n->u.sexpr.path = c.path;
    n->u.sexpr.params = to_list(&c.params);
    n->u.sexpr.hash = c.hash;
    p->depth--;
    *out = n;
    return MAILBARS_OK;
}

/* The JavaScript value of an `original` (path/literal), for comparing block names the way
 * validateClose's `!==` does: a kind and its String() text. */
typedef struct jsval {
    int kind; /* 0 string, 1 number, 2 boolean, 3 undefined, 4 null */
    const char *s;
    size_t len;
    char num[32];
} jsval;

/* The JavaScript value of n.original (a subexpression has none: undefined). */
static void original_of(const ast_node *n, jsval *v) {
    v->kind = 0;
    v->s = "";
    v->len = 0;
    switch (n->type) {
    case AST_PATH: v->s = n->u.path.original.s, v->len = n->u.path.original.len; break;
    case AST_STRING: v->s = n->u.string.value.s, v->len = n->u.string.value.len; break;
    case AST_NUMBER:
        v->kind = 1;
        v->len = mb_format_number(n->u.number.value, v->num);
        v->s = v->num;
        break;
    case AST_BOOLEAN:
        v->kind = 2;
        v->s = n->u.boolean.value ? "true" : "false";
        v->len = strlen(v->s);
        break;
    case AST_NULL: v->kind = 4, v->s = "null", v->len = 4; break;
    default: v->kind = 3, v->s = "undefined", v->len = 9; break;
    }
}

/* handlebars.js validateClose(): "open doesn't match close - L:C" at the opener's path. */
static int validate_close(parser *p, const ast_node *open, const jsval *close) {
    jsval o;
    original_of(open, &o);
    if (o.kind == close->kind && o.len == close->len && memcmp(o.s, close->s, o.len) == 0)
        return MAILBARS_OK;
    const ast_loc *l = &open->loc;
    return mb_error(p->err, MAILBARS_ERR_PARSE, l->line, l->column + 1,
                    "%.*s doesn't match %.*s - %d:%d", (int)(o.len > 200 ? 200 : o.len), o.s,
                    (int)(close->len > 200 ? 200 : close->len), close->s, l->line, l->column);
}

static int parse_program(parser *p, int ctx, ast_node **out);

/* `{{/name}}`; the lookahead is OPEN_ENDBLOCK. */
static int parse_close_block(parser *p, ast_node **path, ast_strip *strip) {
    mb_tok open = p->la[0];
    shift(p);
    int rc = expect(p, S_HN);
    if (rc) return rc;
    if ((rc = parse_expr(p, false, path))) return rc;
    if ((rc = expect(p, TB(TK_CLOSE)))) return rc;
    *strip = strip_flags(&open, &p->la[0]);
    shift(p);
    return fill(p, 1); /* the LALR reduce of the enclosing statement reads the lookahead */
}

/* prepareProgram(): a program whose loc spans its statements (or `fallback` when empty). */
static ast_node *make_program(parser *p, const nvec *body, const ast_loc *fallback) {
    ast_loc loc = {0, 0, 0, 0};
    if (body->len) {
        const ast_loc *a = &body->items[0]->loc, *b = &body->items[body->len - 1]->loc;
        loc = (ast_loc){a->line, a->column, b->end_line, b->end_column};
    } else if (fallback) {
        loc = *fallback;
    }
    ast_node *n = new_node(p, AST_PROGRAM, loc);
    if (n) n->u.program.body = to_list(body);
    return n;
}

static int parse_inverse_chain(parser *p, inverse_part *out);

/* After a block's program: `{{else}} program`, an `{{else x}}` chain, or nothing. */
static int parse_inverse_part(parser *p, bool allow_chain, inverse_part *out) {
    int rc = fill(p, 1);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->at = p->la[0].loc;
    if (allow_chain && p->la[0].type == TK_OPEN_INVERSE_CHAIN) return parse_inverse_chain(p, out);
    if (p->la[0].type == TK_INVERSE) {
        out->present = true;
        out->strip = strip_flags(&p->la[0], &p->la[0]);
        shift(p);
        return parse_program(p, CTX_ELSE, &out->program);
    }
    return MAILBARS_OK;
}

/* Fills the program/inverse of a block as prepareBlock() does (block params on the program,
 * the chained block's close strip, the inverted swap). */
static void prepare_block(ast_node *b, ast_node *program, const call *c, const inverse_part *inv,
                          ast_strip close_strip, bool inverted) {
    program->u.program.block_params = c->bp;
    program->u.program.n_block_params = c->n_bp;
    ast_node *inverse = NULL;
    if (inv->present) {
        if (inv->chain) inv->program->u.program.body.items[0]->u.block.close_strip = close_strip;
        b->u.block.inverse_strip = inv->strip;
        inverse = inv->program;
    }
    if (inverted) {
        ast_node *t = inverse;
        inverse = program;
        program = t;
    }
    b->u.block.path = c->path;
    b->u.block.params = to_list(&c->params);
    b->u.block.hash = c->hash;
    b->u.block.program = program;
    b->u.block.inverse = inverse;
    b->u.block.open_strip = strip_flags(&c->open, &c->close);
    b->u.block.close_strip = close_strip;
}

/* `{{else name ...}} program [chain]`: one link of an else-if chain; the lookahead is
 * OPEN_INVERSE_CHAIN. Produces the chained inverse program holding one block. */
static int parse_inverse_chain(parser *p, inverse_part *out) {
    call c = {0};
    c.open = p->la[0];
    int rc = enter(p, &c.open);
    if (rc) return rc;
    shift(p);
    if ((rc = parse_call(p, K_BLOCK, &c))) return rc;
    ast_node *program;
    if ((rc = parse_program(p, CTX_CHAIN, &program))) return rc;
    inverse_part sub;
    if ((rc = parse_inverse_part(p, true, &sub))) return rc;
    ast_node *b = new_node(p, AST_BLOCK, span(&c.open.loc, p));
    if (!b) return nomem(p);
    ast_strip cs = sub.present ? sub.strip : (ast_strip){false, false};
    prepare_block(b, program, &c, &sub, cs, false);
    nvec body = {0};
    if ((rc = nvec_push(p, &body, b))) return rc;
    ast_node *chained =
        make_program(p, &body, program->u.program.body.len ? &program->loc : &b->loc);
    if (!chained) return nomem(p);
    if (program->u.program.body.len) chained->loc = program->loc;
    chained->u.program.chained = true;
    out->present = true;
    out->chain = true;
    out->strip = strip_flags(&c.open, &c.close);
    out->program = chained;
    p->depth--;
    return MAILBARS_OK;
}

/* `{{#x}}`, `{{^x}}`, `{{#*x}}` blocks; the lookahead is the opener. */
static int parse_block(parser *p, ast_node **out) {
    call c = {0};
    c.open = p->la[0];
    bool inverted = c.open.type == TK_OPEN_INVERSE;
    bool decorator = !inverted && memchr(c.open.text, '*', c.open.len) != NULL;
    int rc = enter(p, &c.open);
    if (rc) return rc;
    shift(p);
    if ((rc = parse_call(p, K_BLOCK, &c))) return rc;
    ast_node *program;
    if ((rc = parse_program(p, inverted ? CTX_INVERSE : CTX_BLOCK, &program))) return rc;
    inverse_part inv;
    if ((rc = parse_inverse_part(p, !inverted, &inv))) return rc;
    ast_node *close_path;
    ast_strip close_strip;
    if ((rc = parse_close_block(p, &close_path, &close_strip))) return rc;
    jsval cv;
    original_of(close_path, &cv);
    if ((rc = validate_close(p, c.path, &cv))) return rc;
    if (decorator && inv.present)
        return mb_error(p->err, MAILBARS_ERR_PARSE, inv.at.line, inv.at.column + 1,
                        "Unexpected inverse block on decorator");
    ast_node *b = new_node(p, decorator ? AST_DECORATOR_BLOCK : AST_BLOCK, span(&c.open.loc, p));
    if (!b) return nomem(p);
    prepare_block(b, program, &c, &inv, close_strip, inverted);
    p->depth--;
    *out = b;
    return MAILBARS_OK;
}

/* `{{{{raw}}}} text {{{{/raw}}}}`; the lookahead is OPEN_RAW_BLOCK. */
static int parse_raw_block(parser *p, ast_node **out) {
    call c = {0};
    c.open = p->la[0];
    int rc = enter(p, &c.open);
    if (rc) return rc;
    shift(p);
    if ((rc = parse_call(p, K_RAW, &c))) return rc;
    nvec body = {0};
    for (;;) {
        /* after a content the LALR state is the shared one that reduces a statement */
        tmask ok = TB(TK_CONTENT) | TB(TK_END_RAW_BLOCK) | (body.len ? S_STMT_ALL : 0);
        if ((rc = fill(p, 1))) return rc;
        mb_tok_type t = p->la[0].type;
        if (!(TB(t) & ok) || (t != TK_CONTENT && t != TK_END_RAW_BLOCK)) return parse_error(p, ok);
        if (p->la[0].type == TK_END_RAW_BLOCK) break;
        mb_content_node *cn = mb_arena_alloc(p->a, sizeof *cn);
        if (!cn) return nomem(p);
        cn->node.type = AST_CONTENT;
        cn->node.loc = p->la[0].loc;
        if ((rc = mkstr(p, p->la[0].text, p->la[0].len, &cn->node.u.content.original))) return rc;
        cn->node.u.content.value = cn->node.u.content.original;
        if ((rc = nvec_push(p, &body, &cn->node))) return rc;
        shift(p);
    }
    mb_tok end = p->la[0];
    shift(p);
    if ((rc = fill(p, 1))) return rc;
    jsval cv = {0};
    cv.s = end.text;
    cv.len = end.len;
    if ((rc = validate_close(p, c.path, &cv))) return rc;
    ast_loc loc = span(&c.open.loc, p);
    ast_node *b = new_node(p, AST_BLOCK, loc);
    ast_node *prog = make_program(p, &body, NULL);
    if (!b || !prog) return nomem(p);
    prog->loc = loc;
    b->u.block.path = c.path;
    b->u.block.params = to_list(&c.params);
    b->u.block.hash = c.hash;
    b->u.block.program = prog;
    p->depth--;
    *out = b;
    return MAILBARS_OK;
}

/* `{{#> name}} ... {{/name}}`; the lookahead is OPEN_PARTIAL_BLOCK. */
static int parse_partial_block(parser *p, ast_node **out) {
    call c = {0};
    c.open = p->la[0];
    int rc = enter(p, &c.open);
    if (rc) return rc;
    shift(p);
    if ((rc = parse_call(p, K_PARTIAL, &c))) return rc;
    ast_node *program;
    if ((rc = parse_program(p, CTX_PARTIAL_BLOCK, &program))) return rc;
    ast_node *close_path;
    ast_strip close_strip;
    if ((rc = parse_close_block(p, &close_path, &close_strip))) return rc;
    jsval cv;
    original_of(close_path, &cv);
    if ((rc = validate_close(p, c.path, &cv))) return rc;
    ast_node *b = new_node(p, AST_PARTIAL_BLOCK, span(&c.open.loc, p));
    if (!b) return nomem(p);
    b->u.block.path = c.path;
    b->u.block.params = to_list(&c.params);
    b->u.block.hash = c.hash;
    b->u.block.program = program;
    b->u.block.open_strip = strip_flags(&c.open, &c.close);
    b->u.block.close_strip = close_strip;
    p->depth--;
    *out = b;
    return MAILBARS_OK;
}

/* `{{x}}`, `{{{x}}}`, `{{&x}}`, `{{*x}}`, `{{> x}}`; the lookahead is the opener. */
static int parse_mustache(parser *p, ast_node **out) {
    call c = {0};
    c.open = p->la[0];
    int kind = c.open.type == TK_OPEN_UNESCAPED ? K_UNESCAPED
               : c.open.type == TK_OPEN_PARTIAL ? K_PARTIAL
                                                : K_MUSTACHE;
    shift(p);
    int rc = parse_call(p, kind, &c);
    if (rc) return rc;
    if ((rc = fill(p, 1))) return rc;
    ast_loc loc = span(&c.open.loc, p);
    ast_node *n;
    if (kind == K_PARTIAL) {
        n = new_node(p, AST_PARTIAL, loc);
        if (!n) return nomem(p);
        n->u.partial.name = c.path;
        n->u.partial.params = to_list(&c.params);
        n->u.partial.hash = c.hash;
        n->u.partial.indent = (ast_str){"", 0};
        n->u.partial.strip = strip_flags(&c.open, &c.close);
    } else {
        bool decorator = memchr(c.open.text, '*', c.open.len) != NULL;
        n = new_node(p, decorator ? AST_DECORATOR : AST_MUSTACHE, loc);
        if (!n) return nomem(p);
        n->u.mustache.path = c.path;
        n->u.mustache.params = to_list(&c.params);
        n->u.mustache.hash = c.hash;
        char flag = c.open.len > 3 ? c.open.text[3] : c.open.len > 2 ? c.open.text[2] : 0;
        n->u.mustache.escaped = flag != '{' && flag != '&';
        n->u.mustache.strip = strip_flags(&c.open, &c.close);
    }
    *out = n;
    return MAILBARS_OK;
}

/* stripComment(): drops `{{`, `~`, `!`, up to two `-` in front and `-`,`-`,`~`,`}}` behind. */
static int make_comment(parser *p, const mb_tok *t, ast_node **out) {
    const char *s = t->text;
    size_t b = 2, e = t->len;
    if (b < e && s[b] == '~') b++;
    if (b < e && s[b] == '!') b++;
    for (int k = 0; k < 2 && b < e && s[b] == '-'; k++) b++;
    if (e - b >= 2 && s[e - 1] == '}' && s[e - 2] == '}') {
        e -= 2;
        if (e > b && s[e - 1] == '~') e--;
        for (int k = 0; k < 2 && e > b && s[e - 1] == '-'; k++) e--;
    }
    ast_node *n = new_node(p, AST_COMMENT, t->loc);
    if (!n) return nomem(p);
    int rc = mkstr(p, s + b, e - b, &n->u.comment.value);
    if (rc) return rc;
    n->u.comment.strip = strip_flags(t, t);
    *out = n;
    return MAILBARS_OK;
}

/* One statement; the lookahead is in S_STMT. */
static int parse_statement(parser *p, ast_node **out) {
    mb_tok t = p->la[0];
    int rc;
    switch (t.type) {
    case TK_CONTENT: {
        mb_content_node *cn = mb_arena_alloc(p->a, sizeof *cn);
        if (!cn) return nomem(p);
        cn->node.type = AST_CONTENT;
        cn->node.loc = t.loc;
        if ((rc = mkstr(p, t.text, t.len, &cn->node.u.content.original))) return rc;
        cn->node.u.content.value = cn->node.u.content.original;
        shift(p);
        *out = &cn->node;
        return MAILBARS_OK;
    }
    case TK_COMMENT:
        if ((rc = make_comment(p, &t, out))) return rc;
        shift(p);
        return MAILBARS_OK;
    case TK_OPEN_BLOCK:
    case TK_OPEN_INVERSE: return parse_block(p, out);
    case TK_OPEN_RAW_BLOCK: return parse_raw_block(p, out);
    case TK_OPEN_PARTIAL_BLOCK: return parse_partial_block(p, out);
    default: return parse_mustache(p, out);
    }
}

/* statement* up to a token that ends the program in context ctx. */
static int parse_program(parser *p, int ctx, ast_node **out) {
    nvec body = {0};
    int rc;
    bool last_content = false;
    for (;;) {
        if ((rc = fill(p, 1))) return rc;
        if (!(TB(p->la[0].type) & S_STMT)) break;
        ast_node *st = NULL;
        last_content = p->la[0].type == TK_CONTENT;
        if ((rc = parse_statement(p, &st))) return rc;
        if ((rc = nvec_push(p, &body, st))) return rc;
    }
    tmask t = TB(p->la[0].type);
    if (body.len == 0 && !(t & ctx_pre[ctx])) return parse_error(p, ctx_pre[ctx]);
    if (body.len > 0 && !(t & S_STMT_ALL))
        return parse_error(p, S_STMT_ALL | (last_content ? TB(TK_END_RAW_BLOCK) : 0));
    if (!(t & ctx_post[ctx])) return parse_error(p, ctx_post[ctx]);
    *out = make_program(p, &body, NULL);
    return *out ? MAILBARS_OK : nomem(p);
}

/* Handlebars.parse(): the grammar, then WhitespaceControl. */
ast_node *mb_parse(mb_arena *a, const char *src, size_t len, const mb_parse_opts *opts,
                   mailbars_error *err) {
    parser p;
    memset(&p, 0, sizeof p);
    p.a = a;
    p.err = err;
    mb_lexer_init(&p.lx, a, src, len);
    size_t max = opts ? opts->max_nesting : 0;
    p.max_depth = max == 0 || max > MB_PARSE_HARD_NESTING ? MB_PARSE_HARD_NESTING : max;
    ast_node *root;
    if (parse_program(&p, CTX_ROOT, &root)) return NULL;
    if (mb_whitespace_control(a, root, opts && opts->ignore_standalone)) {
        mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    return root;
}
