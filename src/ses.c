/* SES layer: template sets (subject, text, HTML compiled separately), SES data semantics
 * (TemplateData strings, deep merge, limits), requests (TestRenderTemplate, SendTemplatedEmail,
 * SendBulkTemplatedEmail, SES v2 SendEmail / SendBulkEmail), rendering into a MIME message,
 * and `check`, a linter that reports every problem with its position in the JSON file. */
#include "internal.h"
#include "program.h"
#include "ses_internal.h"
#include "jsonread.h"
#include <stdio.h>
#include <stdlib.h>

static const char *const k_part_names[3] = {"subject", "text", "html"};

struct mailbars_ses_template {
    char *name;
    char *src[3]; /* NUL-terminated copies, NULL for an absent part */
    size_t len[3];
    mailbars_template *tpl[3];
    mailbars_env *env;
    mailbars_ses_options opts; /* opts.limits is NULL: the copy is `limits` */
    mailbars_render_ctx limits;
    mb_jr_rootkey warm[32]; /* the root keys the parts read (mb_jr_warm), if nwarm > 0 */
    size_t nwarm;
};

struct mailbars_ses_render_state {
    mailbars_render_state *rs;
    mailbars_buf out[3];
    uint8_t utf8_known[3]; /* out[i] is valid UTF-8 by its sources (mb_render_utf8_known) */
};

/* ---------------------------------------------------------------------------------------------
 * Small utilities
 * ------------------------------------------------------------------------------------------- */

/* Copies an error's fields and tags it with a part name. */
static int tag_part(mailbars_error *err, const char *part) {
    if (err) snprintf(err->part, sizeof err->part, "%s", part ? part : "");
    return err ? err->code : MAILBARS_ERR_INTERNAL;
}

/* Number of UTF-8 code points in s[0..len) (continuation bytes are not counted). */
size_t mb_ses_utf8_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

/* The options a NULL pointer stands for. */
static mailbars_ses_options opts_or_default(const mailbars_ses_options *o) {
    mailbars_ses_options d;
    memset(&d, 0, sizeof d);
    return o ? *o : d;
}

/* The limits of a set of options: a copy, so that nothing keeps the borrowed pointer. */
static mailbars_render_ctx limits_of(const mailbars_ses_options *o) {
    return o && o->limits ? *o->limits : *mb_default_render_ctx();
}

int mailbars_ses_check_name(const char *name, mailbars_error *err) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > MAILBARS_SES_MAX_NAME_LEN)
        return mb_error(err, MAILBARS_ERR_SES_LIMIT, 0, 0,
                        "TemplateName must be 1 to 64 characters long (got %zu)", n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return mb_error(err, MAILBARS_ERR_SES_LIMIT, 0, 0,
                            "TemplateName '%s' may only contain letters, digits, '_' and '-' "
                            "(character %zu is not allowed)",
                            name, i + 1);
    }
    return MAILBARS_OK;
}

/* jansson reports the column of the last character of the offending token; move it to the
 * token's first character (the token is quoted in the text: "... near 'TOKEN'"). */
void mb_ses_json_error_start(const json_error_t *je, int *line, int *col) {
    *line = je->line > 0 ? je->line : 0;
    *col = je->column > 0 ? je->column : 0;
    const char *near = strstr(je->text, "near '");
    if (!near || *col <= 0) return;
    const char *tok = near + 6;
    const char *end = strrchr(tok, '\'');
    if (!end || end <= tok) return;
    int chars = (int)mb_ses_utf8_chars(tok, (size_t)(end - tok));
    if (chars > 1 && *col - (chars - 1) >= 1) *col -= chars - 1;
}

/* Parses JSON text within the JSON limits; on failure fills err with the limit's code or
 * MAILBARS_ERR_JSON and jansson's position. */
json_t *mailbars_json_parse(const char *s, size_t len, const char *what,
                            const mailbars_render_ctx *limits, mailbars_error *err) {
    json_error_t je;
    mailbars_error_clear(err);
    if (mb_json_check_limits(s, len, what, limits, err)) {
        tag_part(err, "");
        return NULL;
    }
    json_t *v = json_loadb(s, len, JSON_ALLOW_NUL, &je);
    if (!v) {
        int line, col;
        mb_ses_json_error_start(&je, &line, &col);
        if (what)
            mb_error(err, MAILBARS_ERR_JSON, line, col, "%s: line %d, column %d: %s", what, line,
                     col, je.text);
        else
            mb_error(err, MAILBARS_ERR_JSON, line, col, "invalid JSON at line %d, column %d: %s",
                     line, col, je.text);
        tag_part(err, "");
    }
    return v;
}

json_t *mailbars_ses_parse_data(const char *s, size_t len, const char *what,
                                const mailbars_render_ctx *limits, mailbars_error *err) {
    if (!what) what = "TemplateData";
    size_t chars = mb_ses_utf8_chars(s, len);
    if (chars > MAILBARS_SES_MAX_DATA_CHARS) {
        mb_error(err, MAILBARS_ERR_SES_LIMIT, 0, 0,
                 "%s is %zu characters long; SES allows at most %u", what, chars,
                 MAILBARS_SES_MAX_DATA_CHARS);
        tag_part(err, "");
        return NULL;
    }
    json_t *v = mailbars_json_parse(s, len, what, limits, err);
    if (!v) return NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s must be a JSON object", what);
        tag_part(err, "");
        return NULL;
    }
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * Deep merge
 * ------------------------------------------------------------------------------------------- */

