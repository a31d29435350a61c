/* The Handlebars lexer: a hand-written equivalent of handlebars.js 4.7's jison lexer
 * (src/handlebars.l). Same start conditions (INITIAL, mu, emu, com, raw), same rule order
 * (first matching rule wins), same token texts and same yylloc bookkeeping (columns counted in
 * UTF-16 code units, as JavaScript strings are). A NUL byte outside comments and string
 * literals is a lexical error, as in handlebars.js. */
#include "lexer.h"

#include <stdint.h>

static const char *const tok_names[TK__COUNT] = {
    "EOF",
    "COMMENT",
    "CONTENT",
    "END_RAW_BLOCK",
    "OPEN_RAW_BLOCK",
    "CLOSE_RAW_BLOCK",
    "OPEN_BLOCK",
    "CLOSE",
    "OPEN_INVERSE",
    "OPEN_INVERSE_CHAIN",
    "INVERSE",
    "OPEN_ENDBLOCK",
    "OPEN",
    "OPEN_UNESCAPED",
    "CLOSE_UNESCAPED",
    "OPEN_PARTIAL",
    "OPEN_PARTIAL_BLOCK",
    "OPEN_SEXPR",
    "CLOSE_SEXPR",
    "ID",
    "EQUALS",
    "OPEN_BLOCK_PARAMS",
    "CLOSE_BLOCK_PARAMS",
    "STRING",
    "NUMBER",
    "BOOLEAN",
    "UNDEFINED",
    "NULL",
    "DATA",
    "SEP",
    "INVALID",
    "1",
};

/* Jison name of a token type. */
const char *mb_tok_name(mb_tok_type t) {
    return (unsigned)t < TK__COUNT ? tok_names[t] : "INVALID";
}

/* JavaScript `\s` at s[i]: ASCII \t \n \v \f \r space, and the Unicode spaces U+00A0, U+1680,
 * U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF (UTF-8 encoded). */
size_t mb_js_space_at(const char *s, size_t i, size_t len) {
    const unsigned char *u = (const unsigned char *)s + i;
    size_t rem = len - i;
    if (i >= len) return 0;
    switch (u[0]) {
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r': return 1;
    case 0xC2: return rem >= 2 && u[1] == 0xA0 ? 2 : 0;
    case 0xE1: return rem >= 3 && u[1] == 0x9A && u[2] == 0x80 ? 3 : 0;
    case 0xE2:
        if (rem < 3) return 0;
        if (u[1] == 0x80 &&
            ((u[2] >= 0x80 && u[2] <= 0x8A) || u[2] == 0xA8 || u[2] == 0xA9 || u[2] == 0xAF))
            return 3;
        if (u[1] == 0x81 && u[2] == 0x9F) return 3;
        return 0;
    case 0xE3: return rem >= 3 && u[1] == 0x80 && u[2] == 0x80 ? 3 : 0;
    case 0xEF: return rem >= 3 && u[1] == 0xBB && u[2] == 0xBF ? 3 : 0;
    default: return 0;
    }
}

/* JavaScript `\s` ending right before s[end]: its byte length, or 0. */
size_t mb_js_space_before(const char *s, size_t end) {
    if (end == 0) return 0;
    unsigned char c = (unsigned char)s[end - 1];
    if (c < 0x80) return mb_js_space_at(s, end - 1, end);
    if (end >= 2 && mb_js_space_at(s, end - 2, end) == 2) return 2;
    if (end >= 3 && mb_js_space_at(s, end - 3, end) == 3) return 3;
    return 0;
}

/* Number of UTF-16 code units of the UTF-8 bytes s[0..n). Invalid bytes count one each. */
static int utf16_len(const char *s, size_t n) {
    int units = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) == 0x80) continue;
        units += c >= 0xF0 ? 2 : 1;
    }
    return units;
}

/* Is s[i] a JS line terminator that `.` does not match (\n, \r, U+2028, U+2029)? Returns its
 * byte length or 0. */
static size_t line_terminator_at(const char *s, size_t i, size_t len) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n' || c == '\r') return 1;
    if (c == 0xE2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
        ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
        return 3;
    return 0;
}

