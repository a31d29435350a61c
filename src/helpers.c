/* The built-in helpers (if, unless, each, with, lookup, log, helperMissing,
 * blockHelperMissing) written against the public helper API. The VM runs the common shapes of
 * if/unless/each/with through dedicated instructions; these functions serve every other
 * shape (mustache use, subexpressions, hash arguments, overrides). */
#include "program.h"
#include <stdio.h>
#include <stdlib.h>

const mailbars_env *mb_call_env(const mailbars_call *call);

static int run_if(mailbars_call *call, int negate) {
    if (mailbars_call_argc(call) != 1)
        return mailbars_call_error(call, negate ? "#unless requires exactly one argument"
                                                : "#if requires exactly one argument");
    json_t *cond = mailbars_call_arg(call, 0);
    json_t *hash = mailbars_call_hash(call);
    int include_zero = hash && mailbars_value_is_truthy(json_object_get(hash, "includeZero"));
    int falsy = (!include_zero && !mailbars_value_is_truthy(cond)) || mb_value_is_empty(cond);
    json_t *ctx = mailbars_call_context(call);
    if (falsy != negate) return mailbars_call_inverse(call, ctx, NULL, NULL, 0, NULL);
    return mailbars_call_fn(call, ctx, NULL, NULL, 0, NULL);
}

static int helper_if(mailbars_call *call, void *ud) {
    (void)ud;
    return run_if(call, 0);
}

static int helper_unless(mailbars_call *call, void *ud) {
    (void)ud;
    return run_if(call, 1);
}

static int helper_with(mailbars_call *call, void *ud) {
    (void)ud;
    if (mailbars_call_argc(call) != 1)
        return mailbars_call_error(call, "#with requires exactly one argument");
    json_t *v = mailbars_call_arg(call, 0);
    if (mb_value_is_empty(v))
        return mailbars_call_inverse(call, mailbars_call_context(call), NULL, NULL, 0, NULL);
    return mailbars_call_fn(call, v, NULL, &v, 1, NULL);
}

/* One iteration of the generic each: a new @data frame with index/key/first/last. */
static int each_step(mailbars_call *call, json_t *item, json_t *key, size_t i, int last) {
    json_t *frame = json_pack("{s:I,s:O,s:b,s:b}", "index", (json_int_t)i, "key", key, "first",
                              i == 0, "last", last);
    if (!frame) return MAILBARS_ERR_NOMEM;
    json_t *bp[2] = {item, key};
    int rc = mailbars_call_fn(call, item, frame, bp, 2, NULL);
    json_decref(frame);
    return rc;
}

static int helper_each(mailbars_call *call, void *ud) {
    (void)ud;
    /* each(context, options): a second argument takes the place of options */
    if (mailbars_call_argc(call) != 1)
        return mailbars_call_error(call, "Must pass iterator to #each");
    json_t *v = mailbars_call_arg(call, 0);
    size_t n = 0;
    int rc = MAILBARS_OK;
    if (json_is_array(v)) {
        size_t len = json_array_size(v);
        for (size_t i = 0; i < len && !rc; i++, n++) {
            json_t *key = json_integer((json_int_t)i);
            if (!key) return MAILBARS_ERR_NOMEM;
            rc = each_step(call, json_array_get(v, i), key, i, i + 1 == len);
            json_decref(key);
        }
    } else if (json_is_object(v)) {
        size_t len = json_object_size(v);
        const char *k;
        size_t klen;
        json_t *item;
        json_object_keylen_foreach(v, k, klen, item) {
            if (rc) break;
            json_t *key = json_stringn_nocheck(k, klen);
            if (!key) return MAILBARS_ERR_NOMEM;
            rc = each_step(call, item, key, n, n + 1 == len);
            json_decref(key);
            n++;
        }
    }
    if (!rc && n == 0)
        rc = mailbars_call_inverse(call, mailbars_call_context(call), NULL, NULL, 0, NULL);
    return rc;
}

