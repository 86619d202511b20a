/* The thread team of the recurrent kernels: how many threads a call may use, the spin barrier
 * a team meets at each step, the CPU each thread stands on, the late join of generation, fork
 * safety, and a test hook that forces late joins. Internal to the C core (not in fastlstm.h).
 *
 * Invariants every team path relies on (each path restates the one it uses beside its code):
 * I1. No pointer, counter or other state is copied between threads. What a thread needs at step
 *     k follows from k alone (which of two buffers holds step k's h or output is k's parity), so a
 *     thread that starts late computes the same addresses as one that started on time.
 * I2. A shared buffer is written only after a barrier (or a release/acquire flag) that follows
 *     every read of its previous contents; the barrier's acquire/release pairs publish the writes.
 * I3. A team that splits unit blocks is either all of its threads, each on a CPU of its own, or
 *     thread 0 alone (the others wait on a flag and touch nothing): never a subset that would
 *     change the split. A team that splits rows claims no CPUs; its rows never meet.
 * I4. The split of rows or unit blocks among threads changes which thread computes a value,
 *     never the order of its arithmetic, so results are bitwise the same for any team size.
 */
#ifndef FASTLSTM_TEAM_H
#define FASTLSTM_TEAM_H

#include <stddef.h>

#include "fastlstm.h"

/* fl_effective_threads, fl_fork_serial and fl_set_late_join_for_tests are declared in
 * fastlstm.h: a call runs on at most the processors OpenMP reports, on 1 thread without OpenMP,
 * and on 1 thread in a process forked after a team ran in its parent when the OpenMP runtime's
 * thread pool does not survive fork (GNU libgomp: the child would wait forever for the parent's
 * threads). */

/* Records that a team of several threads is about to start (for the fork rule above). */
void fl_team_note_start(void);

/* How many threads a call runs on, and whether they split unit blocks or rows: one policy for
 * sequences (rnn.c) and generation (feedback.c), each with its own measured thresholds. */
typedef struct {
    double min_work;             /* less work in the call: one thread */
    double min_work_per_thread;  /* less work per thread of the team: one thread */
    int rows_when_few_blocks;    /* few rows but too few unit blocks: split rows, else 1 thread */
} fl_team_policy;

/* Few rows per thread: a team splits the unit blocks instead (the unit-parallel schedule, whose
 * input projection fl_rnn_workspace_floats sizes for). */
static inline int fl_team_rows_are_few(ptrdiff_t n_batch, int n_threads) {
    return n_batch < 4 * (ptrdiff_t)n_threads;
}

/* The team of a call of `work` multiply-adds over n_batch >= 1 rows, on at most n_threads
 * (fl_effective_threads). *by_units: split the unit blocks (every thread on every row, meeting
 * at a barrier each step), which needs few rows, cells that can split units (can_split_units)
 * and at least two blocks per thread in the smallest recurrent layer (n_blocks); else rows, at
 * most one thread per row. Returns the team size; *by_units is 0 when it is 1. */
int fl_team_plan(const fl_team_policy *policy, double work, ptrdiff_t n_batch,
                 ptrdiff_t n_blocks, int can_split_units, int n_threads, int *by_units);

/* A sense-reversing spin barrier; a team meets there once per timestep, where libgomp's
 * barrier costs several times more. */
typedef struct {
    int count;
    int sense;
} fl_spin_barrier;

void fl_barrier_wait(fl_spin_barrier *bar, int n_threads, int *local_sense);

/* One turn of a waiting loop, the spins-th: pause, then yield the CPU after FL_BARRIER_SPINS. */
void fl_spin_pause(long spins);

/* Waits until *flag != 0 (acquire) and returns it. */
ptrdiff_t fl_wait_nonzero(const ptrdiff_t *flag);

/* The state of one team call: CPU claims, the late join of generation, the test hook. */
typedef struct {
    unsigned long long claimed;  /* CPUs taken by the team (bits 0-63) */
    ptrdiff_t refused;           /* a worker found no CPU of its own */
    ptrdiff_t ready;             /* workers standing on CPUs of their own (generation) */
    ptrdiff_t alone_done;        /* thread 0 has finished alone (refused team) */
    ptrdiff_t start;             /* generation: first step split among the team, 0 = undecided */
    ptrdiff_t released;          /* test hook: thread 0 lets the workers start */
    ptrdiff_t late_join;         /* test hook: its value when the call started (0: off) */
} fl_team_join;

/* Where a worker stood before it moved for the call (restored by fl_team_leave). */
typedef struct {
    int moved;
    unsigned long long mask[16];  /* a cpu_set_t */
} fl_team_seat;

/* Thread 0 calls this before the parallel region: it claims its own CPU. */
void fl_team_join_init(fl_team_join *j);

/* A worker claims the CPU it stands on, or moves itself for the call to an allowed CPU nobody
 * claimed; if there is none it sets j->refused. */
void fl_team_claim_cpu(fl_team_join *j, fl_team_seat *seat);

/* Generation's late join: a worker standing on its own CPU says so; thread 0 asks whether all
 * n_workers do (and none was refused), then names the first step they share (start, > 0),
 * which each worker waits for. */
void fl_team_mark_ready(fl_team_join *j);
int fl_team_all_ready(fl_team_join *j, int n_workers);
void fl_team_set_start(fl_team_join *j, ptrdiff_t start);
int fl_team_refused(fl_team_join *j);

/* A refused team: thread 0 says it has finished alone; the workers wait for that (not in the
 * OpenMP end-of-region barrier, where libgomp spins for milliseconds before it sleeps and would
 * take half of a shared CPU from thread 0). */
void fl_team_set_done(fl_team_join *j);
void fl_team_wait_done(fl_team_join *j);

/* A worker, last: back to the CPUs it was allowed before fl_team_claim_cpu. */
void fl_team_leave(const fl_team_seat *seat);

/* Test hook (tests only; 0, the default, turns it off), set through
 * fastlstm._kernels.set_late_join_for_tests. Every worker starts late by construction: it waits
 * in fl_team_worker_hook until thread 0 releases it, which thread 0 does when it has finished
 * its own share (rows), when it cannot go on without the workers (a barrier), or, in
 * generation split by units, after running exactly `steps` steps alone; there thread 0 then
 * waits until the workers stand, so they join at step steps + 1. */

/* A worker, first thing in a team region. */
void fl_team_worker_hook(fl_team_join *j);

/* Tests only, while the late-join hook is on: the threads that shared the work of the last
 * call, and (generation split by units) the first step they shared; called by thread 0 at the
 * end of each call. */
void fl_team_record(int n_team, ptrdiff_t first_shared_step);

/* Thread 0: the workers may start now (a no-op unless the hook is on). */
void fl_team_release_workers(fl_team_join *j);

/* Thread 0 in generation split by units, before step k: with the hook on and k == steps + 1,
 * releases the workers and waits until n_workers are ready or one was refused. */
void fl_team_hold_join(fl_team_join *j, ptrdiff_t k, int n_workers);

#endif