/* Jison's yylloc update for a match of src[start..end): counts \r\n, \r and \n as line breaks;
 * the last column is the length of the text after the last break (up to a U+2028/9, which
 * jison's `.` does not cross), or the previous column plus the match length. */
static void lx_locate(mb_lexer *lx, size_t start, size_t end, ast_loc *loc) {
    const char *s = lx->src;
    int breaks = 0;
    size_t after = 0;
    for (size_t i = start; i < end; i++) {
        if (s[i] == '\r') {
            if (i + 1 < end && s[i + 1] == '\n') i++;
            breaks++;
            after = i + 1;
        } else if (s[i] == '\n') {
            breaks++;
            after = i + 1;
        }
    }
    loc->line = lx->last_line;
    loc->column = lx->last_column;
    lx->lineno += breaks;
    loc->end_line = lx->lineno + 1;
    if (breaks) {
        size_t j = after;
        while (j < end && !line_terminator_at(s, j, end)) j++;
        loc->end_column = utf16_len(s + after, j - after);
    } else {
        loc->end_column = lx->last_column + utf16_len(s + start, end - start);
    }
    lx->last_line = loc->end_line;
    lx->last_column = loc->end_column;
}

/* Starts a lexer in the INITIAL condition at line 1, column 0 (jison's setInput). */
void mb_lexer_init(mb_lexer *lx, mb_arena *a, const char *src, size_t len) {
    memset(lx, 0, sizeof *lx);
    lx->arena = a;
    lx->src = src ? src : "";
    lx->len = src ? len : 0;
    lx->state = MB_LX_INITIAL;
    lx->last_line = 1;
}

/* Does the source at i start with the NUL-terminated string lit? */
static bool at(const mb_lexer *lx, size_t i, const char *lit) {
    size_t n = strlen(lit);
    return i <= lx->len && lx->len - i >= n && memcmp(lx->src + i, lit, n) == 0;
}

/* First index >= from where lit occurs, or SIZE_MAX. */
static size_t find(const mb_lexer *lx, size_t from, const char *lit) {
    size_t n = strlen(lit);
    if (from > lx->len || lx->len - from < n) return SIZE_MAX;
    const char *s = lx->src;
    for (size_t i = from; i + n <= lx->len; i++) {
        const char *hit = memchr(s + i, lit[0], lx->len - n + 1 - i);
        if (!hit) return SIZE_MAX;
        i = (size_t)(hit - s);
        if (memcmp(s + i, lit, n) == 0) return i;
    }
    return SIZE_MAX;
}

/* ASCII members of the ID class [^\s!"#%-,\.\/;->@\[-\^`\{-~]. */
static bool id_ascii(unsigned char c) {
    if (c >= '0' && c <= '9') return true;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return true;
    switch (c) {
    case '$':
    case '-':
    case ':':
    case '?':
    case '_': return true;
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r': return false;
    default: return c < 0x20 || c == 0x7F;
    }
}

/* End of the maximal run of ID characters starting at i. */
static size_t id_run(const mb_lexer *lx, size_t i) {
    while (i < lx->len) {
        unsigned char c = (unsigned char)lx->src[i];
        if (c < 0x80) {
            if (!id_ascii(c)) break;
            i++;
        } else {
            if (mb_js_space_at(lx->src, i, lx->len)) break;
            i++;
            while (i < lx->len && ((unsigned char)lx->src[i] & 0xC0) == 0x80) i++;
        }
    }
    return i;
}

/* Lookahead test: is there a character at i from the ASCII set `set`, or (when with_space) a
 * JavaScript whitespace character? */
static bool la(const mb_lexer *lx, size_t i, const char *set, bool with_space) {
    if (i >= lx->len) return false;
    if (with_space && mb_js_space_at(lx->src, i, lx->len)) return true;
    return lx->src[i] != 0 && strchr(set, lx->src[i]) != NULL;
}

