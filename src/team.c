/* The thread team (team.h): thread counts and the team-size policy, fork safety, the spin
 * barrier, CPU claims and the late-join test hook. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE  /* sched_getcpu, sched_setaffinity: fl_team_claim_cpu */
#endif
#include <string.h>

#include "fastlstm.h"
#include "team.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sched.h>
#define FL_HAVE_POSIX_THREADS 1
#else
#define FL_HAVE_POSIX_THREADS 0
#endif

#if defined(__linux__) && defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__))
#define FL_HAVE_TEAM_SPREAD 1
#else
#define FL_HAVE_TEAM_SPREAD 0
#endif

/* Flags read and written by several threads: acquire loads and release stores. */
#if defined(__GNUC__) || defined(__clang__)
static ptrdiff_t fl_load(const ptrdiff_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void fl_store(ptrdiff_t *p, ptrdiff_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
#else
/* Other compilers: volatile accesses, ordered by OpenMP's flush. */
static ptrdiff_t fl_load(const ptrdiff_t *p) {
    const ptrdiff_t v = *(volatile const ptrdiff_t *)p;
#ifdef _OPENMP
#pragma omp flush
#endif
    return v;
}
static void fl_store(ptrdiff_t *p, ptrdiff_t v) {
#ifdef _OPENMP
#pragma omp flush
#endif
    *(volatile ptrdiff_t *)p = v;
}
#endif

/* ------------------------------------------------------------------------------------------------
 * Thread counts and fork
 * ---------------------------------------------------------------------------------------------- */

/* GNU libgomp keeps its pool threads across parallel regions and has no fork handler: in a
 * child forked after a region ran, the next region of more than one thread waits forever for
 * the parent's threads (gunicorn --preload after a warm-up call, Celery prefork, multiprocessing
 * with the fork start method). LLVM's libomp (its omp.h defines KMP_VERSION_MAJOR) re-creates
 * its pool in the child (kmp_runtime.cpp __kmp_atfork_child). */
#if defined(_OPENMP) && !defined(KMP_VERSION_MAJOR)
#define FL_POOL_SURVIVES_FORK 0
#else
#define FL_POOL_SURVIVES_FORK 1
#endif

static int fl_teams_started;  /* a region of several threads ran in this process */
static int fl_forked_serial;  /* this process is a fork child that must stay serial */

#if FL_HAVE_POSIX_THREADS && !FL_POOL_SURVIVES_FORK
static pthread_once_t fl_atfork_once = PTHREAD_ONCE_INIT;

/* Runs in the child, which has one thread: plain stores are enough. */
static void fl_after_fork_in_child(void) {
    if (fl_teams_started) fl_forked_serial = 1;
}

static void fl_register_atfork(void) { pthread_atfork(NULL, NULL, fl_after_fork_in_child); }
#endif

void fl_team_note_start(void) {
#if FL_HAVE_POSIX_THREADS && !FL_POOL_SURVIVES_FORK
    pthread_once(&fl_atfork_once, fl_register_atfork);
#endif
    /* Read only in the fork child, where the parent's last store is all there is; an atomic
     * store keeps concurrent callers well defined. */
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(&fl_teams_started, 1, __ATOMIC_RELAXED);
#else
    fl_teams_started = 1;
#endif
}

int fl_fork_serial(void) { return fl_forked_serial; }

#ifdef _OPENMP
/* omp_get_num_procs, asked once: it reads the affinity mask from the kernel each call. */
static int fl_num_procs(void) {
#if defined(__GNUC__) || defined(__clang__)
    static int n_procs = 0;  /* every thread would store the same value; atomics keep it defined */
    int n = __atomic_load_n(&n_procs, __ATOMIC_RELAXED);
    if (n == 0) {
        n = omp_get_num_procs() > 0 ? omp_get_num_procs() : 1;
        __atomic_store_n(&n_procs, n, __ATOMIC_RELAXED);
    }
    return n;
#else
    return omp_get_num_procs() > 0 ? omp_get_num_procs() : 1;
#endif
}
#endif

int fl_effective_threads(int n_requested) {
    if (n_requested < 1) return 1;
#ifdef _OPENMP
    if (fl_forked_serial) return 1;
    /* More threads than processors only time-share them: the spin barrier assumes each thread
     * has a CPU of its own. */
    return n_requested < fl_num_procs() ? n_requested : fl_num_procs();
#else
    return 1;
#endif
}

int fl_team_plan(const fl_team_policy *policy, double work, ptrdiff_t n_batch,
                 ptrdiff_t n_blocks, int can_split_units, int n_threads, int *by_units) {
    int nt = n_threads;
    if (work < policy->min_work || work < policy->min_work_per_thread * nt) nt = 1;
    *by_units = nt > 1 && can_split_units && fl_team_rows_are_few(n_batch, nt);
    if (*by_units && n_blocks < 2 * (ptrdiff_t)nt) {
        *by_units = 0;
        if (!policy->rows_when_few_blocks) nt = 1;
    }
    if (!*by_units && nt > n_batch) nt = (int)n_batch;
    return nt;
}

/* ------------------------------------------------------------------------------------------------
 * Waiting: the spin barrier and flags
 * ---------------------------------------------------------------------------------------------- */

/* Spins before a waiting thread starts yielding its processor: ~2 us (a pause takes ~28 ns on
 * Zen), well above a normal wait (~0.1-0.3 us) and far below a scheduler tick. */
#define FL_BARRIER_SPINS 64

void fl_spin_pause(long spins) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_ia32_pause();
#endif
#if FL_HAVE_POSIX_THREADS
    /* Still waiting after microseconds: the peer may share this processor. After an idle spell
     * the OpenMP workers, woken by the caller, often start on the caller's CPU, and Linux
     * leaves two busy threads of one CPU together for milliseconds; spinning on would hold the
     * peer off until the next scheduler tick, every timestep. */
    if (spins >= FL_BARRIER_SPINS) sched_yield();
#else
    (void)spins;
#endif
}

/* Invariant I2 (team.h): the last thread to arrive resets the count and flips the sense with
 * release order after every thread's acquire-release increment, so each thread leaves with
 * every other thread's writes before the barrier visible. */
void fl_barrier_wait(fl_spin_barrier *bar, int n_threads, int *local_sense) {
#if defined(__GNUC__) || defined(__clang__)
    const int sense = !*local_sense;
    *local_sense = sense;
    if (__atomic_add_fetch(&bar->count, 1, __ATOMIC_ACQ_REL) == n_threads) {
        __atomic_store_n(&bar->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&bar->sense, sense, __ATOMIC_RELEASE);
    } else {
        for (long spins = 0; __atomic_load_n(&bar->sense, __ATOMIC_ACQUIRE) != sense; spins++)
            fl_spin_pause(spins);
    }
#else
    (void)bar, (void)n_threads, (void)local_sense;
#ifdef _OPENMP
#pragma omp barrier
#endif
#endif
}

ptrdiff_t fl_wait_nonzero(const ptrdiff_t *flag) {
    ptrdiff_t v;
    for (long spins = 0; (v = fl_load(flag)) == 0; spins++) fl_spin_pause(spins);
    return v;
}

/* ------------------------------------------------------------------------------------------------
 * CPU claims. Linux wakes an idle OpenMP worker on its caller's CPU when it takes the worker's
 * own CPU for busy, as a virtual machine's halted vCPU looks (vcpu_is_preempted), and then
 * leaves the two together for many milliseconds. So the caller claims its CPU before the team
 * starts, and each worker claims the CPU it finds itself on or, if that is taken, moves itself
 * for this call to an allowed CPU nobody has claimed; if there is none (the user bound the
 * threads so), the team is refused and thread 0 works alone (invariant I3). Claims are bits of
 * one word (CPUs 0-63; a thread on a higher CPU stays where it is).
 * ---------------------------------------------------------------------------------------------- */

static ptrdiff_t fl_late_join_steps;  /* the test hook (team.h); 0: off */

void fl_team_join_init(fl_team_join *j) {
    j->claimed = 0;
    j->refused = j->ready = j->released = 0;
    j->alone_done = j->start = 0;
    /* One value for the whole call: the hook may be changed by another thread meanwhile. */
    j->late_join = fl_load(&fl_late_join_steps);
#if FL_HAVE_TEAM_SPREAD
    const int cpu = sched_getcpu();
    if (cpu >= 0 && cpu < 64) j->claimed = 1ULL << cpu;
#endif
}

void fl_team_claim_cpu(fl_team_join *j, fl_team_seat *seat) {
    seat->moved = 0;
#if FL_HAVE_TEAM_SPREAD
    typedef char fl_mask_fits[sizeof(cpu_set_t) <= sizeof(seat->mask) ? 1 : -1];
    (void)sizeof(fl_mask_fits);
    const int here = sched_getcpu();
    if (here < 0 || here >= 64) return;
    if (!(__atomic_fetch_or(&j->claimed, 1ULL << here, __ATOMIC_ACQ_REL) & (1ULL << here)))
        return;
    cpu_set_t saved;
    if (sched_getaffinity(0, sizeof(saved), &saved) == 0) {
        for (int cpu = 0; cpu < 64 && cpu < CPU_SETSIZE; cpu++) {
            const unsigned long long bit = 1ULL << cpu;
            if (!CPU_ISSET(cpu, &saved)
                || (__atomic_fetch_or(&j->claimed, bit, __ATOMIC_ACQ_REL) & bit))
                continue;
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof(one), &one) == 0) {
                memcpy(seat->mask, &saved, sizeof(saved));
                seat->moved = 1;
                return;
            }
            break;
        }
    }
    fl_store(&j->refused, 1);
