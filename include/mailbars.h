/*
 * mailbars: Handlebars templates (handlebars.js 4.7 semantics) and Amazon SES email
 * templates rendered into standards-correct MIME messages.
 *
 * This is the only public header. Conventions:
 *  - Handles are opaque and created/freed in pairs (`*_new` / `*_free`); `*_free(NULL)` is a no-op.
 *  - Functions that can fail return a status code (`MAILBARS_OK` is 0) and fill a caller-owned
 *    `mailbars_error` when one is given (it may be NULL).
 *  - Strings are UTF-8 with explicit lengths unless a comment says "NUL-terminated".
 *  - JSON values are jansson `json_t`. "Borrowed" means the library does not take a reference;
 *    "stolen" means the library takes over the caller's reference.
 *  - A context pointer argument may be NULL, which means the documented defaults.
 *  - Compiled templates are immutable and may be shared by any number of threads; a render state
 *    belongs to one thread at a time.
 */
#ifndef MAILBARS_H
#define MAILBARS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MAILBARS_VERSION_MAJOR 0
#define MAILBARS_VERSION_MINOR 1
#define MAILBARS_VERSION_PATCH 0
#define MAILBARS_VERSION_STRING "0.1.0"
/* One number for comparisons: 0x00MMmmpp. */
#define MAILBARS_VERSION_NUMBER                                                                    \
    ((MAILBARS_VERSION_MAJOR << 16) | (MAILBARS_VERSION_MINOR << 8) | MAILBARS_VERSION_PATCH)

#if defined(_WIN32) && defined(MAILBARS_SHARED_BUILD)
#define MAILBARS_API __declspec(dllexport)
#elif defined(__GNUC__)
#define MAILBARS_API __attribute__((visibility("default")))
#else
#define MAILBARS_API
#endif

/* The version of the library actually linked, e.g. "0.1.0" (static string). */
MAILBARS_API const char *mailbars_version(void);
/* The linked library's MAILBARS_VERSION_NUMBER. */
MAILBARS_API unsigned mailbars_version_number(void);

/* ---------------------------------------------------------------------------------------------
 * Status codes. Numbers are stable: new codes are only ever appended within their range.
 * ------------------------------------------------------------------------------------------- */
#define MAILBARS_STATUS_LIST(X)                                                                    \
    X(OK, 0, "success")                                                                            \
    /* general 1..19 */                                                                            \
    X(ERR_NOMEM, 1, "out of memory")                                                               \
    X(ERR_ARGUMENT, 2, "invalid argument")                                                         \
    X(ERR_IO, 3, "input/output error")                                                             \
    X(ERR_JSON, 4, "invalid JSON")                                                                 \
    X(ERR_INTERNAL, 5, "internal error")                                                           \
    X(ERR_UTF8, 6, "invalid UTF-8")                                                                \
    /* engine 20..39 */                                                                            \
    X(ERR_PARSE, 20, "template parse error")                                                       \
    X(ERR_COMPILE, 21, "template compile error")                                                   \
    X(ERR_RENDER, 22, "template render error")                                                     \
    X(ERR_MISSING_HELPER, 23, "missing helper")                                                    \
    X(ERR_MISSING_PARTIAL, 24, "missing partial")                                                  \
    X(ERR_STRICT, 25, "strict mode lookup of a missing value")                                     \
    X(ERR_HELPER, 26, "helper reported an error")                                                  \
    X(ERR_MISSING_VALUE, 27, "value is not present in the rendering data")                         \
    /* limits 40..59: each resource an untrusted input can consume */                              \
    X(ERR_LIMIT_TEMPLATE_SIZE, 40, "template size limit exceeded")                                 \
    X(ERR_LIMIT_NESTING, 41, "template nesting depth limit exceeded")                              \
    X(ERR_LIMIT_PARTIAL_DEPTH, 42, "partial recursion depth limit exceeded")                       \
    X(ERR_LIMIT_STEPS, 43, "render step limit exceeded")                                           \
    X(ERR_LIMIT_OUTPUT, 44, "output size limit exceeded")                                          \
    X(ERR_LIMIT_ITERATIONS, 45, "each iteration limit exceeded")                                   \
    X(ERR_LIMIT_JSON_DEPTH, 46, "JSON nesting depth limit exceeded")                               \
    X(ERR_LIMIT_JSON_SIZE, 47, "JSON size limit exceeded")                                         \
    X(ERR_LIMIT_CALL_DEPTH, 48, "helper/subexpression call depth limit exceeded")                  \
    /* MIME 60..79 */                                                                              \
    X(ERR_CHARSET, 60, "unknown charset")                                                          \
    X(ERR_UNMAPPABLE, 61, "character cannot be represented in the charset")                        \
    X(ERR_ADDRESS, 62, "invalid email address")                                                    \
    X(ERR_HEADER, 63, "invalid header value")                                                      \
    X(ERR_IDNA, 64, "domain cannot be converted to IDNA")                                          \
    X(ERR_MESSAGE, 65, "message is incomplete")                                                    \
    X(ERR_BOUNDARY, 66, "the multipart boundary occurs in the content")                            \
    /* SES 80..99 */                                                                               \
    X(ERR_SES_RENDERING, 80, "SES rendering failure")                                              \
    X(ERR_SES_INVALID_TEMPLATE, 81, "invalid SES template")                                        \
    X(ERR_SES_SHAPE, 82, "JSON does not have an accepted SES shape")                               \
    X(ERR_SES_LIMIT, 83, "SES limit exceeded")

