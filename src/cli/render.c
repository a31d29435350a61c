/* mailbars render: TestRenderTemplate offline. One SES template (any accepted JSON shape)
 * plus data gives one RFC 5322 message on stdout. */
#include "common.h"
#include <stdio.h>
#include <string.h>

static void render_help(FILE *f) {
    fprintf(f, "usage: mailbars render TEMPLATE.json [DATA.json|-] [OPTIONS]\n"
               "\n"
               "Renders an Amazon SES template as SES would (TestRenderTemplate, offline) and\n"
               "writes one MIME message to stdout.\n"
               "\n"
               "TEMPLATE.json: {\"Template\":{\"TemplateName\",\"SubjectPart\",\"TextPart\","
               "\"HtmlPart\"}}\n"
               "  (as 'aws ses get-template' prints it), its inner object, or SES v2\n"
               "  {\"TemplateName\",\"TemplateContent\":{\"Subject\",\"Text\",\"Html\"}}. It may "
               "also carry\n"
               "  \"TemplateData\" (a JSON string), like a TestRenderTemplate request.\n"
               "DATA.json: the template data as a JSON object ('-' reads stdin), or a request\n"
               "  holding it: TestRenderTemplate / SendTemplatedEmail (TemplateData string; their\n"
               "  Destination and Source give To, Cc and From).\n"
               "\n"
               "exit status: 0 rendered, 1 rendering failure (SES's message on stderr),\n"
               "  2 invalid template or data (FILE:LINE:COL diagnostics), 64 bad usage.\n"
               "\n");
    cli_print_common_help(f);
}

/* Is this parsed object a request carrying TemplateData rather than plain data? */
static int is_request(json_t *v) {
    json_t *td = json_object_get(v, "TemplateData");
    return json_is_string(td) &&
           (json_object_get(v, "TemplateName") || json_object_get(v, "Template") ||
            json_object_get(v, "Destination") || json_object_get(v, "Source") ||
            json_object_size(v) == 1);
}

/* Prints a JSON/shape error of a whole file: FILE:LINE:COL when positioned. */
static void print_file_error(const char *file, const mailbars_error *e) {
    if (e->line > 0)
        fprintf(stderr, "%s:%d:%d: error: %s\n", file, e->line, e->column, e->message);
    else
        fprintf(stderr, "%s: error: %s\n", file, e->message);
}

/* The template failed to build: print every problem `check` finds, with positions. */
static void print_template_errors(const char *file, const mailbars_buf *src,
                                  const mailbars_ses_options *so, const mailbars_error *e) {
    mailbars_ses_diags d = {0};
    mailbars_ses_check(src->data, src->len, NULL, so, &d);
    size_t shown = 0;
    for (size_t i = 0; i < d.len; i++) {
        if (d.items[i].severity != MAILBARS_SEV_ERROR) continue;
        mailbars_ses_diags one = {&d.items[i], 1, 1};
        cli_print_diags(stderr, file, &one);
        shown++;
    }
    if (!shown) {
        if (e->part[0] && e->line > 0)
            fprintf(stderr, "%s: error: [%s %d:%d] %s\n", file, e->part, e->line, e->column,
                    e->message);
        else
            print_file_error(file, e);
    }
    mailbars_ses_diags_free(&d);
}

/* Adds a request's destination addresses and Source to the message (options win). */
static int apply_request(const mailbars_ses_request *r, const mailbars_ses_destination *dst,
                         const cli_opts *o, mailbars_message *msg, const char *file) {
    mailbars_error e;
    mailbars_error_clear(&e);
    const char *src = mailbars_ses_request_source(r);
    if (!o->from && src && mailbars_message_add_address(msg, MAILBARS_FROM, src, strlen(src), &e))
        goto bad;
    json_t *lists[3] = {o->to ? NULL : dst->to, o->cc ? NULL : dst->cc,
                        o->reply_to ? NULL : mailbars_ses_request_reply_to(r)};
    mailbars_addr_field fields[3] = {MAILBARS_TO, MAILBARS_CC, MAILBARS_REPLY_TO};
    for (int k = 0; k < 3; k++) {
        size_t i;
        json_t *a;
        json_array_foreach(lists[k], i, a) {
            if (mailbars_message_add_address(msg, fields[k], json_string_value(a),
                                             json_string_length(a), &e))
                goto bad;
        }
    }
    return 0;
bad:
    fprintf(stderr, "%s: error: %s\n", file, e.message);
    return EXIT_INVALID;
}