/* Is s[i] a regex word character [A-Za-z0-9_]? */
static bool word_char(const mb_lexer *lx, size_t i) {
    if (i >= lx->len) return false;
    unsigned char c = (unsigned char)lx->src[i];
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

/* End of a run of JS whitespace starting at i. */
static size_t skip_space(const mb_lexer *lx, size_t i) {
    size_t n;
    while ((n = mb_js_space_at(lx->src, i, lx->len)) != 0) i += n;
    return i;
}

/* Matches "(\\q|[^q])*q" after an opening delimiter at i (q = the closing char): greedy, and if
 * no bare closing char follows, the last escaped one closes it (regex backtracking). Returns
 * the end of the match (after the closing char) or 0 when there is none. */
static size_t delimited(const mb_lexer *lx, size_t i, char q) {
    const char *s = lx->src;
    size_t last_escape = 0;
    bool have_escape = false;
    size_t j = i + 1;
    while (j < lx->len) {
        if (s[j] == '\\' && j + 1 < lx->len && s[j + 1] == q) {
            last_escape = j;
            have_escape = true;
            j += 2;
        } else if (s[j] == q) {
            return j + 1;
        } else {
            j++;
        }
    }
    return have_escape ? last_escape + 2 : 0;
}

/* Copies src[from..to) into the arena, replacing each backslash followed by a character of
 * `escapable` with that character (String.prototype.replace with a global regex). */
static const char *unescape(mb_lexer *lx, size_t from, size_t to, const char *escapable,
                            size_t *out_len) {
    char *d = mb_arena_alloc(lx->arena, to - from + 1);
    if (!d) return NULL;
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        if (lx->src[i] == '\\' && i + 1 < to && lx->src[i + 1] && strchr(escapable, lx->src[i + 1]))
            i++;
        d[n++] = lx->src[i];
    }
    d[n] = 0;
    *out_len = n;
    return d;
}

/* The last <= 20 UTF-16 units of jison's `matched` text before `start` (with the stray copies
 * of long-comment openers), and whether anything precedes them. Writes into out/out_len. */
static void past_tail(const mb_lexer *lx, size_t start, char *out, size_t *out_len, bool *more) {
    /* segments, forward order: real source pieces and inserted copies */
    const char *seg_p[2 * MB_LX_COMMENT_RING + 1];
    size_t seg_n[2 * MB_LX_COMMENT_RING + 1];
    int nseg = 0;
    size_t ring = lx->n_com < MB_LX_COMMENT_RING ? lx->n_com : MB_LX_COMMENT_RING;
    size_t first = lx->n_com - ring, cur = 0;
    for (size_t k = first; k < lx->n_com; k++) {
        size_t c = lx->com_at[k % MB_LX_COMMENT_RING], d = lx->com_dup[k % MB_LX_COMMENT_RING];
        if (c > start || c < cur) continue;
        seg_p[nseg] = lx->src + cur, seg_n[nseg++] = c - cur;
        seg_p[nseg] = lx->src + c, seg_n[nseg++] = d;
        cur = c;
    }
    seg_p[nseg] = lx->src + cur, seg_n[nseg++] = start - cur;
    /* walk backwards collecting bytes until 20 units */
    char tmp[128];
    size_t t = sizeof tmp;
    int units = 0;
    *more = false;
    for (int k = nseg - 1; k >= 0; k--) {
        size_t n = seg_n[k];
        while (n > 0) {
            if (units >= 20) {
                *more = true;
                goto done;
            }
            /* take one UTF-8 character ending at n */
            size_t b = n - 1;
            while (b > 0 && n - b < 4 && ((unsigned char)seg_p[k][b] & 0xC0) == 0x80) b--;
            if (((unsigned char)seg_p[k][b] & 0xC0) == 0x80) b = n - 1;
            size_t clen = n - b;
            unsigned char lead = (unsigned char)seg_p[k][b];
            int u = lead >= 0xF0 ? 2 : 1;
            if (units + u > 20) {
                /* JavaScript keeps half of the surrogate pair: shown as U+FFFD */
                if (t >= 3) {
                    t -= 3;
                    memcpy(tmp + t, "\xEF\xBF\xBD", 3);
                }
                *more = true;
                goto done;
            }
            if (t < clen) goto done;
            t -= clen;
            memcpy(tmp + t, seg_p[k] + b, clen);
            units += u;
            n = b;
        }
    }
done:
    *out_len = 0;
    for (size_t i = t; i < sizeof tmp; i++)
        if (tmp[i] != '\n') out[(*out_len)++] = tmp[i];
}