typedef enum mailbars_status {
#define MAILBARS_X_ENUM(name, num, msg) MAILBARS_##name = num,
    MAILBARS_STATUS_LIST(MAILBARS_X_ENUM)
#undef MAILBARS_X_ENUM
} mailbars_status;

/* A static English message for a status code ("unknown status" for unknown codes). */
MAILBARS_API const char *mailbars_status_message(int code);
/* The symbolic name without prefix, e.g. "ERR_PARSE" (static string). */
MAILBARS_API const char *mailbars_status_name(int code);

/* Caller-owned error report. line and column are 1-based; 0 means "no position". `part`
 * names the SES part ("subject", "text", "html") or partial the position refers to, or is "". */
typedef struct mailbars_error {
    int code;
    int line;
    int column;
    char part[64];
    char message[512];
} mailbars_error;

/* Resets *err to code 0, empty message, no position. */
MAILBARS_API void mailbars_error_clear(mailbars_error *err);

/* ---------------------------------------------------------------------------------------------
 * Memory. One allocator hook for every allocation the library makes itself (jansson has its
 * own: json_set_alloc_funcs). Set it before any other call; it is process-wide.
 * The library never aborts on allocation failure: it returns MAILBARS_ERR_NOMEM.
 * ------------------------------------------------------------------------------------------- */
typedef void *(*mailbars_malloc_fn)(size_t size);
typedef void *(*mailbars_realloc_fn)(void *ptr, size_t size);
typedef void (*mailbars_free_fn)(void *ptr);
/* NULL for any function restores the C library's. */
MAILBARS_API void mailbars_set_allocator(mailbars_malloc_fn m, mailbars_realloc_fn r,
                                         mailbars_free_fn f);
/* Frees memory the library handed to the caller (strings from *_string functions). */
MAILBARS_API void mailbars_free(void *ptr);

/* A growable byte buffer the caller owns (a value type, like cmark's strbuf). Zero-initialise
 * it or call mailbars_buf_init; release with mailbars_buf_free. `data` is always NUL-terminated
 * after a successful append (when cap > 0). */
typedef struct mailbars_buf {
    char *data;
    size_t len;
    size_t cap;
} mailbars_buf;

MAILBARS_API void mailbars_buf_init(mailbars_buf *b);
MAILBARS_API void mailbars_buf_free(mailbars_buf *b);
/* Length to 0, capacity kept. */
MAILBARS_API void mailbars_buf_reset(mailbars_buf *b);
/* Returns MAILBARS_OK or MAILBARS_ERR_NOMEM (the buffer is unchanged on failure). */
MAILBARS_API int mailbars_buf_append(mailbars_buf *b, const void *data, size_t len);
MAILBARS_API int mailbars_buf_reserve(mailbars_buf *b, size_t extra);

/* A sink for streamed output. Return 0 to continue, non-zero to abort with MAILBARS_ERR_IO. */
typedef int (*mailbars_write_fn)(void *userdata, const char *data, size_t len);

/* =============================================================================================
 * Engine: Handlebars templates.
 * ========================================================================================== */

typedef struct mailbars_env mailbars_env;                   /* helpers + partials registry */
typedef struct mailbars_compile_ctx mailbars_compile_ctx;   /* compile options and limits */
typedef struct mailbars_template mailbars_template;         /* compiled, immutable, shareable */
typedef struct mailbars_render_ctx mailbars_render_ctx;     /* render limits and hooks */
typedef struct mailbars_render_state mailbars_render_state; /* per-thread reusable state */
typedef struct mailbars_call mailbars_call;                 /* a helper invocation ("options") */

/* Compile flags: handlebars.js compile options. */
enum {
    MAILBARS_NO_ESCAPE = 1u << 0,                /* noEscape */
    MAILBARS_STRICT = 1u << 1,                   /* strict */
    MAILBARS_ASSUME_OBJECTS = 1u << 2,           /* assumeObjects */
    MAILBARS_COMPAT = 1u << 3,                   /* compat: Mustache-style recursive lookup */
    MAILBARS_KNOWN_HELPERS_ONLY = 1u << 4,       /* knownHelpersOnly */
    MAILBARS_PREVENT_INDENT = 1u << 5,           /* preventIndent */
    MAILBARS_IGNORE_STANDALONE = 1u << 6,        /* ignoreStandalone */
    MAILBARS_EXPLICIT_PARTIAL_CONTEXT = 1u << 7, /* explicitPartialContext */
    MAILBARS_NO_DATA = 1u << 8,                  /* data: false (no @data variables) */
    /* SES semantics: a missing or null value in output position ({{a}}, {{{a.b}}}) fails the
     * render with MAILBARS_ERR_MISSING_VALUE and SES's text
     * "Attribute 'a.b' is not present in the rendering data." */
    MAILBARS_MISSING_IS_ERROR = 1u << 9,
};