json_t *mailbars_ses_merge(json_t *defaults, json_t *replacement) {
    if (!replacement && !defaults) return json_object();
    if (!replacement) return json_incref(defaults);
    if (!defaults || !json_is_object(defaults) || !json_is_object(replacement))
        return json_incref(replacement);
    json_t *out = json_object();
    if (!out) return NULL;
    const char *k;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(defaults, k, klen, v) {
        if (json_object_setn(out, k, klen, v)) goto fail;
    }
    json_object_keylen_foreach(replacement, k, klen, v) {
        json_t *d = json_object_getn(out, k, klen);
        if (d && json_is_object(d) && json_is_object(v)) {
            json_t *m = mailbars_ses_merge(d, v);
            if (!m || json_object_setn_new(out, k, klen, m)) goto fail;
        } else if (json_object_setn(out, k, klen, v)) {
            goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Template sets
 * ------------------------------------------------------------------------------------------- */

/* The compile context for a profile: SES = no escaping (unless asked), missing values fail,
 * only built-in helpers, SES placeholders copied through. */
static mailbars_compile_ctx *make_cctx(const mailbars_ses_options *o) {
    mailbars_compile_ctx *c = mailbars_compile_ctx_new();
    if (!c) return NULL;
    if (o->profile == MAILBARS_PROFILE_HANDLEBARS) return c;
    unsigned flags = MAILBARS_MISSING_IS_ERROR | MAILBARS_KNOWN_HELPERS_ONLY;
    if (!o->escape) flags |= MAILBARS_NO_ESCAPE;
    mailbars_compile_ctx_set_flags(c, flags);
    if (mailbars_compile_ctx_add_passthrough(c, "amazonSESUnsubscribeUrl") ||
        mailbars_compile_ctx_add_passthrough(c, "ses:openTracker")) {
        mailbars_compile_ctx_free(c);
        return NULL;
    }
    return c;
}

void mailbars_ses_template_free(mailbars_ses_template *t) {
    if (!t) return;
    for (int i = 0; i < 3; i++) {
        mailbars_template_free(t->tpl[i]);
        mb_free(t->src[i]);
    }
    mailbars_env_free(t->env);
    mb_free(t->name);
    mb_free(t);
}

const char *mailbars_ses_template_name(const mailbars_ses_template *t) {
    return t && t->name ? t->name : "";
}

/* The part source (for check and tests); NULL when absent. */
const char *mb_ses_template_part(const mailbars_ses_template *t, int part, size_t *len) {
    if (len) *len = t->len[part];
    return t->src[part];
}

/* Adds k to the template's root keys to warm; 0 when there is no room. */
static int warm_add(mailbars_ses_template *t, const char *k, size_t len) {
    for (size_t i = 0; i < t->nwarm; i++)
        if (t->warm[i].len == len && !memcmp(t->warm[i].key, k, len)) return 1;
    if (t->nwarm == sizeof t->warm / sizeof *t->warm) return 0;
    t->warm[t->nwarm++] = (mb_jr_rootkey){k, len};
    return 1;
}

/* The keys of the data's root that the parts may read, for mb_jr_warm: the first key of every
 * context path and of every @root path, wherever it is (a key read inside a loop is only
 * warmed for nothing). A path to `this` itself (which a helper or `with` could read any key
 * of), or more keys than there is room for, leaves the list empty: everything is warmed. A
 * custom helper or a registered partial may still read keys not listed; they are just not
 * warmed. */
static void warm_keys(mailbars_ses_template *t) {
    t->nwarm = 0;
    for (int i = 0; i < 3; i++) {
        const mailbars_template *tp = t->tpl[i];
        for (uint32_t j = 0; tp && j < tp->npaths; j++) {
            const mb_path *p = &tp->paths[j];
            int ok = 1;
            if (p->kind == PATH_THIS || (p->kind == PATH_CTX && !p->nparts))
                ok = 0;
            else if (p->kind == PATH_CTX)
                ok = warm_add(t, p->parts[0].key, p->parts[0].len);
            else if (p->kind == PATH_DATA && p->nparts >= 2 && p->parts[0].len == 4 &&
                     !memcmp(p->parts[0].key, "root", 4))
                ok = warm_add(t, p->parts[1].key, p->parts[1].len);
            if (!ok) {
                t->nwarm = 0;
                return;
            }
        }
    }
}

mailbars_ses_template *mailbars_ses_template_new(const char *name, const char *subject,
                                                 const char *text, const char *html,
                                                 const mailbars_ses_options *opts,
                                                 mailbars_error *err) {
    mailbars_error_clear(err);
    if (!text && !html) {
        mb_error(err, MAILBARS_ERR_SES_INVALID_TEMPLATE, 0, 0,
                 "the template has neither a text part nor an HTML part");
        return NULL;
    }
    const char *srcs[3] = {subject ? subject : "", text, html};
    size_t total = 0;
    for (int i = 0; i < 3; i++) total += srcs[i] ? strlen(srcs[i]) : 0;
    if (total > MAILBARS_SES_MAX_TEMPLATE_BYTES) {
        mb_error(err, MAILBARS_ERR_SES_LIMIT, 0, 0,
                 "the template is %zu bytes (subject, text and HTML); SES allows at most "
                 "500 KB (%u bytes)",
                 total, MAILBARS_SES_MAX_TEMPLATE_BYTES);
        return NULL;
    }
    mailbars_ses_template *t = mb_calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->opts = opts_or_default(opts);
    t->opts.limits = NULL;
    t->limits = limits_of(opts);
    t->name = mb_strndup(name ? name : "", name ? strlen(name) : 0);
    t->env = mailbars_env_new();
    if (!t->name || !t->env) goto nomem;
    if (t->opts.profile == MAILBARS_PROFILE_SES) {
        /* SES rejects unknown helpers and undefined partials when the template is stored; the
         * linter finds them (the engine alone would only fail at render time). Parse errors are
         * left to the compiler, which reports them with the same text. */
        int rc = mb_ses_lint_first_error(srcs, err);
        if (rc) {
            mailbars_ses_template_free(t);
            return NULL;
        }
    }
    mailbars_compile_ctx *cctx = make_cctx(&t->opts);
    if (!cctx) goto nomem;
    mailbars_compile_ctx_set_limit(cctx, MAILBARS_LIMIT_TEMPLATE_SIZE,
                                   t->limits.limits[MAILBARS_LIMIT_TEMPLATE_SIZE]);
    mailbars_compile_ctx_set_limit(cctx, MAILBARS_LIMIT_NESTING,
                                   t->limits.limits[MAILBARS_LIMIT_NESTING]);
    for (int i = 0; i < 3; i++) {
        if (!srcs[i]) continue;
        t->len[i] = strlen(srcs[i]);
        t->src[i] = mb_strndup(srcs[i], t->len[i]);
        if (!t->src[i]) {
            mailbars_compile_ctx_free(cctx);
            goto nomem;
        }
        t->tpl[i] = mailbars_compile(t->env, t->src[i], t->len[i], cctx, err);
        if (!t->tpl[i]) {
            tag_part(err, k_part_names[i]);
            mailbars_compile_ctx_free(cctx);
            mailbars_ses_template_free(t);
            return NULL;
        }
    }
    mailbars_compile_ctx_free(cctx);
    warm_keys(t);
    return t;
nomem:
    mailbars_ses_template_free(t);
    mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    return NULL;
}

/* Reads an optional string member; a non-string (other than null) is a shape error. */
static int get_str(json_t *obj, const char *key, const char *prefix, const char **out,
                   mailbars_error *err) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return MAILBARS_OK;
    if (!json_is_string(v))
        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s%s must be a string", prefix, key);
    *out = json_string_value(v);
    return MAILBARS_OK;
}

/* Finds where the template parts live in a parsed JSON value (any accepted shape). */
int mb_ses_locate(json_t *root, mb_ses_shape *sh, mailbars_error *err) {
    memset(sh, 0, sizeof *sh);
    if (!json_is_object(root))
        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                        "expected a JSON object holding an SES template");
    json_t *inner = json_object_get(root, "Template");
    json_t *content = json_object_get(root, "TemplateContent");
    static const char *v1keys[3] = {"SubjectPart", "TextPart", "HtmlPart"};
    static const char *v2keys[3] = {"Subject", "Text", "Html"};
    if (inner && json_is_object(inner)) {
        sh->obj = inner;
        sh->name_obj = inner;
        sh->prefix = "Template.";
        sh->path[0] = "Template";
        sh->depth = 1;
        sh->keys = v1keys;
    } else if (content) {
        if (!json_is_object(content))
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                            "TemplateContent must be an object with Subject, Text and Html");
        sh->obj = content;
        sh->name_obj = root;
        sh->prefix = "TemplateContent.";
        sh->path[0] = "TemplateContent";
        sh->depth = 1;
        sh->keys = v2keys;
        sh->v2 = 1;
    } else if (json_object_get(root, "SubjectPart") || json_object_get(root, "TextPart") ||
               json_object_get(root, "HtmlPart")) {
        sh->obj = root;
        sh->name_obj = root;
        sh->prefix = "";
        sh->keys = v1keys;
    } else if (json_object_get(root, "Subject") || json_object_get(root, "Text") ||
               json_object_get(root, "Html")) {
        sh->obj = root; /* bare inline TemplateContent */
        sh->name_obj = root;
        sh->prefix = "";
        sh->keys = v2keys;
        sh->v2 = 1;
    } else {
        json_t *dc = json_object_get(json_object_get(root, "DefaultContent"), "Template");
        json_t *ct = json_object_get(json_object_get(root, "Content"), "Template");
        json_t *tc = json_object_get(dc ? dc : ct, "TemplateContent");
        if (json_is_object(tc)) { /* SES v2 request with an inline template */
            sh->obj = tc;
            sh->name_obj = dc ? dc : ct;
            sh->prefix = dc ? "DefaultContent.Template.TemplateContent."
                            : "Content.Template.TemplateContent.";
            sh->path[0] = dc ? "DefaultContent" : "Content";
            sh->path[1] = "Template";
            sh->path[2] = "TemplateContent";
            sh->depth = 3;
            sh->keys = v2keys;
            sh->v2 = 1;
            sh->inline_request = 1;
        } else if (inner) {
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                            "Template must be an object (this looks like a request naming the "
                            "template; pass the template itself)");
        } else {
            return mb_error(
                err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                "no SES template found: expected {\"Template\":{\"TemplateName\",\"SubjectPart\","
                "\"TextPart\",\"HtmlPart\"}}, its inner object, or {\"TemplateName\","
                "\"TemplateContent\":{\"Subject\",\"Text\",\"Html\"}}");
        }
    }
    json_t *nv = json_object_get(sh->name_obj, "TemplateName");
    if (nv && !json_is_null(nv)) {
        if (!json_is_string(nv))
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%sTemplateName must be a string",
                            sh->obj == sh->name_obj ? sh->prefix : "");
        sh->name = json_string_value(nv);
    }
    for (int i = 0; i < 3; i++) {
        int rc = get_str(sh->obj, sh->keys[i], sh->prefix, &sh->part[i], err);
        if (rc) return rc;
    }
    return MAILBARS_OK;
}

mailbars_ses_template *mailbars_ses_template_from_json(json_t *root,
                                                       const mailbars_ses_options *opts,
                                                       mailbars_error *err) {
    mailbars_error_clear(err);
    mb_ses_shape sh;
    if (mb_ses_locate(root, &sh, err)) return NULL;
    if (sh.name && mailbars_ses_check_name(sh.name, err)) return NULL;
    if (!sh.part[1] && !sh.part[2]) {
        mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s%s or %s%s is required", sh.prefix,
                 sh.keys[1], sh.prefix, sh.keys[2]);
        return NULL;
    }
    return mailbars_ses_template_new(sh.name, sh.part[0], sh.part[1], sh.part[2], opts, err);
}

mailbars_ses_template *mailbars_ses_template_parse(const char *json, size_t len,
                                                   const mailbars_ses_options *opts,
                                                   mailbars_error *err) {
    mailbars_error_clear(err);
    json_t *root = mailbars_json_parse(json, len, NULL, opts ? opts->limits : NULL, err);
    if (!root) return NULL;
    mailbars_ses_template *t = mailbars_ses_template_from_json(root, opts, err);
    json_decref(root);
    return t;
}

const mailbars_render_ctx *mb_ses_template_limits(const mailbars_ses_template *t) {
    return &t->limits;
}

/* ---------------------------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------------------------- */

mailbars_ses_render_state *mailbars_ses_render_state_new(void) {
    mailbars_ses_render_state *st = mb_calloc(1, sizeof *st);
    if (!st) return NULL;
    st->rs = mailbars_render_state_new(NULL);
    if (!st->rs) {
        mb_free(st);
        return NULL;
    }
    return st;
}

void mailbars_ses_render_state_free(mailbars_ses_render_state *st) {
    if (!st) return;
    mailbars_render_state_free(st->rs);
    for (int i = 0; i < 3; i++) mailbars_buf_free(&st->out[i]);
    mb_free(st);
}