/* jison showPosition(): the 20 units before the token, the token and what follows (20 units),
 * newlines removed, then a caret line under the token start. */
int mb_lexer_show_position(const mb_lexer *lx, size_t start, size_t end, mailbars_buf *out) {
    char past[160];
    size_t past_len;
    bool more;
    past_tail(lx, start, past, &past_len, &more);
    mailbars_buf line = {0};
    int rc = MAILBARS_OK;
    if (more) rc |= mailbars_buf_append(&line, "...", 3);
    rc |= mailbars_buf_append(&line, past, past_len);
    int pre_units = utf16_len(line.data ? line.data : "", line.len);
    /* upcoming: the match, topped up from the input to 20 units */
    int match_units = utf16_len(lx->src + start, end - start);
    size_t up_end = end;
    int units = match_units;
    if (units < 20) {
        while (up_end < lx->len && units < 20) {
            unsigned char c = (unsigned char)lx->src[up_end];
            size_t clen = 1;
            if (c >= 0xC0)
                while (up_end + clen < lx->len && clen < 4 &&
                       ((unsigned char)lx->src[up_end + clen] & 0xC0) == 0x80)
                    clen++;
            units += c >= 0xF0 ? 2 : 1;
            up_end += clen;
        }
    }
    /* first 20 units of [start, up_end) */
    size_t cut = start;
    int u = 0;
    bool half = false;
    while (cut < up_end && u < 20) {
        unsigned char c = (unsigned char)lx->src[cut];
        size_t clen = 1;
        if (c >= 0xC0)
            while (cut + clen < up_end && clen < 4 &&
                   ((unsigned char)lx->src[cut + clen] & 0xC0) == 0x80)
                clen++;
        if (u + (c >= 0xF0 ? 2 : 1) > 20) {
            half = true; /* JavaScript keeps half of the surrogate pair: shown as U+FFFD */
            break;
        }
        u += c >= 0xF0 ? 2 : 1;
        cut += clen;
    }
    for (size_t i = start; i < cut; i++)
        if (lx->src[i] != '\n') rc |= mb_buf_putc(&line, lx->src[i]);
    if (half) rc |= mailbars_buf_append(&line, "\xEF\xBF\xBD", 3);
    if (match_units > 20) rc |= mailbars_buf_append(&line, "...", 3);
    rc |= mb_buf_putc(&line, '\n');
    for (int i = 0; i < pre_units; i++) rc |= mb_buf_putc(&line, '-');
    rc |= mb_buf_putc(&line, '^');
    if (rc == MAILBARS_OK) rc = mailbars_buf_append(out, line.data, line.len);
    mailbars_buf_free(&line);
    return rc ? MAILBARS_ERR_NOMEM : MAILBARS_OK;
}

/* Reports jison's lexical error at the current position; returns -1 (-2 when out of memory). */
static int lex_error(mb_lexer *lx, mailbars_error *err) {
    mailbars_buf b = {0};
    int rc = mb_buf_printf(&b, "Lexical error on line %d. Unrecognized text.\n", lx->lineno + 1);
    if (rc == MAILBARS_OK) rc = mb_lexer_show_position(lx, lx->pos, lx->pos, &b);
    if (rc != MAILBARS_OK) {
        mailbars_buf_free(&b);
        mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
        return -2;
    }
    mb_error(err, MAILBARS_ERR_PARSE, lx->lineno + 1, lx->last_column + 1, "%s", b.data);
    mailbars_buf_free(&b);
    return -1;
}

/* Fills a token for the match src[start..end) with text src[ts..ts+tl). */
static void emit(mb_lexer *lx, mb_tok *out, mb_tok_type type, size_t start, size_t end,
                 const char *text, size_t tl) {
    out->type = type;
    out->start = start;
    out->end = end;
    out->text = text;
    out->len = tl;
    lx_locate(lx, start, end, &out->loc);
    lx->pos = end;
}

