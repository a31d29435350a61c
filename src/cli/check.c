/* mailbars check: validate SES templates (and requests) and report every error and warning
 * with its position in the JSON file. */
#include "common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_help(FILE *f) {
    fprintf(f,
            "usage: mailbars check FILE... [--data SAMPLE.json] [--format text|json]\n"
            "                      [--profile ses|handlebars] [--escape] [--strict-limits]\n"
            "\n"
            "Validates SES templates (any accepted JSON shape) and SES requests. Reports every\n"
            "error and warning, not only the first, on stderr as\n"
            "  FILE:LINE:COL: error|warning: [PART L:C] message\n"
            "followed by the template line and a caret. LINE:COL point into the JSON file\n"
            "(inside the string of the part); PART L:C is the position in the part's text.\n"
            "\n"
            "Errors: invalid JSON, wrong shape, parse errors, helpers other than if, unless,\n"
            "each, with, lookup and log, undefined partials (inline partials are scoped to\n"
            "their part), decorators, SES limits. Warnings: no text part, no subject, more than\n"
            "one {{ses:openTracker}}, a template near 500 KB, SES v2 inline content beyond\n"
            "{{name}}, unknown fields.\n"
            "\n"
            "  --data SAMPLE.json    also report every attribute the sample lacks (an error\n"
            "                        where rendering would fail, a warning elsewhere)\n"
            "  --format json         one JSON array of diagnostics on stdout\n"
            "\n"
            "exit status: 0 no errors (warnings allowed), 2 errors found, 64 bad usage,\n"
            "  74 a file could not be read.\n");
}

/* Appends one file's diagnostics to a JSON array. */
static int diags_to_json(json_t *arr, const char *file, const mailbars_ses_diags *d) {
    for (size_t i = 0; i < d->len; i++) {
        const mailbars_ses_diag *x = &d->items[i];
        json_t *o = json_pack("{s:s, s:i, s:i, s:s, s:s, s:i, s:i, s:s, s:s}", "file", file, "line",
                              x->file_line, "column", x->file_column, "severity",
                              x->severity == MAILBARS_SEV_ERROR ? "error" : "warning", "part",
                              x->part, "partLine", x->line, "partColumn", x->column, "code",
                              mailbars_status_name(x->code), "message", x->message);
        if (!o || json_array_append_new(arr, o)) return -1;
        if (x->source_line) json_object_set_new(o, "source", json_string(x->source_line));
    }
    return 0;
}

int cmd_check(int argc, char **argv) {
    cli_opts o;
    memset(&o, 0, sizeof o);
    const char *sample_file = NULL, *format = "text";
    char **files = argv + 1;
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            check_help(stdout);
            return EXIT_OK;
        }
        int r = cli_value_option("check", "--data", argc, argv, &i, &sample_file);
        if (!r) r = cli_value_option("check", "--format", argc, argv, &i, &format);
        if (!r) r = cli_common_option("check", &o, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "mailbars check: unknown option '%s' (see --help)\n", argv[i]);
            return EXIT_USAGE;
        }
        files[nfiles++] = argv[i];
    }
    if (!nfiles) {
        fprintf(stderr, "usage: mailbars check FILE... [--data SAMPLE.json] [--format json]\n");
        return EXIT_USAGE;
    }
    int json_out = 0;
    if (!strcmp(format, "json"))
        json_out = 1;
    else if (strcmp(format, "text")) {
        fprintf(stderr, "mailbars check: --format must be text or json, not '%s'\n", format);
        return EXIT_USAGE;
    }
    mailbars_ses_options so;
    if (cli_ses_options("check", &o, &so)) return EXIT_USAGE;

    int rc = EXIT_OK;
    json_t *sample = NULL;
    if (sample_file) {
        mailbars_buf b = {0};
        if ((rc = cli_read_file(sample_file, &b))) return rc;
        mailbars_error e;
        sample = mailbars_ses_parse_data(b.data, b.len, "sample data", so.limits, &e);
        mailbars_buf_free(&b);
        if (!sample) {
            if (e.line > 0)
                fprintf(stderr, "%s:%d:%d: error: %s\n", sample_file, e.line, e.column, e.message);
            else
                fprintf(stderr, "%s: error: %s\n", sample_file, e.message);
            return EXIT_INVALID;
        }
    }
    json_t *all = json_out ? json_array() : NULL;
    size_t errors = 0, warnings = 0;
    for (int f = 0; f < nfiles; f++) {
        mailbars_buf src = {0};
        int r = cli_read_file(files[f], &src);
        if (r) {
            rc = r;
            continue;
        }
        mailbars_ses_diags d = {0};
        if (mailbars_ses_check(src.data, src.len, sample, &so, &d)) {
            fprintf(stderr, "mailbars check: %s: out of memory\n", files[f]);
            rc = EXIT_IOERR;
        }
        size_t ne = mailbars_ses_diags_errors(&d);
        errors += ne;
        warnings += d.len - ne;
        if (json_out)
            diags_to_json(all, files[f], &d);
        else
            cli_print_diags(stderr, files[f], &d);
        mailbars_ses_diags_free(&d);
        mailbars_buf_free(&src);
    }
    if (json_out) {
        char *s = json_dumps(all, JSON_INDENT(2));
        if (s) printf("%s\n", s);
        free(s);
        json_decref(all);
    } else if (errors || warnings) {
        fprintf(stderr, "%zu error%s, %zu warning%s\n", errors, errors == 1 ? "" : "s", warnings,
                warnings == 1 ? "" : "s");
    }
    json_decref(sample);
    if (rc) return rc;
    return errors ? EXIT_INVALID : EXIT_OK;
}
