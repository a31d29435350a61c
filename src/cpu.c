/* The one-time CPU probe behind cpu.h. */
#include "cpu.h"
#include <pthread.h>

static unsigned g_detected, g_allowed = ~0u;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Asks the compiler's runtime, which also checks that the OS saves the wide registers. */
static void probe(void) {
#if MB_HAVE_AVX512
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi") &&
        __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi") &&
        __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt"))
        g_detected |= MB_CPU_AVX512;
#endif
}

unsigned mb_cpu_features(void) {
    pthread_once(&g_once, probe);
    return g_detected & g_allowed;
}

void mb_cpu_allow(unsigned allowed) {
    g_allowed = allowed;
}
