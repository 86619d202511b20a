/* The C test programs' weights and inputs: a fixed xorshift64 stream, so every run (and every
 * thread count compared) sees the same values. */
#ifndef FL_TEST_RNG_H
#define FL_TEST_RNG_H

static unsigned long long rng_state = 88172645463325252ULL;

static float uniform(void) {  /* xorshift64, in [-0.5, 0.5) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) / (double)(1ULL << 24)) - 0.5f;
}

#endif