/* One step of the INITIAL condition. Returns 1 with a token, 0 to continue, <0 on error. */
static int lex_initial(mb_lexer *lx, mb_tok *out, mailbars_error *err) {
    size_t p = lx->pos;
    size_t q = find(lx, p, "{{");
    /* content is [^\x00]: text up to a NUL is content, the NUL itself a lexical error */
    const char *nul = memchr(lx->src + p, 0, (q != SIZE_MAX ? q : lx->len) - p);
    if (nul) {
        size_t z = (size_t)(nul - lx->src);
        if (z == p) return lex_error(lx, err);
        emit(lx, out, TK_CONTENT, p, z, lx->src + p, z - p);
        return 1;
    }
    if (q != SIZE_MAX) {
        size_t tl = q - p;
        const char *s = lx->src + p;
        if (tl >= 2 && s[tl - 1] == '\\' && s[tl - 2] == '\\') {
            tl--;
            lx->state = MB_LX_MU;
        } else if (tl >= 1 && s[tl - 1] == '\\') {
            tl--;
            lx->state = MB_LX_EMU;
        } else {
            lx->state = MB_LX_MU;
        }
        emit(lx, out, TK_CONTENT, p, q, s, tl);
        return tl > 0 ? 1 : 0;
    }
    if (p < lx->len) {
        emit(lx, out, TK_CONTENT, p, lx->len, lx->src + p, lx->len - p);
        return 1;
    }
    emit(lx, out, TK_EOF, p, p, lx->src + p, 0);
    return 1;
}

/* The `emu` condition: text after an escaping backslash, up to the next mustache. */
static int lex_emu(mb_lexer *lx, mb_tok *out, mailbars_error *err) {
    size_t p = lx->pos;
    if (lx->len - p < 2) {
        if (p == lx->len) {
            emit(lx, out, TK_END, p, p, lx->src + p, 0);
            return 1;
        }
        return lex_error(lx, err);
    }
    size_t i = p + 2;
    while (i < lx->len && !at(lx, i, "{{") && !at(lx, i, "\\{{") && !at(lx, i, "\\\\{{")) i++;
    if (memchr(lx->src + p, 0, i - p)) return lex_error(lx, err);
    lx->state = MB_LX_INITIAL;
    emit(lx, out, TK_CONTENT, p, i, lx->src + p, i - p);
    return 1;
}

/* The `com` condition: a long comment up to the first `--}}` or `--~}}`. */
static int lex_com(mb_lexer *lx, mb_tok *out, mailbars_error *err) {
    size_t p = lx->pos;
    for (size_t i = p; i < lx->len; i++) {
        i = find(lx, i, "--");
        if (i == SIZE_MAX) break;
        size_t e = 0;
        if (at(lx, i + 2, "}}"))
            e = i + 4;
        else if (at(lx, i + 2, "~}}"))
            e = i + 5;
        if (e) {
            lx->state = MB_LX_INITIAL;
            emit(lx, out, TK_COMMENT, p, e, lx->src + p, e - p);
            return 1;
        }
    }
    if (p == lx->len) {
        emit(lx, out, TK_END, p, p, lx->src + p, 0);
        return 1;
    }
    return lex_error(lx, err);
}

/* The `raw` condition: raw block content, nested raw openers, and the raw block end. */
static int lex_raw(mb_lexer *lx, mb_tok *out, mailbars_error *err) {
    size_t p = lx->pos;
    if (at(lx, p, "{{{{")) {
        if (p + 4 < lx->len && lx->src[p + 4] != '/') {
            lx->raw_depth++;
            emit(lx, out, TK_CONTENT, p, p + 4, lx->src + p, 4);
            return 1;
        }
        if (p + 4 < lx->len) {
            size_t k = id_run(lx, p + 5);
            if (k > p + 5 && at(lx, k, "}}}}")) {
                lx->raw_depth--;
                if (lx->raw_depth > 0) {
                    emit(lx, out, TK_CONTENT, p, k + 4, lx->src + p, k + 4 - p);
                } else {
                    lx->state = MB_LX_INITIAL;
                    emit(lx, out, TK_END_RAW_BLOCK, p, k + 4, lx->src + p + 5, k - (p + 5));
                }
                return 1;
            }
        }
    }
    if (p < lx->len) {
        size_t q = find(lx, p + 1, "{{{{");
        if (q != SIZE_MAX && !memchr(lx->src + p, 0, q - p)) {
            emit(lx, out, TK_CONTENT, p, q, lx->src + p, q - p);
            return 1;
        }
        return lex_error(lx, err);
    }
    emit(lx, out, TK_END, p, p, lx->src + p, 0);
    return 1;
}

