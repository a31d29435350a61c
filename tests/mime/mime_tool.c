/* Test driver for the property test: reads one JSON case per stdin line and writes one JSON
 * result per stdout line. A case is an object with optional string fields "charset",
 * "encoding" ("auto", "quoted-printable", "base64"), "from", "to", "cc", "reply_to",
 * "subject", "text", "html", "boundary", "message_id" and integer fields "date", "tz".
 * The result is {"ok":true,"message":"..."} or {"ok":false,"code":"ERR_...","error":"..."}. */
#include "mailbars.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sets a string field through `fn` when the case has it. */
static int str_field(json_t *c, const char *key, const char **s, size_t *n) {
    json_t *v = json_object_get(c, key);
    if (!json_is_string(v)) return 0;
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 1;
}

/* Builds one message from a case; fills *res with the result object. */
static json_t *run_case(mailbars_message *m, json_t *c) {
    mailbars_error err;
    mailbars_error_clear(&err);
    mailbars_message_reset(m);
    const char *s;
    size_t n;
    int rc = 0;
    rc = mailbars_message_set_charset(m, str_field(c, "charset", &s, &n) ? s : "UTF-8", &err);
    mailbars_encoding enc = MAILBARS_ENC_AUTO;
    if (str_field(c, "encoding", &s, &n)) {
        if (!strcmp(s, "quoted-printable")) enc = MAILBARS_ENC_QUOTED_PRINTABLE;
        if (!strcmp(s, "base64")) enc = MAILBARS_ENC_BASE64;
    }
    mailbars_message_set_encoding(m, enc);
    static const char *const fields[] = {"from", "to", "cc", "reply_to"};
    for (int f = 0; f < 4 && !rc; f++)
        if (str_field(c, fields[f], &s, &n))
            rc = mailbars_message_add_address(m, (mailbars_addr_field)f, s, n, &err);
    if (!rc && str_field(c, "subject", &s, &n)) rc = mailbars_message_set_subject(m, s, n, &err);
    if (!rc && str_field(c, "text", &s, &n)) rc = mailbars_message_set_text(m, s, n, &err);
    if (!rc && str_field(c, "html", &s, &n)) rc = mailbars_message_set_html(m, s, n, &err);
    json_t *d = json_object_get(c, "date");
    if (json_is_integer(d))
        mailbars_message_set_date(m, (time_t)json_integer_value(d),
                                  (int)json_integer_value(json_object_get(c, "tz")));
    if (!rc) rc = mailbars_message_set_boundary(m, str_field(c, "boundary", &s, &n) ? s : NULL);
    if (!rc) rc = mailbars_message_set_message_id(m, str_field(c, "message_id", &s, &n) ? s : NULL);
    mailbars_buf out = {0};
    if (!rc) rc = mailbars_message_write(m, &out, &err);
    json_t *r;
    if (rc) {
        r = json_pack("{s:b,s:s,s:s,s:s}", "ok", 0, "code", mailbars_status_name(rc), "error",
                      err.message, "part", err.part);
    } else {
        r = json_pack("{s:b,s:s%}", "ok", 1, "message", out.data, out.len);
    }
    mailbars_buf_free(&out);
    return r;
}

int main(void) {
    mailbars_message *m = mailbars_message_new();
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        json_error_t je;
        json_t *c = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &je);
        json_t *r = c ? run_case(m, c)
                      : json_pack("{s:b,s:s,s:s}", "ok", 0, "code", "JSON", "error", je.text);
        char *o = json_dumps(r, JSON_COMPACT);
        puts(o);
        free(o);
        json_decref(r);
        json_decref(c);
    }
    free(line);
    mailbars_message_free(m);
    return 0;
}
