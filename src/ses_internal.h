/* Internals shared by the SES layer (ses.c) and the bulk driver (bulk.c). */
#ifndef MAILBARS_SES_INTERNAL_H
#define MAILBARS_SES_INTERNAL_H

#include "mailbars.h"

/* Where the template parts of a parsed JSON value live (any accepted shape). */
typedef struct mb_ses_shape {
    json_t *obj;             /* the object holding the parts */
    json_t *name_obj;        /* the object holding TemplateName */
    const char *prefix;      /* field prefix for messages, e.g. "Template." */
    const char *path[3];     /* keys from the root to `obj` */
    int depth;               /* number of keys in path */
    const char *const *keys; /* part keys: SubjectPart/TextPart/HtmlPart or Subject/Text/Html */
    const char *name;        /* TemplateName or NULL */
    const char *part[3];     /* part sources or NULL */
    int v2;                  /* SES v2 TemplateContent */
    int inline_request;      /* inline TemplateContent inside an SES v2 request */
} mb_ses_shape;

int mb_ses_locate(json_t *root, mb_ses_shape *sh, mailbars_error *err);

/* Runs the linter over the three part sources (NULL = absent) and fills err with the first
 * error that is not a parse error (helpers, partials, decorators). Returns its code or OK. */
int mb_ses_lint_first_error(const char *const srcs[3], mailbars_error *err);

/* A request's parsed default data (borrowed, may be NULL). */
json_t *mb_ses_request_defaults(const mailbars_ses_request *r);
/* Destination i's addresses and its parsed replacement data (*repl: a new reference, or NULL
 * when the destination has none), without merging. */
int mb_ses_request_entry(const mailbars_ses_request *r, size_t i, mailbars_ses_destination *out,
                         json_t **repl, mailbars_error *err);

/* The line and column where the token of a jansson error starts. */
void mb_ses_json_error_start(const json_error_t *je, int *line, int *col);

/* Number of UTF-8 code points in s[0..len). */
size_t mb_ses_utf8_chars(const char *s, size_t len);

/* The limits a template was created with (for the JSON its bulk records hold). */
const mailbars_render_ctx *mb_ses_template_limits(const mailbars_ses_template *t);

/* A part's source (NULL when absent). */
const char *mb_ses_template_part(const mailbars_ses_template *t, int part, size_t *len);

#endif