int mailbars_ses_render_parts(mailbars_ses_render_state *st, const mailbars_ses_template *t,
                              json_t *data, const char **subject, size_t *subject_len,
                              const char **text, size_t *text_len, const char **html,
                              size_t *html_len, mailbars_error *err) {
    const char **outs[3] = {subject, text, html};
    size_t *lens[3] = {subject_len, text_len, html_len};
    mailbars_error_clear(err);
    for (int i = 0; i < 3; i++) {
        if (outs[i]) *outs[i] = NULL;
        if (lens[i]) *lens[i] = 0;
    }
    mb_jr_warm(data, t->nwarm ? t->warm : NULL, t->nwarm); /* ask for it all at once */
    /* Render order is SES's: subject, text, HTML; the first failure stops. */
    for (int i = 0; i < 3; i++) {
        if (!t->tpl[i]) continue;
        mailbars_buf_reset(&st->out[i]);
        mb_render_state_set_limits(st->rs, &t->limits);
        int rc = mailbars_render_buf(st->rs, t->tpl[i], data, NULL, &st->out[i], err);
        if (rc) {
            tag_part(err, k_part_names[i]);
            return rc;
        }
        if (!st->out[i].data && mailbars_buf_append(&st->out[i], "", 0))
            return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        st->utf8_known[i] = (uint8_t)mb_render_utf8_known(st->rs, t->tpl[i]);
        if (outs[i]) *outs[i] = st->out[i].data;
        if (lens[i]) *lens[i] = st->out[i].len;
    }
    return MAILBARS_OK;
}

/* Three steps, one per render, so that no step waits on memory: the data three renders ahead
 * has its root's header asked for, the one two ahead its root's bucket array, and the next one
 * is warmed (its whole stretch asked for, found from that bucket array). */
void mailbars_ses_prefetch(const mailbars_ses_template *t, json_t *const *upcoming, size_t n) {
    if (!t || !upcoming || !n) return;
    mb_jr_init();
    if (n > 2) mb_jr_ahead(upcoming[2], 2);
    if (n > 1) mb_jr_ahead(upcoming[1], 1);
    mb_jr_warm(upcoming[0], t->nwarm ? t->warm : NULL, t->nwarm);
}

int mailbars_ses_render(mailbars_ses_render_state *st, const mailbars_ses_template *t, json_t *data,
                        mailbars_message *msg, mailbars_error *err) {
    const char *s, *tx, *h;
    size_t sl;
    int rc = mailbars_ses_render_parts(st, t, data, &s, &sl, &tx, NULL, &h, NULL, err);
    if (rc) return rc;
    /* A header cannot carry a raw line break: a CR or LF that data put into the subject
     * becomes a space (our choice, see docs/ses.md), so it can never start a new header. */
    if (s) {
        for (size_t i = 0; i < sl; i++)
            if (st->out[0].data[i] == '\r' || st->out[0].data[i] == '\n') st->out[0].data[i] = ' ';
        rc = mailbars_message_set_subject(msg, s, sl, err);
        if (rc) {
            tag_part(err, "subject");
            return rc;
        }
    }
    /* The bodies are handed over, not copied: st->out[1] and [2] are rendered into afresh. */
    if (tx && (rc = mb_message_take_part(msg, 0, &st->out[1], st->utf8_known[1], err))) {
        tag_part(err, "text");
        return rc;
    }
    if (h && (rc = mb_message_take_part(msg, 1, &st->out[2], st->utf8_known[2], err))) {
        tag_part(err, "html");
        return rc;
    }
    return MAILBARS_OK;
}

json_t *mailbars_ses_failure_record(const mailbars_ses_template *t, const mailbars_error *err) {
    return json_pack("{s:s, s:s}", "templateName", mailbars_ses_template_name(t), "errorMessage",
                     err && err->message[0] ? err->message : "rendering failed");
}

/* ---------------------------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------------------------- */

typedef struct req_dest {
    json_t *to, *cc, *bcc;
    const char *repl; /* ReplacementTemplateData string or NULL */
    size_t repl_len;
    json_t *repl_obj; /* or an already parsed object (TestRender/SendTemplated: NULL) */
} req_dest;

struct mailbars_ses_request {
    mailbars_ses_request_kind kind;
    json_t *root;
    const char *template_name;
    const char *source;
    json_t *reply_to;
    json_t *inline_tpl;
    json_t *defaults; /* parsed DefaultTemplateData / TemplateData, or NULL */
    req_dest *dests;
    size_t n;
    const char *repl_field;     /* "Destinations[%zu].ReplacementTemplateData" style name */
    mailbars_render_ctx limits; /* the options' limits, for each destination's data */
};

void mailbars_ses_request_free(mailbars_ses_request *r) {
    if (!r) return;
    json_decref(r->defaults);
    json_decref(r->root);
    mb_free(r->dests);
    mb_free(r);
}

mailbars_ses_request_kind mailbars_ses_request_kind_of(const mailbars_ses_request *r) {
    return r->kind;
}
const char *mailbars_ses_request_template_name(const mailbars_ses_request *r) {
    return r->template_name ? r->template_name : "";
}
const char *mailbars_ses_request_source(const mailbars_ses_request *r) {
    return r->source;
}
json_t *mailbars_ses_request_reply_to(const mailbars_ses_request *r) {
    return r->reply_to;
}
json_t *mailbars_ses_request_inline_template(const mailbars_ses_request *r) {
    return r->inline_tpl;
}
size_t mailbars_ses_request_count(const mailbars_ses_request *r) {
    return r->n;
}

/* Checks that `v` (if present) is an array of strings; names the field otherwise. */
static int check_addr_list(json_t *v, const char *field, mailbars_error *err) {
    if (!v || json_is_null(v)) return MAILBARS_OK;
    size_t i;
    json_t *e;
    if (!json_is_array(v))
        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s must be an array of strings", field);
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s[%zu] must be a string", field,
                            i);
    }
    return MAILBARS_OK;
}

/* Reads a Destination object {ToAddresses, CcAddresses, BccAddresses} into d. */
static int read_destination(json_t *dst, const char *field, req_dest *d, mailbars_error *err) {
    char name[160];
    if (!dst || json_is_null(dst)) return MAILBARS_OK;
    if (!json_is_object(dst))
        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s must be an object", field);
    static const char *keys[3] = {"ToAddresses", "CcAddresses", "BccAddresses"};
    json_t **outs[3] = {&d->to, &d->cc, &d->bcc};
    for (int k = 0; k < 3; k++) {
        json_t *v = json_object_get(dst, keys[k]);
        snprintf(name, sizeof name, "%s.%s", field, keys[k]);
        if (check_addr_list(v, name, err)) return err ? err->code : MAILBARS_ERR_SES_SHAPE;
        *outs[k] = json_is_array(v) ? v : NULL;
    }
    return MAILBARS_OK;
}

/* Reads an optional JSON-string data member (TemplateData, DefaultTemplateData...). */
static int read_data_string(const mailbars_ses_request *r, json_t *obj, const char *key,
                            const char *field, json_t **out, mailbars_error *err) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return MAILBARS_OK;
    if (!json_is_string(v))
        return mb_error(
            err, MAILBARS_ERR_SES_SHAPE, 0, 0,
            "%s must be a string holding JSON (e.g. \"{\\\"name\\\":\\\"Alejandro\\\"}\")", field);
    *out = mailbars_ses_parse_data(json_string_value(v), json_string_length(v), field, &r->limits,
                                   err);
    return *out ? MAILBARS_OK : err ? err->code : MAILBARS_ERR_JSON;
}

