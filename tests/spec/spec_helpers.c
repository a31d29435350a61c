/* Native C ports of the JavaScript helpers in the handlebars.js spec files.
 *
 * Each port reproduces what the JS function does, through the public helper-call API:
 * positional params (mailbars_call_arg), options.hash (mailbars_call_hash), `this`
 * (mailbars_call_context), options.fn/inverse (mailbars_call_fn/_inverse), @data
 * (mailbars_call_data), createFrame (the `frame` argument), options.name (mailbars_call_name),
 * SafeString (mailbars_call_return_safe) and plain return values (mailbars_call_return).
 * JavaScript's `+` on strings, `===`, `typeof` and truthiness are reproduced by the js_* helpers
 * below. Assertions that the JS helpers make with equal()/equals() become checks that fail the
 * case.
 *
 * The table at the end maps (file, description, it, helper name) to a port; "*" matches any
 * value, and the first matching row wins, so specific rows come before general ones. */
#include "spec_helpers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- state shared with the runner ---- */

static char assert_msg[512];
static int assert_failed;
static long js_global_value; /* the JS global `value` used by one block-params helper */
static int js_global_value_set;

void spec_helpers_reset(void) {
    assert_failed = 0;
    assert_msg[0] = 0;
    js_global_value = 0;
    js_global_value_set = 0;
}

const char *spec_helpers_assert_failure(void) {
    return assert_failed ? assert_msg : NULL;
}

/* An equal()/equals() assertion of the JS test: records the first failure and fails the call. */
static int check(mailbars_call *call, int cond, const char *what) {
    if (cond) return MAILBARS_OK;
    if (!assert_failed) {
        assert_failed = 1;
        snprintf(assert_msg, sizeof assert_msg, "assertion failed in helper %s: %s",
                 mailbars_call_name(call), what);
    }
    return mailbars_call_error(call, assert_msg);
}

/* ---- JavaScript value semantics ---- */

/* Appends String(v) as JavaScript's `'' + v` would: undefined and null print as words. */
static void js_cat_value(mailbars_buf *b, const json_t *v) {
    if (!v)
        mailbars_buf_append(b, "undefined", 9);
    else if (json_is_null(v))
        mailbars_buf_append(b, "null", 4);
    else
        mailbars_value_to_string(v, b);
}

/* Appends a C string. */
static void js_cat(mailbars_buf *b, const char *s) {
    mailbars_buf_append(b, s, strlen(s));
}

/* JavaScript truthiness (not handlebars'): only false, 0, NaN, "", null, undefined are falsy. */
static int js_truthy(const json_t *v) {
    if (!v || json_is_null(v) || json_is_false(v)) return 0;
    if (json_is_number(v)) {
        double d = json_number_value(v);
        return d != 0 && !isnan(d);
    }
    if (json_is_string(v)) return json_string_length(v) > 0;
    return 1;
}

/* JavaScript `typeof v` for JSON values (undefined is NULL). */
static const char *js_typeof(const json_t *v) {
    if (!v) return "undefined";
    switch (json_typeof(v)) {
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "object"; /* null, arrays, objects */
    }
}

/* JavaScript `a === b` for JSON values: same type and value; objects only by identity. */
static int js_strict_equal(const json_t *a, const json_t *b) {
    if (!a || !b) return a == b;
    if (json_is_number(a) && json_is_number(b)) return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b)) return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL: return 1;
    default: return a == b;
    }
}

/* ToNumber of a non-string primitive (undefined is NaN). */
static double js_to_number(const json_t *v) {
    if (!v) return NAN;
    if (json_is_number(v)) return json_number_value(v);
    if (json_is_true(v)) return 1;
    return 0; /* null, false */
}

/* A JSON number for a JS number: an integer when it is one, so it prints without ".0". */
static json_t *js_number(double d) {
    if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    if (isnan(d)) return json_string("NaN");
    if (isinf(d)) return json_string(d < 0 ? "-Infinity" : "Infinity");
    return json_real(d);
}

/* JavaScript `a + b`: concatenation when either side becomes a string, else numeric. */
static json_t *js_add(const json_t *a, const json_t *b) {
    int as = a && (json_is_string(a) || json_is_array(a) || json_is_object(a));
    int bs = b && (json_is_string(b) || json_is_array(b) || json_is_object(b));
    if (as || bs) {
        mailbars_buf s = {0};
        js_cat_value(&s, a);
        js_cat_value(&s, b);
        json_t *r = json_stringn_nocheck(s.data ? s.data : "", s.len);
        mailbars_buf_free(&s);
        return r;
    }
    return js_number(js_to_number(a) + js_to_number(b));
}

