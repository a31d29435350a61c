/* Environments (helpers + partials), compile and render contexts, and limit defaults. */
#include "program.h"
#include <stdlib.h>

/* The documented defaults (docs/limits.md). */
#define MB_LIMIT_DEFAULTS                                                                          \
    {                                                                                              \
        [MAILBARS_LIMIT_TEMPLATE_SIZE] = 8u << 20, [MAILBARS_LIMIT_NESTING] = 512,                 \
        [MAILBARS_LIMIT_PARTIAL_DEPTH] = 256, [MAILBARS_LIMIT_STEPS] = 50000000,                   \
        [MAILBARS_LIMIT_OUTPUT] = 64u << 20, [MAILBARS_LIMIT_ITERATIONS] = 1000000,                \
        [MAILBARS_LIMIT_JSON_DEPTH] = 128, [MAILBARS_LIMIT_JSON_SIZE] = 64u << 20,                 \
        [MAILBARS_LIMIT_CALL_DEPTH] = 512,                                                         \
    }
static const uint64_t limit_defaults[MAILBARS_LIMIT__COUNT] = MB_LIMIT_DEFAULTS;
static const mailbars_compile_ctx default_cctx = {.limits = MB_LIMIT_DEFAULTS};
static const mailbars_render_ctx default_rctx = {.limits = MB_LIMIT_DEFAULTS};

uint64_t mailbars_limit_default(mailbars_limit which) {
    return (unsigned)which < MAILBARS_LIMIT__COUNT ? limit_defaults[which] : 0;
}

mailbars_env *mailbars_env_new(void) {
    mailbars_env *env = mb_calloc(1, sizeof *env);
    if (!env) return NULL;
    if (mb_builtin_register(env) != MAILBARS_OK) {
        mailbars_env_free(env);
        return NULL;
    }
    return env;
}

void mailbars_env_free(mailbars_env *env) {
    if (!env) return;
    for (mb_helper *h = env->helpers, *n; h; h = n) {
        n = h->next;
        mb_free(h->name);
        mb_free(h);
    }
    for (struct mb_env_partial *p = env->partials, *n; p; p = n) {
        n = p->next;
        mb_free(p->name);
        mb_free(p->src);
        mb_free(p);
    }
    mb_free(env);
}

const mb_helper *mb_env_find_helper(const mailbars_env *env, const char *name, size_t len) {
    if (!env) return mb_builtin_find(name, len); /* NULL means the built-ins only */
    for (const mb_helper *h = env->helpers; h; h = h->next)
        if (strlen(h->name) == len && memcmp(h->name, name, len) == 0) return h;
    return NULL;
}

/* Registers or replaces; `builtin` tags the library's own helpers so the compiler can use
 * dedicated instructions for them. */
static int env_register(mailbars_env *env, const char *name, mailbars_helper_fn fn, void *ud,
                        int builtin) {
    if (!env || !name || !fn) return MAILBARS_ERR_ARGUMENT;
    for (mb_helper *h = env->helpers; h; h = h->next)
        if (!strcmp(h->name, name)) {
            h->fn = fn;
            h->userdata = ud;
            h->builtin = builtin;
            return MAILBARS_OK;
        }
    mb_helper *h = mb_calloc(1, sizeof *h);
    if (!h) return MAILBARS_ERR_NOMEM;
    h->name = mb_strndup(name, strlen(name));
    if (!h->name) {
        mb_free(h);
        return MAILBARS_ERR_NOMEM;
    }
    h->fn = fn;
    h->userdata = ud;
    h->builtin = builtin;
    h->next = env->helpers;
    env->helpers = h;
    return MAILBARS_OK;
}

int mb_env_register_builtin(mailbars_env *env, const char *name, mailbars_helper_fn fn,
                            int builtin) {
    return env_register(env, name, fn, NULL, builtin);
}

int mailbars_env_register_helper(mailbars_env *env, const char *name, mailbars_helper_fn fn,
                                 void *userdata) {
    return env_register(env, name, fn, userdata, MB_BUILTIN_NONE);
}

int mailbars_env_unregister_helper(mailbars_env *env, const char *name) {
    if (!env || !name) return MAILBARS_ERR_ARGUMENT;
    for (mb_helper **pp = &env->helpers; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->name, name)) {
            mb_helper *h = *pp;
            *pp = h->next;
            mb_free(h->name);
            mb_free(h);
            return MAILBARS_OK;
        }
    return MAILBARS_ERR_ARGUMENT;
}

