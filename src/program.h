/* The compiled form of a template, shared by the compiler (which builds it) and the VM (which
 * runs it). Everything here is immutable after mailbars_compile returns. */
#ifndef MAILBARS_PROGRAM_H
#define MAILBARS_PROGRAM_H

#include "arena.h"
#include <stdint.h>
#include <string.h>

typedef enum mb_opcode {
#define X(name, operands, doc) OP_##name,
#include "opcodes.def"
#undef X
    OP__COUNT
} mb_opcode;

enum {
    OUTF_ESCAPE = 1,   /* HTML-escape the value */
    OUTF_MISSING = 2,  /* SES: a missing value is an error */
    OUTF_AMBIG = 4,    /* a missing value calls a custom helperMissing */
    OUTF_EXPLICIT = 8, /* SECTION: handlebars.js emits a separate `buffer +=` statement */
    OUTF_NOSUM = 16,   /* after the last explicit statement: values join a string */
};

typedef struct mb_insn {
    uint8_t op;
    uint8_t flags;
    uint16_t a;
    uint32_t b;
} mb_insn;

typedef struct mb_text {
    const char *s;
    size_t len;
} mb_text;

/* One path segment: the key to look up, with its length. `hint` is the position the key had
 * in the last object it was found in (vm.c obj_get): the one part of a compiled template that
 * renders write, with relaxed atomics, and only ever a guess that is checked. */
typedef struct mb_seg {
    const char *key;
    size_t len;
    unsigned char hint;
} mb_seg;

enum { PATH_CTX, PATH_DATA, PATH_BLOCKPARAM, PATH_THIS };

typedef struct mb_path {
    uint8_t kind;
    uint8_t strict_terminal; /* strict mode: the last segment must exist */
    uint8_t strict_chain;    /* strict/assumeObjects: a missing intermediate is an error */
    uint8_t compat;          /* first segment searched up the context stack */
    uint8_t fast;            /* plain a.b.c from `this`: objects walked directly by the VM */
    uint8_t fast_up;         /* plain ../a.b (any depth): inline `each` bodies walk it too */
    uint16_t depth;          /* ../ count (contexts) or @../ count (data frames) */
    uint16_t bp_depth;       /* block param: program levels up */
    uint16_t bp_index;       /* block param: index in that level */
    uint32_t nparts;
    mb_seg *parts;
    const char *original; /* as written, for messages */
    int line, column;     /* 1-based line, 0-based column (handlebars.js loc) */
} mb_path;

/* 1 for a plain `@index` (escaped, it prints the iteration's number as digits). */
static inline int mb_path_is_index(const mb_path *p) {
    return p->kind == PATH_DATA && !p->depth && p->nparts == 1 && p->parts[0].len == 5 &&
           !memcmp(p->parts[0].key, "index", 5);
}

/* A helper invocation or block: name, helper, params (pushed before the instruction), hash
 * keys (their values pushed after the params), programs. */
typedef struct mb_callsite {
    const char *name;               /* options.name */
    const struct mb_helper *helper; /* NULL: missing (helperMissing semantics) */
    uint32_t nparams;
    uint32_t nhash;
    const char **hash_keys;
    int32_t fn;               /* program index or -1 */
    int32_t inverse;          /* program index or -1 */
    uint16_t fn_block_params; /* declared `as |..|` count of fn */
    uint8_t is_block;
    uint8_t escaped;
    int32_t name_path; /* missing helper: the helper's name as a path (handlebars.js tries
                          `helpers.x || context.x || helperMissing`), or -1 */
} mb_callsite;

/* A partial invocation. */
typedef struct mb_partial_site {
    const char *name; /* static name, or NULL when dynamic (value pushed first) */
    size_t name_len;
    uint8_t has_context;  /* a context param was pushed (after the dynamic name) */
    uint8_t explicit_ctx; /* explicitPartialContext with no param: context is undefined */
    uint8_t no_data;      /* data: false and the calling source has no @ path: no @data */
    uint32_t nhash;
    const char **hash_keys;
    int32_t block; /* partial block program (the {{#> p}}body{{/p}}), or -1 */
    const char *indent;
    size_t indent_len;
    int line, column;
    /* a static name's registered partial, looked up once when the template is built (NULL:
     * none; inline partials in scope still come first at render time) */
    const struct mb_partial_entry *entry;
} mb_partial_site;

/* An inline partial declared in a program: visible while the program runs. */
typedef struct mb_inline {
    const char *name;
    size_t len;
    int32_t program;
} mb_inline;