int cmd_render(int argc, char **argv) {
    cli_opts o;
    memset(&o, 0, sizeof o);
    const char *files[2] = {NULL, NULL};
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            render_help(stdout);
            return EXIT_OK;
        }
        int r = cli_common_option("render", &o, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "mailbars render: unknown option '%s' (see --help)\n", argv[i]);
            return EXIT_USAGE;
        }
        if (nfiles == 2) {
            fprintf(stderr, "mailbars render: too many arguments (see --help)\n");
            return EXIT_USAGE;
        }
        files[nfiles++] = argv[i];
    }
    if (!nfiles) {
        fprintf(stderr, "usage: mailbars render TEMPLATE.json [DATA.json|-] [OPTIONS]\n");
        return EXIT_USAGE;
    }
    mailbars_ses_options so;
    if (cli_ses_options("render", &o, &so)) return EXIT_USAGE;
    { /* bad option values are usage errors, whatever the files hold */
        mailbars_message *probe = mailbars_message_new();
        int bad = probe ? cli_apply_settings("render", &o, probe) : EXIT_IOERR;
        mailbars_message_free(probe);
        if (bad) return bad;
    }

    int rc = EXIT_OK;
    mailbars_buf tsrc = {0}, dsrc = {0}, out = {0};
    mailbars_ses_template *t = NULL;
    mailbars_ses_request *req = NULL;
    mailbars_ses_destination dst;
    memset(&dst, 0, sizeof dst);
    json_t *troot = NULL, *data = NULL;
    mailbars_message *msg = NULL;
    mailbars_ses_render_state *st = NULL;
    mailbars_error e;
    mailbars_error_clear(&e);

    if ((rc = cli_read_file(files[0], &tsrc))) goto done;
    troot = mailbars_json_parse(tsrc.data, tsrc.len, NULL, so.limits, &e);
    if (!troot) {
        print_file_error(files[0], &e);
        rc = EXIT_INVALID;
        goto done;
    }
    t = mailbars_ses_template_from_json(troot, &so, &e);
    if (!t) {
        print_template_errors(files[0], &tsrc, &so, &e);
        rc = e.code == MAILBARS_ERR_NOMEM ? EXIT_IOERR : EXIT_INVALID;
        goto done;
    }

    /* the data: DATA.json (plain or a request), else TemplateData in TEMPLATE.json */
    const char *dfile = files[1];
    mailbars_buf *dtext = &dsrc;
    if (dfile) {
        if ((rc = cli_read_file(dfile, &dsrc))) goto done;
    } else if (is_request(troot)) {
        dfile = files[0];
        dtext = &tsrc;
    }
    if (dfile) {
        json_t *probe = mailbars_json_parse(dtext->data, dtext->len, NULL, so.limits, NULL);
        int request = probe && is_request(probe);
        json_decref(probe);
        if (request) {
            mailbars_error w;
            req = mailbars_ses_request_parse(dtext->data, dtext->len, &so, &w, &e);
            if (req && mailbars_ses_request_destination(req, 0, &dst, &e)) {
                mailbars_ses_request_free(req);
                req = NULL;
            }
            if (!req) {
                print_file_error(dfile, &e);
                rc = EXIT_INVALID;
                goto done;
            }
            data = json_incref(dst.data);
        } else {
            data = mailbars_ses_parse_data(dtext->data, dtext->len, "data", so.limits, &e);
            if (!data) {
                print_file_error(dfile, &e);
                rc = EXIT_INVALID;
                goto done;
            }
        }
    } else {
        data = json_object();
    }

    msg = mailbars_message_new();
    st = mailbars_ses_render_state_new();
    if (!msg || !st || !data) {
        fprintf(stderr, "mailbars render: out of memory\n");
        rc = EXIT_IOERR;
        goto done;
    }
    if ((rc = cli_apply_settings("render", &o, msg))) goto done;
    if ((rc = cli_apply_addresses("render", &o, msg))) goto done;
    if (req && (rc = apply_request(req, &dst, &o, msg, dfile))) goto done;

    if (mailbars_ses_render(st, t, data, msg, &e) || mailbars_message_write(msg, &out, &e)) {
        const char *name = mailbars_ses_template_name(t);
        fprintf(stderr, "mailbars render: Rendering Failure (template '%s'%s%s%s): %s\n", name,
                e.part[0] ? ", " : "", e.part, e.part[0] ? " part" : "", e.message);
        rc = e.code == MAILBARS_ERR_NOMEM ? EXIT_IOERR : EXIT_RENDER;
        goto done;
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout)) {
        fprintf(stderr, "mailbars render: cannot write the message to stdout\n");
        rc = EXIT_IOERR;
    }
done:
    json_decref(dst.data);
    json_decref(data);
    json_decref(troot);
    mailbars_ses_request_free(req);
    mailbars_ses_template_free(t);
    mailbars_ses_render_state_free(st);
    mailbars_message_free(msg);
    mailbars_buf_free(&tsrc);
    mailbars_buf_free(&dsrc);
    mailbars_buf_free(&out);
    return rc;
}