/* obj[key] for a JS property read on `this` or a value: undefined unless obj is an object. */
static json_t *prop(json_t *obj, const char *key) {
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

/* Appends str.toUpperCase() (ASCII is all the spec needs); a non-string is a JS TypeError. */
static int js_cat_upper(mailbars_call *call, mailbars_buf *b, const json_t *v) {
    if (!json_is_string(v)) return mailbars_call_error(call, "toUpperCase of a non-string");
    const char *s = json_string_value(v);
    for (size_t i = 0; i < json_string_length(v); i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        mailbars_buf_append(b, &c, 1);
    }
    return MAILBARS_OK;
}

/* ---- returning results ---- */

/* `return <string built in b>`: a plain JS string (escaped by {{ }}); frees b. */
static int ret_buf(mailbars_call *call, mailbars_buf *b) {
    json_t *s = json_stringn_nocheck(b->data ? b->data : "", b->len);
    mailbars_buf_free(b);
    if (!s) return mailbars_call_error(call, "out of memory");
    return mailbars_call_return(call, s);
}

/* `return new Handlebars.SafeString(<string built in b>)`; frees b. */
static int ret_safe_buf(mailbars_call *call, mailbars_buf *b) {
    int rc = mailbars_call_return_safe(call, b->data ? b->data : "", b->len);
    mailbars_buf_free(b);
    return rc;
}

/* `return v` for a borrowed value (undefined stays undefined). */
static int ret_value(mailbars_call *call, json_t *v) {
    return mailbars_call_return(call, v ? json_incref(v) : NULL);
}

/* Appends options.fn(ctx, {data: frame, blockParams: bp}) (or options.inverse) to b. */
static int cat_block(mailbars_call *call, mailbars_buf *b, int inverse, json_t *ctx, json_t *frame,
                     json_t *const *bp, size_t nbp) {
    mailbars_buf *cap = NULL;
    int rc = inverse ? mailbars_call_inverse(call, ctx, frame, bp, nbp, &cap)
                     : mailbars_call_fn(call, ctx, frame, bp, nbp, &cap);
    if (rc != MAILBARS_OK) return rc;
    if (cap && cap->len) mailbars_buf_append(b, cap->data, cap->len);
    return MAILBARS_OK;
}

/* ---- ports ---- */

/* function () { return '<arg>'; } */
static int h_const(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    return mailbars_call_return(call, json_string(p->arg));
}

/* function () {} : returns undefined. */
static int h_undefined(mailbars_call *call, void *ud) {
    return MAILBARS_OK;
}

/* function (arg) { return arg; } */
static int h_arg0(mailbars_call *call, void *ud) {
    return ret_value(call, mailbars_call_arg(call, 0));
}

/* function (x) { return '<arg>' + x; }  e.g. 'bar ' + value, 'Hello ' + noun, 'val is ' + val */
static int h_prefix_arg0(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    mailbars_buf b = {0};
    js_cat(&b, p->arg);
    js_cat_value(&b, mailbars_call_arg(call, 0));
    return ret_buf(call, &b);
}

/* function () { return '<arg>' + arguments[arguments.length - 1].name; } */
static int h_prefix_name(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    mailbars_buf b = {0};
    js_cat(&b, p->arg);
    js_cat(&b, mailbars_call_name(call));
    return ret_buf(call, &b);
}

/* PHP-only port: function($options) { return strlen($options->scope); } -- JS reads the
 * string's own `length` property, which a JSON string lookup does not have. */
static int h_length(mailbars_call *call, void *ud) {
    json_t *ctx = mailbars_call_context(call);
    if (!json_is_string(ctx)) return MAILBARS_OK;
    return mailbars_call_return(call, json_integer((json_int_t)json_string_length(ctx)));
}

/* function (options) { return options.data && options.data.<arg>; } */
static int h_data_var(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    return ret_value(call, mailbars_call_data(call, p->arg));
}

/* function (options) { return options.data.adjective + ' ' + this.noun; } */
static int h_adjective_noun(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat_value(&b, mailbars_call_data(call, "adjective"));
    js_cat(&b, " ");
    js_cat_value(&b, prop(mailbars_call_context(call), "noun"));
    return ret_buf(call, &b);
}

/* function (options) {
 *   var frame = Handlebars.createFrame(options.data);
 *   for (var prop in options.hash) frame[prop] = options.hash[prop];
 *   return options.fn(this, {data: frame}); } */
static int h_let(mailbars_call *call, void *ud) {
    json_t *frame = json_copy(mailbars_call_hash(call));
    int rc = mailbars_call_fn(call, mailbars_call_context(call), frame, NULL, 0, NULL);
    json_decref(frame);
    return rc;
}

/* function (options) { return 'Hello ' + options.hash.noun; } */
static int h_hello_hash_noun(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat(&b, "Hello ");
    js_cat_value(&b, json_object_get(mailbars_call_hash(call), "noun"));
    return ret_buf(call, &b);
}

/* function (noun, options) {
 *   return options.data.adjective + ' ' + noun + (this.exclaim ? '!' : ''); } */
static int h_adjective_arg_bang(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat_value(&b, mailbars_call_data(call, "adjective"));
    js_cat(&b, " ");
    js_cat_value(&b, mailbars_call_arg(call, 0));
    if (js_truthy(prop(mailbars_call_context(call), "exclaim"))) js_cat(&b, "!");
    return ret_buf(call, &b);
}

/* function (options) { return options.data.adjective + ' world' + (this.exclaim ? '!' : ''); } */
static int h_adjective_world_bang(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat_value(&b, mailbars_call_data(call, "adjective"));
    js_cat(&b, " world");
    if (js_truthy(prop(mailbars_call_context(call), "exclaim"))) js_cat(&b, "!");
    return ret_buf(call, &b);
}

/* function (thing, options) {
 *   return options.data.adjective + ' ' + thing + (this.exclaim || ''); } */
static int h_adjective_arg_exclaim(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat_value(&b, mailbars_call_data(call, "adjective"));
    js_cat(&b, " ");
    js_cat_value(&b, mailbars_call_arg(call, 0));
    json_t *ex = prop(mailbars_call_context(call), "exclaim");
    if (js_truthy(ex)) js_cat_value(&b, ex);
    return ret_buf(call, &b);
}

/* function (options) { return options.fn(this); } */
static int h_fn_this(mailbars_call *call, void *ud) {
    return mailbars_call_fn(call, mailbars_call_context(call), NULL, NULL, 0, NULL);
}

/* function (options) { return options.fn(); }  (the context is undefined) */
static int h_fn_undefined(mailbars_call *call, void *ud) {
    return mailbars_call_fn(call, NULL, NULL, NULL, 0, NULL);
}

/* function (options) { return options.fn(CTX, {data: DATA, blockParams: BP}); } where the port's
 * arg is JSON {"ctx": CTX, "data": DATA, "bp": BP, "assert_bp": N}: "ctx" absent means `this`;
 * "assert_bp" is the JS test's equals(options.fn.blockParams, N). */
static int h_fn_json(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    json_t *spec = json_loads(p->arg, 0, NULL);
    if (!spec) return mailbars_call_error(call, "bad port argument");
    int rc = MAILBARS_OK;
    json_t *n = json_object_get(spec, "assert_bp");
    if (n)
        rc = check(call, (json_int_t)mailbars_call_block_param_count(call) == json_integer_value(n),
                   "equals(options.fn.blockParams, 1)");
    if (rc == MAILBARS_OK) {
        json_t *ctx = json_object_get(spec, "ctx");
        json_t *bp = json_object_get(spec, "bp");
        json_t *items[8];
        size_t nbp = 0;
        for (; bp && nbp < json_array_size(bp) && nbp < 8; nbp++)
            items[nbp] = json_array_get(bp, nbp);
        rc = mailbars_call_fn(call, ctx ? ctx : mailbars_call_context(call),
                              json_object_get(spec, "data"), nbp ? items : NULL, nbp, NULL);
    }
    json_decref(spec);
    return rc;
}

/* function (options) {
 *   return options.data.accessData + ' ' + options.fn({exclaim: '?'}); } */
static int h_access_data_fn(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat_value(&b, mailbars_call_data(call, "accessData"));
    js_cat(&b, " ");
    json_t *ctx = json_pack("{s:s}", "exclaim", "?");
    int rc = cat_block(call, &b, 0, ctx, NULL, NULL, 0);
    json_decref(ctx);
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    return ret_buf(call, &b);
}

/* function (options) {
 *   var frame = Handlebars.createFrame(options.data);
 *   frame.depth = options.data.depth + 1;
 *   return options.fn(this, {data: frame}); } */
static int h_depth_frame(mailbars_call *call, void *ud) {
    json_t *one = json_integer(1);
    json_t *frame = json_object();
    json_object_set_new(frame, "depth", js_add(mailbars_call_data(call, "depth"), one));
    int rc = mailbars_call_fn(call, mailbars_call_context(call), frame, NULL, 0, NULL);
    json_decref(frame);
    json_decref(one);
    return rc;
}

/* function (prefix) {
 *   return '<a href="' + prefix + '/' + this.url + '">' + this.text + '</a>'; } */
static int h_link_prefix(mailbars_call *call, void *ud) {
    json_t *self = mailbars_call_context(call);
    mailbars_buf b = {0};
    js_cat(&b, "<a href=\"");
    js_cat_value(&b, mailbars_call_arg(call, 0));
    js_cat(&b, "/");
    js_cat_value(&b, prop(self, "url"));
    js_cat(&b, "\">");
    js_cat_value(&b, prop(self, "text"));
    js_cat(&b, "</a>");
    return ret_buf(call, &b);
}

/* function (a, b, c, options) { return options.fn() + a + b + c; } */
static int h_raw_abc(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    int rc = cat_block(call, &b, 0, NULL, NULL, NULL, 0);
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    for (size_t i = 0; i < 3; i++) js_cat_value(&b, mailbars_call_arg(call, i));
    return ret_buf(call, &b);
}

/* function (options) {
 *   var out = ''; var byes = ['Goodbye', 'goodbye', 'GOODBYE'];
 *   for (...) out += byes[i] + ' ' + options.fn(CTX) + '! ';
 *   return out; }  with CTX `this` (arg "this") or a new {} (arg "{}"). */
static int h_goodbyes_loop(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    static const char *const byes[] = {"Goodbye", "goodbye", "GOODBYE"};
    mailbars_buf b = {0};
    int rc = MAILBARS_OK;
    for (int i = 0; i < 3 && rc == MAILBARS_OK; i++) {
        json_t *ctx =
            strcmp(p->arg, "this") == 0 ? json_incref(mailbars_call_context(call)) : json_object();
        js_cat(&b, byes[i]);
        js_cat(&b, " ");
        rc = cat_block(call, &b, 0, ctx, NULL, NULL, 0);
        js_cat(&b, "! ");
        json_decref(ctx);
    }
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    return ret_buf(call, &b);
}

/* '<a href="' + prefix + '/' + this.url + '">' + options.fn(this) + '</a>'   (arg "prefix")
 * '<a href="/people/' + this.id + '">' + options.fn(this) + '</a>'             (arg "id")
 * '<a href="' + this.name + '">' + options.fn(this) + '</a>'                  (arg "name") */
static int h_link_block(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    json_t *self = mailbars_call_context(call);
    mailbars_buf b = {0};
    if (strcmp(p->arg, "prefix") == 0) {
        js_cat(&b, "<a href=\"");
        js_cat_value(&b, mailbars_call_arg(call, 0));
        js_cat(&b, "/");
        js_cat_value(&b, prop(self, "url"));
    } else if (strcmp(p->arg, "id") == 0) {
        js_cat(&b, "<a href=\"/people/");
        js_cat_value(&b, prop(self, "id"));
    } else {
        js_cat(&b, "<a href=\"");
        js_cat_value(&b, prop(self, "name"));
    }
    js_cat(&b, "\">");
    int rc = cat_block(call, &b, 0, self, NULL, NULL, 0);
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    js_cat(&b, "</a>");
    return ret_buf(call, &b);
}

/* function (options) { return '<form>' + options.fn(this) + '</form>'; }      (arg "this")
 * function (context, options) { return '<form>' + options.fn(context) + '</form>'; } ("arg") */
static int h_form(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    json_t *ctx =
        strcmp(p->arg, "this") == 0 ? mailbars_call_context(call) : mailbars_call_arg(call, 0);
    mailbars_buf b = {0};
    js_cat(&b, "<form>");
    int rc = cat_block(call, &b, 0, ctx, NULL, NULL, 0);
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    js_cat(&b, "</form>");
    return ret_buf(call, &b);
}

/* function list(context, options) {
 *   if (context.length > 0) { '<ul>' + each '<li>' + options.fn(context[i]) + '</li>' + '</ul>' }
 *   else return '<p>' + options.inverse(this) + '</p>'; } */
static int h_list(mailbars_call *call, void *ud) {
    json_t *list = mailbars_call_arg(call, 0);
    mailbars_buf b = {0};
    int rc = MAILBARS_OK;
    if (!list || json_is_null(list)) return mailbars_call_error(call, "context is undefined");
    if (json_is_array(list) && json_array_size(list) > 0) {
        js_cat(&b, "<ul>");
        for (size_t i = 0; i < json_array_size(list) && rc == MAILBARS_OK; i++) {
            js_cat(&b, "<li>");
            rc = cat_block(call, &b, 0, json_array_get(list, i), NULL, NULL, 0);
            js_cat(&b, "</li>");
        }
        js_cat(&b, "</ul>");
    } else {
        js_cat(&b, "<p>");
        rc = cat_block(call, &b, 1, mailbars_call_context(call), NULL, NULL, 0);
        js_cat(&b, "</p>");
    }
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    return ret_buf(call, &b);
}

/* Appends a param as the "typeof x !== 'number' ? 'NaN' : x" (or boolean / 'NaB') checks do. */
static void cat_typed(mailbars_buf *b, const json_t *v, const char *type, const char *otherwise) {
    if (strcmp(js_typeof(v), type) == 0)
        js_cat_value(b, v);
    else
        js_cat(b, otherwise);
}

/* function (times, times2) { ...; return 'Hello ' + times + ' ' + times2 + ' times'; } */
static int h_hello_times2(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat(&b, "Hello ");
    cat_typed(&b, mailbars_call_arg(call, 0), "number", "NaN");
    js_cat(&b, " ");
    cat_typed(&b, mailbars_call_arg(call, 1), "number", "NaN");
    js_cat(&b, " times");
    return ret_buf(call, &b);
}

/* function (times) { ...; return 'Hello ' + times + ' times'; } */
static int h_hello_times(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat(&b, "Hello ");
    cat_typed(&b, mailbars_call_arg(call, 0), "number", "NaN");
    js_cat(&b, " times");
    return ret_buf(call, &b);
}

/* function (param, times, bool1, bool2) { ...;
 *   return 'Hello ' + param + ' ' + times + ' times: ' + bool1 + ' ' + bool2; } */
static int h_hello_literals(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat(&b, "Hello ");
    js_cat_value(&b, mailbars_call_arg(call, 0));
    js_cat(&b, " ");
    cat_typed(&b, mailbars_call_arg(call, 1), "number", "NaN");
    js_cat(&b, " times: ");
    cat_typed(&b, mailbars_call_arg(call, 2), "boolean", "NaB");
    js_cat(&b, " ");
    cat_typed(&b, mailbars_call_arg(call, 3), "boolean", "NaB");
    return ret_buf(call, &b);
}

/* function (cruel, world) { return 'Goodbye ' + cruel + ' ' + world; } */
static int h_goodbye_params(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat(&b, "Goodbye ");
    js_cat_value(&b, mailbars_call_arg(call, 0));
    js_cat(&b, " ");
    js_cat_value(&b, mailbars_call_arg(call, 1));
    return ret_buf(call, &b);
}

/* function (cruel, world, options) {
 *   return options.fn({greeting: 'Goodbye', adj: cruel, noun: world}); } */
static int h_goodbye_block_params(mailbars_call *call, void *ud) {
    json_t *ctx = json_object();
    json_object_set_new(ctx, "greeting", json_string("Goodbye"));
    json_t *a = mailbars_call_arg(call, 0), *w = mailbars_call_arg(call, 1);
    if (a) json_object_set(ctx, "adj", a);
    if (w) json_object_set(ctx, "noun", w);
    int rc = mailbars_call_fn(call, ctx, NULL, NULL, 0, NULL);
    json_decref(ctx);
    return rc;
}

/* function (options) { return 'GOODBYE ' + options.hash.cruel + ' ' + options.hash.world + ' '
 *   + options.hash.times + ' TIMES'; }                                           (arg "world")
 * function (options) { return 'GOODBYE ' + options.hash.cruel + ' ' + options.fn(this) + ' '
 *   + options.hash.times + ' TIMES'; }                                           (arg "fn") */
static int h_goodbye_hash(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    json_t *hash = mailbars_call_hash(call);
    mailbars_buf b = {0};
    js_cat(&b, "GOODBYE ");
    js_cat_value(&b, json_object_get(hash, "cruel"));
    js_cat(&b, " ");
    if (strcmp(p->arg, "fn") == 0) {
        int rc = cat_block(call, &b, 0, mailbars_call_context(call), NULL, NULL, 0);
        if (rc != MAILBARS_OK) {
            mailbars_buf_free(&b);
            return rc;
        }
    } else {
        js_cat_value(&b, json_object_get(hash, "world"));
    }
    js_cat(&b, " ");
    js_cat_value(&b, json_object_get(hash, "times"));
    js_cat(&b, " TIMES");
    return ret_buf(call, &b);
}

/* function goodbye(options) {
 *   if (options.hash.print === true) return 'GOODBYE ' + options.hash.cruel + ' ' + X;
 *   else if (options.hash.print === false) return 'NOT PRINTING';
 *   else return 'THIS SHOULD NOT HAPPEN'; }
 * with X options.hash.world (arg "world") or options.fn(this) (arg "fn"). */
static int h_goodbye_print(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    json_t *hash = mailbars_call_hash(call);
    json_t *print = json_object_get(hash, "print");
    mailbars_buf b = {0};
    if (json_is_true(print)) {
        js_cat(&b, "GOODBYE ");
        js_cat_value(&b, json_object_get(hash, "cruel"));
        js_cat(&b, " ");
        if (strcmp(p->arg, "fn") == 0) {
            int rc = cat_block(call, &b, 0, mailbars_call_context(call), NULL, NULL, 0);
            if (rc != MAILBARS_OK) {
                mailbars_buf_free(&b);
                return rc;
            }
        } else {
            js_cat_value(&b, json_object_get(hash, "world"));
        }
    } else if (json_is_false(print)) {
        js_cat(&b, "NOT PRINTING");
    } else {
        js_cat(&b, "THIS SHOULD NOT HAPPEN");
    }
    return ret_buf(call, &b);
}

/* function (mesg, options) {
 *   if (options.name === 'link_to') return new Handlebars.SafeString('<a>' + mesg + '</a>'); }
 * and, with arg "winning", function (options) { ... SafeString('<a>winning</a>') ... } */
static int h_missing_link_to(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    if (strcmp(mailbars_call_name(call), "link_to") != 0) return MAILBARS_OK;
    mailbars_buf b = {0};
    js_cat(&b, "<a>");
    if (strcmp(p->arg, "winning") == 0)
        js_cat(&b, "winning");
    else
        js_cat_value(&b, mailbars_call_arg(call, 0));
    js_cat(&b, "</a>");
    return ret_safe_buf(call, &b);
}

/* function (arg) { return typeof arg; } */
static int h_typeof(mailbars_call *call, void *ud) {
    return mailbars_call_return(call, json_string(js_typeof(mailbars_call_arg(call, 0))));
}

/* function () { return this.goodbye.toUpperCase(); }                 (arg "")
 * function (options) { return this.goodbye.toUpperCase() + options.fn(this); } (arg "fn") */
static int h_upper_goodbye(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    json_t *self = mailbars_call_context(call);
    mailbars_buf b = {0};
    int rc = js_cat_upper(call, &b, prop(self, "goodbye"));
    if (rc == MAILBARS_OK && strcmp(p->arg, "fn") == 0)
        rc = cat_block(call, &b, 0, self, NULL, NULL, 0);
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    return ret_buf(call, &b);
}

/* function (world) { return 'cruel ' + world.toUpperCase(); } */
static int h_cruel_upper(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat(&b, "cruel ");
    int rc = js_cat_upper(call, &b, mailbars_call_arg(call, 0));
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    return ret_buf(call, &b);
}

/* function (options) {
 *   if (typeof value === 'undefined') { value = 1; }
 *   return options.fn({value: 'bar'}, {blockParams: options.fn.blockParams === 1
 *                                      ? [global.value++, global.value++] : undefined}); }
 * The JS global `value` is a counter that lives for the case. */
static int h_goodbyes_counter(mailbars_call *call, void *ud) {
    if (!js_global_value_set) js_global_value = 1, js_global_value_set = 1;
    json_t *ctx = json_pack("{s:s}", "value", "bar");
    json_t *bp[2] = {NULL, NULL};
    size_t nbp = 0;
    if (mailbars_call_block_param_count(call) == 1) {
        bp[0] = json_integer(js_global_value++);
        bp[1] = json_integer(js_global_value++);
        nbp = 2;
    }
    int rc = mailbars_call_fn(call, ctx, NULL, nbp ? bp : NULL, nbp, NULL);
    json_decref(bp[0]);
    json_decref(bp[1]);
    json_decref(ctx);
    return rc;
}

/* function testHelper(options) { return options.lookupProperty(this, 'testProperty'); } */
static int h_lookup_property(mailbars_call *call, void *ud) {
    return ret_value(call, prop(mailbars_call_context(call), "testProperty"));
}

/* function (block) { return block.fn(''); }      (arg "fn")
 * function (block) { return block.inverse(''); } (arg "inverse") */
static int h_block_empty_string(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    json_t *empty = json_string("");
    int rc = strcmp(p->arg, "inverse") == 0
                 ? mailbars_call_inverse(call, empty, NULL, NULL, 0, NULL)
                 : mailbars_call_fn(call, empty, NULL, NULL, 0, NULL);
    json_decref(empty);
    return rc;
}

/* function (value) { return value + ''; } */
static int h_to_string(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat_value(&b, mailbars_call_arg(call, 0));
    return ret_buf(call, &b);
}

/* function (options) { return new Handlebars.SafeString(options.fn()); } */
static int h_safe_fn(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    int rc = cat_block(call, &b, 0, NULL, NULL, NULL, 0);
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        return rc;
    }
    return ret_safe_buf(call, &b);
}