#else
    (void)j;
#endif
}

void fl_team_mark_ready(fl_team_join *j) {
#if defined(__GNUC__) || defined(__clang__)
    __atomic_add_fetch(&j->ready, 1, __ATOMIC_ACQ_REL);
#else
#pragma omp atomic
    j->ready++;
#endif
}

int fl_team_refused(fl_team_join *j) { return fl_load(&j->refused) != 0; }

int fl_team_all_ready(fl_team_join *j, int n_workers) {
    return !fl_load(&j->refused) && fl_load(&j->ready) == n_workers;
}

/* Release: the worker that acquires start sees every step thread 0 ran alone before it. */
void fl_team_set_start(fl_team_join *j, ptrdiff_t start) { fl_store(&j->start, start); }

void fl_team_set_done(fl_team_join *j) { fl_store(&j->alone_done, 1); }

void fl_team_wait_done(fl_team_join *j) { fl_wait_nonzero(&j->alone_done); }

void fl_team_leave(const fl_team_seat *seat) {
#if FL_HAVE_TEAM_SPREAD
    if (seat->moved) {
        cpu_set_t saved;
        memcpy(&saved, seat->mask, sizeof(saved));
        sched_setaffinity(0, sizeof(saved), &saved);
    }
#else
    (void)seat;
#endif
}