int mailbars_env_register_partial(mailbars_env *env, const char *name, const char *src,
                                  size_t len) {
    if (!env || !name || (!src && len)) return MAILBARS_ERR_ARGUMENT;
    char *copy = mb_strndup(src ? src : "", len);
    if (!copy) return MAILBARS_ERR_NOMEM;
    for (struct mb_env_partial *p = env->partials; p; p = p->next)
        if (!strcmp(p->name, name)) {
            mb_free(p->src);
            p->src = copy;
            p->len = len;
            return MAILBARS_OK;
        }
    struct mb_env_partial *p = mb_calloc(1, sizeof *p);
    if (!p || !(p->name = mb_strndup(name, strlen(name)))) {
        mb_free(p);
        mb_free(copy);
        return MAILBARS_ERR_NOMEM;
    }
    p->src = copy;
    p->len = len;
    p->next = env->partials;
    env->partials = p;
    return MAILBARS_OK;
}

void mailbars_env_set_logger(mailbars_env *env, mailbars_log_fn fn, void *userdata) {
    if (!env) return;
    env->log = fn;
    env->log_ud = userdata;
}

mailbars_compile_ctx *mailbars_compile_ctx_new(void) {
    mailbars_compile_ctx *c = mb_calloc(1, sizeof *c);
    if (c) memcpy(c->limits, limit_defaults, sizeof c->limits);
    return c;
}

static void free_strv(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) mb_free(v[i]);
    mb_free(v);
}

void mailbars_compile_ctx_free(mailbars_compile_ctx *cctx) {
    if (!cctx) return;
    free_strv(cctx->known, cctx->nknown);
    free_strv(cctx->passthrough, cctx->npassthrough);
    mb_free(cctx);
}

void mailbars_compile_ctx_set_flags(mailbars_compile_ctx *cctx, unsigned flags) {
    if (cctx) cctx->flags = flags;
}

unsigned mailbars_compile_ctx_flags(const mailbars_compile_ctx *cctx) {
    return cctx ? cctx->flags : 0;
}

int mailbars_compile_ctx_set_limit(mailbars_compile_ctx *cctx, mailbars_limit which,
                                   uint64_t value) {
    if (!cctx || (unsigned)which >= MAILBARS_LIMIT__COUNT) return MAILBARS_ERR_ARGUMENT;
    cctx->limits[which] = value;
    return MAILBARS_OK;
}

/* Appends a copy of `s` to a string vector. */
static int strv_push(char ***v, size_t *n, const char *s) {
    if (!s) return MAILBARS_ERR_ARGUMENT;
    char **nv = mb_realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) return MAILBARS_ERR_NOMEM;
    *v = nv;
    if (!(nv[*n] = mb_strndup(s, strlen(s)))) return MAILBARS_ERR_NOMEM;
    (*n)++;
    return MAILBARS_OK;
}

int mailbars_compile_ctx_add_known_helper(mailbars_compile_ctx *cctx, const char *name) {
    if (!cctx) return MAILBARS_ERR_ARGUMENT;
    return strv_push(&cctx->known, &cctx->nknown, name);
}

int mailbars_compile_ctx_add_passthrough(mailbars_compile_ctx *cctx, const char *name) {
    if (!cctx) return MAILBARS_ERR_ARGUMENT;
    return strv_push(&cctx->passthrough, &cctx->npassthrough, name);
}

mailbars_render_ctx *mailbars_render_ctx_new(void) {
    mailbars_render_ctx *r = mb_calloc(1, sizeof *r);
    if (r) memcpy(r->limits, limit_defaults, sizeof r->limits);
    return r;
}

void mailbars_render_ctx_free(mailbars_render_ctx *rctx) {
    mb_free(rctx);
}

int mailbars_render_ctx_set_limit(mailbars_render_ctx *rctx, mailbars_limit which, uint64_t value) {
    if (!rctx || (unsigned)which >= MAILBARS_LIMIT__COUNT) return MAILBARS_ERR_ARGUMENT;
    rctx->limits[which] = value;
    return MAILBARS_OK;
}

/* Defaults as contexts, for NULL arguments. */
const mailbars_compile_ctx *mb_default_compile_ctx(void) {
    return &default_cctx;
}

const mailbars_render_ctx *mb_default_render_ctx(void) {
    return &default_rctx;
}