/* Mustache openers: the rules that start with `{{` (rules 9 and 11..23 of handlebars.l). */
static int lex_open(mb_lexer *lx, mb_tok *out) {
    size_t p = lx->pos, n = lx->len;
    const char *s = lx->src;
    if (at(lx, p, "{{{{")) {
        emit(lx, out, TK_OPEN_RAW_BLOCK, p, p + 4, s + p, 4);
        return 1;
    }
    size_t j = p + 2;
    if (j < n && s[j] == '~') j++;
    char c = j < n ? s[j] : 0;
    bool have = j < n;
    mb_tok_type t = TK__COUNT;
    size_t e = 0;
    if (have && c == '>') {
        t = TK_OPEN_PARTIAL, e = j + 1;
    } else if (have && c == '#' && j + 1 < n && s[j + 1] == '>') {
        t = TK_OPEN_PARTIAL_BLOCK, e = j + 2;
    } else if (have && c == '#') {
        t = TK_OPEN_BLOCK, e = j + 1;
        if (e < n && s[e] == '*') e++;
    } else if (have && c == '/') {
        t = TK_OPEN_ENDBLOCK, e = j + 1;
    }
    if (t == TK__COUNT && have && c == '^') {
        size_t k = skip_space(lx, j + 1);
        if (k < n && s[k] == '~') k++;
        if (at(lx, k, "}}")) {
            lx->state = MB_LX_INITIAL;
            emit(lx, out, TK_INVERSE, p, k + 2, s + p, k + 2 - p);
            return 1;
        }
    }
    if (t == TK__COUNT) {
        size_t k = skip_space(lx, j);
        if (at(lx, k, "else")) {
            size_t m = skip_space(lx, k + 4);
            if (m < n && s[m] == '~') m++;
            if (at(lx, m, "}}")) {
                lx->state = MB_LX_INITIAL;
                emit(lx, out, TK_INVERSE, p, m + 2, s + p, m + 2 - p);
                return 1;
            }
        }
        if (have && c == '^') {
            t = TK_OPEN_INVERSE, e = j + 1;
        } else if (at(lx, k, "else") && !word_char(lx, k + 4)) {
            t = TK_OPEN_INVERSE_CHAIN, e = k + 4;
        } else if (have && c == '{') {
            t = TK_OPEN_UNESCAPED, e = j + 1;
        } else if (have && c == '&') {
            t = TK_OPEN, e = j + 1;
        } else if (at(lx, j, "!--")) {
            /* unput and re-scan the whole comment in the `com` condition */
            size_t slot = lx->n_com % MB_LX_COMMENT_RING;
            lx->com_at[slot] = p;
            lx->com_dup[slot] = j + 3 - p - 1;
            lx->n_com++;
            lx->state = MB_LX_COM;
            return 0;
        } else if (have && c == '!') {
            size_t q = find(lx, j + 1, "}}");
            if (q != SIZE_MAX) {
                lx->state = MB_LX_INITIAL;
                emit(lx, out, TK_COMMENT, p, q + 2, s + p, q + 2 - p);
                return 1;
            }
        }
        if (t == TK__COUNT) {
            t = TK_OPEN, e = j;
            if (e < n && s[e] == '*') e++;
        }
    }
    emit(lx, out, t, p, e, s + p, e - p);
    return 1;
}

/* Keyword literal at p followed by [~}\s)]? */
static bool keyword(const mb_lexer *lx, size_t p, const char *kw) {
    return at(lx, p, kw) && la(lx, p + strlen(kw), "~})", true);
}