typedef struct mb_prog {
    mb_insn *code;
    uint32_t ncode;
    uint32_t ninline;
    mb_inline *inlines;
    uint32_t max_stack; /* values this program may push at once */
    /* what `each` can run inline per item (compiler.c is_simple, vm.c simple_run) */
    uint8_t simple;
} mb_prog;

/* A registered partial compiled with the template: entry program or a deferred error. */
typedef struct mb_partial_entry {
    const char *name;
    size_t len;
    int32_t program; /* -1 if it failed to compile */
    mailbars_error *error;
} mb_partial_entry;

typedef struct mb_helper {
    char *name;
    mailbars_helper_fn fn;
    void *userdata;
    int builtin; /* MB_BUILTIN_* or 0 */
    struct mb_helper *next;
} mb_helper;

enum {
    MB_BUILTIN_NONE,
    MB_BUILTIN_IF,
    MB_BUILTIN_UNLESS,
    MB_BUILTIN_EACH,
    MB_BUILTIN_WITH,
    MB_BUILTIN_LOOKUP,
    MB_BUILTIN_LOG,
    MB_BUILTIN_HELPER_MISSING,
    MB_BUILTIN_BLOCK_HELPER_MISSING,
};

struct mailbars_env {
    mb_helper *helpers;
    struct mb_env_partial {
        char *name;
        char *src;
        size_t len;
        struct mb_env_partial *next;
    } * partials;
    mailbars_log_fn log;
    void *log_ud;
};

struct mailbars_compile_ctx {
    unsigned flags;
    uint64_t limits[MAILBARS_LIMIT__COUNT];
    char **known;
    size_t nknown;
    char **passthrough;
    size_t npassthrough;
};

struct mailbars_render_ctx {
    uint64_t limits[MAILBARS_LIMIT__COUNT];
};

struct mailbars_template {
    mb_arena arena; /* owns everything below */
    unsigned flags;
    const mailbars_env *env;
    mb_prog *progs;
    uint32_t nprogs;
    uint32_t main;
    mb_text *texts;
    uint32_t ntexts;
    mb_path *paths;
    uint32_t npaths;
    json_t **consts; /* owned references */
    uint32_t nconsts;
    mb_callsite *calls;
    uint32_t ncalls;
    mb_partial_site *psites;
    uint32_t npsites;
    mb_partial_entry *partials; /* sorted by name */
    uint32_t npartials;
    uint8_t main_uses_data; /* the main template has an @ path (handlebars.js's useData) */
    uint8_t src_utf8;       /* every source compiled in is valid UTF-8 (see mb_render_utf8_known) */
    const mb_helper *helper_missing;       /* custom helperMissing, or NULL */
    const mb_helper *block_helper_missing; /* custom blockHelperMissing, or NULL */
};

const mb_helper *mb_env_find_helper(const mailbars_env *env, const char *name, size_t len);
extern const char *const mb_opcode_names[OP__COUNT];

const mailbars_compile_ctx *mb_default_compile_ctx(void);
const mailbars_render_ctx *mb_default_render_ctx(void);
/* The registered partial called `name` in t's sorted table, or NULL. */
const struct mb_partial_entry *mb_find_partial(const mailbars_template *t, const char *name,
                                               size_t len);
/* 1 when the output of st's last render of t is valid UTF-8 without a check: every source
 * compiled into t is, jansson's strings and keys are (the contract of its API), the VM adds
 * only ASCII, and no custom helper ran (one may write any bytes). Built-in helpers only pass
 * such values on. */
int mb_render_utf8_known(const mailbars_render_state *st, const mailbars_template *t);
/* Replaces a render state's limits (the SES layer renders with each template's limits). */
void mb_render_state_set_limits(mailbars_render_state *st, const mailbars_render_ctx *limits);
int mb_env_register_builtin(mailbars_env *env, const char *name, mailbars_helper_fn fn,
                            int builtin);

/* handlebars.js lookupProperty on a JSON value (own properties: object keys, array indexes and
 * length, string characters and length); a new reference or NULL for undefined. */
json_t *mb_json_property(json_t *obj, const char *key, size_t len);

/* Built-in helpers as ordinary helpers (helpers.c), used by the generic call path. */
int mb_builtin_register(mailbars_env *env);
/* A built-in by name (for a NULL environment), or NULL. */
const mb_helper *mb_builtin_find(const char *name, size_t len);

#endif
