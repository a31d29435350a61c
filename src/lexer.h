/* Internal interface of the Handlebars front end (lexer.c, parser.c, whitespace.c): the jison
 * token set of handlebars.js 4.7, the lexer state machine and the whitespace-control pass. */
#ifndef MAILBARS_LEXER_H
#define MAILBARS_LEXER_H

#include "ast.h"

/* Tokens in the numeric order of handlebars.js's jison symbol table, so that "Expecting ..."
 * lists built from bit masks come out in jison's order. */
typedef enum mb_tok_type {
    TK_EOF,
    TK_COMMENT,
    TK_CONTENT,
    TK_END_RAW_BLOCK,
    TK_OPEN_RAW_BLOCK,
    TK_CLOSE_RAW_BLOCK,
    TK_OPEN_BLOCK,
    TK_CLOSE,
    TK_OPEN_INVERSE,
    TK_OPEN_INVERSE_CHAIN,
    TK_INVERSE,
    TK_OPEN_ENDBLOCK,
    TK_OPEN,
    TK_OPEN_UNESCAPED,
    TK_CLOSE_UNESCAPED,
    TK_OPEN_PARTIAL,
    TK_OPEN_PARTIAL_BLOCK,
    TK_OPEN_SEXPR,
    TK_CLOSE_SEXPR,
    TK_ID,
    TK_EQUALS,
    TK_OPEN_BLOCK_PARAMS,
    TK_CLOSE_BLOCK_PARAMS,
    TK_STRING,
    TK_NUMBER,
    TK_BOOLEAN,
    TK_UNDEFINED,
    TK_NULL,
    TK_DATA,
    TK_SEP,
    TK_INVALID, /* jison's 'INVALID' (any other character inside a mustache) */
    TK_END,     /* jison's bare EOF symbol (1): input ended in the raw or comment state */
    TK__COUNT
} mb_tok_type;

/* Jison name of a token type ("OPEN", "ID", ..., "INVALID", "1"). */
const char *mb_tok_name(mb_tok_type t);

typedef struct mb_tok {
    mb_tok_type type;
    const char *text; /* yytext: points into the source, or into the arena when rewritten */
    size_t len;
    size_t start, end; /* byte span of the whole match in the source */
    ast_loc loc;       /* jison yylloc: lines 1-based, columns 0-based in UTF-16 units */
} mb_tok;

enum { MB_LX_INITIAL, MB_LX_MU, MB_LX_EMU, MB_LX_COM, MB_LX_RAW };

#define MB_LX_COMMENT_RING 8

typedef struct mb_lexer {
    mb_arena *arena;
    const char *src;
    size_t len, pos;
    int state;        /* top of jison's condition stack */
    size_t raw_depth; /* number of stacked `raw` conditions when state is RAW */
    int lineno;       /* yylineno: line terminators consumed so far */
    int last_line, last_column;
    bool done;
    /* Long comments `{{!--` make jison's `matched` text keep a stray copy of the opener (its
     * unput bug); remembered here so error excerpts come out the same. */
    size_t com_at[MB_LX_COMMENT_RING];
    size_t com_dup[MB_LX_COMMENT_RING];
    size_t n_com;
} mb_lexer;

void mb_lexer_init(mb_lexer *lx, mb_arena *a, const char *src, size_t len);
/* Next significant token (whitespace inside mustaches is skipped, empty content dropped).
 * Returns MAILBARS_OK, MAILBARS_ERR_PARSE for a lexical error (err filled with jison's
 * "Lexical error on line N. Unrecognized text." message) or MAILBARS_ERR_NOMEM. */
int mb_lexer_next(mb_lexer *lx, mb_tok *out, mailbars_error *err);
/* Appends jison's showPosition() text for a token spanning [start, end) of the source. */
int mb_lexer_show_position(const mb_lexer *lx, size_t start, size_t end, mailbars_buf *out);

/* JavaScript `\s`: byte length of a whitespace character at s[i] (0 if none). */
size_t mb_js_space_at(const char *s, size_t i, size_t len);
/* Byte length of a JavaScript whitespace character ending right before s[end] (0 if none). */
size_t mb_js_space_before(const char *s, size_t end);

/* A content node as the parser allocates it: the AST node plus the flags handlebars.js's
 * WhitespaceControl keeps on ContentStatement. */
typedef struct mb_content_node {
    ast_node node;
    bool left_stripped, right_stripped;
} mb_content_node;

/* handlebars.js WhitespaceControl over a freshly parsed program. */
int mb_whitespace_control(mb_arena *a, ast_node *root, bool ignore_standalone);

#endif