/* Limits. Each has its own status code when exceeded; defaults in docs/limits.md. */
typedef enum mailbars_limit {
    MAILBARS_LIMIT_TEMPLATE_SIZE, /* bytes of one template source (compile) */
    MAILBARS_LIMIT_NESTING,       /* block/subexpression nesting depth (compile) */
    MAILBARS_LIMIT_PARTIAL_DEPTH, /* nested partial invocations (render) */
    MAILBARS_LIMIT_STEPS,         /* VM instructions per render (render) */
    MAILBARS_LIMIT_OUTPUT,        /* output bytes per render (render) */
    MAILBARS_LIMIT_ITERATIONS,    /* total each/section iterations per render (render) */
    MAILBARS_LIMIT_JSON_DEPTH,    /* nesting of JSON data the library parses */
    MAILBARS_LIMIT_JSON_SIZE,     /* bytes of JSON data the library parses */
    MAILBARS_LIMIT_CALL_DEPTH,    /* nested helper/block calls at render time (render) */
    MAILBARS_LIMIT__COUNT
} mailbars_limit;

/* The documented default of a limit (0 for an unknown limit). */
MAILBARS_API uint64_t mailbars_limit_default(mailbars_limit which);

/* ---- environment: helpers and partials ---- */

/* A helper. It reads its arguments through `call`, produces its result with
 * mailbars_call_return* / mailbars_call_write / mailbars_call_fn, and returns MAILBARS_OK, or
 * a status after mailbars_call_error(). `userdata` is the pointer given at registration. */
typedef int (*mailbars_helper_fn)(mailbars_call *call, void *userdata);

/* A new environment with the built-in helpers (if, unless, each, with, lookup, log)
 * registered. Returns NULL on allocation failure. */
MAILBARS_API mailbars_env *mailbars_env_new(void);
MAILBARS_API void mailbars_env_free(mailbars_env *env);
/* Registers (or replaces) a helper. `name` is copied. Registering "helperMissing" or
 * "blockHelperMissing" overrides those hooks as in handlebars.js. */
MAILBARS_API int mailbars_env_register_helper(mailbars_env *env, const char *name,
                                              mailbars_helper_fn fn, void *userdata);
/* Removes a helper (built-ins included). Returns MAILBARS_ERR_ARGUMENT if absent. */
MAILBARS_API int mailbars_env_unregister_helper(mailbars_env *env, const char *name);
/* Registers (or replaces) a partial's source; `name` and `src` are copied. Partials are
 * compiled together with each template compiled against this env, with its options. */
MAILBARS_API int mailbars_env_register_partial(mailbars_env *env, const char *name, const char *src,
                                               size_t len);
/* Log hook for the `log` helper: level is "debug", "info", "warn" or "error"; the message is
 * the helper's arguments joined by a space. Default: none (log renders nothing either way). */
typedef void (*mailbars_log_fn)(void *userdata, const char *level, const char *msg, size_t len);
MAILBARS_API void mailbars_env_set_logger(mailbars_env *env, mailbars_log_fn fn, void *userdata);

/* ---- compile ---- */

MAILBARS_API mailbars_compile_ctx *mailbars_compile_ctx_new(void);
MAILBARS_API void mailbars_compile_ctx_free(mailbars_compile_ctx *cctx);
MAILBARS_API void mailbars_compile_ctx_set_flags(mailbars_compile_ctx *cctx, unsigned flags);
MAILBARS_API unsigned mailbars_compile_ctx_flags(const mailbars_compile_ctx *cctx);
/* Sets a compile-time limit (TEMPLATE_SIZE, NESTING); others are ignored here. */
MAILBARS_API int mailbars_compile_ctx_set_limit(mailbars_compile_ctx *cctx, mailbars_limit which,
                                                uint64_t value);
/* knownHelpers: marks `name` as a helper that will exist at render time. */
MAILBARS_API int mailbars_compile_ctx_add_known_helper(mailbars_compile_ctx *cctx,
                                                       const char *name);
/* A simple mustache `{{name}}` (no params) that is copied to the output verbatim, as written,
 * instead of being evaluated (SES's {{amazonSESUnsubscribeUrl}}, {{ses:openTracker}}). */
MAILBARS_API int mailbars_compile_ctx_add_passthrough(mailbars_compile_ctx *cctx, const char *name);

/* Compiles `src` and every partial registered in `env` (env may be NULL: built-ins only).
 * Helpers are resolved against `env`, which must outlive the template and not change after.
 * On failure returns NULL and fills err (code, line, column, message in handlebars.js form,
 * e.g. "Parse error on line 1: ..."). */
MAILBARS_API mailbars_template *mailbars_compile(const mailbars_env *env, const char *src,
                                                 size_t len, const mailbars_compile_ctx *cctx,
                                                 mailbars_error *err);
MAILBARS_API void mailbars_template_free(mailbars_template *tpl);
/* Writes a human-readable listing of the bytecode (for debugging and tests). */
MAILBARS_API int mailbars_template_disassemble(const mailbars_template *tpl, mailbars_buf *out);

/* ---- render ---- */

MAILBARS_API mailbars_render_ctx *mailbars_render_ctx_new(void);
MAILBARS_API void mailbars_render_ctx_free(mailbars_render_ctx *rctx);
/* Sets a render-time limit (PARTIAL_DEPTH, STEPS, OUTPUT, ITERATIONS, CALL_DEPTH). */
MAILBARS_API int mailbars_render_ctx_set_limit(mailbars_render_ctx *rctx, mailbars_limit which,
                                               uint64_t value);

