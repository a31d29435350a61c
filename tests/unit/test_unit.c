/* Unit tests of the foundation: version, status table, error struct, buffers, JS values. */
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>

static int failures, checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* Checks that String(value) in JavaScript would print `want` for the JSON text `json`. */
static void check_string(const char *json, const char *want) {
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    mailbars_buf b = {0};
    CHECK(v != NULL);
    CHECK(mailbars_value_to_string(v, &b) == MAILBARS_OK);
    const char *got = b.data ? b.data : "";
    if (strcmp(got, want) != 0) {
        failures++;
        fprintf(stderr, "String(%s): got \"%s\", want \"%s\"\n", json, got, want);
    }
    checks++;
    mailbars_buf_free(&b);
    json_decref(v);
}

static void test_version_and_status(void) {
    CHECK(strcmp(mailbars_version(), MAILBARS_VERSION_STRING) == 0);
    CHECK(mailbars_version_number() == MAILBARS_VERSION_NUMBER);
    CHECK(strcmp(mailbars_status_message(MAILBARS_OK), "success") == 0);
    CHECK(strcmp(mailbars_status_message(MAILBARS_ERR_NOMEM), "out of memory") == 0);
    CHECK(strcmp(mailbars_status_name(MAILBARS_ERR_LIMIT_STEPS), "ERR_LIMIT_STEPS") == 0);
    CHECK(strcmp(mailbars_status_message(-12345), "unknown status") == 0);
    /* every code has a distinct, non-empty message */
#define X(name, num, msg)                                                                          \
    CHECK(msg[0] != 0 && mailbars_status_message(num) == mailbars_status_message(MAILBARS_##name));
    MAILBARS_STATUS_LIST(X)
#undef X
    /* numbers are stable: spot-check the published values */
    CHECK(MAILBARS_ERR_PARSE == 20 && MAILBARS_ERR_LIMIT_TEMPLATE_SIZE == 40);
    CHECK(MAILBARS_ERR_CHARSET == 60 && MAILBARS_ERR_SES_RENDERING == 80);
}

static void test_error_struct(void) {
    mailbars_error e;
    mb_error(&e, MAILBARS_ERR_PARSE, 3, 7, "bad %s", "token");
    CHECK(e.code == MAILBARS_ERR_PARSE && e.line == 3 && e.column == 7);
    CHECK(strcmp(e.message, "bad token") == 0);
    mailbars_error_clear(&e);
    CHECK(e.code == 0 && e.line == 0 && e.message[0] == 0);
    CHECK(mb_error(NULL, MAILBARS_ERR_IO, 0, 0, "x") == MAILBARS_ERR_IO);
    /* a long message is truncated, never overflows */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    mb_error(&e, MAILBARS_ERR_IO, 0, 0, "%s", big);
    CHECK(strlen(e.message) == sizeof e.message - 1);
}

static void test_buf(void) {
    mailbars_buf b;
    mailbars_buf_init(&b);
    for (int i = 0; i < 1000; i++) CHECK(mailbars_buf_append(&b, "abc", 3) == MAILBARS_OK);
    CHECK(b.len == 3000 && b.data[3000] == 0 && memcmp(b.data + 2997, "abc", 3) == 0);
    mailbars_buf_reset(&b);
    CHECK(b.len == 0 && b.cap >= 3001);
    CHECK(mb_buf_printf(&b, "%d-%s", 42, "x") == MAILBARS_OK && strcmp(b.data, "42-x") == 0);
    mailbars_buf_free(&b);
    CHECK(b.data == NULL && b.cap == 0);
}

static void test_values(void) {
    check_string("1.0", "1");
    check_string("1e21", "1e+21");
    check_string("1e20", "100000000000000000000");
    check_string("0.1", "0.1");
    check_string("1.21", "1.21");
    check_string("-0.0", "0");
    check_string("1e-7", "1e-7");
    check_string("0.000001", "0.000001");
    check_string("1.2345678901234568e20", "123456789012345680000");
    check_string("9007199254740993",
                 "9007199254740992"); /* beyond 2^53 an int prints as JS double */
    check_string("1.7976931348623157e308", "1.7976931348623157e+308");
    check_string("5e-324", "5e-324");
    check_string("-2.5", "-2.5");
    check_string("42", "42");
    check_string("true", "true");
    check_string("null", "");
    check_string("[1,\"a\",null,[2,3]]", "1,a,,2,3");
    check_string("{\"a\":1}", "[object Object]");
    json_t *t = json_loads("[0, \"\", [], null, false, 0.0]", 0, NULL);
    for (size_t i = 0; i < json_array_size(t); i++)
        CHECK(!mailbars_value_is_truthy(json_array_get(t, i)));
    json_decref(t);
    t = json_loads("[1, \"0\", [0], {}, true, 0.5]", 0, NULL);
    for (size_t i = 0; i < json_array_size(t); i++)
        CHECK(mailbars_value_is_truthy(json_array_get(t, i)));
    json_decref(t);
    CHECK(!mailbars_value_is_truthy(NULL));
    mailbars_buf b = {0};
    CHECK(mailbars_escape_html("a&b<c>d\"e'f`g=h", 15, &b) == MAILBARS_OK);
    CHECK(strcmp(b.data, "a&amp;b&lt;c&gt;d&quot;e&#x27;f&#x60;g&#x3D;h") == 0);
    mailbars_buf_free(&b);
}

/* The obvious decoder, kept as the reference for mb_utf8_check: decode, then reject
 * overlongs, surrogates and code points past U+10FFFF. */
static size_t utf8_check_ref(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i], n, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC0 && c <= 0xDF)
            n = 1, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF7)
            n = 3, min = 0x10000;
        else
            return i;
        unsigned cp = c & (0x3F >> n);
        for (size_t j = 1; j <= n; j++) {
            if (i + j >= len || (s[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n + 1;
    }
    return len;
}

/* Every lead byte against every second byte, with third and fourth bytes around the
 * continuation range, whole and truncated, after an ASCII prefix. */
static void test_utf8_exhaustive(void) {
    static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                          0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    unsigned char buf[24];
    long bad = 0, total = 0;
    memset(buf, 'a', sizeof buf);
    for (unsigned a = 0x80; a <= 0xFF; a++)
        for (unsigned b = 0; b <= 0xFF; b++)
            for (size_t t = 0; t < sizeof tails; t++)
                for (size_t u = 0; u < sizeof tails; u++) {
                    buf[17] = (unsigned char)a, buf[18] = (unsigned char)b;
                    buf[19] = tails[t], buf[20] = tails[u];
                    for (size_t len = 17; len <= 22; len++) {
                        total++;
                        if (mb_utf8_check(buf, len) != utf8_check_ref(buf, len)) bad++;
                    }
                }
    checks++;
    if (bad) {
        failures++;
        fprintf(stderr, "mb_utf8_check differs from the reference in %ld of %ld inputs\n", bad,
                total);
    }
}

/* Random mixes of ASCII runs (shorter and longer than the 16-byte blocks), valid sequences of
 * every length, lone continuation bytes, overlongs, surrogates and truncated sequences, so
 * that multi-byte sequences fall at every offset of a block and at the very end. */
static void test_utf8_random(void) {
    static const char *const pieces[] = {"a",
                                         "abcdefghijklmnopq",
                                         " ",
                                         "\xc3\xa9",
                                         "\xe3\x81\x82",
                                         "\xe3\x81\x82\xe3\x81\x84",
                                         "\xf0\x9f\x98\x80",
                                         "\xed\x9f\xbf",
                                         "\xee\x80\x80",
                                         "\xf4\x8f\xbf\xbf",
                                         "\xe0\xa0\x80",
                                         "\x80",
                                         "\xc0\xaf",
                                         "\xed\xa0\x80",
                                         "\xf4\x90\x80\x80",
                                         "\xe3\x81",
                                         "\xf0\x9f\x98",
                                         "\xff"};
    unsigned long long r = 0x243F6A8885A308D3ull;
    unsigned char buf[200];
    long bad = 0;
    for (int it = 0; it < 200000; it++) {
        size_t len = 0, target;
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        target = (size_t)(r % 150);
        int valid_only = (r >> 20) % 2;
        while (len < target) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            size_t k = (size_t)((r >> 8) % (valid_only ? 11 : sizeof pieces / sizeof *pieces));
            size_t n = strlen(pieces[k]);
            if (len + n > sizeof buf) break;
            memcpy(buf + len, pieces[k], n);
            len += n;
        }
        if (mb_utf8_check(buf, len) != utf8_check_ref(buf, len)) bad++;
    }
    checks++;
    if (bad) {
        failures++;
        fprintf(stderr, "mb_utf8_check differs from the reference in %ld random inputs\n", bad);
    }
}

static void test_utf8(void) {
    CHECK(mb_utf8_check((const unsigned char *)"h\xc3\xa9llo", 6) == 6);
    CHECK(mb_utf8_check((const unsigned char *)"ab\xc3", 3) == 2);           /* truncated */
    CHECK(mb_utf8_check((const unsigned char *)"\xc0\xaf", 2) == 0);         /* overlong */
    CHECK(mb_utf8_check((const unsigned char *)"\xed\xa0\x80", 3) == 0);     /* surrogate */
    CHECK(mb_utf8_check((const unsigned char *)"\xf0\x9f\x98\x80", 4) == 4); /* emoji */
    CHECK(mb_utf8_check((const unsigned char *)"\xf4\x90\x80\x80", 4) == 0); /* > U+10FFFF */
}

int main(void) {
    test_version_and_status();
    test_error_struct();
    test_buf();
    test_values();
    test_utf8();
    test_utf8_exhaustive();
    test_utf8_random();
    printf("unit: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