/* Fills a request from its parsed root (kind detected from its fields). */
static int read_request(mailbars_ses_request *r, const mailbars_ses_options *o,
                        mailbars_error *warning, mailbars_error *err) {
    json_t *root = r->root;
    char field[160];
    if (!json_is_object(root))
        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "a request must be a JSON object");
    json_t *dests = json_object_get(root, "Destinations");
    json_t *entries = json_object_get(root, "BulkEmailEntries");
    json_t *v2tpl = NULL;
    if (entries || json_object_get(root, "DefaultContent") || json_object_get(root, "Content") ||
        json_object_get(root, "FromEmailAddress")) {
        /* SES v2: SendBulkEmail or SendEmail with Content.Template */
        json_t *dc = json_object_get(root, entries ? "DefaultContent" : "Content");
        const char *dcname = entries ? "DefaultContent" : "Content";
        if (!json_is_object(dc))
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s must be an object", dcname);
        v2tpl = json_object_get(dc, "Template");
        if (!json_is_object(v2tpl))
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s.Template must be an object",
                            dcname);
        snprintf(field, sizeof field, "%s.Template.", dcname);
        if (get_str(v2tpl, "TemplateName", field, &r->template_name, err)) return err->code;
        json_t *tc = json_object_get(v2tpl, "TemplateContent");
        if (tc && !json_is_object(tc))
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                            "%s.Template.TemplateContent must be an object", dcname);
        r->inline_tpl = tc;
        snprintf(field, sizeof field, "%s.Template.TemplateData", dcname);
        if (read_data_string(r, v2tpl, "TemplateData", field, &r->defaults, err)) return err->code;
        if (get_str(root, "FromEmailAddress", "", &r->source, err)) return err->code;
        r->reply_to = json_object_get(root, "ReplyToAddresses");
        if (check_addr_list(r->reply_to, "ReplyToAddresses", err)) return err->code;
        if (entries) {
            r->kind = MAILBARS_REQ_SEND_BULK_V2;
            if (!json_is_array(entries))
                return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                                "BulkEmailEntries must be an array");
            r->n = json_array_size(entries);
            r->dests = mb_calloc(r->n ? r->n : 1, sizeof *r->dests);
            if (!r->dests) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
            r->repl_field = "BulkEmailEntries[%zu].ReplacementEmailContent.ReplacementTemplate."
                            "ReplacementTemplateData";
            for (size_t i = 0; i < r->n; i++) {
                json_t *e = json_array_get(entries, i);
                snprintf(field, sizeof field, "BulkEmailEntries[%zu]", i);
                if (!json_is_object(e))
                    return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s must be an object",
                                    field);
                snprintf(field, sizeof field, "BulkEmailEntries[%zu].Destination", i);
                if (read_destination(json_object_get(e, "Destination"), field, &r->dests[i], err))
                    return err->code;
                json_t *rt =
                    json_object_get(json_object_get(json_object_get(e, "ReplacementEmailContent"),
                                                    "ReplacementTemplate"),
                                    "ReplacementTemplateData");
                if (rt && !json_is_null(rt)) {
                    if (!json_is_string(rt))
                        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                                        "BulkEmailEntries[%zu].ReplacementEmailContent."
                                        "ReplacementTemplate.ReplacementTemplateData must be a "
                                        "string holding JSON",
                                        i);
                    r->dests[i].repl = json_string_value(rt);
                    r->dests[i].repl_len = json_string_length(rt);
                }
            }
        } else {
            r->kind = MAILBARS_REQ_SEND_TEMPLATED;
            r->n = 1;
            r->dests = mb_calloc(1, sizeof *r->dests);
            if (!r->dests) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
            if (read_destination(json_object_get(root, "Destination"), "Destination", &r->dests[0],
                                 err))
                return err->code;
        }
    } else if (dests) {
        r->kind = MAILBARS_REQ_SEND_BULK_TEMPLATED;
        if (get_str(root, "Template", "", &r->template_name, err)) return err->code;
        if (get_str(root, "Source", "", &r->source, err)) return err->code;
        r->reply_to = json_object_get(root, "ReplyToAddresses");
        if (check_addr_list(r->reply_to, "ReplyToAddresses", err)) return err->code;
        if (read_data_string(r, root, "DefaultTemplateData", "DefaultTemplateData", &r->defaults,
                             err))
            return err->code;
        if (!json_is_array(dests))
            return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "Destinations must be an array");
        r->n = json_array_size(dests);
        r->dests = mb_calloc(r->n ? r->n : 1, sizeof *r->dests);
        if (!r->dests) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        r->repl_field = "Destinations[%zu].ReplacementTemplateData";
        for (size_t i = 0; i < r->n; i++) {
            json_t *e = json_array_get(dests, i);
            snprintf(field, sizeof field, "Destinations[%zu]", i);
            if (!json_is_object(e))
                return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0, "%s must be an object", field);
            snprintf(field, sizeof field, "Destinations[%zu].Destination", i);
            if (read_destination(json_object_get(e, "Destination"), field, &r->dests[i], err))
                return err->code;
            json_t *rt = json_object_get(e, "ReplacementTemplateData");
            if (rt && !json_is_null(rt)) {
                if (!json_is_string(rt))
                    return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                                    "Destinations[%zu].ReplacementTemplateData must be a string "
                                    "holding JSON",
                                    i);
                r->dests[i].repl = json_string_value(rt);
                r->dests[i].repl_len = json_string_length(rt);
            }
        }
        if (r->n > MAILBARS_SES_MAX_DESTINATIONS) {
            mailbars_error *w = o->strict_limits ? err : warning;
            mb_error(w, MAILBARS_ERR_SES_LIMIT, 0, 0,
                     "the request has %zu destinations; SendBulkTemplatedEmail accepts at most "
                     "%u",
                     r->n, MAILBARS_SES_MAX_DESTINATIONS);
            if (o->strict_limits) return MAILBARS_ERR_SES_LIMIT;
        }
    } else if (json_object_get(root, "TemplateData") || json_object_get(root, "Destination") ||
               json_object_get(root, "Source")) {
        int send = json_object_get(root, "Destination") || json_object_get(root, "Source");
        r->kind = send ? MAILBARS_REQ_SEND_TEMPLATED : MAILBARS_REQ_TEST_RENDER;
        if (get_str(root, send ? "Template" : "TemplateName", "", &r->template_name, err)) {
            /* a TestRenderTemplate file may also carry the template itself */
            if (!send || !json_is_object(json_object_get(root, "Template"))) return err->code;
            mailbars_error_clear(err);
        }
        if (!r->template_name && !send) {
            json_t *in = json_object_get(root, "Template");
            if (json_is_object(in))
                r->template_name = json_string_value(json_object_get(in, "TemplateName"));
        }
        if (get_str(root, "Source", "", &r->source, err)) return err->code;
        r->reply_to = json_object_get(root, "ReplyToAddresses");
        if (check_addr_list(r->reply_to, "ReplyToAddresses", err)) return err->code;
        if (read_data_string(r, root, "TemplateData", "TemplateData", &r->defaults, err))
            return err->code;
        r->n = 1;
        r->dests = mb_calloc(1, sizeof *r->dests);
        if (!r->dests) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        if (read_destination(json_object_get(root, "Destination"), "Destination", &r->dests[0],
                             err))
            return err->code;
    } else {
        return mb_error(err, MAILBARS_ERR_SES_SHAPE, 0, 0,
                        "not an SES request: expected TestRenderTemplate (TemplateData), "
                        "SendTemplatedEmail (Destination), SendBulkTemplatedEmail (Destinations) "
                        "or SES v2 SendBulkEmail (BulkEmailEntries)");
    }
    return MAILBARS_OK;
}

mailbars_ses_request *mailbars_ses_request_parse(const char *json, size_t len,
                                                 const mailbars_ses_options *opts,
                                                 mailbars_error *warning, mailbars_error *err) {
    mailbars_ses_options o = opts_or_default(opts);
    mailbars_error_clear(err);
    mailbars_error_clear(warning);
    mailbars_ses_request *r = mb_calloc(1, sizeof *r);
    if (!r) {
        mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
        return NULL;
    }
    r->limits = limits_of(opts);
    r->root = mailbars_json_parse(json, len, NULL, &r->limits, err);
    if (!r->root || read_request(r, &o, warning, err)) {
        tag_part(err, "");
        mailbars_ses_request_free(r);
        return NULL;
    }
    return r;
}

json_t *mb_ses_request_defaults(const mailbars_ses_request *r) {
    return r->defaults;
}

int mb_ses_request_entry(const mailbars_ses_request *r, size_t i, mailbars_ses_destination *out,
                         json_t **repl, mailbars_error *err) {
    memset(out, 0, sizeof *out);
    *repl = NULL;
    if (i >= r->n) return mb_error(err, MAILBARS_ERR_ARGUMENT, 0, 0, "no destination %zu", i);
    const req_dest *d = &r->dests[i];
    out->to = d->to;
    out->cc = d->cc;
    out->bcc = d->bcc;
    if (d->repl) {
        char field[200];
        snprintf(field, sizeof field, r->repl_field, i);
        *repl = mailbars_ses_parse_data(d->repl, d->repl_len, field, &r->limits, err);
        if (!*repl) return err ? err->code : MAILBARS_ERR_JSON;
    }
    return MAILBARS_OK;
}

int mailbars_ses_request_destination(const mailbars_ses_request *r, size_t i,
                                     mailbars_ses_destination *out, mailbars_error *err) {
    json_t *repl;
    int rc = mb_ses_request_entry(r, i, out, &repl, err);
    if (rc) return rc;
    out->data = mailbars_ses_merge(r->defaults, repl);
    json_decref(repl);
    if (!out->data) return mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, NULL);
    return MAILBARS_OK;
}

/* ---------------------------------------------------------------------------------------------
 * check: a linter over the parts' ASTs, with positions mapped back into the JSON file
 * ------------------------------------------------------------------------------------------- */

#include "ast.h"

#define LINT_MAX_DIAGS 1000
#define LINT_MAX_DEFS 64
#define LINT_MAX_EACH 50 /* array elements of the sample visited per #each */
#define LINT_MAX_PARTIAL_DEPTH 8

static const char *const k_builtins[] = {"if", "unless", "each", "with", "lookup", "log"};

typedef enum { R_PRESENT, R_MISSING, R_UNKNOWN } res_kind;

/* A context frame while walking with sample data. `ctx` NULL with known=0: unknown. */
typedef struct lint_frame {
    json_t *ctx;
    int known;
    const ast_str *bp; /* block param names bound here */
    size_t nbp;
    json_t *bpv[2]; /* their values (NULL = present but unknown, e.g. @index) */
    int bpknown[2];
    int pushes; /* 1 when this frame changed the context (counts for ../) */
    struct lint_frame *parent;
} lint_frame;

typedef struct lint {
    mailbars_ses_diags *out;
    const char *const *srcs;
    ast_node *ast[3];
    int part;
    /* inline partial definitions per part */
    const char *def_name[3][LINT_MAX_DEFS];
    ast_node *def_body[3][LINT_MAX_DEFS];
    size_t ndefs[3];
    int part_errors[3];
    int tracker_count;
    int inline_v2; /* SES v2 inline template: only {{name}} is allowed */
    int v2_reported[3];
    json_t *root; /* sample data or NULL */
    int partial_depth;
    int nomem;
} lint;

void mailbars_ses_diags_free(mailbars_ses_diags *d) {
    if (!d) return;
    for (size_t i = 0; i < d->len; i++) mb_free(d->items[i].source_line);
    mb_free(d->items);
    d->items = NULL;
    d->len = d->cap = 0;
}

