/* What one core can do for the recurrent product, per vector width: the FMA peak of a
 * register-only loop, and the product loop over the packed layout of fastlstm.h (rows of
 * (features + units) x 4 gates x FL_RNN_BLOCK = 8 units per block) blocked as the AVX2 kernel
 * blocks it (3 rows x 4 ymm accumulators) and as an AVX-512 kernel could (rows x 2 zmm per
 * block: gates i|f and c|o of one block in one zmm each, the same per-unit FMA chain).
 *
 *   cc -O3 -o /tmp/roofline bench/roofline.c && /tmp/roofline
 *
 * (-O3: the accumulator arrays must live in registers, as in the kernels, whose helpers are
 * always_inline with constant sizes; at -O2 GCC 12 keeps them in memory and reads a third.)
 *
 * Prints GFLOP/s on one core (2 flops per multiply-add); AVX-512 rows only where the CPU and
 * the OS (XGETBV) have it. Used for the figures in bench/results/roofline.md.
 *
 *   cc -O3 -o /tmp/roofline bench/roofline.c -lpthread && /tmp/roofline --batch1
 *
 * prints instead, as one JSON line, what bounds a batch-1 step (bench/bench_batch1.py): the
 * rate of the batch-1 product (one row, 4 blocks at a time, every weight read once for one
 * multiply-add, the block order alternating between passes as the kernels' is) over weights in
 * L1, in L2 and in L3, the FMA peak, and the round trip of a cache line between two cores. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

__attribute__((target("avx2,fma"))) static double peak_ymm(long n) {
    __m256 a[10], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)i);
    double t0 = now();
    for (long k = 0; k < n; k++)
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    double dt = now() - t0;
    float s[8];
    __m256 sum = a[0];
    for (int i = 1; i < 10; i++) sum = _mm256_add_ps(sum, a[i]);
    _mm256_storeu_ps(s, sum);
    if (s[0] == 12345.0f) puts("");
    return 2.0 * 8 * 10 * n / dt / 1e9;
}

__attribute__((target("avx512f"))) static double peak_zmm(long n) {
    __m512 a[12], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    double t0 = now();
    for (long k = 0; k < n; k++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    double dt = now() - t0;
    __m512 sum = a[0];
    for (int i = 1; i < 12; i++) sum = _mm512_add_ps(sum, a[i]);
    if (_mm512_reduce_add_ps(sum) == 12345.0f) puts("");
    return 2.0 * 16 * 12 * n / dt / 1e9;
}

enum { B = 8, G = 32 };

/* h (rows, k) times one block's panel (k, 32): the AVX2 kernel's blocking, 3 rows x 4 ymm. */
__attribute__((target("avx2,fma"))) static void block_ymm(const float *h, long n_k,
                                                        const float *w, float *out) {
    __m256 acc[3][4];
    for (int i = 0; i < 3; i++)
        for (int g = 0; g < 4; g++) acc[i][g] = _mm256_setzero_ps();
    for (long k = 0; k < n_k; k++, w += G) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        const __m256 w2 = _mm256_loadu_ps(w + 16), w3 = _mm256_loadu_ps(w + 24);
        for (int i = 0; i < 3; i++) {
            const __m256 v = _mm256_broadcast_ss(h + i * n_k + k);
            acc[i][0] = _mm256_fmadd_ps(v, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(v, w1, acc[i][1]);
            acc[i][2] = _mm256_fmadd_ps(v, w2, acc[i][2]);
            acc[i][3] = _mm256_fmadd_ps(v, w3, acc[i][3]);
        }
    }
    for (int i = 0; i < 3; i++)
        for (int g = 0; g < 4; g++) _mm256_storeu_ps(out + i * G + g * 8, acc[i][g]);
}