/* Reusable per-thread render state (stacks, arena, output buffer). `rctx` is copied. */
MAILBARS_API mailbars_render_state *mailbars_render_state_new(const mailbars_render_ctx *rctx);
MAILBARS_API void mailbars_render_state_free(mailbars_render_state *st);

/* Renders `tpl` with context `data` (borrowed; NULL means undefined) and optional runtime
 * @data variables `data_vars` (borrowed object or NULL) into the state's output buffer.
 * The output stays valid until the next render with this state: see mailbars_render_output.
 * Steady state makes no heap allocation. */
MAILBARS_API int mailbars_render(mailbars_render_state *st, const mailbars_template *tpl,
                                 json_t *data, json_t *data_vars, mailbars_error *err);
/* The last render's output (NUL-terminated) and its length. */
MAILBARS_API const char *mailbars_render_output(const mailbars_render_state *st, size_t *len);
/* Like mailbars_render but appends the output to `out`. */
MAILBARS_API int mailbars_render_buf(mailbars_render_state *st, const mailbars_template *tpl,
                                     json_t *data, json_t *data_vars, mailbars_buf *out,
                                     mailbars_error *err);
/* Like mailbars_render but streams the output to `write` in chunks. */
MAILBARS_API int mailbars_render_stream(mailbars_render_state *st, const mailbars_template *tpl,
                                        json_t *data, json_t *data_vars, mailbars_write_fn write,
                                        void *userdata, mailbars_error *err);
/* One-shot convenience: compile is not included. Returns a string the caller frees with
 * mailbars_free, or NULL with err filled. */
MAILBARS_API char *mailbars_render_string(const mailbars_template *tpl, json_t *data, size_t *len,
                                          mailbars_error *err);

/* ---- helper calls (only valid inside a helper, during the call) ---- */

/* The helper's name as invoked (options.name). */
MAILBARS_API const char *mailbars_call_name(const mailbars_call *call);
/* Number of positional arguments. */
MAILBARS_API size_t mailbars_call_argc(const mailbars_call *call);
/* Positional argument i (borrowed). NULL means undefined (missing value or out of range). */
MAILBARS_API json_t *mailbars_call_arg(const mailbars_call *call, size_t i);
/* The hash arguments as an object (borrowed; an empty object when none). */
MAILBARS_API json_t *mailbars_call_hash(mailbars_call *call);
/* The current context `this` (borrowed; may be NULL for undefined). */
MAILBARS_API json_t *mailbars_call_context(const mailbars_call *call);
/* Looks up an @data variable by name without '@' ("index", "root", a runtime variable...).
 * Borrowed; NULL when absent. */
MAILBARS_API json_t *mailbars_call_data(const mailbars_call *call, const char *name);
/* 1 when invoked as a block ({{#name}}…{{/name}}), else 0. */
MAILBARS_API int mailbars_call_is_block(const mailbars_call *call);
/* 1 when the block has an {{else}} part. */
MAILBARS_API int mailbars_call_has_inverse(const mailbars_call *call);
/* Number of block params the block declares (`as |a b|`), i.e. fn.blockParams. */
MAILBARS_API size_t mailbars_call_block_param_count(const mailbars_call *call);
/* 1 when the template was compiled with escaping (not noEscape) and this is a {{ }} mustache. */
MAILBARS_API int mailbars_call_escapes(const mailbars_call *call);

/* Renders the block body (options.fn) with context `ctx` (borrowed; NULL = undefined).
 * `frame` (borrowed object or NULL) adds @data variables on top of the current ones
 * (createFrame). `block_params` (borrowed, `nparams` values) binds `as |a b|`.
 * If `capture` is NULL the output is appended to the helper's result; otherwise it is
 * rendered into *capture (reset first; owned by the call, valid until the helper returns). */
MAILBARS_API int mailbars_call_fn(mailbars_call *call, json_t *ctx, json_t *frame,
                                  json_t *const *block_params, size_t nparams,
                                  mailbars_buf **capture);
/* The same for the {{else}} part (options.inverse); renders nothing when there is none. */
MAILBARS_API int mailbars_call_inverse(mailbars_call *call, json_t *ctx, json_t *frame,
                                       json_t *const *block_params, size_t nparams,
                                       mailbars_buf **capture);
/* Appends text to the result verbatim, as a handlebars.js SafeString would be. */
MAILBARS_API int mailbars_call_write(mailbars_call *call, const char *s, size_t len);
/* Appends text to the result HTML-escaped (Utils.escapeExpression). */
MAILBARS_API int mailbars_call_write_escaped(mailbars_call *call, const char *s, size_t len);
/* Sets the helper's return value (stolen reference; NULL = undefined). For {{helper}} the value
 * is converted to a string as JavaScript would and escaped; in a subexpression it is passed on
 * as is. If the helper also wrote text, the written text is the result. */
MAILBARS_API int mailbars_call_return(mailbars_call *call, json_t *value);
/* Returns a string that is not escaped (SafeString). The bytes are copied. */
MAILBARS_API int mailbars_call_return_safe(mailbars_call *call, const char *s, size_t len);
/* Fails the render with MAILBARS_ERR_HELPER and `message` (copied). Returns that code, so
 * `return mailbars_call_error(call, "...");` works. */
MAILBARS_API int mailbars_call_error(mailbars_call *call, const char *message);