size_t mailbars_ses_diags_errors(const mailbars_ses_diags *d) {
    size_t n = 0;
    for (size_t i = 0; i < d->len; i++) n += d->items[i].severity == MAILBARS_SEV_ERROR;
    return n;
}

/* Appends a diagnostic unless an identical one (same part, position and text) exists. */
static int diag_add(mailbars_ses_diags *d, mailbars_severity sev, int code, const char *part,
                    int line, int col, const char *msg) {
    for (size_t i = 0; i < d->len; i++) {
        mailbars_ses_diag *x = &d->items[i];
        if (x->line == line && x->column == col && !strcmp(x->part, part) &&
            !strcmp(x->message, msg)) {
            if (sev == MAILBARS_SEV_ERROR) x->severity = sev;
            return MAILBARS_OK;
        }
    }
    if (d->len >= LINT_MAX_DIAGS) return MAILBARS_OK;
    if (d->len == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        mailbars_ses_diag *n = mb_realloc(d->items, cap * sizeof *n);
        if (!n) return MAILBARS_ERR_NOMEM;
        d->items = n;
        d->cap = cap;
    }
    mailbars_ses_diag *x = &d->items[d->len++];
    memset(x, 0, sizeof *x);
    x->severity = sev;
    x->code = code;
    snprintf(x->part, sizeof x->part, "%s", part);
    x->line = line;
    x->column = col;
    snprintf(x->message, sizeof x->message, "%s", msg);
    return MAILBARS_OK;
}

/* Reports a problem at an AST position (loc: line 1-based, column 0-based). */
static void lint_report(lint *L, mailbars_severity sev, int code, const ast_loc *loc,
                        const char *fmt, ...) MB_PRINTF(5, 6);
static void lint_report(lint *L, mailbars_severity sev, int code, const ast_loc *loc,
                        const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (sev == MAILBARS_SEV_ERROR) L->part_errors[L->part]++;
    if (diag_add(L->out, sev, code, k_part_names[L->part], loc ? loc->line : 0,
                 loc ? loc->column + 1 : 0, msg))
        L->nomem = 1;
}

static int is_builtin(const char *name) {
    for (size_t i = 0; i < sizeof k_builtins / sizeof *k_builtins; i++)
        if (!strcmp(name, k_builtins[i])) return 1;
    return 0;
}

/* The helper name a call node names ("" when it is not a simple name). */
static const char *call_name(const ast_node *path) {
    if (!path) return "";
    if (path->type == AST_PATH) return path->u.path.original.s;
    if (path->type == AST_STRING) return path->u.string.value.s;
    return "";
}

/* A simple helper candidate: one segment, not @data, not this./../ scoped. */
static int is_simple_id(const ast_node *p) {
    return p && p->type == AST_PATH && !p->u.path.data && !p->u.path.scoped &&
           p->u.path.depth == 0 && p->u.path.n_parts == 1;
}

/* Checks a call (mustache/block/subexpression with params or hash) names a built-in. */
static void lint_call(lint *L, const ast_node *path, const ast_loc *loc, const char *kind) {
    const char *name = call_name(path);
    if (is_simple_id(path) || (path && path->type == AST_STRING)) {
        if (!is_builtin(name))
            lint_report(L, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_INVALID_TEMPLATE, loc,
                        "unknown helper '%s' in %s: SES provides only the built-in helpers "
                        "(if, unless, each, with, lookup, log)",
                        name, kind);
    } else {
        lint_report(L, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_INVALID_TEMPLATE, loc,
                    "'%s' is called with parameters but is not a helper: SES provides only the "
                    "built-in helpers (if, unless, each, with, lookup, log)",
                    name);
    }
}

/* Finds an inline partial definition in part p. */
static ast_node *lint_find_def(lint *L, int p, const char *name, int *found) {
    for (size_t i = 0; i < L->ndefs[p]; i++)
        if (!strcmp(L->def_name[p][i], name)) {
            *found = 1;
            return L->def_body[p][i];
        }
    *found = 0;
    return NULL;
}

/* Collects {{#* inline "name"}} definitions anywhere in a part. */
static void collect_defs(lint *L, int p, const ast_node *n) {
    if (!n) return;
    switch (n->type) {
    case AST_PROGRAM:
        for (size_t i = 0; i < n->u.program.body.len; i++)
            collect_defs(L, p, n->u.program.body.items[i]);
        break;
    case AST_BLOCK:
    case AST_PARTIAL_BLOCK:
        collect_defs(L, p, n->u.block.program);
        collect_defs(L, p, n->u.block.inverse);
        break;
    case AST_DECORATOR_BLOCK:
        if (n->u.block.path && n->u.block.path->type == AST_PATH &&
            !strcmp(n->u.block.path->u.path.original.s, "inline") && n->u.block.params.len >= 1 &&
            n->u.block.params.items[0]->type == AST_STRING && L->ndefs[p] < LINT_MAX_DEFS) {
            L->def_name[p][L->ndefs[p]] = n->u.block.params.items[0]->u.string.value.s;
            L->def_body[p][L->ndefs[p]++] = n->u.block.program;
        }
        collect_defs(L, p, n->u.block.program);
        break;
    default: break;
    }
}

/* Looks a path up in the sample from frame f. *v receives the value when present. */
static res_kind lint_resolve(lint *L, const lint_frame *f, const ast_node *path, json_t **v) {
    *v = NULL;
    if (!path || path->type != AST_PATH) return R_UNKNOWN;
    size_t start = 0;
    json_t *cur;
    if (path->u.path.data) {
        if (path->u.path.n_parts == 0 || strcmp(path->u.path.parts[0].s, "root")) return R_UNKNOWN;
        cur = L->root;
        start = 1;
    } else {
        const lint_frame *g = f;
        int found_bp = 0;
        if (!path->u.path.scoped && path->u.path.depth == 0 && path->u.path.n_parts > 0) {
            for (const lint_frame *h = f; h && !found_bp; h = h->parent)
                for (size_t i = 0; i < h->nbp && i < 2; i++)
                    if (!strcmp(h->bp[i].s, path->u.path.parts[0].s)) {
                        if (!h->bpknown[i]) return R_UNKNOWN;
                        cur = h->bpv[i];
                        start = 1;
                        found_bp = 1;
                        break;
                    }
        }
        if (!found_bp) {
            for (int d = path->u.path.depth; d > 0 && g; d--) {
                g = g->parent;
                while (g && !g->pushes && g->parent) g = g->parent;
            }
            if (!g || !g->known) return R_UNKNOWN;
            cur = g->ctx;
        }
    }
    for (size_t i = start; i < path->u.path.n_parts; i++) {
        if (!json_is_object(cur)) return R_MISSING;
        cur = json_object_getn(cur, path->u.path.parts[i].s, path->u.path.parts[i].len);
    }
    if (!cur || json_is_null(cur)) return R_MISSING;
    *v = cur;
    return R_PRESENT;
}

static void lint_walk(lint *L, const ast_node *n, lint_frame *f, int live);

/* Reports a missing attribute found with the sample. */
static void lint_missing(lint *L, const ast_node *path, const ast_loc *loc, int output, int live) {
    if (output)
        lint_report(L, live ? MAILBARS_SEV_ERROR : MAILBARS_SEV_WARNING, MAILBARS_ERR_MISSING_VALUE,
                    loc, "Attribute '%s' is not present in the rendering data.%s",
                    path->u.path.original.s,
                    live ? "" : " (in a branch the sample data does not render)");
    else
        lint_report(L, MAILBARS_SEV_WARNING, MAILBARS_ERR_MISSING_VALUE, loc,
                    "attribute '%s' is not present in the sample data (treated as false/empty)",
                    path->u.path.original.s);
}

/* Walks a program with a new context frame. */
static void lint_with_ctx(lint *L, const ast_node *prog, lint_frame *parent, json_t *ctx, int known,
                          const ast_node *blk, json_t *bp0, int bp0known, int live) {
    lint_frame f;
    memset(&f, 0, sizeof f);
    f.ctx = ctx;
    f.known = known;
    f.pushes = 1;
    f.parent = parent;
    if (prog && prog->type == AST_PROGRAM && prog->u.program.n_block_params) {
        f.bp = prog->u.program.block_params;
        f.nbp = prog->u.program.n_block_params;
        f.bpv[0] = bp0;
        f.bpknown[0] = bp0known;
        f.bpknown[1] = 0;
    }
    (void)blk;
    lint_walk(L, prog, &f, live);
}

/* Iterates a sample array/object for #each or a section, walking the body per element. */
static void lint_iterate(lint *L, const ast_node *blk, json_t *v, lint_frame *f, int live) {
    const ast_node *prog = blk->u.block.program;
    size_t count = 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (count++ >= LINT_MAX_EACH) break;
            lint_with_ctx(L, prog, f, e, 1, blk, e, 1, live);
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            if (count++ >= LINT_MAX_EACH) break;
            lint_with_ctx(L, prog, f, e, 1, blk, e, 1, live);
        }
    }
    if (count == 0) {
        lint_walk(L, blk->u.block.inverse, f, live);
        lint_with_ctx(L, prog, f, NULL, 0, blk, NULL, 0, 0);
    } else {
        lint_walk(L, blk->u.block.inverse, f, 0);
    }
}

