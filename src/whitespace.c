/* Whitespace control as handlebars.js 4.7's compiler/whitespace-control.js does it: `~` strips
 * the whitespace next to a tag, and blocks, else tags, comments, partials and decorators that
 * stand alone on a line take that line's indentation and line break with them. Content nodes
 * keep their `original`; only `value` changes. */
#include "lexer.h"

typedef struct wsc {
    mb_arena *a;
    bool ignore_standalone;
    bool root_seen;
    int status;
} wsc;

/* What a statement tells the enclosing program (handlebars.js's `strip` result). */
typedef struct wstrip {
    bool valid;
    bool open, close;
    bool open_standalone, close_standalone, inline_standalone;
} wstrip;

/* body[i] as a content node, or NULL (also when i is out of range). */
static mb_content_node *content_at(const ast_list *body, long i) {
    if (i < 0 || (size_t)i >= body->len) return NULL;
    ast_node *n = body->items[i];
    return n->type == AST_CONTENT ? (mb_content_node *)n : NULL;
}

/* Does the run of trailing whitespace of s contain a \n? (/(?:^|\S)[^\S\n]*\n\s*$/) With
 * whole_ok, an all-whitespace string also qualifies (/^\s*$/). */
static bool trailing_ws_newline(const ast_str *s, bool whole_ok) {
    size_t end = s->len, n;
    bool nl = false;
    while ((n = mb_js_space_before(s->s, end)) != 0) {
        if (s->s[end - 1] == '\n') nl = true;
        end -= n;
    }
    return nl || (whole_ok && end == 0);
}

/* Does the leading whitespace of s contain a \n? (/^\s*?\r?\n/) With whole_ok, an
 * all-whitespace string also qualifies (/^\s*?(\r?\n|$)/). */
static bool leading_ws_newline(const ast_str *s, bool whole_ok) {
    size_t i = 0, n;
    while ((n = mb_js_space_at(s->s, i, s->len)) != 0) {
        if (s->s[i] == '\n') return true;
        i += n;
    }
    return whole_ok && i == s->len;
}

/* isPrevWhitespace(body, i, isRoot); i == -1 stands for "undefined" (the end of body). */
static bool is_prev_ws(const ast_list *body, long i, bool is_root) {
    if (i < 0) i = (long)body->len;
    if (i - 1 < 0) return is_root;
    mb_content_node *prev = content_at(body, i - 1);
    if (!prev) return false;
    bool sibling = i - 2 >= 0;
    return trailing_ws_newline(&prev->node.u.content.original, !(sibling || !is_root));
}

/* isNextWhitespace(body, i, isRoot); i == -2 stands for "undefined" (before the start). */
static bool is_next_ws(const ast_list *body, long i, bool is_root) {
    if (i == -2) i = -1;
    if ((size_t)(i + 1) >= body->len) return is_root;
    mb_content_node *next = content_at(body, i + 1);
    if (!next) return false;
    bool sibling = (size_t)(i + 2) < body->len;
    return leading_ws_newline(&next->node.u.content.original, !(sibling || !is_root));
}

/* omitRight(body, i, multiple): strips the start of the content after position i (the first
 * node when i == -2): all whitespace, or (single) spaces/tabs and one line break. */
static void omit_right(const ast_list *body, long i, bool multiple) {
    mb_content_node *c = content_at(body, i == -2 ? 0 : i + 1);
    if (!c || (!multiple && c->right_stripped)) return;
    ast_str *v = &c->node.u.content.value;
    size_t k = 0, n;
    if (multiple) {
        while ((n = mb_js_space_at(v->s, k, v->len)) != 0) k += n;
    } else {
        while (k < v->len && (v->s[k] == ' ' || v->s[k] == '\t')) k++;
        if (k < v->len && v->s[k] == '\r') k++;
        if (k < v->len && v->s[k] == '\n') k++;
    }
    v->s += k;
    v->len -= k;
    c->right_stripped = k > 0;
}

/* omitLeft(body, i, multiple): strips the end of the content before position i (the last node
 * when i == -1): all whitespace, or (single) trailing spaces/tabs. Returns leftStripped. */
static bool omit_left(wsc *w, const ast_list *body, long i, bool multiple) {
    mb_content_node *c = content_at(body, i == -1 ? (long)body->len - 1 : i - 1);
    if (!c || (!multiple && c->left_stripped)) return false;
    ast_str *v = &c->node.u.content.value;
    size_t end = v->len, n;
    if (multiple) {
        while ((n = mb_js_space_before(v->s, end)) != 0) end -= n;
    } else {
        while (end > 0 && (v->s[end - 1] == ' ' || v->s[end - 1] == '\t')) end--;
    }
    c->left_stripped = end != v->len;
    if (c->left_stripped) {
        char *d = mb_arena_strndup(w->a, v->s, end);
        if (!d) {
            w->status = MAILBARS_ERR_NOMEM;
            return false;
        }
        v->s = d;
        v->len = end;
    }
    return c->left_stripped;
}