/* ---- value helpers usable anywhere ---- */

/* Appends `v` converted to a string as JavaScript's String(v) does for JSON values
 * (numbers in shortest round-trip form, arrays joined with ",", objects "[object Object]",
 * null/NULL as ""). */
MAILBARS_API int mailbars_value_to_string(const json_t *v, mailbars_buf *out);
/* handlebars.js truthiness for if/unless: false, null, undefined, "", 0 and [] are falsy. */
MAILBARS_API int mailbars_value_is_truthy(const json_t *v);
/* Appends `s` HTML-escaped exactly as handlebars.js (& < > " ' ` =). */
MAILBARS_API int mailbars_escape_html(const char *s, size_t len, mailbars_buf *out);
/* Parses JSON text (NUL bytes allowed inside strings) after checking it against the JSON_SIZE
 * and JSON_DEPTH limits of `limits` (NULL: the defaults). Returns a new reference, or NULL with
 * err filled: the limit's code, or MAILBARS_ERR_JSON with the line and column of the error.
 * `what` (may be NULL) names the text in messages, e.g. "data.json". */
MAILBARS_API json_t *mailbars_json_parse(const char *s, size_t len, const char *what,
                                         const mailbars_render_ctx *limits, mailbars_error *err);

/* =============================================================================================
 * MIME layer: RFC 5322 / 2045 / 2046 / 2047 messages. Knows nothing of Handlebars.
 * ========================================================================================== */

/* Content-Transfer-Encoding choice for bodies. */
typedef enum mailbars_encoding {
    MAILBARS_ENC_AUTO = 0,         /* 7bit if possible, else the smaller of QP and base64 */
    MAILBARS_ENC_QUOTED_PRINTABLE, /* always quoted-printable */
    MAILBARS_ENC_BASE64,           /* always base64 */
} mailbars_encoding;

/* Quoted-printable (RFC 2045 6.7) of `len` bytes appended to `out`: lines <= 76, soft breaks,
 * trailing whitespace encoded. With `text` != 0 line breaks (LF, CRLF, lone CR) become CRLF;
 * otherwise CR and LF bytes are encoded. */
MAILBARS_API int mailbars_qp_encode(const char *src, size_t len, int text, mailbars_buf *out);
/* Decodes quoted-printable (tolerant: bad escapes are kept literally). */
MAILBARS_API int mailbars_qp_decode(const char *src, size_t len, mailbars_buf *out);
/* Base64 with CRLF after every 76 characters (line_len 0 = no line breaks). */
MAILBARS_API int mailbars_base64_encode(const void *src, size_t len, size_t line_len,
                                        mailbars_buf *out);
/* Decodes base64, ignoring whitespace; MAILBARS_ERR_ARGUMENT on invalid input. */
MAILBARS_API int mailbars_base64_decode(const char *src, size_t len, mailbars_buf *out);
/* RFC 2047 encoded words for a header value (UTF-8) in `charset` (NULL = UTF-8, else any ICU
 * converter name): B or Q, whichever is shorter; each word <= 75 characters and converted on
 * its own (stateful charsets end every word in ASCII); no character split across words; words
 * folded with CRLF SP so no line passes 78, given that the line already holds `column`
 * characters (9 after "Subject: "). Every CR and LF becomes a space; any other control
 * character is MAILBARS_ERR_HEADER. Appends to `out` without a final CRLF. */
MAILBARS_API int mailbars_rfc2047_encode(const char *s, size_t len, const char *charset,
                                         size_t column, mailbars_buf *out, mailbars_error *err);
/* Parses and validates a comma-separated address list ("Name <a@b>, c@d", quoted names may
 * hold commas) and appends its header form: display names quoted or RFC 2047-encoded in
 * `charset` (NULL = UTF-8), IDN domains in punycode, folded as after "To: " (no final CRLF).
 * Errors: MAILBARS_ERR_ADDRESS, MAILBARS_ERR_IDNA, MAILBARS_ERR_UTF8, MAILBARS_ERR_UNMAPPABLE. */
MAILBARS_API int mailbars_address_list_format(const char *list, size_t len, const char *charset,
                                              mailbars_buf *out, mailbars_error *err);

/* Message builder. Reusable: mailbars_message_reset keeps its buffers. */
typedef struct mailbars_message mailbars_message;

typedef enum mailbars_addr_field {
    MAILBARS_FROM,
    MAILBARS_TO,
    MAILBARS_CC,
    MAILBARS_REPLY_TO,
} mailbars_addr_field;

MAILBARS_API mailbars_message *mailbars_message_new(void);
MAILBARS_API void mailbars_message_free(mailbars_message *msg);
/* Clears content and headers; keeps charset, encoding and deterministic settings. */
MAILBARS_API void mailbars_message_reset(mailbars_message *msg);
/* Charset by ICU converter name ("UTF-8" default, "ISO-2022-JP", "Shift_JIS", ...). */
MAILBARS_API int mailbars_message_set_charset(mailbars_message *msg, const char *charset,
                                              mailbars_error *err);
MAILBARS_API void mailbars_message_set_encoding(mailbars_message *msg, mailbars_encoding enc);
/* Adds one or more comma-separated addresses ("Name <a@b>, c@d") to a field, validated. */
MAILBARS_API int mailbars_message_add_address(mailbars_message *msg, mailbars_addr_field field,
                                              const char *list, size_t len, mailbars_error *err);