/* Walks params, hash values and subexpressions for helper checks. */
static void lint_args(lint *L, const ast_list *params, const ast_node *hash, lint_frame *f) {
    for (size_t i = 0; i < params->len; i++) lint_walk(L, params->items[i], f, 0);
    if (hash)
        for (size_t i = 0; i < hash->u.hash.len; i++) lint_walk(L, hash->u.hash.values[i], f, 0);
}

/* An SES v2 inline template allows only content and {{name}} mustaches. */
static void lint_v2(lint *L, const ast_node *n) {
    if (!L->inline_v2 || L->v2_reported[L->part]) return;
    L->v2_reported[L->part] = 1;
    lint_report(L, MAILBARS_SEV_WARNING, MAILBARS_ERR_SES_INVALID_TEMPLATE, &n->loc,
                "SES v2 inline templates support only simple {{name}} substitutions; SES rejects "
                "this one with \"unsupported operations\"");
}

static void lint_block(lint *L, const ast_node *n, lint_frame *f, int live) {
    const ast_node *path = n->u.block.path;
    const char *name = call_name(path);
    int has_args = n->u.block.params.len > 0 || n->u.block.hash;
    lint_v2(L, n);
    if (has_args) lint_call(L, path, &n->loc, "a block");
    lint_args(L, &n->u.block.params, n->u.block.hash, f);
    const ast_node *arg0 = n->u.block.params.len ? n->u.block.params.items[0] : NULL;
    json_t *v = NULL;
    res_kind r = R_UNKNOWN;
    if (!L->root || !f || !f->known) {
        /* no sample: structure checks only */
        lint_walk(L, n->u.block.program, NULL, 0);
        lint_walk(L, n->u.block.inverse, NULL, 0);
        return;
    }
    if (has_args && is_simple_id(path) && is_builtin(name)) {
        if (arg0 && arg0->type == AST_PATH) {
            r = lint_resolve(L, f, arg0, &v);
            if (r == R_MISSING) lint_missing(L, arg0, &arg0->loc, 0, live);
        } else if (arg0) {
            r = R_UNKNOWN;
        }
        int truthy = r == R_PRESENT && mailbars_value_is_truthy(v);
        if (!strcmp(name, "if") || !strcmp(name, "unless")) {
            int take = !strcmp(name, "if") ? truthy : !truthy;
            int known = r != R_UNKNOWN;
            lint_walk(L, n->u.block.program, f, live && (!known || take));
            lint_walk(L, n->u.block.inverse, f, live && (!known || !take));
        } else if (!strcmp(name, "each")) {
            if (r == R_UNKNOWN) {
                lint_with_ctx(L, n->u.block.program, f, NULL, 0, n, NULL, 0, live);
                lint_walk(L, n->u.block.inverse, f, live);
            } else {
                lint_iterate(L, n, truthy ? v : NULL, f, live);
            }
        } else if (!strcmp(name, "with")) {
            if (r == R_UNKNOWN || truthy)
                lint_with_ctx(L, n->u.block.program, f, v, r == R_PRESENT, n, v, r == R_PRESENT,
                              live);
            else
                lint_with_ctx(L, n->u.block.program, f, NULL, 0, n, NULL, 0, 0);
            lint_walk(L, n->u.block.inverse, f, live && !(r == R_PRESENT && truthy));
        } else {
            lint_walk(L, n->u.block.program, f, live);
            lint_walk(L, n->u.block.inverse, f, live);
        }
        return;
    }
    if (has_args) { /* an invalid helper: already reported; walk without data */
        lint_walk(L, n->u.block.program, NULL, 0);
        lint_walk(L, n->u.block.inverse, NULL, 0);
        return;
    }
    /* a section over data: {{#x}} / {{^x}} */
    r = lint_resolve(L, f, path, &v);
    if (r == R_MISSING) lint_missing(L, path, &path->loc, 0, live);
    if (r == R_UNKNOWN) {
        lint_with_ctx(L, n->u.block.program, f, NULL, 0, n, NULL, 0, live);
        lint_walk(L, n->u.block.inverse, f, live);
    } else if (json_is_array(v)) {
        lint_iterate(L, n, v, f, live);
    } else if (r == R_PRESENT && mailbars_value_is_truthy(v)) {
        if (json_is_object(v) || !json_is_true(v))
            lint_with_ctx(L, n->u.block.program, f, v, 1, n, v, 1, live);
        else
            lint_walk(L, n->u.block.program, f, live);
        lint_walk(L, n->u.block.inverse, f, 0);
    } else {
        lint_with_ctx(L, n->u.block.program, f, NULL, 0, n, NULL, 0, 0);
        lint_walk(L, n->u.block.inverse, f, live);
    }
}

/* Walks one node: helper, partial and decorator checks, and sample checks when f is known. */
static void lint_walk(lint *L, const ast_node *n, lint_frame *f, int live) {
    if (!n || L->nomem) return;
    switch (n->type) {
    case AST_PROGRAM:
        for (size_t i = 0; i < n->u.program.body.len; i++)
            lint_walk(L, n->u.program.body.items[i], f, live);
        break;
    case AST_MUSTACHE: {
        const ast_node *path = n->u.mustache.path;
        int has_args = n->u.mustache.params.len > 0 || n->u.mustache.hash;
        const char *name = call_name(path);
        if (path && path->type == AST_PATH && !strcmp(path->u.path.original.s, "ses:openTracker") &&
            !has_args) {
            if (++L->tracker_count == 2)
                lint_report(L, MAILBARS_SEV_WARNING, MAILBARS_ERR_SES_INVALID_TEMPLATE, &n->loc,
                            "{{ses:openTracker}} appears more than once; SES inserts one open "
                            "tracking pixel");
            break;
        }
        if (path && path->type == AST_PATH &&
            !strcmp(path->u.path.original.s, "amazonSESUnsubscribeUrl") && !has_args)
            break;
        if (has_args || path->type != AST_PATH || path->u.path.data || path->u.path.depth ||
            path->u.path.n_parts != 1 || path->u.path.scoped)
            lint_v2(L, n);
        if (has_args) {
            lint_call(L, path, &n->loc, "a mustache");
            lint_args(L, &n->u.mustache.params, n->u.mustache.hash, f);
            break;
        }
        if (is_simple_id(path) && is_builtin(name)) break;
        if (L->root && f && f->known && path->type == AST_PATH) {
            json_t *v;
            if (lint_resolve(L, f, path, &v) == R_MISSING) lint_missing(L, path, &n->loc, 1, live);
        }
        break;
    }
    case AST_SUBEXPR:
        lint_v2(L, n);
        lint_call(L, n->u.sexpr.path, &n->loc, "a subexpression");
        lint_args(L, &n->u.sexpr.params, n->u.sexpr.hash, f);
        break;
    case AST_BLOCK: lint_block(L, n, f, live); break;
    case AST_PARTIAL:
    case AST_PARTIAL_BLOCK: {
        const ast_node *nm = n->type == AST_PARTIAL ? n->u.partial.name : n->u.block.path;
        lint_v2(L, n);
        if (!nm || nm->type == AST_SUBEXPR) {
            lint_report(L, MAILBARS_SEV_WARNING, MAILBARS_ERR_SES_INVALID_TEMPLATE, &n->loc,
                        "a dynamic partial cannot be checked; SES has no registered partials");
            if (nm) lint_walk(L, nm, f, 0);
            break;
        }
        const char *name = call_name(nm);
        if (nm->type == AST_PATH && nm->u.path.data) break; /* @partial-block */
        int found = 0;
        ast_node *body = lint_find_def(L, L->part, name, &found);
        if (!found && n->type == AST_PARTIAL) {
            int other = -1;
            for (int p = 0; p < 3 && other < 0; p++) {
                int fo = 0;
                if (p != L->part) lint_find_def(L, p, name, &fo);
                if (fo) other = p;
            }
            if (other >= 0)
                lint_report(L, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_INVALID_TEMPLATE, &n->loc,
                            "partial '%s' is defined in the %s part, not in this part: inline "
                            "partials are scoped to the part that defines them",
                            name, k_part_names[other]);
            else
                lint_report(L, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_INVALID_TEMPLATE, &n->loc,
                            "partial '%s' is not defined: SES templates can only use inline "
                            "partials ({{#* inline \"%s\"}}…{{/inline}}) defined in the same part",
                            name, name);
        }
        if (n->type == AST_PARTIAL_BLOCK) {
            lint_walk(L, n->u.block.program, f, found ? 0 : live);
        }
        /* walk the partial's body where it is used, so sample checks see its context */
        if (found && body && L->root && f && L->partial_depth < LINT_MAX_PARTIAL_DEPTH) {
            lint_frame pf;
            lint_frame *use = f;
            const ast_list *params =
                n->type == AST_PARTIAL ? &n->u.partial.params : &n->u.block.params;
            if (params->len == 1) {
                json_t *v = NULL;
                res_kind r = lint_resolve(L, f, params->items[0], &v);
                memset(&pf, 0, sizeof pf);
                pf.ctx = v;
                pf.known = r == R_PRESENT;
                pf.pushes = 1;
                pf.parent = f;
                use = &pf;
            }
            const ast_node *hash = n->type == AST_PARTIAL ? n->u.partial.hash : n->u.block.hash;
            if (!hash) {
                L->partial_depth++;
                lint_walk(L, body, use, live);
                L->partial_depth--;
            }
        }
        break;
    }
    case AST_DECORATOR_BLOCK:
        lint_v2(L, n);
        if (!(n->u.block.path && n->u.block.path->type == AST_PATH &&
              !strcmp(n->u.block.path->u.path.original.s, "inline"))) {
            lint_report(L, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_INVALID_TEMPLATE, &n->loc,
                        "decorator '%s' is not supported: only {{#* inline}} partials are",
                        call_name(n->u.block.path));
        } else if (n->u.block.params.len < 1 || n->u.block.params.items[0]->type != AST_STRING) {
            lint_report(L, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_INVALID_TEMPLATE, &n->loc,
                        "an inline partial needs a quoted name: {{#* inline \"name\"}}");
        }
        /* the body is checked for structure here; with data, where it is used */
        lint_walk(L, n->u.block.program, NULL, 0);
        break;
    case AST_DECORATOR:
        lint_v2(L, n);
        lint_report(L, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_INVALID_TEMPLATE, &n->loc,
                    "decorator '%s' is not supported", call_name(n->u.mustache.path));
        break;
    default: break;
    }
}

