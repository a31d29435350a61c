/* fuzz_compile: template bytes -> mailbars_compile -> disassemble.
 * Input: byte 0 = low compile flags, byte 1 = high flags, the rest is the template. */
#include "fuzz_common.h"

/* Compiles with fuzzed flags; a success must disassemble, a failure must be a clean report. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    unsigned flags = (unsigned)data[0] | ((unsigned)(data[1] & 0x03) << 8);
    const char *src = (const char *)data + 2;
    size_t len = size - 2;

    mailbars_compile_ctx *cctx = mailbars_compile_ctx_new();
    FUZZ_CHECK(cctx);
    mailbars_compile_ctx_set_flags(cctx, flags);
    FUZZ_CHECK(mailbars_compile_ctx_flags(cctx) == flags);
    if (data[1] & 0x04) mailbars_compile_ctx_add_known_helper(cctx, "known");
    if (data[1] & 0x08) mailbars_compile_ctx_add_passthrough(cctx, "amazonSESUnsubscribeUrl");
    if (data[1] & 0x10) mailbars_compile_ctx_set_limit(cctx, MAILBARS_LIMIT_NESTING, 16);

    mailbars_error err;
    memset(&err, 0x5a, sizeof err); /* the library must set every field it reports */
    mailbars_template *tpl = mailbars_compile(NULL, src, len, cctx, &err);
    if (tpl) {
        mailbars_buf out = {0};
        FUZZ_CHECK(mailbars_template_disassemble(tpl, &out) == MAILBARS_OK);
        FUZZ_CHECK(out.len == 0 || strlen(out.data) <= out.len);
        mailbars_buf_free(&out);
        mailbars_template_free(tpl);
    } else {
        FUZZ_CHECK(err.code != MAILBARS_OK);
        FUZZ_CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
        FUZZ_CHECK(memchr(err.part, 0, sizeof err.part) != NULL);
        FUZZ_CHECK(err.line >= 0 && err.column >= 0);
        FUZZ_CHECK(strcmp(mailbars_status_name(err.code), "") != 0);
    }
    mailbars_compile_ctx_free(cctx);
    return 0;
}