MAILBARS_API int mailbars_message_set_subject(mailbars_message *msg, const char *s, size_t len,
                                              mailbars_error *err);
/* Bodies (UTF-8). A message needs at least one. */
MAILBARS_API int mailbars_message_set_text(mailbars_message *msg, const char *s, size_t len,
                                           mailbars_error *err);
MAILBARS_API int mailbars_message_set_html(mailbars_message *msg, const char *s, size_t len,
                                           mailbars_error *err);
/* Deterministic mode: a fixed Date (unix time, zone offset in minutes), boundary and
 * Message-ID (without angle brackets). NULL/unset means generated values. */
MAILBARS_API void mailbars_message_set_date(mailbars_message *msg, time_t when, int tz_minutes);
MAILBARS_API int mailbars_message_set_boundary(mailbars_message *msg, const char *boundary);
MAILBARS_API int mailbars_message_set_message_id(mailbars_message *msg, const char *id);
/* Appends the complete RFC 5322 message (CRLF, 7-bit) to `out`. */
MAILBARS_API int mailbars_message_write(mailbars_message *msg, mailbars_buf *out,
                                        mailbars_error *err);
/* Like mailbars_message_write but hands the message to `write` (the engine's writer callback
 * type); a non-zero return from `write` is MAILBARS_ERR_IO. */
MAILBARS_API int mailbars_message_write_stream(mailbars_message *msg, mailbars_write_fn write,
                                               void *userdata, mailbars_error *err);

/* =============================================================================================
 * SES layer: Amazon SES template sets rendered into MIME messages.
 * ========================================================================================== */
/* @@SES-API@@ (declarations added by the SES layer) */

/* Which semantics to render with. */
typedef enum mailbars_ses_profile {
    MAILBARS_PROFILE_SES = 0,   /* SES: no escaping, missing values fail, SES placeholders */
    MAILBARS_PROFILE_HANDLEBARS /* plain handlebars.js 4.7 semantics (escaping on) */
} mailbars_ses_profile;

/* Options for template sets and requests. A NULL pointer means all defaults (the zero value). */
typedef struct mailbars_ses_options {
    mailbars_ses_profile profile;
    int escape;        /* SES profile: 1 turns handlebars.js escaping on for {{x}} */
    int strict_limits; /* 1: the 50-destination limit is an error instead of a warning */
    /* Limits (borrowed for the call; a template copies them), NULL: the defaults. Every limit
     * set on this context applies: TEMPLATE_SIZE and NESTING to compiling each part, the
     * render limits to each part's render, JSON_DEPTH and JSON_SIZE to the JSON text that the
     * functions taking these options parse (documents, TemplateData, bulk records). */
    const mailbars_render_ctx *limits;
} mailbars_ses_options;

/* SES limits (DESIGN.md section 3). */
#define MAILBARS_SES_MAX_TEMPLATE_BYTES 512000u /* 500 KB, subject + text + HTML */
#define MAILBARS_SES_MAX_DATA_CHARS 262144u     /* characters of one TemplateData string */
#define MAILBARS_SES_MAX_NAME_LEN 64u
#define MAILBARS_SES_MAX_DESTINATIONS 50u /* per SendBulkTemplatedEmail request */

/* A template set: subject, text and HTML, each compiled separately (inline partials are scoped
 * to their part). Immutable once created; share it freely between threads. */
typedef struct mailbars_ses_template mailbars_ses_template;

/* From parts (UTF-8, NUL-terminated; text or html may be NULL, not both; subject may be NULL
 * for an empty subject). `name` may be NULL ("" then). Compile errors fill err->part with
 * "subject", "text" or "html" and line/column with the position in that part's text. */
MAILBARS_API mailbars_ses_template *mailbars_ses_template_new(const char *name, const char *subject,
                                                              const char *text, const char *html,
                                                              const mailbars_ses_options *opts,
                                                              mailbars_error *err);
/* From JSON text in any accepted shape: SES v1 {"Template":{...}} or its inner object, SES v2
 * {"TemplateName","TemplateContent":{...}}. Bad JSON: MAILBARS_ERR_JSON with line/column in
 * the JSON text; wrong shape: MAILBARS_ERR_SES_SHAPE naming the field. */
MAILBARS_API mailbars_ses_template *mailbars_ses_template_parse(const char *json, size_t len,
                                                                const mailbars_ses_options *opts,
                                                                mailbars_error *err);
/* The same from a parsed value (borrowed). */
MAILBARS_API mailbars_ses_template *
mailbars_ses_template_from_json(json_t *root, const mailbars_ses_options *opts,
                                mailbars_error *err);
MAILBARS_API void mailbars_ses_template_free(mailbars_ses_template *t);
/* The template's name ("" when none). */
MAILBARS_API const char *mailbars_ses_template_name(const mailbars_ses_template *t);

/* Checks `name` against ^[A-Za-z0-9_-]{1,64}$. MAILBARS_OK or MAILBARS_ERR_SES_LIMIT. */
MAILBARS_API int mailbars_ses_check_name(const char *name, mailbars_error *err);
/* Parses one TemplateData string: a JSON object of at most 262,144 characters. Returns a new
 * reference or NULL with err filled (MAILBARS_ERR_JSON with line/column, ERR_SES_SHAPE,
 * ERR_SES_LIMIT, the JSON limits of `limits`, NULL: defaults). `what` names the field in
 * messages, e.g. "TemplateData". */