/* The same product for R rows x NB adjacent blocks, 2 zmm per (row, block). */
#define BLOCK_ZMM(R, NB)                                                                     \
    __attribute__((target("avx512f"))) static void block_zmm_##R##_##NB(                     \
        const float *h, long n_k, const float *w, long panel, float *out) {                  \
        __m512 acc[R][NB][2];                                                                \
        for (int i = 0; i < R; i++)                                                          \
            for (int j = 0; j < NB; j++) acc[i][j][0] = acc[i][j][1] = _mm512_setzero_ps(); \
        for (long k = 0; k < n_k; k++, w += G) {                                             \
            __m512 wv[NB][2];                                                                \
            for (int j = 0; j < NB; j++) {                                                   \
                wv[j][0] = _mm512_loadu_ps(w + j * panel);                                   \
                wv[j][1] = _mm512_loadu_ps(w + j * panel + 16);                              \
            }                                                                                \
            for (int i = 0; i < R; i++) {                                                    \
                const __m512 v = _mm512_set1_ps(h[i * n_k + k]);                             \
                for (int j = 0; j < NB; j++) {                                               \
                    acc[i][j][0] = _mm512_fmadd_ps(v, wv[j][0], acc[i][j][0]);              \
                    acc[i][j][1] = _mm512_fmadd_ps(v, wv[j][1], acc[i][j][1]);              \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        for (int i = 0; i < R; i++)                                                          \
            for (int j = 0; j < NB; j++) {                                                   \
                _mm512_storeu_ps(out + (i * NB + j) * G, acc[i][j][0]);                     \
                _mm512_storeu_ps(out + (i * NB + j) * G + 16, acc[i][j][1]);                \
            }                                                                                \
    }
BLOCK_ZMM(12, 1)
BLOCK_ZMM(6, 2)

static int has_avx512(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6) == 0xe6;  /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM state enabled */
}

/* One pass of the batch-1 product over n_blocks blocks of one row: 4 blocks (8 zmm or ymm
 * chains) at a time, groups in reverse order when `reverse`. */
__attribute__((target("avx512f"))) static float row_zmm(const float *w, const float *h,
                                                       long n_k, long n_blocks, int reverse) {
    const long panel = n_k * G;
    __m512 tot = _mm512_setzero_ps();
    for (long j = 0; j < n_blocks / 4; j++) {
        const float *wb = w + (reverse ? n_blocks / 4 - 1 - j : j) * 4 * panel;
        __m512 a[8];
        for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps();
        for (long k = 0; k < n_k; k++, wb += G) {
            const __m512 v = _mm512_set1_ps(h[k]);
            for (int i = 0; i < 4; i++) {
                a[2 * i] = _mm512_fmadd_ps(v, _mm512_loadu_ps(wb + i * panel), a[2 * i]);
                a[2 * i + 1] = _mm512_fmadd_ps(v, _mm512_loadu_ps(wb + i * panel + 16), a[2 * i + 1]);
            }
        }
        for (int i = 0; i < 8; i++) tot = _mm512_add_ps(tot, a[i]);
    }
    return _mm512_reduce_add_ps(tot);
}

__attribute__((target("avx2,fma"))) static float row_ymm(const float *w, const float *h,
                                                        long n_k, long n_blocks, int reverse) {
    const long panel = n_k * G;
    __m256 tot = _mm256_setzero_ps();
    for (long j = 0; j < n_blocks / 2; j++) {
        const float *wb = w + (reverse ? n_blocks / 2 - 1 - j : j) * 2 * panel;
        __m256 a[8];
        for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
        for (long k = 0; k < n_k; k++, wb += G) {
            const __m256 v = _mm256_broadcast_ss(h + k);
            for (int i = 0; i < 8; i++)
                a[i] = _mm256_fmadd_ps(v, _mm256_loadu_ps(wb + (i >> 2) * panel + (i & 3) * 8), a[i]);
        }
        for (int i = 0; i < 8; i++) tot = _mm256_add_ps(tot, a[i]);
    }
    float s[8];
    _mm256_storeu_ps(s, tot);
    return s[0] + s[7];
}

/* GB/s of weights read by the batch-1 product over `bytes` of weights (8 features). */
static double batch1_gbs(double bytes, int zmm) {
    long units = 32;  /* the largest LSTM(units), a multiple of 32, whose weights fit */
    while (16.0 * (units + 32) * (8 + units + 32) <= bytes) units += 32;
    const long n_k = 8 + units, n_blocks = units / B;
    const double w_bytes = 4.0 * n_k * G * n_blocks;
    float *w = aligned_alloc(64, (size_t)w_bytes), *h = aligned_alloc(64, 4 * (size_t)n_k + 64);
    for (long i = 0; i < n_k * G * n_blocks; i++) w[i] = (float)(i % 7) * 1e-3f;
    for (long i = 0; i < n_k; i++) h[i] = 0.1f;
    const long reps = (long)(4e8 / w_bytes) + 2;
    double best = 1e30;
    volatile float sink = 0;
    for (int t = 0; t < 7; t++) {
        const double t0 = now();
        for (long r = 0; r < reps; r++)
            sink += zmm ? row_zmm(w, h, n_k, n_blocks, (int)(r & 1))
                        : row_ymm(w, h, n_k, n_blocks, (int)(r & 1));
        const double dt = (now() - t0) / reps;
        if (dt < best) best = dt;
    }
    free(w);
    free(h);
    return w_bytes / best / 1e9;
}

static volatile long ping, pong;
static void *ponger(void *arg) {
    const long n = *(const long *)arg;
    for (long i = 1; i <= n; i++) {
        while (__atomic_load_n(&ping, __ATOMIC_ACQUIRE) != i) {}
        __atomic_store_n(&pong, i, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* ns for a cache line to go to another core and back (the two threads' CPUs as Linux puts
 * them: on an idle 2-core machine, one each). */
static double round_trip_ns(void) {
    long n = 1000000;
    pthread_t t;
    ping = pong = 0;
    pthread_create(&t, NULL, ponger, &n);
    const double t0 = now();
    for (long i = 1; i <= n; i++) {
        __atomic_store_n(&ping, i, __ATOMIC_RELEASE);
        while (__atomic_load_n(&pong, __ATOMIC_ACQUIRE) != i) {}
    }
    const double dt = now() - t0;
    pthread_join(t, NULL);
    return dt / n * 1e9;
}

static int batch1_main(void) {
    const int zmm = has_avx512();
    long l1 = 32 * 1024, l2 = 1024 * 1024;
#ifdef _SC_LEVEL1_DCACHE_SIZE
    if (sysconf(_SC_LEVEL1_DCACHE_SIZE) > 0) l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    if (sysconf(_SC_LEVEL2_CACHE_SIZE) > 0) l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    const double fma = zmm ? peak_zmm(50000000) : peak_ymm(50000000);
    printf("{\"isa\": \"%s\", \"l1_bytes\": %ld, \"l2_bytes\": %ld, \"fma_gflops\": %.1f, "
           "\"l1_gbs\": %.1f, \"l2_gbs\": %.1f, \"l3_gbs\": %.1f, \"round_trip_ns\": %.1f}\n",
           zmm ? "avx512" : "avx2", l1, l2, fma, batch1_gbs(0.5 * l1, zmm),
           batch1_gbs(0.4 * l2, zmm), batch1_gbs(8.0 * l2, zmm), round_trip_ns());
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--batch1") == 0) return batch1_main();
    const long n_k = 256 + 32, units = 256, n_blocks = units / B, rows = 12;
    const long panel = n_k * G;
    float *w = aligned_alloc(64, sizeof(float) * panel * n_blocks);
    float *h = aligned_alloc(64, sizeof(float) * rows * n_k);
    float *out = aligned_alloc(64, sizeof(float) * rows * 3 * G);
    for (long i = 0; i < panel * n_blocks; i++) w[i] = (float)(i % 7) * 0.01f;
    for (long i = 0; i < rows * n_k; i++) h[i] = (float)(i % 5) * 0.1f;
    const int zmm = has_avx512();
    printf("register-only FMA loop, one core: ymm %.1f GFLOP/s", peak_ymm(50000000));
    if (zmm) printf(", zmm %.1f GFLOP/s", peak_zmm(50000000));
    printf("\n");
    /* The batch workload's recurrent product: 12 rows x 256 units x (32 + 256) k, all blocks;
     * weights 295 KB (in L2, as for LSTM(256)). */
    const int reps = 2000;
    const double flops = 2.0 * rows * units * 4 * n_k * reps;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        for (long b = 0; b < n_blocks; b++)
            for (long i = 0; i < rows; i += 3) block_ymm(h + i * n_k, n_k, w + b * panel, out);
    printf("product loop, 12 rows x LSTM(256), ymm 3 rows x 4: %.1f GFLOP/s\n",
           flops / (now() - t0) / 1e9);
    if (zmm) {
        t0 = now();
        for (int r = 0; r < reps; r++)
            for (long b = 0; b < n_blocks; b++) block_zmm_12_1(h, n_k, w + b * panel, panel, out);
        printf("product loop, zmm 12 rows x 1 block x 2: %.1f GFLOP/s\n",
               flops / (now() - t0) / 1e9);
        t0 = now();
        for (int r = 0; r < reps; r++)
            for (long b = 0; b < n_blocks; b += 2)
                for (long i = 0; i < rows; i += 6)
                    block_zmm_6_2(h + i * n_k, n_k, w + b * panel, panel, out);
        printf("product loop, zmm 6 rows x 2 blocks x 2: %.1f GFLOP/s\n",
               flops / (now() - t0) / 1e9);
    }
    double check = 0;  /* the results are used: no loop above is optimised away */
    for (long i = 0; i < rows * 3 * G; i++) check += out[i];
    printf("(checksum %g)\n", check);
    free(w);
    free(h);
    free(out);
    return 0;
}