static wstrip visit_block(wsc *w, ast_node *block);

/* WhitespaceControl.prototype.Program. */
static void visit_program(wsc *w, ast_node *program) {
    if (!program) return;
    bool do_standalone = !w->ignore_standalone;
    bool is_root = !w->root_seen;
    w->root_seen = true;
    const ast_list *body = &program->u.program.body;
    for (long i = 0; (size_t)i < body->len; i++) {
        ast_node *cur = body->items[i];
        wstrip s = {0};
        switch (cur->type) {
        case AST_MUSTACHE:
        case AST_DECORATOR:
            s.valid = true;
            s.open = cur->u.mustache.strip.open;
            s.close = cur->u.mustache.strip.close;
            break;
        case AST_PARTIAL:
            s.valid = s.inline_standalone = true;
            s.open = cur->u.partial.strip.open;
            s.close = cur->u.partial.strip.close;
            break;
        case AST_COMMENT:
            s.valid = s.inline_standalone = true;
            s.open = cur->u.comment.strip.open;
            s.close = cur->u.comment.strip.close;
            break;
        case AST_BLOCK:
        case AST_DECORATOR_BLOCK:
        case AST_PARTIAL_BLOCK: s = visit_block(w, cur); break;
        default: break;
        }
        if (!s.valid) continue;
        bool prev_ws = is_prev_ws(body, i, is_root), next_ws = is_next_ws(body, i, is_root);
        bool open_sa = s.open_standalone && prev_ws;
        bool close_sa = s.close_standalone && next_ws;
        bool inline_sa = s.inline_standalone && prev_ws && next_ws;
        if (s.close) omit_right(body, i, true);
        if (s.open) omit_left(w, body, i, true);
        if (do_standalone && inline_sa) {
            omit_right(body, i, false);
            if (omit_left(w, body, i, false) && cur->type == AST_PARTIAL) {
                const ast_str *o = &body->items[i - 1]->u.content.original;
                size_t e = o->len;
                while (e > 0 && (o->s[e - 1] == ' ' || o->s[e - 1] == '\t')) e--;
                cur->u.partial.indent.s = o->s + e;
                cur->u.partial.indent.len = o->len - e;
            }
        }
        if (do_standalone && open_sa) {
            ast_node *pr = cur->u.block.program ? cur->u.block.program : cur->u.block.inverse;
            omit_right(&pr->u.program.body, -2, false);
            omit_left(w, body, i, false);
        }
        if (do_standalone && close_sa) {
            omit_right(body, i, false);
            ast_node *pr = cur->u.block.inverse ? cur->u.block.inverse : cur->u.block.program;
            omit_left(w, &pr->u.program.body, -1, false);
        }
    }
}

/* WhitespaceControl.prototype.BlockStatement (also DecoratorBlock, PartialBlockStatement). */
static wstrip visit_block(wsc *w, ast_node *block) {
    visit_program(w, block->u.block.program);
    visit_program(w, block->u.block.inverse);
    ast_node *program = block->u.block.program ? block->u.block.program : block->u.block.inverse;
    ast_node *inverse = block->u.block.program ? block->u.block.inverse : NULL;
    ast_node *first_inv = inverse, *last_inv = inverse;
    if (inverse && inverse->u.program.chained) {
        first_inv = inverse->u.program.body.items[0]->u.block.program;
        /* handlebars.js walks `.program` here, so this stops at the first link */
        while (last_inv->u.program.chained) {
            const ast_list *lb = &last_inv->u.program.body;
            last_inv = lb->items[lb->len - 1]->u.block.program;
        }
    }
    const ast_list *pb = &program->u.program.body;
    wstrip s = {0};
    s.valid = true;
    s.open = block->u.block.open_strip.open;
    s.close = block->u.block.close_strip.close;
    s.open_standalone = is_next_ws(pb, -2, false);
    s.close_standalone = is_prev_ws(first_inv ? &first_inv->u.program.body : pb, -1, false);
    if (block->u.block.open_strip.close) omit_right(pb, -2, true);
    if (inverse) {
        ast_strip is = block->u.block.inverse_strip;
        if (is.open) omit_left(w, pb, -1, true);
        if (is.close) omit_right(&first_inv->u.program.body, -2, true);
        if (block->u.block.close_strip.open) omit_left(w, &last_inv->u.program.body, -1, true);
        if (!w->ignore_standalone && is_prev_ws(pb, -1, false) &&
            is_next_ws(&first_inv->u.program.body, -2, false)) {
            omit_left(w, pb, -1, false);
            omit_right(&first_inv->u.program.body, -2, false);
        }
    } else if (block->u.block.close_strip.open) {
        omit_left(w, pb, -1, true);
    }
    return s;
}

/* Runs the visitor over the root program (the first program visited is the root). */
int mb_whitespace_control(mb_arena *a, ast_node *root, bool ignore_standalone) {
    wsc w = {a, ignore_standalone, false, MAILBARS_OK};
    visit_program(&w, root);
    return w.status;
}