/* function (conditional, options) {
 *   if (conditional) return options.fn(this); else return options.inverse(this); } */
static int h_myif(mailbars_call *call, void *ud) {
    json_t *self = mailbars_call_context(call);
    if (js_truthy(mailbars_call_arg(call, 0)))
        return mailbars_call_fn(call, self, NULL, NULL, 0, NULL);
    return mailbars_call_inverse(call, self, NULL, NULL, 0, NULL);
}

/* function (options) { return options.hash.<arg>; } */
static int h_hash_value(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    return ret_value(call, json_object_get(mailbars_call_hash(call), p->arg));
}

/* function (options) {
 *   equals('value' in options.hash, true); equals(options.hash.value, undefined);
 *   return 'success'; }
 * A JSON hash cannot hold undefined, so the key must be absent or null (the API gives no way
 * to tell a present-but-undefined hash value from an absent one). */
static int h_strict_hash(mailbars_call *call, void *ud) {
    json_t *v = json_object_get(mailbars_call_hash(call), "value");
    int rc = check(call, v == NULL || json_is_null(v), "equals(options.hash.value, undefined)");
    if (rc != MAILBARS_OK) return rc;
    return mailbars_call_return(call, json_string("success"));
}

/* function (a, b) { return a + b; }   and   function (val) { return val + val; } (arg "twice") */
static int h_js_add(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    json_t *a = mailbars_call_arg(call, 0);
    json_t *b = strcmp(p->arg, "twice") == 0 ? a : mailbars_call_arg(call, 1);
    json_t *r = js_add(a, b);
    if (!r) return mailbars_call_error(call, "out of memory");
    return mailbars_call_return(call, r);
}

