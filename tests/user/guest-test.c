/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Static guest program for the user-mode tests, built for each guest
 * architecture. It speaks the user-mode protocol directly (raw mmap of
 * BASE.ctrl, loads and stores; pread fast path; call slots when FEATURES
 * announces them, i.e. under the supervisor), runs one case given on the
 * command line and exits 0 when every check passed; failures are printed
 * to stderr. Under the supervisor, raw loads and stores are served when it
 * traces QEMU (the default): GUEST_RAW=1 in the environment makes the cases
 * use them too, beside the call slots. Results come from tests/callbacks/test-callbacks.c:
 * cmd * 3 + data[0], with ~cmd at data[8] and the call count at data[16].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring-layout.h"
#include "check.h"

/* Literal, not from the header: the test holds the ABI to its spec */
#define REG_ID          0x00
#define REG_FEATURES    0x04
#define REG_DATA_SIZE   0x08
#define REG_CMD         0x10
#define REG_RESULT      0x18
#define REG_RESULT_HI   0x1c
#define REG_CALL_OFFSET 0x20
#define REG_CALL        0x28
#define GUEST_ID        0x42440101u
#define FEATURE_SLOTS   0x2u
#define FEATURE_USER_MEM 0x10u
#define FEATURE_RING_KICK 0x20u
#define CMD_VCPU        0xf00d0001u
#define PAGE            4096

static volatile uint8_t *ctrl;
static volatile int *volatile bad = (volatile int *)(uintptr_t)0x10;
static volatile uint64_t *data;
static uint64_t data_size;
static int ctrl_fd;
static volatile uint8_t *slots;     /* the call slot area, if announced */
static bool raw;                    /* raw accesses served (GUEST_RAW) */


static volatile uint32_t *reg32(unsigned off)
{
    return (volatile uint32_t *)(ctrl + off);
}

static volatile uint64_t *reg64(unsigned off)
{
    return (volatile uint64_t *)(ctrl + off);
}

static char *path(const char *suffix)
{
    const char *base = getenv("QEMU_BACKDOOR_PATH");
    char *p;

    if (!base) {
        fprintf(stderr, "QEMU_BACKDOOR_PATH is not set\n");
        exit(2);
    }
    if (asprintf(&p, "%s.%s", base, suffix) < 0) {
        exit(2);
    }
    return p;
}

static volatile uint8_t *map_ctrl(int prot)
{
    void *p = mmap(NULL, PAGE, prot, MAP_SHARED, ctrl_fd, 0);

    if (p == MAP_FAILED) {
        perror("mmap ctrl");
        exit(2);
    }
    return p;
}

static void open_channel(void)
{
    int fd = open(path("data"), O_RDWR);
    uint32_t id = 0;

    ctrl_fd = open(path("ctrl"), O_RDWR);
    if (ctrl_fd < 0 || fd < 0) {
        perror("open channel");
        exit(2);
    }
    CHECK(pread(ctrl_fd, &id, 4, 0) == 4 && id == GUEST_ID,
          "file ID 0x%x", id);
    ctrl = map_ctrl(PROT_READ | PROT_WRITE);
    raw = !(*reg32(REG_FEATURES) & FEATURE_SLOTS) || getenv("GUEST_RAW");
    if (*reg32(REG_FEATURES) & FEATURE_SLOTS) {
        void *p = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED,
                       ctrl_fd, 0x10000);

        if (p == MAP_FAILED) {
            perror("mmap slots");
            exit(2);
        }
        slots = p;
    }
    data_size = lseek(fd, 0, SEEK_END);
    data = mmap(NULL, data_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (data == MAP_FAILED) {
        perror("mmap data");
        exit(2);
    }
}

static uint64_t fast_call(uint64_t cmd)
{
    uint64_t buf = cmd;
    ssize_t n = pread(ctrl_fd, &buf, 8, REG_CALL);

    CHECK(n == 8, "pread returned %zd", n);
    return buf;
}

static uint64_t raw_call(uint64_t cmd)
{
    *reg64(REG_CMD) = cmd;
    return *reg64(REG_RESULT);
}

/*
 * The slot protocol as the spec gives it ("Call slots"): its own claim of
 * a slot per call, the guest library's implementation is tested apart.
 */
static volatile uint32_t *at32(volatile uint8_t *p, unsigned off)
{
    return (volatile uint32_t *)(p + off);
}