MAILBARS_API json_t *mailbars_ses_parse_data(const char *s, size_t len, const char *what,
                                             const mailbars_render_ctx *limits,
                                             mailbars_error *err);

/* Deep merge, as SES merges ReplacementTemplateData over DefaultTemplateData: objects merge key
 * by key, recursively; arrays and scalars replace. Either may be NULL. Returns a new reference
 * (an empty object when both are NULL), or NULL on allocation failure. Inputs are borrowed and
 * never modified. */
MAILBARS_API json_t *mailbars_ses_merge(json_t *defaults, json_t *replacement);

/* A reusable per-thread render state. */
typedef struct mailbars_ses_render_state mailbars_ses_render_state;
MAILBARS_API mailbars_ses_render_state *mailbars_ses_render_state_new(void);
MAILBARS_API void mailbars_ses_render_state_free(mailbars_ses_render_state *st);

/* Renders subject, then text, then HTML with `data` (borrowed) and puts them into `msg`
 * (subject and bodies only; addresses and other settings are the caller's). The first failure
 * stops: the status is returned and err holds the SES errorMessage (e.g. "Attribute 'a.b' is
 * not present in the rendering data.") with err->part naming the part. Strings in `data` must
 * be valid UTF-8, as jansson requires of every string (json_string_nocheck ones included):
 * bodies built only from such strings and valid template text are not checked again. */
MAILBARS_API int mailbars_ses_render(mailbars_ses_render_state *st, const mailbars_ses_template *t,
                                     json_t *data, mailbars_message *msg, mailbars_error *err);
/* Renders only, without a message: the three outputs stay valid until the next render with
 * `st` (NULL for a part the template lacks). */
MAILBARS_API int mailbars_ses_render_parts(mailbars_ses_render_state *st,
                                           const mailbars_ses_template *t, json_t *data,
                                           const char **subject, size_t *subject_len,
                                           const char **text, size_t *text_len, const char **html,
                                           size_t *html_len, mailbars_error *err);
/* A hint for a loop over recipients whose data are already in memory: starts loading the data
 * of the next renders, so that the cache misses of one overlap with the render before it.
 * upcoming[0] is the data of the very next render, upcoming[1] of the one after (n of them;
 * only the first three are used). Call it before each render, with the window moved on by one:
 * for recipients data[0..count), (&data[i + 1], count - i - 1) before rendering data[i]. It
 * only reads the data, during the call, keeps nothing, and never fails; rendering without it
 * gives the same output. */
MAILBARS_API void mailbars_ses_prefetch(const mailbars_ses_template *t, json_t *const *upcoming,
                                        size_t n);
/* The SES "Rendering Failure" record {"templateName":…,"errorMessage":…} for an error
 * (new reference). */
MAILBARS_API json_t *mailbars_ses_failure_record(const mailbars_ses_template *t,
                                                 const mailbars_error *err);

/* ---- requests ---- */

typedef enum mailbars_ses_request_kind {
    MAILBARS_REQ_TEST_RENDER,         /* TestRenderTemplate {TemplateName, TemplateData} */
    MAILBARS_REQ_SEND_TEMPLATED,      /* SendTemplatedEmail {Source, Destination, Template…} */
    MAILBARS_REQ_SEND_BULK_TEMPLATED, /* SendBulkTemplatedEmail {Destinations, Default…} */
    MAILBARS_REQ_SEND_BULK_V2,        /* SES v2 SendBulkEmail {BulkEmailEntries, …} */
} mailbars_ses_request_kind;

typedef struct mailbars_ses_request mailbars_ses_request;

/* One destination of a request. Arrays are borrowed from the request (NULL when absent). */
typedef struct mailbars_ses_destination {
    json_t *to, *cc, *bcc; /* arrays of address strings */
    json_t *data;          /* this destination's TemplateData, merged over the defaults: a
                            * new reference the caller releases with json_decref */
} mailbars_ses_destination;

/* Parses a request from JSON text (kind detected from its fields). Errors as for templates;
 * more than 50 destinations is a warning in *warning (when non-NULL; code 0 when none) or an
 * error with opts->strict_limits. */
MAILBARS_API mailbars_ses_request *mailbars_ses_request_parse(const char *json, size_t len,
                                                              const mailbars_ses_options *opts,
                                                              mailbars_error *warning,
                                                              mailbars_error *err);
MAILBARS_API void mailbars_ses_request_free(mailbars_ses_request *r);
MAILBARS_API mailbars_ses_request_kind mailbars_ses_request_kind_of(const mailbars_ses_request *r);
/* The template name the request refers to (may be ""). */
MAILBARS_API const char *mailbars_ses_request_template_name(const mailbars_ses_request *r);
/* Source (From) and ReplyToAddresses (array), borrowed, NULL when absent. */
MAILBARS_API const char *mailbars_ses_request_source(const mailbars_ses_request *r);
MAILBARS_API json_t *mailbars_ses_request_reply_to(const mailbars_ses_request *r);
/* Inline template content (SES v2 TemplateContent in the request), borrowed, or NULL. */
MAILBARS_API json_t *mailbars_ses_request_inline_template(const mailbars_ses_request *r);
/* Number of destinations (1 for TestRenderTemplate and SendTemplatedEmail). */
MAILBARS_API size_t mailbars_ses_request_count(const mailbars_ses_request *r);
/* Destination i (0-based). Fails with err (e.g. a ReplacementTemplateData that is not valid
 * JSON, naming the field and position) when its data cannot be built. */
