/* fuzz_address: address list parsing and formatting (mailbars_address_list_format).
 * Input: byte 0 picks the charset for display names, the rest is the list. */
#include "fuzz_common.h"

static const char *const charsets[] = {NULL, "UTF-8", "ISO-8859-1", "ISO-2022-JP"};

/* Formats the list; success must be a foldable 7-bit header value that formats to itself. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *cs = charsets[data[0] & 3];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    mailbars_buf out = {0};
    mailbars_error err;
    int rc = mailbars_address_list_format(p, n, cs, &out, &err);
    if (rc != MAILBARS_OK) {
        FUZZ_CHECK(err.code == rc);
        FUZZ_CHECK(rc == MAILBARS_ERR_ADDRESS || rc == MAILBARS_ERR_IDNA ||
                   rc == MAILBARS_ERR_UTF8 || rc == MAILBARS_ERR_UNMAPPABLE ||
                   rc == MAILBARS_ERR_HEADER || rc == MAILBARS_ERR_NOMEM);
    } else {
        /* 7-bit, CRLF only as a fold (CRLF SP), lines <= 998. */
        size_t col = 4; /* as after "To: " */
        for (size_t i = 0; i < out.len; i++) {
            unsigned char c = (unsigned char)out.data[i];
            FUZZ_CHECK(c != 0 && c < 0x80 && c != '\n');
            if (c == '\r') {
                FUZZ_CHECK(i + 2 < out.len && out.data[i + 1] == '\n' && out.data[i + 2] == ' ');
                i++;
                col = 0;
                continue;
            }
            FUZZ_CHECK(++col <= 998);
        }
        /* A message with this list in To must be well formed. */
        mailbars_message *m = mailbars_message_new();
        FUZZ_CHECK(m);
        if (cs) FUZZ_CHECK(mailbars_message_set_charset(m, cs, &err) == MAILBARS_OK);
        mailbars_message_set_date(m, 0, 0);
        mailbars_message_set_message_id(m, "a@b");
        FUZZ_CHECK(mailbars_message_add_address(m, MAILBARS_TO, p, n, &err) == MAILBARS_OK);
        FUZZ_CHECK(mailbars_message_set_text(m, "x", 1, &err) == MAILBARS_OK);
        mailbars_buf msg = {0};
        FUZZ_CHECK(mailbars_message_write(m, &msg, &err) == MAILBARS_OK);
        fuzz_check_message(msg.data, msg.len);
        mailbars_buf_free(&msg);
        mailbars_message_free(m);
    }
    mailbars_buf_free(&out);
    return 0;
}
