/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Baseline for the user-mode SIGSEGV trap path: the cost of one bare host
 * SIGSEGV round trip (a store to a PROT_NONE page, a handler that skips the
 * store, return), measured on this host. Prints the median, min and max
 * nanoseconds per round trip over REPS repetitions of N faults.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#if !defined(__x86_64__)
#error "the host baseline is written for x86-64 hosts"
#endif

static void on_segv(int sig, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;

    (void)sig;
    (void)si;
    uc->uc_mcontext.gregs[REG_RIP] += 3;    /* the 3-byte store below */
}

static inline void faulting_store(volatile uint64_t *p, uint64_t v)
{
    /* movq %rsi, (%rdi): 48 89 37, exactly 3 bytes */
    __asm__ volatile(".byte 0x48, 0x89, 0x37" : : "D"(p), "S"(v) : "memory");
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
    volatile uint64_t *page;
    double *t;

    if (n <= 0 || reps <= 0 || argc > 3) {
        fprintf(stderr, "usage: host-sigsegv [FAULTS [REPS]]\n");
        return 2;
    }
    page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t = calloc(reps, sizeof(*t));
    if (page == MAP_FAILED || !t || sigaction(SIGSEGV, &sa, NULL)) {
        perror("host-sigsegv");
        return 1;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = now_ns();

        for (long i = 0; i < n; i++) {
            faulting_store(page, i);
        }
        t[r] = (now_ns() - t0) / n;
    }
    qsort(t, reps, sizeof(*t), cmp);
    printf("host-sigsegv median=%.1f min=%.1f max=%.1f\n", t[reps / 2], t[0],
           t[reps - 1]);
    return 0;
}
