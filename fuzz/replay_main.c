/* Replays files through a harness's LLVMFuzzerTestOneInput without libFuzzer, so ctest runs
 * every seed and every past crash in ordinary (and sanitizer) builds. Arguments are files or
 * directories (their regular files, not recursive, in name order). Inputs run in-process (a
 * crash names the file it happened on); with --fork each runs in a child, so a crash counts
 * against its file and the others still run. Prints "N passed, M failed". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_common.h"
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_passed, g_failed;

/* Reads a whole file into a malloc'd buffer; returns NULL on error. */
static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static int g_fork;            /* --fork: each input in its own child process */
static const char *g_current; /* the input being run, for crash reports */

/* Names the input that was running when the process dies (signal or sanitizer report). */
static void report_current(void) {
    if (!g_current) return;
    static const char pre[] = "FAIL (crashed while running) ";
    ssize_t r = write(2, pre, sizeof pre - 1);
    r = write(2, g_current, strlen(g_current));
    r = write(2, "\n", 1);
    (void)r;
}

/* Signal handler: report, then die of the same signal. */
static void on_signal(int sig) {
    report_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Sanitizer runtimes call this before exiting on an error (weak: absent in plain builds). */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

/* Runs one input of exactly its length (so ASan sees any read past the end). */
static void run_input(const char *path) {
    size_t len = 0;
    uint8_t *buf = read_all(path, &len);
    if (!buf) {
        fprintf(stderr, "FAIL %s: cannot read\n", path);
        g_failed++;
        return;
    }
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) abort();
    if (len) memcpy(exact, buf, len);
    free(buf);
    g_current = path;
    LLVMFuzzerTestOneInput(exact, len);
    g_current = NULL;
    free(exact);
    g_passed++;
}

/* Runs one input in-process, or with --fork in a child, counting a non-zero exit as failed. */
static void run_file(const char *path) {
    if (!g_fork) {
        run_input(path);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        g_passed = g_failed = 0;
        run_input(path);
        exit(g_failed ? 1 : 0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL %s\n", path);
        g_failed++;
    } else {
        g_passed++;
    }
}

/* Sorts directory entries by name, for a stable order. */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs a file, or every regular file of a directory in name order. */
static void run_path(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return; /* a missing folder (no regressions yet) is fine */
    if (!S_ISDIR(sb.st_mode)) {
        run_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) abort();
        }
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(l);
        snprintf(names[n], l, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) run_file(names[i]);
        free(names[i]);
    }
    free(names);
}

/* Entry point: replay every argument. */
int main(int argc, char **argv) {
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(report_current);
    signal(SIGSEGV, on_signal);
    signal(SIGABRT, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGFPE, on_signal);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fork") == 0)
            g_fork = 1;
        else
            run_path(argv[i]);
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