/* function (x, y) { return x === y; }
 * With arg "options": function (x, y, options) { if (!options || options === lastOptions)
 * throw ...; lastOptions = options; return x === y; } -- each invocation must get its own
 * options: here, the call must carry exactly this invocation's two arguments and name. */
static int h_strict_equal(mailbars_call *call, void *ud) {
    const spec_port *p = ud;
    if (strcmp(p->arg, "options") == 0) {
        int rc = check(call,
                       call != NULL && mailbars_call_argc(call) == 2 &&
                           strcmp(mailbars_call_name(call), "equal") == 0,
                       "options hash was reused");
        if (rc != MAILBARS_OK) return rc;
    }
    int eq = js_strict_equal(mailbars_call_arg(call, 0), mailbars_call_arg(call, 1));
    return mailbars_call_return(call, json_boolean(eq));
}

/* function (val, that, theOther) {
 *   return 'val is ' + val + ', ' + that + ' and ' + theOther; } */
static int h_blog3(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat(&b, "val is ");
    js_cat_value(&b, mailbars_call_arg(call, 0));
    js_cat(&b, ", ");
    js_cat_value(&b, mailbars_call_arg(call, 1));
    js_cat(&b, " and ");
    js_cat_value(&b, mailbars_call_arg(call, 2));
    return ret_buf(call, &b);
}