/* handlebars.js parse errors span lines ("Parse error on line 2:\n{{#if}}\n-----^\n
 * Expecting ..."); a diagnostic quotes the line itself, so keep "Parse error: Expecting ...". */
static void shorten_parse_message(char *msg, size_t cap) {
    if (strncmp(msg, "Parse error on line", 19) || !strchr(msg, '\n')) return;
    const char *last = strrchr(msg, '\n') + 1;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "Parse error: %s", last);
    snprintf(msg, cap, "%s", tmp);
}

/* Parses the present parts into ASTs (arena per part); parse errors become diagnostics. */
static void lint_parse_all(lint *L, mb_arena *arenas, const char *const srcs[3]) {
    for (int p = 0; p < 3; p++) {
        L->ast[p] = NULL;
        if (!srcs[p]) continue;
        mailbars_error e;
        mailbars_error_clear(&e);
        mb_parse_opts po;
        memset(&po, 0, sizeof po);
        L->ast[p] = mb_parse(&arenas[p], srcs[p], strlen(srcs[p]), &po, &e);
        if (!L->ast[p]) {
            if (e.code == MAILBARS_ERR_NOMEM) L->nomem = 1;
            L->part_errors[p]++;
            shorten_parse_message(e.message, sizeof e.message);
            if (diag_add(L->out, MAILBARS_SEV_ERROR, e.code ? e.code : MAILBARS_ERR_PARSE,
                         k_part_names[p], e.line, e.column, e.message))
                L->nomem = 1;
            continue;
        }
        collect_defs(L, p, L->ast[p]);
    }
}

/* Runs the structure checks (and sample checks when L->root) on every parsed part. */
static void lint_run(lint *L) {
    for (int p = 0; p < 3; p++) {
        if (!L->ast[p]) continue;
        L->part = p;
        lint_frame root;
        memset(&root, 0, sizeof root);
        root.ctx = L->root;
        root.known = L->root != NULL;
        root.pushes = 1;
        lint_walk(L, L->ast[p], L->root ? &root : NULL, 1);
    }
}

int mb_ses_lint_first_error(const char *const srcs[3], mailbars_error *err) {
    mailbars_ses_diags d = {0};
    lint L;
    mb_arena arenas[3];
    memset(&L, 0, sizeof L);
    L.out = &d;
    L.srcs = srcs;
    for (int p = 0; p < 3; p++) mb_arena_init(&arenas[p]);
    lint_parse_all(&L, arenas, srcs);
    lint_run(&L);
    int rc = L.nomem ? MAILBARS_ERR_NOMEM : MAILBARS_OK;
    if (rc) mb_error(err, rc, 0, 0, NULL);
    for (size_t i = 0; !rc && i < d.len; i++) {
        mailbars_ses_diag *x = &d.items[i];
        if (x->severity != MAILBARS_SEV_ERROR || x->code == MAILBARS_ERR_PARSE ||
            x->code == MAILBARS_ERR_NOMEM)
            continue;
        rc = mb_error(err, x->code, x->line, x->column, "%s", x->message);
        tag_part(err, x->part);
    }
    for (int p = 0; p < 3; p++) mb_arena_free(&arenas[p]);
    mailbars_ses_diags_free(&d);
    return rc;
}

/* ---- positions: from a part's text back into the JSON file ---- */

typedef struct jscan {
    const char *s;
    size_t len, pos;
    const char *const *path; /* keys to the target string value */
    int depth;
    long found; /* offset of the opening quote of the target value, or -1 */
} jscan;

static void js_ws(jscan *j) {
    while (j->pos < j->len && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                               j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

/* Skips a JSON string, copying its raw bytes (escapes kept) into key when given. */
static void js_string(jscan *j, char *key, size_t cap) {
    size_t k = 0;
    j->pos++; /* opening quote */
    while (j->pos < j->len && j->s[j->pos] != '"') {
        char c = j->s[j->pos];
        if (c == '\\') {
            if (key && k + 2 < cap) key[k++] = c, key[k++] = j->s[j->pos + 1];
            j->pos += 2;
            continue;
        }
        if (key && k + 1 < cap) key[k++] = c;
        j->pos++;
    }
    j->pos++;
    if (key) key[k] = 0;
}

/* Walks one value; `matching` says the keys so far follow the target path to `level`. */
static void js_value(jscan *j, int level, int matching) {
    if (level > 64) return;
    js_ws(j);
    if (j->pos >= j->len) return;
    char c = j->s[j->pos];
    if (c == '{') {
        j->pos++;
        for (;;) {
            js_ws(j);
            if (j->pos >= j->len || j->s[j->pos] == '}') break;
            char key[128];
            js_string(j, key, sizeof key);
            js_ws(j);
            if (j->pos < j->len && j->s[j->pos] == ':') j->pos++;
            js_ws(j);
            int m = matching && level < j->depth && !strcmp(key, j->path[level]);
            if (m && level + 1 == j->depth && j->pos < j->len && j->s[j->pos] == '"')
                j->found = (long)j->pos;
            js_value(j, level + 1, m);
            js_ws(j);
            if (j->pos < j->len && j->s[j->pos] == ',') j->pos++;
        }
        j->pos++;
    } else if (c == '[') {
        j->pos++;
        for (;;) {
            js_ws(j);
            if (j->pos >= j->len || j->s[j->pos] == ']') break;
            js_value(j, level + 1, 0);
            js_ws(j);
            if (j->pos < j->len && j->s[j->pos] == ',') j->pos++;
        }
        j->pos++;
    } else if (c == '"') {
        js_string(j, NULL, 0);
    } else {
        while (j->pos < j->len && !strchr(",]} \t\r\n", j->s[j->pos])) j->pos++;
    }
}

/* Offset of the opening quote of the string at `path` in JSON text, or -1. */
static long json_find_string(const char *s, size_t len, const char *const *path, int depth) {
    jscan j = {s, len, 0, path, depth, -1};
    js_value(&j, 0, 1);
    return j.found;
}

/* Parses 4 hex digits. */
static unsigned hex4(const char *p) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
    }
    return v;
}

/* Maps a byte offset in a decoded JSON string (whose opening quote is at q) to an offset in
 * the raw text. */
static size_t json_raw_offset(const char *s, size_t len, size_t q, size_t target) {
    size_t p = q + 1, d = 0;
    while (p < len && s[p] != '"' && d < target) {
        if (s[p] != '\\') {
            p++, d++;
            continue;
        }
        if (p + 1 < len && s[p + 1] == 'u' && p + 5 < len) {
            unsigned cp = hex4(s + p + 2);
            size_t adv = 6;
            if (cp >= 0xD800 && cp < 0xDC00 && p + 11 < len && s[p + 6] == '\\' &&
                s[p + 7] == 'u') {
                cp = 0x10000;
                adv = 12;
            }
            d += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            p += adv;
        } else {
            p += 2, d++;
        }
    }
    return p;
}

/* 1-based line and column (in characters) of a byte offset in text. */
static void text_pos(const char *s, size_t off, int *line, int *col) {
    int l = 1;
    size_t ls = 0;
    for (size_t i = 0; i < off; i++)
        if (s[i] == '\n') l++, ls = i + 1;
    *line = l;
    *col = (int)mb_ses_utf8_chars(s + ls, off - ls) + 1;
}

/* Byte offset of (line, column) in a part's text, clamped to the line; *ls and *le receive the
 * line's bounds. Positions are the parser's, as jison counts them: lines end at LF, CRLF or a
 * lone CR, and columns (1-based) count UTF-16 code units. */
static size_t part_offset(const char *src, int line, int col, size_t *ls, size_t *le) {
    size_t n = strlen(src), i = 0;
    for (int l = 1; l < line && i < n; i++) {
        if (src[i] == '\r' && i + 1 < n && src[i + 1] == '\n') i++;
        if (src[i] == '\n' || src[i] == '\r') l++;
    }
    *ls = i;
    size_t e = i;
    while (e < n && src[e] != '\n' && src[e] != '\r') e++;
    *le = e;
    size_t off = i;
    for (int units = 0; off < e && units < col - 1;) {
        unsigned char c = (unsigned char)src[off];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        units += len == 4 ? 2 : 1;
        off += len;
    }
    return off > e ? e : off;
}