static uint64_t slot_call(uint64_t cmd)
{
    static __thread unsigned hint;
    static __thread uint32_t tid;
    volatile uint32_t *used = at32(slots, 0x08), *done;
    volatile uint8_t *slot = NULL;
    uint32_t seq, u, zero;
    uint64_t r;
    unsigned i = 0;

    if (!tid) {
        tid = syscall(SYS_gettid);
        hint = __atomic_fetch_add(at32(slots, 0x0c), 1, __ATOMIC_RELAXED);
    }
    for (unsigned k = 0; k < 1023 && !slot; k++) {
        i = (hint + k) % 1023;
        zero = 0;
        if (__atomic_compare_exchange_n(at32(slots, (i + 1) * 64), &zero,
                                        tid, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            slot = slots + (i + 1) * 64;
        }
    }
    if (!slot) {
        fprintf(stderr, "no free call slot\n");
        exit(2);
    }
    u = __atomic_load_n(used, __ATOMIC_RELAXED);
    while (u <= i && !__atomic_compare_exchange_n(used, &u, i + 1, 1,
                                                  __ATOMIC_SEQ_CST,
                                                  __ATOMIC_RELAXED)) {
    }
    done = at32(slot, 0x08);
    *(volatile uint64_t *)(slot + 0x10) = cmd;
    *at32(slot, 0x20) = tid;
    seq = *at32(slot, 0x04) + 1;
    __atomic_store_n(at32(slot, 0x04), seq, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(at32(slots, 0x04), __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(at32(slots, 0x00), 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, at32(slots, 0x00), FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    for (int n = 0; n < 1000 && __atomic_load_n(done, __ATOMIC_ACQUIRE) != seq;
         n++) {
    }
    if (__atomic_load_n(done, __ATOMIC_ACQUIRE) != seq) {
        __atomic_add_fetch(at32(slots, 0x00), 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, at32(slots, 0x00), FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    while (__atomic_load_n(done, __ATOMIC_ACQUIRE) != seq) {
        __atomic_store_n(at32(slot, 0x0c), 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(done, __ATOMIC_SEQ_CST) != seq) {
            syscall(SYS_futex, done, FUTEX_WAIT, seq - 1, NULL, NULL, 0);
        }
        __atomic_store_n(at32(slot, 0x0c), 0, __ATOMIC_RELAXED);
    }
    r = *(volatile uint64_t *)(slot + 0x18);
    __atomic_store_n(at32(slot, 0x00), 0, __ATOMIC_RELEASE);
    hint = i;
    return r;
}

/* The signal-free call of the backend: a slot, or the pread fast path */
static uint64_t call(uint64_t cmd)
{
    return slots ? slot_call(cmd) : fast_call(cmd);
}

/* The seed's CMD/RESULT where served; else a slot (the supervisor) */
static uint64_t any_call(uint64_t cmd)
{
    return raw ? raw_call(cmd) : slot_call(cmd);
}

/* The event rings' layout registers (user mode: no slot calls) */
static void check_ring_registers(uint64_t size)
{
    RingLayout l = ring_layout(size);

    CHECK(*reg32(REG_SLOT_COUNT) == l.slots, "rings %u (want %u)",
          *reg32(REG_SLOT_COUNT), l.slots);
    CHECK(*reg32(REG_RING_ENTRIES) == l.entries, "ring entries %u (want %u)",
          *reg32(REG_RING_ENTRIES), l.entries);
    CHECK(*reg64(REG_SLOT_BASE) == l.base, "slot base 0x%" PRIx64 " (want "
          "0x%" PRIx64 ")", *reg64(REG_SLOT_BASE), l.base);
    CHECK(*reg64(REG_SLOT_STRIDE) == l.stride, "slot stride %" PRIu64,
          *reg64(REG_SLOT_STRIDE));
}

/* Identification, sizes and wrong accesses through the trapped page. */
static void case_registers(void)
{
    uint64_t expect_size = strtoull(getenv("EXPECT_DATA_SIZE") ?: "16777216",
                                    NULL, 0);

    CHECK(*reg32(REG_ID) == GUEST_ID, "ID 0x%x", *reg32(REG_ID));
    check_ring_registers(expect_size);
    if (slots) {
        /* The supervisor wrote the constant registers into the file */
        uint8_t file[16];

        CHECK(*reg32(REG_FEATURES) ==
              (1 | FEATURE_SLOTS | FEATURE_RING | FEATURE_USER_MEM |
               FEATURE_RING_KICK),
              "features 0x%x", *reg32(REG_FEATURES));
        CHECK(*reg64(REG_DATA_SIZE) == expect_size, "size %" PRIu64,
              *reg64(REG_DATA_SIZE));
        CHECK(data_size == expect_size, "file size %" PRIu64, data_size);
        CHECK(pread(ctrl_fd, file, 16, 0) == 16 &&
              *(volatile uint64_t *)ctrl == *(uint64_t *)file &&
              *(volatile uint64_t *)(ctrl + 8) == *(uint64_t *)(file + 8),
              "pread of the registers");
        /* Registers, call slots, the server threads' 64 stages */
        CHECK(lseek(ctrl_fd, 0, SEEK_END) == 0x20000 + 64 * 0x10000,
              "control file size");
        if (!raw) {
            return;
        }
        /* Served: the file's bytes in any width, no call registers */
        CHECK(*(volatile uint8_t *)(ctrl + REG_ID) == file[0], "8-bit read");
        CHECK(*(volatile uint16_t *)(ctrl + REG_FEATURES) ==
              *(uint16_t *)(file + REG_FEATURES), "16-bit read");
    } else {
        CHECK(*reg32(REG_FEATURES) == (1 | FEATURE_RING), "features 0x%x",
              *reg32(REG_FEATURES));
        CHECK(*reg64(REG_DATA_SIZE) == expect_size, "size %" PRIu64,
              *reg64(REG_DATA_SIZE));
        CHECK(*reg32(REG_DATA_SIZE) == (uint32_t)expect_size, "size32");
        CHECK(data_size == expect_size, "file size %" PRIu64, data_size);
        /* Wrong accesses: reads all ones, writes ignored */
        CHECK(*(volatile uint16_t *)(ctrl + REG_ID) == 0xffff,
              "16-bit read");
        CHECK(*(volatile uint8_t *)(ctrl + REG_ID) == 0xff, "8-bit read");
    }
    CHECK(*reg64(REG_CALL_OFFSET) == expect_size - 8, "call offset");
    CHECK(*reg64(REG_CMD) == UINT64_MAX, "read of CMD");
    CHECK(*reg32(0x58) == UINT32_MAX, "reserved");
    /* No raw ring operations in user mode; widths as in system mode */
    CHECK(*reg32(REG_SLOT_ALLOC) == UINT32_MAX, "SLOT_ALLOC is reserved");
    CHECK(*reg64(REG_SLOT_COUNT) == UINT64_MAX, "8-byte SLOT_COUNT");
    CHECK(*reg32(REG_SLOT_BASE + 4) == UINT32_MAX, "high half of SLOT_BASE");
    CHECK(*reg64(0xff8) == UINT64_MAX, "reserved end of page");
    *reg32(REG_ID) = 0;
    *reg64(REG_DATA_SIZE) = 0;
    *reg64(REG_CALL_OFFSET) = 3;
    *reg64(REG_CALL_OFFSET) = expect_size;
    CHECK(*reg32(REG_ID) == GUEST_ID, "ID after write");
    CHECK(*reg64(REG_DATA_SIZE) == expect_size, "DATA_SIZE after write");
    CHECK(*reg64(REG_CALL_OFFSET) == expect_size - 8, "bad offsets kept");
    *reg64(REG_CALL_OFFSET) = 64;
    CHECK(*reg64(REG_CALL_OFFSET) == 64, "call offset set");
    *reg32(REG_CALL_OFFSET) = 128;
    CHECK(*reg32(REG_CALL_OFFSET) == 128, "call offset set (32-bit)");
}

/* The same calls as case_calls, through the call slots. */
static void case_slot_calls(void)
{
    uint64_t r, buf = 0x0102030405060708ull;

    data[0] = 0x1000;
    r = slot_call(0x1234);
    CHECK(r == 0x1234 * 3 + 0x1000, "slot 0x%" PRIx64, r);
    CHECK(data[1] == ~(uint64_t)0x1234, "host store 0x%" PRIx64, data[1]);
    CHECK(data[2] == 1, "calls %" PRIu64, data[2]);
    r = slot_call(0x80000001u);
    CHECK(r == 0x80000001ull * 3 + 0x1000, "slot 0x%" PRIx64, r);
    r = slot_call(0x55);
    CHECK(r == 0x55 * 3 + 0x1000, "slot 0x%" PRIx64, r);
    r = slot_call(0x66);
    CHECK(r == 0x66 * 3 + 0x1000, "slot 0x%" PRIx64, r);
    r = slot_call(0x66);
    CHECK(r == 0x66 * 3 + 0x1000, "slot again 0x%" PRIx64, r);
    data[0] = 7;
    r = slot_call(0x0102030405060708ull);
    CHECK(r == 0x0102030405060708ull * 3 + 7, "slot 0x%" PRIx64, r);
    CHECK(data[1] == ~0x0102030405060708ull, "host store");
    CHECK(data[2] == 6, "call count %" PRIu64, data[2]);

    /* No pread fast path under the supervisor: the file's bytes */
    CHECK(pread(ctrl_fd, &buf, 8, REG_CALL) == 8 && buf == 0,
          "pread of CALL read 0x%" PRIx64, buf);
    CHECK(data[2] == 6, "a pread made a call");
}

/*
 * A 16-byte pair of 8-byte registers in one instruction: two accesses in
 * address order (QEMU runs it as two host loads, or as one vector load).
 */
static void pair_load(volatile uint8_t *p, uint64_t *a, uint64_t *b)
{
#if defined(__x86_64__)
    uint64_t v[2];

    asm volatile("movdqu (%1), %%xmm0\n\tmovdqu %%xmm0, (%0)"
                 : : "r"(v), "r"(p) : "xmm0", "memory");
    *a = v[0], *b = v[1];
#elif defined(__aarch64__)
    asm volatile("ldp %0, %1, [%2]" : "=&r"(*a), "=&r"(*b) : "r"(p)
                 : "memory");
#elif defined(__s390x__)
    asm volatile("lmg %%r4, %%r5, 0(%2)\n\tlgr %0, %%r4\n\tlgr %1, %%r5"
                 : "=&r"(*a), "=&r"(*b) : "a"(p) : "r4", "r5", "memory");
#endif
}

static void pair_store(volatile uint8_t *p, uint64_t a, uint64_t b)
{
#if defined(__x86_64__)
    uint64_t v[2] = { a, b };

    asm volatile("movdqu (%0), %%xmm0\n\tmovdqu %%xmm0, (%1)"
                 : : "r"(v), "r"(p) : "xmm0", "memory");
#elif defined(__aarch64__)
    asm volatile("stp %0, %1, [%2]" : : "r"(a), "r"(b), "r"(p) : "memory");
#elif defined(__s390x__)
    asm volatile("lgr %%r4, %0\n\tlgr %%r5, %1\n\tstmg %%r4, %%r5, 0(%2)"
                 : : "r"(a), "r"(b), "a"(p) : "r4", "r5", "memory");
#endif
}

/* Results and data in both directions, the seed's CMD/RESULT and CALL. */
static void raw_calls(uint64_t calls_before)
{
    uint64_t r;

    data[0] = 0x1000;
    r = raw_call(0x1234);
    CHECK(r == 0x1234 * 3 + 0x1000, "CMD/RESULT 0x%" PRIx64, r);
    CHECK(data[1] == ~(uint64_t)0x1234, "host store 0x%" PRIx64, data[1]);
    CHECK(data[2] == calls_before + 1, "calls %" PRIu64, data[2]);

    *reg32(REG_CMD) = 0x80000001u;      /* 4-byte store: zero-extended */
    r = *reg32(REG_RESULT);
    CHECK(r == (uint32_t)(0x80000001ull * 3 + 0x1000), "32-bit 0x%" PRIx64,
          r);
    CHECK(*reg64(REG_RESULT) == 0x80000001ull * 3 + 0x1000, "RESULT");

    /* CALL: the call word at CALL_OFFSET, one trapped load */
    data[data_size / 8 - 1] = 0x55;
    r = *reg64(REG_CALL);
    CHECK(r == 0x55 * 3 + 0x1000, "CALL 0x%" PRIx64, r);
    *reg64(REG_CALL_OFFSET) = 0x100;
    data[0x100 / 8] = 0x66;
    r = *reg64(REG_CALL);
    CHECK(r == 0x66 * 3 + 0x1000, "CALL at 0x100: 0x%" PRIx64, r);
    CHECK(*reg64(REG_RESULT) == r, "CALL latches RESULT");
    CHECK(*reg32(REG_CALL) == (uint32_t)(0x66 * 3 + 0x1000), "CALL 32-bit");
    CHECK(*reg32(REG_RESULT_HI) == 0, "RESULT_HI 0x%x",
          *reg32(REG_RESULT_HI));
    CHECK(data[2] == calls_before + 5, "call count %" PRIu64, data[2]);

    /* A pair store to CMD and RESULT (ignored), a pair load of RESULT */
    {
        uint64_t a = 0, b = 0;

        pair_store(ctrl + REG_CMD, 0x77, 0x1234);
        pair_load(ctrl + REG_RESULT, &a, &b);
        CHECK(a == 0x77 * 3 + 0x1000 && b == 0x100, "pair 0x%" PRIx64
              " 0x%" PRIx64, a, b);
        CHECK(data[2] == calls_before + 6, "call count %" PRIu64, data[2]);
    }
}

/* Both backends' signal-free path, then the raw one where served. */
static void case_calls(void)
{
    uint64_t r;

    if (slots) {
        case_slot_calls();
        if (raw) {
            *reg64(REG_CALL_OFFSET) = data_size - 8;
            raw_calls(data[2]);
        }
        return;
    }
    raw_calls(0);

    /* The fast path: no signal, result in the caller's buffer */
    data[0] = 7;
    r = fast_call(0x0102030405060708ull);
    CHECK(r == 0x0102030405060708ull * 3 + 7, "pread 0x%" PRIx64, r);
    CHECK(data[1] == ~0x0102030405060708ull, "host store after pread");
    CHECK(*reg64(REG_RESULT) == r, "pread latches RESULT");
    CHECK(*reg32(REG_RESULT_HI) == (uint32_t)(r >> 32), "RESULT_HI 0x%x",
          *reg32(REG_RESULT_HI));
    CHECK(data[2] == 7, "call count %" PRIu64, data[2]);

    /* Other preads of the control file read the file */
    {
        uint64_t buf = 0x1111;
        uint32_t id = 0;

        CHECK(pread(ctrl_fd, &buf, 8, 0x30) == 8 && buf == 0, "plain pread");
        CHECK(pread(ctrl_fd, &id, 4, 0) == 4 && id == GUEST_ID, "ID");
    }
}

static uint64_t vcpu(void)
{
    return call(CMD_VCPU);
}

typedef struct Worker {
    pthread_t thread;
    int index;
    unsigned calls;
    uint64_t vcpu;
    unsigned bad;
} Worker;

/* Each thread calls with its own commands; results must be its own. */
static void *worker(void *opaque)
{
    Worker *w = opaque;

    w->vcpu = vcpu();
    for (unsigned i = 0; i < w->calls; i++) {
        uint64_t cmd = ((uint64_t)(w->index + 1) << 40) | i;
        uint64_t r = (w->index & 1) ? any_call(cmd) : call(cmd);

        if (r != cmd * 3) {
            w->bad++;
        }
    }
    return NULL;
}

static void case_threads(int n, unsigned calls)
{
    Worker w[16];

    data[0] = 0;
    CHECK(vcpu() == 0, "main thread vcpu %" PRIu64, vcpu());
    for (int i = 0; i < n; i++) {
        w[i] = (Worker){ .index = i, .calls = calls };
        pthread_create(&w[i].thread, NULL, worker, &w[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].thread, NULL);
        CHECK(w[i].bad == 0, "thread %d: %u wrong results", i, w[i].bad);
        CHECK(w[i].vcpu != 0, "thread %d has the main vcpu", i);
        for (int j = 0; j < i; j++) {
            CHECK(w[i].vcpu != w[j].vcpu, "threads %d and %d share vcpu",
                  i, j);
        }
        printf("thread %d vcpu %" PRIu64 " prefix %d\n", i, w[i].vcpu,
               i + 1);
    }
}

static sigjmp_buf jump;
static volatile int got_sig;
static volatile int got_code;
static void *volatile got_addr;

/* s390x reports the page of a fault, not the byte */
static void *fault_addr(volatile void *p)
{
#if defined(__s390x__)
    return (void *)((uintptr_t)p & ~(uintptr_t)(PAGE - 1));
#else
    return (void *)p;
#endif
}

static void on_signal(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_code = info->si_code;
    got_addr = info->si_addr;
    if (sig == SIGSEGV && info->si_code > 0) {
        siglongjmp(jump, 1);
    }
}

static void handle(int sig)
{
    struct sigaction sa = { .sa_sigaction = on_signal,
                            .sa_flags = SA_SIGINFO };

    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* The guest's own handlers see their faults and signals, unchanged. */
static void case_guest_handlers(void)
{
    volatile uint8_t *ro;

    handle(SIGSEGV);
    handle(SIGBUS);
    handle(SIGTRAP);
    CHECK(any_call(5) == 15, "call before");

    got_sig = 0;
    if (!sigsetjmp(jump, 1)) {
        *bad = 1;
    }
    CHECK(got_sig == SIGSEGV && got_addr == fault_addr(bad) &&
          got_code == SEGV_MAPERR, "fault: sig %d code %d addr %p", got_sig,
          got_code, got_addr);

    /* A store to a read-only mapping of the control page faults as usual */
    ro = map_ctrl(PROT_READ);
    CHECK(*(volatile uint32_t *)ro == GUEST_ID, "read-only ID");
    got_sig = 0;
    if (!sigsetjmp(jump, 1)) {
        *(volatile uint64_t *)(ro + REG_CMD) = 1;
    }
    CHECK(got_sig == SIGSEGV && got_addr == fault_addr(ro + REG_CMD) &&
          got_code == SEGV_ACCERR, "read-only store: sig %d code %d",
          got_sig, got_code);

    got_sig = 0;
    raise(SIGSEGV);
    CHECK(got_sig == SIGSEGV && got_code == SI_TKILL, "raise: %d code %d",
          got_sig, got_code);
    got_sig = 0;
    kill(getpid(), SIGSEGV);
    CHECK(got_sig == SIGSEGV && got_code == SI_USER, "kill: %d code %d",
          got_sig, got_code);
    got_sig = 0;
    raise(SIGBUS);
    CHECK(got_sig == SIGBUS, "raise SIGBUS: %d", got_sig);
    got_sig = 0;
    raise(SIGTRAP);
    CHECK(got_sig == SIGTRAP, "raise SIGTRAP: %d", got_sig);

    signal(SIGTRAP, SIG_IGN);
    raise(SIGTRAP);
    signal(SIGSEGV, SIG_IGN);
    kill(getpid(), SIGSEGV);
    CHECK(any_call(6) == 18, "call after");
}

/* Dispositions: the process dies the way it would without the helper. */
static void case_die(const char *how)
{
    if (ctrl) {
        CHECK(any_call(5) == 15, "call before");
    }
    fflush(stderr);
    if (!strcmp(how, "fault-dfl")) {
        *bad = 1;
    } else if (!strcmp(how, "fault-ign")) {
        signal(SIGSEGV, SIG_IGN);
        *bad = 1;
    } else if (!strcmp(how, "raise-dfl")) {
        raise(SIGSEGV);
    } else if (!strcmp(how, "trap-dfl")) {
        raise(SIGTRAP);
    } else if (!strcmp(how, "none-dfl")) {
        /* A PROT_NONE page of the guest's own, beside a traced control */
        volatile uint8_t *none = mmap(NULL, PAGE, PROT_NONE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        (void)*none;
    } else if (!strcmp(how, "ctrl-ro")) {
        volatile uint8_t *ro = map_ctrl(PROT_READ);

        *(volatile uint64_t *)(ro + REG_CMD) = 1;
    }
    printf("survived\n");
}

/* Generated code that changes while it runs. */
static int (*make_code(void *page, int value))(void)
{
    uint8_t *p = page;
#if defined(__x86_64__)
    p[0] = 0xb8;                        /* mov $value, %eax; ret */
    memcpy(p + 1, &value, 4);
    p[5] = 0xc3;
#elif defined(__aarch64__)
    uint32_t insn[2] = { 0x52800000u | ((uint32_t)value << 5), 0xd65f03c0u };
    memcpy(p, insn, 8);                 /* movz w0, #value; ret */
#elif defined(__s390x__)
    uint8_t insn[6] = { 0xa7, 0x28, value >> 8, value & 0xff, 0x07, 0xfe };
    memcpy(p, insn, 6);                 /* lhi %r2, value; br %r14 */
#endif
    __builtin___clear_cache((char *)p, (char *)p + 16);
    return (int (*)(void))page;
}

static void case_smc(void)
{
    void *page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int sum = 0;

    for (int i = 1; i <= 100; i++) {
        sum += make_code(page, i)();
        CHECK(any_call(i) == (uint64_t)i * 3, "call %d", i);
    }
    CHECK(sum == 5050, "self-modifying code sum %d", sum);
}

static volatile unsigned alarms, handler_bad;
static bool call_in_handler;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
    if (call_in_handler && call(0x7000 + alarms) != (0x7000 + alarms) * 3) {
        handler_bad++;
    }
}

/*
 * Signals arriving during calls are delivered; no call is lost or run
 * twice, with SA_RESTART or without ("norestart"), and a handler may call
 * too ("handler-calls": only signal-free calls, which keep no state
 * between two accesses).
 */
static void case_signals_during_calls(const char *how)
{
    struct itimerval it = { { 0, 200 }, { 0, 200 } };
    struct sigaction sa = { .sa_handler = on_alarm };
    unsigned bad = 0, i;

    call_in_handler = how && !strcmp(how, "handler-calls");
    sa.sa_flags = how && !strcmp(how, "norestart") ? 0 : SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    data[0] = 0;
    for (i = 0; i < 20000 || alarms < 5; i++) {
        uint64_t a = call_in_handler ? call(i) : any_call(i);

        if (a != (uint64_t)i * 3 || call(i) != (uint64_t)i * 3) {
            bad++;
        }
    }
    it = (struct itimerval){ 0 };
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK(bad == 0, "%u wrong results", bad);
    CHECK(handler_bad == 0, "%u wrong results in the handler", handler_bad);
    CHECK(alarms >= 5, "%u alarms", alarms);
    CHECK(data[2] == 2 * i + (call_in_handler ? alarms : 0),
          "%" PRIu64 " calls for %u", data[2],
          2 * i + (call_in_handler ? alarms : 0));
}

/*
 * fork: parent and child both call (the child on its own thread id), and
 * the child's exit status comes back as without the backdoor.
 */
static void case_fork(void)
{
    int status = 0;
    pid_t pid;

    data[0] = 0;
    CHECK(call(1) == 3, "parent before");
    pid = fork();
    if (pid == 0) {
        unsigned bad = 0;

        /* Raw accesses too, where served: the child's own RESULT */
        for (int i = 0; i < 1000; i++) {
            bad += (i & 1 ? any_call(i) : call(i)) != (uint64_t)i * 3;
        }
        _exit(bad ? 1 : 42);
    }
    for (int i = 0; i < 1000; i++) {
        CHECK((i & 1 ? any_call(i) : call(i)) == (uint64_t)i * 3,
              "parent call %d", i);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
          WEXITSTATUS(status) == 42, "child status 0x%x", status);
    /*
     * The supervisor serves both processes with one callback library; the
     * helper, inside QEMU, is forked with it: the child counts on its copy.
     */
    CHECK(data[2] == (slots ? 2001 : 1001), "%" PRIu64 " calls", data[2]);
}

/*
 * Wait for signals: print "ready", count SIGINT/SIGUSR1 for a while, then
 * print the counts and exit with 3 (the test compares with no backdoor).
 */
static volatile int n_int, n_usr1;

static void on_int(int sig)
{
    if (sig == SIGINT) {
        n_int++;
    } else {
        n_usr1++;
    }
}

static void case_wait_signals(void)
{
    sigset_t block, old;

    /* Blocked until sigsuspend: a signal between test and wait is kept */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    signal(SIGINT, on_int);
    signal(SIGUSR1, on_int);
    printf("ready\n");
    while (!n_int && !n_usr1) {
        sigsuspend(&old);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    usleep(300000);             /* a duplicate would arrive meanwhile */
    printf("SIGINT %d SIGUSR1 %d\n", n_int, n_usr1);
    exit(3);
}

/*
 * Atomic read-modify-write on a register: not a plain load or store, so
 * the helper's out-of-line fallback runs it.
 */
static void case_atomics(void)
{
    volatile uint64_t *off = reg64(REG_CALL_OFFSET);
    uint64_t old, expect = 64;

    *off = 64;
    old = __atomic_fetch_add(off, 8, __ATOMIC_SEQ_CST);
    CHECK(old == 64, "fetch_add old %" PRIu64, old);
    CHECK(*off == 72, "fetch_add new %" PRIu64, *off);
    CHECK(__atomic_compare_exchange_n(off, &expect, 128, false,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) == 0
          && expect == 72, "failed cmpxchg saw %" PRIu64, expect);
    CHECK(__atomic_compare_exchange_n(off, &expect, 128, false,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST),
          "cmpxchg");
    CHECK(*off == 128, "after cmpxchg %" PRIu64, *off);
    data[0] = 1;
    old = __atomic_exchange_n(reg64(REG_CMD), 0x40, __ATOMIC_SEQ_CST);
    CHECK(old == UINT64_MAX, "xchg on CMD read %" PRIx64, old);
    CHECK(*reg64(REG_RESULT) == 0x40 * 3 + 1, "xchg on CMD called: %"
          PRIx64, *reg64(REG_RESULT));
    CHECK(raw_call(2) == 7, "plain call after");
}

/* The helper follows the mapping through munmap, MAP_FIXED, mremap. */
static void case_mappings(void)
{
    volatile uint8_t *m = map_ctrl(PROT_READ | PROT_WRITE), *n;
    uint64_t before;

    data[0] = 0;
    CHECK(*(volatile uint32_t *)m == GUEST_ID, "second mapping");
    mprotect((void *)m, PAGE, PROT_READ);
    CHECK(*(volatile uint32_t *)m == GUEST_ID, "read-only ID");
    mprotect((void *)m, PAGE, PROT_READ | PROT_WRITE);
    *(volatile uint64_t *)(m + REG_CMD) = 9;
    CHECK(*(volatile uint64_t *)(m + REG_RESULT) == 27, "after mprotect");

    /*
     * To a place the guest owns: QEMU lets a 64-bit guest map over its own
     * host memory, which may be anywhere near the control page.
     */
    n = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    n = mremap((void *)m, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
               (void *)n);
    CHECK(n != MAP_FAILED, "mremap: %s", strerror(errno));
    *(volatile uint64_t *)(n + REG_CMD) = 10;
    CHECK(*(volatile uint64_t *)(n + REG_RESULT) == 30, "after mremap");

    /* Anonymous memory mapped over it is plain memory again */
    before = data[2];
    m = mmap((void *)n, PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(m == n, "MAP_FIXED");
    *(volatile uint64_t *)(m + REG_CMD) = 11;
    CHECK(*(volatile uint64_t *)(m + REG_CMD) == 11, "plain memory");
    CHECK(*(volatile uint32_t *)m == 0, "plain memory ID");
    munmap((void *)m, PAGE);

    m = map_ctrl(PROT_READ | PROT_WRITE);
    munmap((void *)m, PAGE);
    n = mmap((void *)m, PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    *(volatile uint64_t *)(n + REG_CMD) = 12;
    CHECK(*(volatile uint64_t *)(n + REG_CMD) == 12, "after munmap");
    CHECK(data[2] == before, "no calls from plain memory");
    CHECK(raw_call(13) == 39, "first mapping still works");
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * Cost of a call on each path against a getppid(), in one process: the
 * best of several interleaved rounds, as the machine may be busy. Printed
 * for the benchmark command; the test only checks that every call arrived
 * (speed is held against its targets by the benchmark, not by tests).
 */
static void case_bench(unsigned n)
{
    double t_ppid = 1, t_fast = 1, t_raw = 1, t_call = 1, t0;

    data[0] = 0;
    if (slots) {
        for (int round = 0; round < 10; round++) {
            t0 = now();
            for (unsigned i = 0; i < n; i++) {
                getppid();
            }
            t_ppid = fmin(t_ppid, (now() - t0) / n);
            t0 = now();
            for (unsigned i = 0; i < n; i++) {
                slot_call(i);
            }
            t_fast = fmin(t_fast, (now() - t0) / n);
        }
        printf("getppid %.0f ns, slot call %.0f ns (%.2fx)\n", t_ppid * 1e9,
               t_fast * 1e9, t_fast / t_ppid);
        CHECK(data[2] == 10ull * n, "%" PRIu64 " calls", data[2]);
        return;
    }
    for (int round = 0; round < 10; round++) {
        t0 = now();
        for (unsigned i = 0; i < n; i++) {
            getppid();
        }
        t_ppid = fmin(t_ppid, (now() - t0) / n);
        t0 = now();
        for (unsigned i = 0; i < n; i++) {
            fast_call(i);
        }
        t_fast = fmin(t_fast, (now() - t0) / n);
        t0 = now();
        for (unsigned i = 0; i < n; i++) {
            *reg64(REG_CMD) = i;
        }
        t_raw = fmin(t_raw, (now() - t0) / n);
        t0 = now();
        for (unsigned i = 0; i < n; i++) {
            (void)*reg64(REG_CALL);
        }
        t_call = fmin(t_call, (now() - t0) / n);
    }
    printf("getppid %.0f ns, pread fast path %.0f ns (%.2fx), "
           "CMD store %.0f ns (%.2fx), CALL load %.0f ns (%.2fx)\n",
           t_ppid * 1e9, t_fast * 1e9, t_fast / t_ppid, t_raw * 1e9,
           t_raw / t_ppid, t_call * 1e9, t_call / t_ppid);
    CHECK(data[2] == 10ull * 3 * n, "%" PRIu64 " calls", data[2]);
}

/*
 * A forked child shares the channel: its calls work (in its copy of the
 * library) and reach the shared data page, and its exit leaves the
 * channel open for the parent.
 */
static void case_fork_channel(void)
{
    int status = -1;
    pid_t pid;

    data[0] = 0;
    CHECK(fast_call(7) == 21, "parent call before fork");
    pid = fork();
    if (pid == 0) {
        failures = 0;
        CHECK(fast_call(8) == 24, "child fast-path call");
        CHECK(raw_call(9) == 27, "child trapped call");
        exit(failures ? 1 : 0);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
          WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child status 0x%x", status);
    CHECK(data[1] == ~(uint64_t)9, "data[8] 0x%" PRIx64 " after the child",
          data[1]);
    CHECK(access(path("ctrl"), F_OK) == 0, "BASE.ctrl gone after the child");
    CHECK(fast_call(10) == 30, "parent call after the child");
}

/* A call, an exec that fails (the channel stays), then the exec asked for */
static void case_exec(char **argv)
{
    char *none[] = { "/nonexistent/program", NULL };

    data[0] = 0;
    CHECK(call(7) == 21, "call before exec");
    execv(none[0], none);
    CHECK(call(8) == 24, "call after a failed exec");
    if (!failures) {
        execv(argv[0], argv);
        perror("execv");
    }
    failures++;
}

/*
 * A forked child outlives this process: it waits a second, maps a file
 * (under the supervisor, a stop at the tracer) and writes "mapped" to
 * @flag; this process exits at once.
 */
static void case_outlive(const char *flag)
{
    pid_t pid = fork();

    if (pid == 0) {
        FILE *f;
        void *p;
        int fd;

        sleep(1);
        fd = open("/proc/self/exe", O_RDONLY);
        p = fd < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE,
                                       fd, 0);
        f = fopen(flag, "w");
        if (f) {
            fputs(p != MAP_FAILED ? "mapped\n" : "no mapping\n", f);
            fclose(f);
        }
        _exit(0);
    }
    exit(pid > 0 ? 0 : 1);
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";

    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(c, "hello")) {
        printf("guest ran\n");
        return 0;
    }
    if (!strcmp(c, "env")) {
        const char *names[] = { "LD_PRELOAD", "QEMU_BACKDOOR_LIB",
                                "QEMU_BACKDOOR_ARGS", "QEMU_BACKDOOR_PATH" };

        for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            printf("%s=%s\n", names[i], getenv(names[i]) ?: "(unset)");
        }
        return 0;
    }
    if (!strcmp(c, "exit")) {
        return argc > 2 ? atoi(argv[2]) : 0;
    }
    if (!strcmp(c, "outlive") && argc > 2) {
        case_outlive(argv[2]);
    }
    if (!strcmp(c, "wait-signals") && !getenv("QEMU_BACKDOOR_PATH")) {
        case_wait_signals();    /* without the backdoor, to compare */
    }
    if (!strcmp(c, "die") && argc > 2) {
        /* Also run without the helper, to compare */
        if (getenv("QEMU_BACKDOOR_PATH")) {
            open_channel();
        }
        case_die(argv[2]);
        return failures ? 1 : 0;
    }
    open_channel();
    if (!strcmp(c, "registers")) {
        case_registers();
    } else if (!strcmp(c, "calls")) {
        case_calls();
    } else if (!strcmp(c, "threads")) {
        case_threads(argc > 2 ? atoi(argv[2]) : 4,
                     argc > 3 ? atoi(argv[3]) : 50000);
    } else if (!strcmp(c, "handlers")) {
        case_guest_handlers();
    } else if (!strcmp(c, "smc")) {
        case_smc();
    } else if (!strcmp(c, "signals")) {
        case_signals_during_calls(argc > 2 ? argv[2] : NULL);
    } else if (!strcmp(c, "raw-store")) {
        *reg64(REG_CMD) = 5;            /* the seed's form of a call */
        CHECK(*reg64(REG_RESULT) == (raw ? 15 : 0), "RESULT 0x%" PRIx64,
              *reg64(REG_RESULT));
    } else if (!strcmp(c, "wide-map")) {
        /* The register page and the call slots in one mapping */
        volatile uint8_t *w = mmap(NULL, 0x20000, PROT_READ | PROT_WRITE,
                                   MAP_SHARED, ctrl_fd, 0);

        CHECK(w != MAP_FAILED, "mmap: %s", strerror(errno));
        if (w != MAP_FAILED) {
            *(volatile uint64_t *)(w + REG_CMD) = 5;
        }
    } else if (!strcmp(c, "fork")) {
        case_fork();
    } else if (!strcmp(c, "wait-signals")) {
        case_wait_signals();
    } else if (!strcmp(c, "atomics")) {
        case_atomics();
    } else if (!strcmp(c, "mappings")) {
        case_mappings();
    } else if (!strcmp(c, "fork-channel")) {
        case_fork_channel();
    } else if (!strcmp(c, "exec") && argc > 2) {
        case_exec(argv + 2);
    } else if (!strcmp(c, "bench")) {
        case_bench(argc > 2 ? atoi(argv[2]) : 10000);
    } else {
        fprintf(stderr, "unknown case '%s'\n", c);
        return 2;
    }
    return failures ? 1 : 0;
}