/* One step of the `mu` condition (inside a mustache). */
static int lex_mu(mb_lexer *lx, mb_tok *out, mailbars_error *err) {
    size_t p = lx->pos, n = lx->len;
    const char *s = lx->src;
    if (p >= n) {
        emit(lx, out, TK_EOF, p, p, s + p, 0);
        return 1;
    }
    char c = s[p];
    size_t e;
    if (c == '(') {
        emit(lx, out, TK_OPEN_SEXPR, p, p + 1, s + p, 1);
        return 1;
    }
    if (c == ')') {
        emit(lx, out, TK_CLOSE_SEXPR, p, p + 1, s + p, 1);
        return 1;
    }
    if (at(lx, p, "{{")) return lex_open(lx, out);
    if (at(lx, p, "}}}}")) {
        lx->state = MB_LX_RAW;
        lx->raw_depth = 1;
        emit(lx, out, TK_CLOSE_RAW_BLOCK, p, p + 4, s + p, 4);
        return 1;
    }
    if (c == '=') {
        emit(lx, out, TK_EQUALS, p, p + 1, s + p, 1);
        return 1;
    }
    if (c == '.') {
        if (at(lx, p, "..")) {
            emit(lx, out, TK_ID, p, p + 2, s + p, 2);
            return 1;
        }
        if (la(lx, p + 1, "=~}/.)|", true)) {
            emit(lx, out, TK_ID, p, p + 1, s + p, 1);
            return 1;
        }
        emit(lx, out, TK_SEP, p, p + 1, s + p, 1);
        return 1;
    }
    if (c == '/') {
        emit(lx, out, TK_SEP, p, p + 1, s + p, 1);
        return 1;
    }
    if (mb_js_space_at(s, p, n)) {
        lx_locate(lx, p, skip_space(lx, p), &out->loc);
        lx->pos = skip_space(lx, p);
        return 0;
    }
    if (c == '}' && (at(lx, p, "}}}") || at(lx, p, "}~}}"))) {
        e = s[p + 1] == '~' ? p + 4 : p + 3;
        lx->state = MB_LX_INITIAL;
        emit(lx, out, TK_CLOSE_UNESCAPED, p, e, s + p, e - p);
        return 1;
    }
    if (at(lx, p, "}}") || at(lx, p, "~}}")) {
        e = c == '~' ? p + 3 : p + 2;
        lx->state = MB_LX_INITIAL;
        emit(lx, out, TK_CLOSE, p, e, s + p, e - p);
        return 1;
    }
    if (c == '"' || c == '\'') {
        e = delimited(lx, p, c);
        if (e) {
            const char esc[2] = {c, 0};
            size_t tl;
            const char *text = unescape(lx, p + 1, e - 1, esc, &tl);
            if (!text) {
                mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
                return -2;
            }
            emit(lx, out, TK_STRING, p, e, text, tl);
            return 1;
        }
    }
    if (c == '@') {
        emit(lx, out, TK_DATA, p, p + 1, s + p, 1);
        return 1;
    }
    if (keyword(lx, p, "true") || keyword(lx, p, "false")) {
        e = p + (c == 't' ? 4 : 5);
        emit(lx, out, TK_BOOLEAN, p, e, s + p, e - p);
        return 1;
    }
    if (keyword(lx, p, "undefined")) {
        emit(lx, out, TK_UNDEFINED, p, p + 9, s + p, 9);
        return 1;
    }
    if (keyword(lx, p, "null")) {
        emit(lx, out, TK_NULL, p, p + 4, s + p, 4);
        return 1;
    }
    {
        size_t k = p;
        if (k < n && s[k] == '-') k++;
        size_t d = k;
        while (d < n && s[d] >= '0' && s[d] <= '9') d++;
        if (d > k) {
            if (d + 1 < n && s[d] == '.' && s[d + 1] >= '0' && s[d + 1] <= '9') {
                d++;
                while (d < n && s[d] >= '0' && s[d] <= '9') d++;
            }
            if (la(lx, d, "~})", true)) {
                emit(lx, out, TK_NUMBER, p, d, s + p, d - p);
                return 1;
            }
        }
    }
    if (at(lx, p, "as")) {
        size_t k = skip_space(lx, p + 2);
        if (k > p + 2 && k < n && s[k] == '|') {
            emit(lx, out, TK_OPEN_BLOCK_PARAMS, p, k + 1, s + p, k + 1 - p);
            return 1;
        }
    }
    if (c == '|') {
        emit(lx, out, TK_CLOSE_BLOCK_PARAMS, p, p + 1, s + p, 1);
        return 1;
    }
    e = id_run(lx, p);
    if (e > p && la(lx, e, "=~}/.)|", true)) {
        emit(lx, out, TK_ID, p, e, s + p, e - p);
        return 1;
    }
    if (c == '[') {
        e = delimited(lx, p, ']');
        if (e) {
            size_t tl;
            const char *text = unescape(lx, p, e, "\\]", &tl);
            if (!text) {
                mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
                return -2;
            }
            emit(lx, out, TK_ID, p, e, text, tl);
            return 1;
        }
    }
    /* any other single character (one UTF-8 sequence) */
    e = p + 1;
    if ((unsigned char)c >= 0xC0)
        while (e < n && e - p < 4 && ((unsigned char)s[e] & 0xC0) == 0x80) e++;
    emit(lx, out, TK_INVALID, p, e, s + p, e - p);
    return 1;
}

