/* The unit tests' random numbers: xorshift64 over a caller's state, a fixed sequence from a
 * fixed seed, so that failures reproduce. */
#ifndef MAILBARS_TEST_XORSHIFT_H
#define MAILBARS_TEST_XORSHIFT_H

static inline unsigned xorshift_next(unsigned long long *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (unsigned)(*state >> 11);
}

#endif