/* function (a, b) { return a + '-' + b; } */
static int h_dash(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat_value(&b, mailbars_call_arg(call, 0));
    js_cat(&b, "-");
    js_cat_value(&b, mailbars_call_arg(call, 1));
    return ret_buf(call, &b);
}

/* function (options) { return "val is " + options.hash.fun; } */
static int h_blog_hash_fun(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat(&b, "val is ");
    js_cat_value(&b, json_object_get(mailbars_call_hash(call), "fun"));
    return ret_buf(call, &b);
}

/* Handlebars.Utils.escapeExpression(v): strings escaped, null/undefined empty, other values
 * converted with String() then escaped. (A SafeString argument arrives here as its string.) */
static void cat_escape_expression(mailbars_buf *b, const json_t *v) {
    if (!v || json_is_null(v)) return;
    if (json_is_false(v)) {
        js_cat(b, "false");
        return;
    }
    mailbars_buf s = {0};
    mailbars_value_to_string(v, &s);
    mailbars_escape_html(s.data ? s.data : "", s.len, b);
    mailbars_buf_free(&s);
}

/* function (options) { var hash = options.hash;
 *   var ariaLabel = Handlebars.Utils.escapeExpression(hash['aria-label']);
 *   var placeholder = Handlebars.Utils.escapeExpression(hash.placeholder);
 *   return new Handlebars.SafeString('<input aria-label="' + ariaLabel + '" placeholder="'
 *                                    + placeholder + '" />'); } */