/* jison lex(): runs the rules of the current condition until one returns a token. */
int mb_lexer_next(mb_lexer *lx, mb_tok *out, mailbars_error *err) {
    for (;;) {
        if (lx->done) {
            out->type = TK_END;
            out->start = out->end = lx->len;
            out->text = lx->src + lx->len;
            out->len = 0;
            out->loc = (ast_loc){lx->last_line, lx->last_column, lx->last_line, lx->last_column};
            return MAILBARS_OK;
        }
        if (lx->pos >= lx->len) lx->done = true;
        int r;
        switch (lx->state) {
        case MB_LX_INITIAL: r = lex_initial(lx, out, err); break;
        case MB_LX_MU: r = lex_mu(lx, out, err); break;
        case MB_LX_EMU: r = lex_emu(lx, out, err); break;
        case MB_LX_COM: r = lex_com(lx, out, err); break;
        default: r = lex_raw(lx, out, err); break;
        }
        if (r < 0) return r == -1 ? MAILBARS_ERR_PARSE : MAILBARS_ERR_NOMEM;
        if (r == 1) {
            if (lx->done && lx->pos < lx->len) lx->done = false;
            return MAILBARS_OK;
        }
        if (lx->done && lx->pos < lx->len) lx->done = false;
    }
}

/* Tokens up to EOF, or up to an INVALID token as handlebars.js's tokenizer tests stop. */
mb_token_info *mb_tokenize(mb_arena *a, const char *src, size_t len, size_t *count,
                           mailbars_error *err) {
    mb_lexer lx;
    mb_lexer_init(&lx, a, src, len);
    mb_token_info *arr = NULL;
    size_t n = 0, cap = 0;
    *count = 0;
    for (;;) {
        mb_tok t;
        int rc = mb_lexer_next(&lx, &t, err);
        if (rc != MAILBARS_OK) return NULL;
        if (t.type == TK_EOF || t.type == TK_END || t.type == TK_INVALID) break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            mb_token_info *na = mb_arena_alloc(a, nc * sizeof *na);
            if (!na) {
                mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
                return NULL;
            }
            if (n) memcpy(na, arr, n * sizeof *na);
            arr = na;
            cap = nc;
        }
        char *text = mb_arena_strndup(a, t.text, t.len);
        if (!text) {
            mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
            return NULL;
        }
        arr[n].name = mb_tok_name(t.type);
        arr[n].text = text;
        arr[n].len = t.len;
        n++;
    }
    if (!arr) {
        arr = mb_arena_alloc(a, sizeof *arr);
        if (!arr) {
            mb_error(err, MAILBARS_ERR_NOMEM, 0, 0, "out of memory");
            return NULL;
        }
    }
    *count = n;
    return arr;
}