/* ------------------------------------------------------------------------------------------------
 * The late-join test hook (team.h)
 * ---------------------------------------------------------------------------------------------- */

/* At most this many steps alone: steps + 1 stays far from overflow. */
#define FL_LATE_JOIN_MAX ((ptrdiff_t)1 << 40)

void fl_set_late_join_for_tests(ptrdiff_t steps) {
    fl_store(&fl_late_join_steps,
             steps <= 0 ? 0 : steps > FL_LATE_JOIN_MAX ? FL_LATE_JOIN_MAX : steps);
}

void fl_team_worker_hook(fl_team_join *j) {
    if (j->late_join == 0) return;
    for (long spins = 0; !fl_load(&j->released); spins++) fl_spin_pause(spins);
}

void fl_team_release_workers(fl_team_join *j) {
    if (j->late_join != 0) fl_store(&j->released, 1);
}

void fl_team_hold_join(fl_team_join *j, ptrdiff_t k, int n_workers) {
    if (j->late_join == 0 || k != j->late_join + 1) return;
    fl_store(&j->released, 1);
    for (long spins = 0; !fl_load(&j->refused) && fl_load(&j->ready) < n_workers; spins++)
        fl_spin_pause(spins);
}

/* ------------------------------------------------------------------------------------------------
 * What the last team call did, for tests (fastlstm.h fl_last_team_for_tests)
 * ---------------------------------------------------------------------------------------------- */

static ptrdiff_t fl_last_team_size, fl_last_first_shared_step;

void fl_team_record(int n_team, ptrdiff_t first_shared_step) {
    /* Only while the hook is on: stores from every call of every thread to one line would make
     * concurrent calls contend for it. */
    if (fl_load(&fl_late_join_steps) == 0) return;
    fl_store(&fl_last_team_size, n_team);
    fl_store(&fl_last_first_shared_step, first_shared_step);
}

void fl_last_team_for_tests(int *n_team, ptrdiff_t *first_shared_step) {
    *n_team = (int)fl_load(&fl_last_team_size);
    *first_shared_step = fl_load(&fl_last_first_shared_step);
}
