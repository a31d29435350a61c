/* CPU features that the encoders dispatch on at run time. The library is built for the
 * baseline of its target; a function compiled for a newer instruction set (MB_TARGET_AVX512)
 * runs only after mb_cpu_features() reports it, which it probes once per process. */
#ifndef MAILBARS_CPU_H
#define MAILBARS_CPU_H

#if defined(__x86_64__) && defined(__GNUC__)
/* AVX-512 F, BW, VL, VBMI and VBMI2, with BMI1/2 and POPCNT: what the wide encoders use. */
#define MB_HAVE_AVX512 1
#define MB_TARGET_AVX512                                                                           \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vbmi2,bmi,bmi2,popcnt")))
#else
#define MB_HAVE_AVX512 0
#define MB_TARGET_AVX512
#endif

enum { MB_CPU_AVX512 = 1u << 0 };

/* The features this CPU and its OS support, as MB_CPU_* bits, less those a test turned off. */
unsigned mb_cpu_features(void);

/* Test and benchmark hook: only the features in `allowed` are used from now on (~0u: all that
 * the CPU has). Call it before any thread encodes. */
void mb_cpu_allow(unsigned allowed);

#endif