/* lookup obj field: the field as a property name (numbers index arrays). */
static int helper_lookup(mailbars_call *call, void *ud) {
    (void)ud;
    json_t *obj = mailbars_call_arg(call, 0), *field = mailbars_call_arg(call, 1);
    int falsy =
        !mailbars_value_is_truthy(obj) && !(obj && (json_is_object(obj) || json_is_array(obj)));
    if (falsy && mailbars_call_argc(call) >= 1) return mailbars_call_return(call, json_incref(obj));
    /* lookup(obj, field, options): with other arities `options` is not the options object */
    if (mailbars_call_argc(call) != 2)
        return mailbars_call_error(
            call, "Cannot read properties of undefined (reading 'lookupProperty')");
    mailbars_buf key = {0};
    if (mailbars_value_to_string(field, &key) != MAILBARS_OK) return MAILBARS_ERR_NOMEM;
    if (!field) mb_buf_puts(&key, "undefined");
    json_t *r = mb_json_property(obj, key.data ? key.data : "", key.len);
    mailbars_buf_free(&key);
    return mailbars_call_return(call, r);
}

static int helper_log(mailbars_call *call, void *ud) {
    (void)ud;
    const mailbars_env *env = mb_call_env(call);
    if (!env || !env->log) return MAILBARS_OK;
    json_t *lv = json_object_get(mailbars_call_hash(call), "level");
    if (!lv) lv = mailbars_call_data(call, "level");
    const char *level = "info";
    if (lv && json_is_string(lv))
        level = json_string_value(lv);
    else if (lv && json_is_number(lv)) {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        int i = (int)json_number_value(lv);
        level = i >= 0 && i < 4 ? names[i] : "info";
    }
    mailbars_buf msg = {0};
    for (size_t i = 0; i < mailbars_call_argc(call); i++) {
        if (i) mb_buf_putc(&msg, ' ');
        json_t *a = mailbars_call_arg(call, i);
        if (!a)
            mb_buf_puts(&msg, "undefined");
        else if (json_is_null(a))
            mb_buf_puts(&msg, "null");
        else
            mailbars_value_to_string(a, &msg);
    }
    env->log(env->log_ud, level, msg.data ? msg.data : "", msg.len);
    mailbars_buf_free(&msg);
    return MAILBARS_OK;
}

static int helper_missing(mailbars_call *call, void *ud) {
    (void)ud;
    if (mailbars_call_argc(call) == 0) return MAILBARS_OK;
    char msg[300];
    snprintf(msg, sizeof msg, "Missing helper: \"%s\"", mailbars_call_name(call));
    return mailbars_call_error(call, msg);
}

static int block_helper_missing(mailbars_call *call, void *ud) {
    (void)ud;
    json_t *v = mailbars_call_arg(call, 0), *self = mailbars_call_context(call);
    if (json_is_true(v)) return mailbars_call_fn(call, self, NULL, NULL, 0, NULL);
    if (!v || json_is_false(v) || json_is_null(v))
        return mailbars_call_inverse(call, self, NULL, NULL, 0, NULL);
    if (json_is_array(v)) {
        if (!json_array_size(v)) return mailbars_call_inverse(call, self, NULL, NULL, 0, NULL);
        return helper_each(call, NULL);
    }
    return mailbars_call_fn(call, v, NULL, NULL, 0, NULL);
}

#define NBUILTINS 8

/* The built-ins as helper records, for templates compiled without an environment. */
static const mb_helper builtin_helpers[NBUILTINS] = {
    {(char *)"if", helper_if, NULL, MB_BUILTIN_IF, NULL},
    {(char *)"unless", helper_unless, NULL, MB_BUILTIN_UNLESS, NULL},
    {(char *)"each", helper_each, NULL, MB_BUILTIN_EACH, NULL},
    {(char *)"with", helper_with, NULL, MB_BUILTIN_WITH, NULL},
    {(char *)"lookup", helper_lookup, NULL, MB_BUILTIN_LOOKUP, NULL},
    {(char *)"log", helper_log, NULL, MB_BUILTIN_LOG, NULL},
    {(char *)"helperMissing", helper_missing, NULL, MB_BUILTIN_HELPER_MISSING, NULL},
    {(char *)"blockHelperMissing", block_helper_missing, NULL, MB_BUILTIN_BLOCK_HELPER_MISSING,
     NULL},
};

const mb_helper *mb_builtin_find(const char *name, size_t len) {
    for (size_t i = 0; i < NBUILTINS; i++)
        if (strlen(builtin_helpers[i].name) == len && !memcmp(builtin_helpers[i].name, name, len))
            return &builtin_helpers[i];
    return NULL;
}

int mb_builtin_register(mailbars_env *env) {
    for (size_t i = 0; i < NBUILTINS; i++) {
        int rc = mb_env_register_builtin(env, builtin_helpers[i].name, builtin_helpers[i].fn,
                                         builtin_helpers[i].builtin);
        if (rc) return rc;
    }
    return MAILBARS_OK;
}