/* Fills file positions and the quoted source line of every diagnostic of part p. */
static int diags_locate(mailbars_ses_diags *d, size_t from, const char *json, size_t len,
                        const mb_ses_shape *sh, const char *const srcs[3]) {
    for (size_t i = from; i < d->len; i++) {
        mailbars_ses_diag *x = &d->items[i];
        int p = -1;
        for (int k = 0; k < 3; k++)
            if (!strcmp(x->part, k_part_names[k])) p = k;
        if (p < 0 || !srcs[p] || x->line <= 0) continue;
        const char *path[4];
        for (int k = 0; k < sh->depth; k++) path[k] = sh->path[k];
        path[sh->depth] = sh->keys[p];
        long q = json_find_string(json, len, path, sh->depth + 1);
        size_t ls, le;
        size_t off = part_offset(srcs[p], x->line, x->column, &ls, &le);
        x->source_line = mb_strndup(srcs[p] + ls, le - ls);
        if (!x->source_line) return MAILBARS_ERR_NOMEM;
        x->column = (int)mb_ses_utf8_chars(srcs[p] + ls, off - ls) + 1;
        if (q >= 0)
            text_pos(json, json_raw_offset(json, len, (size_t)q, off), &x->file_line,
                     &x->file_column);
    }
    return MAILBARS_OK;
}

/* Orders diagnostics by file position (file-wide ones first), then part position and text. */
static int diag_cmp(const void *a, const void *b) {
    const mailbars_ses_diag *x = a, *y = b;
    if (x->file_line != y->file_line) return x->file_line < y->file_line ? -1 : 1;
    if (x->file_column != y->file_column) return x->file_column < y->file_column ? -1 : 1;
    int c = strcmp(x->part, y->part);
    if (c) return c;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->column != y->column) return x->column < y->column ? -1 : 1;
    return strcmp(x->message, y->message);
}

/* A file-level diagnostic (part ""), at a JSON position when known. */
static int file_diag(mailbars_ses_diags *d, mailbars_severity sev, int code, int line, int col,
                     const char *msg) {
    size_t before = d->len;
    int rc = diag_add(d, sev, code, "", 0, 0, msg);
    if (!rc && d->len > before) {
        d->items[before].file_line = line;
        d->items[before].file_column = col;
    }
    return rc;
}

/* Checks a request file that names a template (no inline content): shape and every data
 * string. */
static int check_request(const char *json, size_t len, const mailbars_ses_options *o,
                         mailbars_ses_diags *out) {
    mailbars_error w, e;
    mailbars_ses_request *r = mailbars_ses_request_parse(json, len, o, &w, &e);
    if (!r) return file_diag(out, MAILBARS_SEV_ERROR, e.code, e.line, e.column, e.message);
    int rc = MAILBARS_OK;
    if (w.code) rc = file_diag(out, MAILBARS_SEV_WARNING, w.code, 0, 0, w.message);
    for (size_t i = 0; !rc && i < mailbars_ses_request_count(r); i++) {
        mailbars_ses_destination dst;
        if (mailbars_ses_request_destination(r, i, &dst, &e))
            rc = file_diag(out, MAILBARS_SEV_ERROR, e.code, 0, 0, e.message);
        json_decref(dst.data);
    }
    mailbars_ses_request_free(r);
    return rc;
}

int mailbars_ses_check(const char *json, size_t len, json_t *sample,
                       const mailbars_ses_options *opts, mailbars_ses_diags *out) {
    mailbars_ses_options o = opts_or_default(opts);
    mailbars_error e;
    mailbars_error_clear(&e);
    size_t first = out->len;
    json_error_t je;
    mailbars_error lim;
    if (mb_json_check_limits(json, len, NULL, o.limits, &lim))
        return file_diag(out, MAILBARS_SEV_ERROR, lim.code, lim.line, lim.column, lim.message);
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    if (!root) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON: %s", je.text);
        int line, col;
        mb_ses_json_error_start(&je, &line, &col);
        return file_diag(out, MAILBARS_SEV_ERROR, MAILBARS_ERR_JSON, line, col, msg);
    }
    mb_ses_shape sh;
    int rc = MAILBARS_OK;
    if (mb_ses_locate(root, &sh, &e)) {
        /* not a template: maybe a request that names one */
        if (json_is_object(root) &&
            (json_object_get(root, "Destinations") || json_object_get(root, "BulkEmailEntries") ||
             json_object_get(root, "Destination") || json_object_get(root, "TemplateData")))
            rc = check_request(json, len, &o, out);
        else
            rc = file_diag(out, MAILBARS_SEV_ERROR, e.code, 0, 0, e.message);
        json_decref(root);
        return rc;
    }
    char msg[512];
    if (!sh.name && !sh.inline_request)
        rc = file_diag(out, MAILBARS_SEV_WARNING, MAILBARS_ERR_SES_SHAPE, 0, 0,
                       "TemplateName is missing (SES requires it to store the template)");
    else if (sh.name && mailbars_ses_check_name(sh.name, &e))
        rc = file_diag(out, MAILBARS_SEV_ERROR, e.code, 0, 0, e.message);
    if (!sh.inline_request) {
        const char *k;
        json_t *v;
        json_object_foreach(sh.obj, k, v) {
            int known = !strcmp(k, "TemplateName");
            for (int p = 0; p < 3; p++) known |= !strcmp(k, sh.keys[p]);
            if (!known && !rc) {
                snprintf(msg, sizeof msg, "unknown field '%s%s' is ignored", sh.prefix, k);
                rc = file_diag(out, MAILBARS_SEV_WARNING, MAILBARS_ERR_SES_SHAPE, 0, 0, msg);
            }
        }
    }
    if (!sh.part[1] && !sh.part[2]) {
        snprintf(msg, sizeof msg, "%s%s or %s%s is required", sh.prefix, sh.keys[1], sh.prefix,
                 sh.keys[2]);
        if (!rc) rc = file_diag(out, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_SHAPE, 0, 0, msg);
    } else if (!sh.part[1] && !rc) {
        snprintf(msg, sizeof msg,
                 "no text part (%s%s): recipients whose mail client does not show HTML get an "
                 "empty message",
                 sh.prefix, sh.keys[1]);
        rc = file_diag(out, MAILBARS_SEV_WARNING, MAILBARS_ERR_SES_SHAPE, 0, 0, msg);
    }
    if (!sh.part[0] && !rc) {
        snprintf(msg, sizeof msg, "no subject (%s%s)", sh.prefix, sh.keys[0]);
        rc = file_diag(out, MAILBARS_SEV_WARNING, MAILBARS_ERR_SES_SHAPE, 0, 0, msg);
    }
    size_t total = 0;
    for (int p = 0; p < 3; p++) total += sh.part[p] ? strlen(sh.part[p]) : 0;
    if (!rc && total > MAILBARS_SES_MAX_TEMPLATE_BYTES) {
        snprintf(msg, sizeof msg,
                 "the template is %zu bytes (subject, text and HTML); SES allows at most 500 KB "
                 "(%u bytes)",
                 total, MAILBARS_SES_MAX_TEMPLATE_BYTES);
        rc = file_diag(out, MAILBARS_SEV_ERROR, MAILBARS_ERR_SES_LIMIT, 0, 0, msg);
    } else if (!rc && total > MAILBARS_SES_MAX_TEMPLATE_BYTES / 10 * 9) {
        snprintf(msg, sizeof msg,
                 "the template is %zu bytes, close to SES's 500 KB limit (%u bytes)", total,
                 MAILBARS_SES_MAX_TEMPLATE_BYTES);
        rc = file_diag(out, MAILBARS_SEV_WARNING, MAILBARS_ERR_SES_LIMIT, 0, 0, msg);
    }
    if (rc) {
        json_decref(root);
        return rc;
    }

    /* the parts themselves */
    lint L;
    mb_arena arenas[3];
    memset(&L, 0, sizeof L);
    L.out = out;
    L.srcs = sh.part;
    L.inline_v2 = sh.inline_request;
    for (int p = 0; p < 3; p++) mb_arena_init(&arenas[p]);
    size_t part_first = out->len;
    lint_parse_all(&L, arenas, sh.part);
    if (o.profile == MAILBARS_PROFILE_SES) lint_run(&L);
    if (sample && !L.nomem && o.profile == MAILBARS_PROFILE_SES) {
        L.root = sample;
        L.tracker_count = -1000; /* reported already */
        lint_run(&L);
    }
    /* and what the compiler says, for parts without errors so far */
    mailbars_env *env = mailbars_env_new();
    mailbars_compile_ctx *cctx = make_cctx(&o);
    if (!env || !cctx) L.nomem = 1;
    for (int p = 0; p < 3 && !L.nomem; p++) {
        if (!sh.part[p] || L.part_errors[p]) continue;
        mailbars_error ce;
        mailbars_error_clear(&ce);
        mailbars_template *t = mailbars_compile(env, sh.part[p], strlen(sh.part[p]), cctx, &ce);
        if (!t) shorten_parse_message(ce.message, sizeof ce.message);
        if (!t && diag_add(out, MAILBARS_SEV_ERROR, ce.code, k_part_names[p], ce.line, ce.column,
                           ce.message))
            L.nomem = 1;
        mailbars_template_free(t);
    }
    mailbars_compile_ctx_free(cctx);
    mailbars_env_free(env);
    for (int p = 0; p < 3; p++) mb_arena_free(&arenas[p]);
    rc = L.nomem ? MAILBARS_ERR_NOMEM : diags_locate(out, part_first, json, len, &sh, sh.part);
    json_decref(root);
    if (out->len > first) qsort(out->items + first, out->len - first, sizeof *out->items, diag_cmp);
    return rc;
}