MAILBARS_API int mailbars_ses_request_destination(const mailbars_ses_request *r, size_t i,
                                                  mailbars_ses_destination *out,
                                                  mailbars_error *err);

/* ---- check (lint) ---- */

typedef enum mailbars_severity {
    MAILBARS_SEV_ERROR = 0,
    MAILBARS_SEV_WARNING = 1
} mailbars_severity;

typedef struct mailbars_ses_diag {
    mailbars_severity severity;
    int code;                   /* a status code */
    char part[16];              /* "subject", "text", "html", or "" for the file as a whole */
    int line, column;           /* 1-based position in the part's text (0: none) */
    int file_line, file_column; /* 1-based position of the same character in the JSON file */
    char *source_line;          /* the part's line at `line` (NUL-terminated) or NULL */
    char message[512];
} mailbars_ses_diag;

typedef struct mailbars_ses_diags {
    mailbars_ses_diag *items;
    size_t len, cap;
} mailbars_ses_diags;

/* Validates JSON text holding a template (any shape) or a request with inline content, and
 * appends every error and warning to `out` (zero-initialise it; release with
 * mailbars_ses_diags_free). `sample` (borrowed, may be NULL) adds an error for every attribute
 * the templates reference in output position that the sample lacks. Returns MAILBARS_OK when
 * the checks ran (even with diagnostics), or MAILBARS_ERR_NOMEM. */
MAILBARS_API int mailbars_ses_check(const char *json, size_t len, json_t *sample,
                                    const mailbars_ses_options *opts, mailbars_ses_diags *out);
MAILBARS_API void mailbars_ses_diags_free(mailbars_ses_diags *d);
/* Number of diagnostics with severity error. */
MAILBARS_API size_t mailbars_ses_diags_errors(const mailbars_ses_diags *d);

/* =============================================================================================
 * Bulk driver.
 * ========================================================================================== */
/* @@BULK-API@@ (declarations added by the bulk driver) */

/* What to render, message settings, and how many threads. Zero value = defaults. */
typedef struct mailbars_bulk_options {
    unsigned threads;     /* 0: number of online CPUs */
    unsigned queue;       /* results in flight (bounded queue); 0: 16 per thread */
    const char *from;     /* From address, or NULL (a request's Source is used when set) */
    const char *reply_to; /* Reply-To list, or NULL */
    const char *charset;  /* NULL: UTF-8 */
    mailbars_encoding encoding;
    int fixed_date; /* 1: use date/tz_minutes for every message */
    time_t date;
    int tz_minutes;
    const char *boundary;   /* fixed boundary, or NULL */
    const char *message_id; /* NULL: generated; else message N gets "N.<message_id>" */
} mailbars_bulk_options;

/* One result, handed to the sink in input order. */
typedef struct mailbars_bulk_result {
    size_t index;        /* 1-based record / destination number */
    int status;          /* MAILBARS_OK or the failure's code */
    const char *message; /* the RFC 5322 message (status OK), `message_len` bytes */
    size_t message_len;
    const mailbars_error *error; /* the failure (status != OK): message = SES errorMessage */
    const char *template_name;
} mailbars_bulk_result;

/* Called once per input record, strictly in input order, from the thread that called
 * mailbars_bulk_run_*. Return 0 to go on, non-zero to stop (the run returns MAILBARS_ERR_IO). */
typedef int (*mailbars_bulk_sink_fn)(void *userdata, const mailbars_bulk_result *r);

/* Reads JSON Lines from `in` one line at a time (blank lines are skipped; every other line is a
 * record). A record is one of:
 *  - an SES bulk destination, as in SendBulkTemplatedEmail's Destinations[] or SES v2's
 *    BulkEmailEntries[]: {"Destination":{"ToAddresses":[…],"CcAddresses":[…]},
 *    "ReplacementTemplateData":"{…}"} (only those SES member names);
 *  - an envelope {"data":{…},"to":[…],"cc":[…],"bcc":[…]} (to/cc/bcc may be strings), when it
 *    has a "data" object member and no other members than those four;
 *  - otherwise, the data object itself.
 * Each record's data is deep-merged over `defaults` (borrowed, may be NULL). A line that is not
 * valid JSON yields a failure naming the line. Returns MAILBARS_OK when every record was
 * handed to the sink (failures included), or an error that stopped the run. */
MAILBARS_API int mailbars_bulk_run_jsonl(const mailbars_ses_template *t, FILE *in, json_t *defaults,
                                         const mailbars_bulk_options *opts,
                                         mailbars_bulk_sink_fn sink, void *userdata,
                                         mailbars_error *err);
/* Renders every destination of a parsed request. */
MAILBARS_API int mailbars_bulk_run_request(const mailbars_ses_template *t,
                                           const mailbars_ses_request *req,
                                           const mailbars_bulk_options *opts,
                                           mailbars_bulk_sink_fn sink, void *userdata,
                                           mailbars_error *err);

#ifdef __cplusplus
}
#endif
#endif /* MAILBARS_H */