static int h_input(mailbars_call *call, void *ud) {
    json_t *hash = mailbars_call_hash(call);
    mailbars_buf b = {0};
    js_cat(&b, "<input aria-label=\"");
    cat_escape_expression(&b, json_object_get(hash, "aria-label"));
    js_cat(&b, "\" placeholder=\"");
    cat_escape_expression(&b, json_object_get(hash, "placeholder"));
    js_cat(&b, "\" />");
    return ret_safe_buf(call, &b);
}

/* function (defaultString) { return new Handlebars.SafeString(defaultString); } */
static int h_safe_arg0(mailbars_call *call, void *ud) {
    mailbars_buf b = {0};
    js_cat_value(&b, mailbars_call_arg(call, 0));
    return ret_safe_buf(call, &b);
}

/* ---- the table ---- */

#define PORT(file, desc, it, name, fn, arg)                                                        \
    { file, desc, it, name, fn, arg, #fn }

static const spec_port helper_ports[] = {
    /* basic.json */
    PORT("basic", "basic context", "compiling with a string context", "length", h_length, ""),
    PORT("basic", "basic context", "this keyword in helpers", "foo", h_prefix_arg0, "bar "),
    PORT("basic", "basic context", "should handle literals in subexpression", "foo", h_arg0, ""),

    /* builtins.json: registered for every #each/#lookup case, used by "data passed to helpers" */
    PORT("builtins", "*", "*", "detectDataInsideEach", h_data_var, "exclaim"),

    /* data.json */
    PORT("data", "data",
         "passing in data to a compiled function that expects data - works with helpers", "hello",
         h_adjective_noun, ""),
    PORT("data", "data",
         "passing in data to a compiled function that expects data - works with helpers in "
         "partials",
         "hello", h_adjective_noun, ""),
    PORT("data", "data", "deep @foo triggers automatic top-level data", "let", h_let, ""),
    PORT("data", "data", "data is inherited downstream", "let", h_let, ""),
    PORT("data", "data", "parameter data can be looked up via @foo", "hello", h_prefix_arg0,
         "Hello "),
    PORT("data", "data", "nested parameter data can be looked up via @foo.bar", "hello",
         h_prefix_arg0, "Hello "),
    PORT("data", "data", "nested parameter data does not fail with @world.bar", "hello",
         h_prefix_arg0, "Hello "),
    PORT("data", "data", "hash values can be looked up via @foo", "hello", h_hello_hash_noun, ""),
    PORT("data", "data",
         "passing in data to a compiled function that expects data - works with helpers and "
         "parameters",
         "hello", h_adjective_arg_bang, ""),
    PORT("data", "data",
         "passing in data to a compiled function that expects data - works with block helpers",
         "hello", h_fn_this, ""),
    PORT("data", "data",
         "passing in data to a compiled function that expects data - works with block helpers",
         "world", h_adjective_world_bang, ""),
    PORT("data", "data",
         "passing in data to a compiled function that expects data - works with block helpers "
         "that use ..",
         "hello", h_fn_json, "{\"ctx\":{\"exclaim\":\"?\"}}"),
    PORT("data", "data",
         "passing in data to a compiled function that expects data - data is passed to with "
         "block helpers where children use ..",
         "hello", h_access_data_fn, ""),
    PORT("data", "data", "you can override inherited data when invoking a helper", "hello",
         h_fn_json,
         "{\"ctx\":{\"exclaim\":\"?\",\"zomg\":\"world\"},\"data\":{\"adjective\":\"sad\"}}"),
    PORT("data", "data", "you can override inherited data when invoking a helper with depth",
         "hello", h_fn_json, "{\"ctx\":{\"exclaim\":\"?\"},\"data\":{\"adjective\":\"sad\"}}"),
    PORT("data", "data", "*", "world", h_adjective_arg_exclaim, ""),
    PORT("data", "data - nesting", "the root context can be looked up via @root", "helper",
         h_depth_frame, ""),

    /* helpers.json: specific cases first */
    PORT("helpers", "helpers", "helper with complex lookup$", "link", h_link_prefix, ""),
    PORT("helpers", "helpers", "helper for raw block gets raw content", "raw", h_fn_undefined, ""),
    PORT("helpers", "helpers", "helper for raw block gets parameters", "raw", h_raw_abc, ""),
    PORT("helpers", "helpers - raw block parsing (with identity helper-function)", "*", "identity",
         h_fn_undefined, ""),
    PORT("helpers", "helpers", "helper block with identical context", "goodbyes", h_goodbyes_loop,
         "this"),
    PORT("helpers", "helpers", "helper block with complex lookup expression", "goodbyes",
         h_goodbyes_loop, "{}"),
    PORT("helpers", "helpers", "helper with complex lookup and nested template", "link",
         h_link_block, "prefix"),
    PORT("helpers", "helpers", "helper with complex lookup and nested template in VM+Compiler",
         "link", h_link_block, "prefix"),
    PORT("helpers", "helpers", "helper returning undefined value", "nothere", h_undefined, ""),
    PORT("helpers", "helpers", "block helper", "goodbyes", h_fn_json,
         "{\"ctx\":{\"text\":\"GOODBYE\"}}"),
    PORT("helpers", "helpers", "block helper staying in the same context", "form", h_form, "this"),
    PORT("helpers", "helpers", "block helper should have context in this", "link", h_link_block,
         "id"),
    PORT("helpers", "helpers", "block helper passing a new context", "form", h_form, "arg"),
    PORT("helpers", "helpers", "block helper passing a complex path context", "form", h_form,
         "arg"),
    PORT("helpers", "helpers", "nested block helpers", "form", h_form, "arg"),
    PORT("helpers", "helpers", "nested block helpers", "link", h_link_block, "name"),
    PORT("helpers", "helpers", "block helper inverted sections", "list", h_list, ""),
    PORT("helpers", "helpers", "pathed lambas with parameters", "./helper", h_const, "fail"),
    PORT("helpers", "helpers - helpers hash", "providing a helpers hash", "world", h_const,
         "world"),
    PORT("helpers", "helpers - helpers hash", "in cases of conflict, helpers win", "lookup",
         h_const, "helpers"),
    PORT("helpers", "helpers - helpers hash", "the helpers hash is available is nested contexts",
         "helper", h_const, "helper"),
    PORT("helpers", "helpers - helpers hash", "the helper hash should augment the global hash",
         "test_helper", h_const, "found it!"),
    PORT("helpers", "helpers", "decimal number literals work", "hello", h_hello_times2, ""),
    PORT("helpers", "helpers", "negative number literals work", "hello", h_hello_times, ""),
    PORT("helpers", "helpers - String literal parameters", "simple literals work", "hello",
         h_hello_literals, ""),
    PORT("helpers", "helpers - String literal parameters", "escaping a String is possible", "hello",
         h_prefix_arg0, "Hello "),
    PORT("helpers", "helpers - String literal parameters", "it works with ' marks", "hello",
         h_prefix_arg0, "Hello "),
    PORT("helpers", "helpers - multiple parameters", "simple multi-params work", "goodbye",
         h_goodbye_params, ""),
    PORT("helpers", "helpers - multiple parameters", "block multi-params work", "goodbye",
         h_goodbye_block_params, ""),
    PORT("helpers", "helpers - hash", "helpers can take an optional hash", "goodbye",
         h_goodbye_hash, "world"),
    PORT("helpers", "helpers - hash", "helpers can take an optional hash with booleans", "goodbye",
         h_goodbye_print, "world"),
    PORT("helpers", "helpers - hash", "block helpers can take an optional hash", "goodbye",
         h_goodbye_hash, "fn"),
    PORT("helpers", "helpers - hash",
         "block helpers can take an optional hash with single quoted stings", "goodbye",
         h_goodbye_hash, "fn"),
    PORT("helpers", "helpers - hash", "block helpers can take an optional hash with booleans",
         "goodbye", h_goodbye_print, "fn"),
    PORT("helpers", "helpers - helperMissing",
         "if a context is not found, custom helperMissing is used", "helperMissing",
         h_missing_link_to, "mesg"),
    PORT("helpers", "helpers - helperMissing",
         "if a value is not found, custom helperMissing is used", "helperMissing",
         h_missing_link_to, "winning"),
    PORT("helpers", "helpers - knownHelpers", "*", "hello", h_const, "foo"),
    PORT("helpers", "helpers - knownHelpers",
         "Unknown helper in knownHelpers only mode should be passed as undefined", "typeof",
         h_typeof, ""),
    PORT("helpers", "helpers - name field", "*", "blockHelperMissing", h_prefix_name, "missing: "),
    PORT("helpers", "helpers - name field", "*", "helperMissing", h_prefix_name,
         "helper missing: "),
    PORT("helpers", "helpers - name field", "*", "helper", h_prefix_name, "ran: "),
    PORT("helpers", "helpers - name conflicts",
         "helpers take precedence over same-named context "
         "properties",
         "goodbye", h_upper_goodbye, ""),
    PORT("helpers", "helpers - name conflicts", "Scoped names take precedence over helpers",
         "goodbye", h_upper_goodbye, ""),
    PORT("helpers", "helpers - name conflicts", "*", "goodbye", h_upper_goodbye, "fn"),
    PORT("helpers", "helpers - name conflicts", "*", "cruel", h_cruel_upper, ""),
    PORT("helpers", "helpers - block params", "should take presedence over context values",
         "goodbyes", h_fn_json, "{\"assert_bp\":1,\"ctx\":{\"value\":\"bar\"},\"bp\":[1,2]}"),
    PORT("helpers", "helpers - block params", "should allow block params on chained helpers",
         "goodbyes", h_fn_json, "{\"assert_bp\":1,\"ctx\":{\"value\":\"bar\"},\"bp\":[1,2]}"),
    PORT("helpers", "helpers - block params", "should take presedence over helper values",
         "goodbyes", h_fn_json, "{\"assert_bp\":1,\"ctx\":{},\"bp\":[1,2]}"),
    PORT("helpers", "helpers - block params", "should not take presedence over pathed values",
         "goodbyes", h_fn_json, "{\"assert_bp\":1,\"bp\":[1,2]}"),
    PORT("helpers", "helpers - block params", "should take presednece over parent block params",
         "goodbyes", h_goodbyes_counter, ""),
    PORT("helpers", "helpers - block params", "*", "value", h_const, "foo"),
    PORT("helpers", "helpers - the lookupProperty-option", "should be passed to custom helpers",
         "testHelper", h_lookup_property, ""),
    /* helpers.json: globals registered by the JS suite for most of the file */
    PORT("helpers", "*", "*", "world", h_const, "world!"),
    PORT("helpers", "*", "*", "testHelper", h_const, "found it!"),

    /* partials.json */
    PORT("partials", "partials", "dynamic partials", "partial", h_const, "dude"),
    PORT("partials", "partials", "failing dynamic partials", "partial", h_const, "missing"),

    /* regressions.json */
    PORT("regressions", "Regressions", "GS-428: Nested if else rendering", "blk",
         h_block_empty_string, "fn"),
    PORT("regressions", "Regressions", "GS-428: Nested if else rendering", "inverse",
         h_block_empty_string, "inverse"),
    PORT("regressions", "Regressions", "GH-837: undefined values for helpers", "str", h_to_string,
         ""),
    PORT("regressions", "Regressions", "GH-1054: Should handle simple safe string responses",
         "wrap", h_safe_fn, ""),
    PORT("regressions", "Regressions", "GH-1135 : Context handling within each iteration", "myif",
         h_myif, ""),
    PORT("regressions", "Regressions", "should allow hash with protected array names", "helpa",
         h_hash_value, "length"),

    /* strict.json */
    PORT("strict", "strict - strict mode", "should allow undefined hash when passed to helpers",
         "helper", h_strict_hash, ""),

    /* subexpressions.json */
    PORT("subexpressions", "subexpressions", "*", "foo", h_js_add, "twice"),
    PORT("subexpressions", "subexpressions", "arg-less helper", "bar", h_const, "LOL"),
    PORT("subexpressions", "subexpressions", "mixed paths and helpers", "blog", h_blog3, ""),
    PORT("subexpressions", "subexpressions", "as hashes", "blog", h_blog_hash_fun, ""),
    PORT("subexpressions", "subexpressions", "helper w args", "blog", h_prefix_arg0, "val is "),
    PORT("subexpressions", "subexpressions", "supports much nesting", "blog", h_prefix_arg0,
         "val is "),
    PORT("subexpressions", "subexpressions", "with hashes", "blog", h_prefix_arg0, "val is "),
    PORT("subexpressions", "subexpressions",
         "provides each nested helper invocation its own options hash", "equal", h_strict_equal,
         "options"),
    PORT("subexpressions", "subexpressions", "*", "equal", h_strict_equal, ""),
    PORT("subexpressions", "subexpressions", "GH-800 : Complex subexpressions", "dash", h_dash, ""),
    PORT("subexpressions", "subexpressions", "GH-800 : Complex subexpressions", "concat", h_js_add,
         ""),
    PORT("subexpressions", "subexpressions", "*", "input", h_input, ""),
    PORT("subexpressions", "subexpressions", "*", "t", h_safe_arg0, ""),
};

/* JavaScript function partials that have an exact template equivalent. */
static const spec_port partial_ports[] = {
    /* function () { return 'fail'; } -- the test checks that an inline partial wins over it */
    PORT("partials", "partials - inline partials", "should override global partials", "myPartial",
         NULL, "fail"),
};

/* Whether a table field matches a case field ("*" matches anything). */
static int field_match(const char *pattern, const char *value) {
    return strcmp(pattern, "*") == 0 || strcmp(pattern, value) == 0;
}

/* First row of `tab` that matches the case and name. */
static const spec_port *find_port(const spec_port *tab, size_t n, const char *file,
                                  const char *desc, const char *it, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (field_match(tab[i].file, file) && field_match(tab[i].desc, desc) &&
            field_match(tab[i].it, it) && strcmp(tab[i].name, name) == 0)
            return &tab[i];
    return NULL;
}

const spec_port *spec_find_helper(const char *file, const char *desc, const char *it,
                                  const char *name) {
    return find_port(helper_ports, sizeof helper_ports / sizeof helper_ports[0], file, desc, it,
                     name);
}

const spec_port *spec_find_partial(const char *file, const char *desc, const char *it,
                                   const char *name) {
    return find_port(partial_ports, sizeof partial_ports / sizeof partial_ports[0], file, desc, it,
                     name);
}
