/* SPDX-License-Identifier: MIT */
/*
 * The bare-metal test guest (no Linux): finds the backdoor device and edu
 * through PCI configuration space, maps their BARs (identity-mapped by
 * boot.S), checks calls against the test callback library, and times a
 * call against an edu read and a vmport read. Runs in ring 3 with IOPL 3.
 *
 * Kernel command line (-append):
 *   test N          N checked calls (tests/callbacks/test-callbacks.c)
 *   bench N REPS [OPS]
 *                   REPS repetitions of N operations of each kind
 *                   (tests/bench/bench-callbacks.c), as SAMPLE lines;
 *                   OPS, a comma-separated list of their names: only those
 * Output on COM1; the exit is through isa-debug-exit at 0xf4: QEMU's exit
 * status is 1 for success and 3 for failure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qemu-backdoor-regs.h"
#include "bench.h"

#define EDU_VENDOR      0x1234
#define EDU_DEVICE      0x11e8
#define TEST_CMD_VCPU   0xf00d0001u
#define DEBUG_EXIT_PORT 0xf4
#define COM1            0x3f8

/* ---- port I/O, serial, exit ------------------------------------------ */

/* Always the (%dx) forms: the ring-0 emulation knows only those */
static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "d"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;

    __asm__ volatile("inb %1, %0" : "=a"(v) : "d"(port));
    return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "d"(port));
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;

    __asm__ volatile("inl %1, %0" : "=a"(v) : "d"(port));
    return v;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static void putc_serial(char c)
{
    while (!(inb(COM1 + 5) & 0x20)) {
        /* wait for the transmitter */
    }
    outb(COM1, c);
}

static void puts_serial(const char *s)
{
    while (*s) {
        if (*s == '\n') {
            putc_serial('\r');
        }
        putc_serial(*s++);
    }
}

static void put_u64(uint64_t v, unsigned base)
{
    char buf[24];
    int i = 0;

    do {
        buf[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i) {
        putc_serial(buf[--i]);
    }
}

/* A tiny printf: %s, %u (64-bit), %x (64-bit), %%. */
static void print(const char *fmt, ...)
{
    __builtin_va_list ap;

    __builtin_va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            if (*fmt == '\n') {
                putc_serial('\r');
            }
            putc_serial(*fmt);
            continue;
        }
        switch (*++fmt) {
        case 's':
            puts_serial(__builtin_va_arg(ap, const char *));
            break;
        case 'u':
            put_u64(__builtin_va_arg(ap, uint64_t), 10);
            break;
        case 'x':
            put_u64(__builtin_va_arg(ap, uint64_t), 16);
            break;
        default:
            putc_serial(*fmt);
        }
    }
    __builtin_va_end(ap);
}

static __attribute__((noreturn)) void finish(bool ok)
{
    print("@@ exit %u\n", (uint64_t)!ok);
    outb(DEBUG_EXIT_PORT, ok ? 0 : 1);
    for (;;) {
        __asm__ volatile("pause");
    }
}

/* ---- ring 0: TSS, IDT, exceptions ---------------------------------- */

extern uint64_t gdt[];
extern const uint64_t vectors[20];

static struct __attribute__((packed)) {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} tss;

static uint64_t idt[2 * 32];
static uint8_t kernel_stack[16384] __attribute__((aligned(16)));

void kernel_setup(void);

void kernel_setup(void)
{
    uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = { sizeof(idt) - 1, (uint64_t)idt };

    tss.rsp[0] = (uint64_t)(kernel_stack + sizeof(kernel_stack));
    tss.iomap_base = sizeof(tss);   /* no I/O bitmap: IOPL decides */
    gdt[5] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
             (0x89ull << 40) | (((limit >> 16) & 0xf) << 48) |
             (((base >> 24) & 0xff) << 56);
    gdt[6] = base >> 32;
    for (int i = 0; i < 20; i++) {
        uint64_t h = vectors[i];

        idt[2 * i] = (h & 0xffff) | (0x08ull << 16) | (0x8eull << 40) |
                     (((h >> 16) & 0xffff) << 48);
        idt[2 * i + 1] = h >> 32;
    }
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

/* What boot.S pushes: registers, vector, error code, the CPU's frame. */
typedef struct Frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi;
    uint64_t rdx, rcx, rbx, rax;
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
} Frame;

void exception(Frame *f, uint64_t cr2);

static uint64_t port_io_emulated;

/*
 * Port I/O from ring 3 where IOPL 3 is not honoured (kvm_pvm raises #GP):
 * run the instruction here in ring 0 with the guest's registers. Only the
 * forms this program uses; vmport reads and writes all of eax..edx.
 */
static bool emulate_port_io(Frame *f)
{
    const uint8_t *insn = (const uint8_t *)f->rip;
    uint32_t a = f->rax, b = f->rbx, c = f->rcx, d = f->rdx;

    switch (insn[0]) {
    case 0xec:                      /* in (%dx), %al */
        f->rax = (f->rax & ~0xffull) | inb(d);
        break;
    case 0xee:                      /* out %al, (%dx) */
        outb(d, a);
        break;
    case 0xef:                      /* out %eax, (%dx) */
        outl(d, a);
        break;
    case 0xed:                      /* in (%dx), %eax; vmport: eax..edx */
        __asm__ volatile("inl %%dx, %%eax"
                         : "+a"(a), "+b"(b), "+c"(c), "+d"(d) : : "memory");
        f->rax = a, f->rbx = b, f->rcx = c, f->rdx = d;
        break;
    default:
        return false;
    }
    port_io_emulated++;
    f->rip++;
    return true;
}

void exception(Frame *f, uint64_t cr2)
{
    if (f->vector == 13 && (f->cs & 3) == 3 && emulate_port_io(f)) {
        return;
    }
    print("bm: exception %u error %x at rip %x (cr2 %x)\n", f->vector,
          f->error, f->rip, cr2);
    finish(false);
}

/* ---- PCI ------------------------------------------------------------ */

static uint32_t pci_read(unsigned dev, unsigned off)
{
    outl(0xcf8, 0x80000000u | (dev << 11) | (off & 0xfc));
    return inl(0xcfc);
}

static void pci_write(unsigned dev, unsigned off, uint32_t v)
{
    outl(0xcf8, 0x80000000u | (dev << 11) | (off & 0xfc));
    outl(0xcfc, v);
}

static int pci_find(uint16_t vendor, uint16_t device)
{
    for (unsigned dev = 0; dev < 32; dev++) {
        if (pci_read(dev, 0) == ((uint32_t)device << 16 | vendor)) {
            return dev;
        }
    }
    return -1;
}

/* The memory BAR at config offset @off (BIOS-assigned), decoding on. */
static volatile uint8_t *pci_bar(unsigned dev, unsigned off)
{
    uint64_t bar = pci_read(dev, off);

    if ((bar & 0x6) == 0x4) {
        bar |= (uint64_t)pci_read(dev, off + 4) << 32;
    }
    pci_write(dev, 4, pci_read(dev, 4) | 0x2);     /* memory space */
    return (volatile uint8_t *)(uintptr_t)(bar & ~0xfull);
}

/* ---- the device ------------------------------------------------------ */

static volatile uint8_t *ctrl, *data, *edu;
static uint64_t call_offset;

static inline uint32_t rd32(volatile uint8_t *base, unsigned off)
{
    return *(volatile uint32_t *)(base + off);
}

static inline uint64_t rd64(volatile uint8_t *base, unsigned off)
{
    return *(volatile uint64_t *)(base + off);
}

static inline void wr64(volatile uint8_t *base, uint64_t off, uint64_t v)
{
    *(volatile uint64_t *)(base + off) = v;
}

/* One exit: the call word in the data BAR, then a read of CALL. */
static inline uint64_t backdoor_call(uint64_t cmd)
{
    wr64(data, call_offset, cmd);
    return rd64(ctrl, BACKDOOR_REG_CALL);
}

static inline uint32_t vmport_getversion(void)
{
    uint32_t eax = 0x564d5868, ebx = ~0u, ecx = 10, edx = 0x5658;

    __asm__ volatile("inl %%dx, %%eax"
                     : "+a"(eax), "+b"(ebx), "+c"(ecx), "+d"(edx));
    return ebx;
}

/* ---- command line ---------------------------------------------------- */

static const char *skip_word(const char *s)
{
    while (*s && *s != ' ') {
        s++;
    }
    while (*s == ' ') {
        s++;
    }
    return s;
}

static uint64_t parse_u64(const char *s, uint64_t dflt)
{
    uint64_t v = 0;

    if (*s < '0' || *s > '9') {
        return dflt;
    }
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
    }
    return v;
}

static bool word_is(const char *s, const char *w)
{
    while (*w && *s == *w) {
        s++, w++;
    }
    return !*w && (*s == ' ' || !*s);
}

/* ---- tests ----------------------------------------------------------- */

static unsigned failures;

static void check(bool ok, const char *what, uint64_t got, uint64_t want)
{
    if (!ok) {
        failures++;
        print("bm: FAIL %s: got %x, expected %x\n", what, got, want);
    }
}

static void run_tests(uint64_t n)
{
    uint32_t id = rd32(ctrl, BACKDOOR_REG_ID);
    uint64_t calls = 0;

    print("bm: id %x features %x data-size %u call-offset %x\n",
          (uint64_t)id, (uint64_t)rd32(ctrl, BACKDOOR_REG_FEATURES),
          rd64(ctrl, BACKDOOR_REG_DATA_SIZE), call_offset);
    check(BACKDOOR_ID_GET_MAGIC(id) == BACKDOOR_ID_MAGIC &&
          BACKDOOR_ID_GET_MAJOR(id) == BACKDOOR_VERSION_MAJOR,
          "ID register", id, BACKDOOR_ID);

    /* One-exit calls: result cmd * 3 + arg, ~cmd at 8, count at 16 */
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t cmd = i * 0x9e3779b97f4a7c15ull;
        uint64_t arg = i ^ 0x5555;
        uint64_t r;

        wr64(data, 0, arg);
        r = backdoor_call(cmd);
        calls++;
        check(r == cmd * 3 + arg, "one-exit call result", r, cmd * 3 + arg);
        check(rd64(data, 8) == ~cmd, "data written by the call",
              rd64(data, 8), ~cmd);
        check(rd64(data, 16) == calls, "call count", rd64(data, 16), calls);
        check(rd64(ctrl, BACKDOOR_REG_RESULT) == r, "RESULT after CALL",
              rd64(ctrl, BACKDOOR_REG_RESULT), r);
        if (failures > 10) {
            break;
        }
    }
    /* The seed's way: a write to CMD, then RESULT */
    wr64(data, 0, 7);
    wr64(ctrl, BACKDOOR_REG_CMD, 0x1000);
    calls++;
    check(rd64(ctrl, BACKDOOR_REG_RESULT) == 0x1000 * 3 + 7,
          "CMD write then RESULT", rd64(ctrl, BACKDOOR_REG_RESULT),
          0x1000 * 3 + 7);
    check(backdoor_call(TEST_CMD_VCPU) == 0, "vcpu_index of the call",
          rd64(ctrl, BACKDOOR_REG_RESULT), 0);
    calls++;
    print("bm: calls %u failures %u\n", calls, (uint64_t)failures);
}

/* TSC ticks per millisecond, from PIT channel 2 gated for 10 ms. */
static uint64_t tsc_per_ms(void)
{
    uint64_t t0, t1, spins = 0;

    outb(0x61, (inb(0x61) & ~0x02) | 0x01);     /* gate on, speaker off */
    outb(0x43, 0xb0);                           /* ch 2, mode 0, binary */
    outb(0x42, 11932 & 0xff);                   /* 1193182 Hz / 100 */
    outb(0x42, 11932 >> 8);
    t0 = rdtsc();
    while (!(inb(0x61) & 0x20)) {
        if (++spins > 100000000) {
            return 0;
        }
    }
    t1 = rdtsc();
    return (t1 - t0) / 10;
}

static uint64_t sort_median(uint64_t *v, int n)
{
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];

            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    }
    return v[n / 2];
}

/*
 * Besides the call and its baselines, the pieces of the device's cost: a
 * plain register read (the dispatch alone), the call with every slot
 * claimed (the drain loop), a slot call, a doorbell on an empty ring, and
 * events posted to slot 0's ring with a doorbell at 3/4 full as the
 * library does (the host's drain, per event).
 */
enum {
    OP_EDU, OP_VMPORT, OP_CALL, OP_STORE, OP_ID, OP_SLOT_CALL,
    OP_CALL_SLOTS, OP_DOORBELL, OP_POST, N_OPS
};
static const char *const op_names[N_OPS] = {
    "edu-read", "vmport-getversion", "backdoor-call-raw", "plain-store",
    "backdoor-id-read", "backdoor-slot-call-raw",
    "backdoor-call-raw-all-slots", "backdoor-doorbell", "backdoor-post-raw",
};

/* Slots this guest holds (register map 1.1), claimed raw, lowest first */
static uint32_t nclaimed;

static inline void wr32(volatile uint8_t *base, unsigned off, uint32_t v)
{
    *(volatile uint32_t *)(base + off) = v;
}

/* Hold @n slots (fewer if the device has fewer); slot 0 is held first. */
static void hold_slots(uint32_t n)
{
    while (nclaimed > n) {
        wr32(ctrl, BACKDOOR_REG_SLOT_FREE, --nclaimed);
    }
    while (nclaimed < n && rd32(ctrl, BACKDOOR_REG_SLOT_ALLOC) == nclaimed) {
        nclaimed++;
    }
}

/* Slot 0's call word in the data BAR */
static volatile uint8_t *slot0(void)
{
    return data + rd64(ctrl, BACKDOOR_REG_SLOT_BASE);
}

/* @n events into the ring of slot 0 at @blk, a doorbell at 3/4 full */
static void post_raw(volatile uint8_t *blk, uint64_t n)
{
    uint64_t entries = rd32(ctrl, BACKDOOR_REG_RING_ENTRIES);
    uint64_t head = rd64(blk, BACKDOOR_SLOTBLK_HEAD);
    uint64_t tail = rd64(blk, BACKDOOR_SLOTBLK_TAIL);
    uint64_t limit = tail + entries - entries / 4;

    for (uint64_t i = 0; i < n; i++) {
        uint64_t e = BACKDOOR_SLOTBLK_RING +
                     (head & (entries - 1)) * BACKDOOR_EVENT_SIZE;

        wr64(blk, e, BENCH_EVENT);
        wr64(blk, e + 8, i);
        wr64(blk, e + 16, 0);
        wr64(blk, e + 24, 0);
        wr64(blk, BACKDOOR_SLOTBLK_HEAD, ++head);
        if (head >= limit) {
            wr32(ctrl, BACKDOOR_REG_DOORBELL, 0);
            limit = rd64(blk, BACKDOOR_SLOTBLK_TAIL) + entries -
                    entries / 4;
        }
    }
}

static uint64_t time_op(int op, uint64_t n)
{
    volatile uint64_t sink = 0;
    volatile uint8_t *word = NULL;
    uint64_t t0, bad = 0;

    /* What the device holds for this operation, set up before timing */
    hold_slots(op == OP_SLOT_CALL || op == OP_DOORBELL || op == OP_POST ?
               1 : op == OP_CALL_SLOTS ? BACKDOOR_SLOTS_MAX : 0);
    if (op == OP_SLOT_CALL || op == OP_POST) {
        word = slot0();
    }
    t0 = rdtsc();
    switch (op) {
    case OP_EDU:
        for (uint64_t i = 0; i < n; i++) {
            sink = rd32(edu, 0);
        }
        break;
    case OP_VMPORT:
        for (uint64_t i = 0; i < n; i++) {
            sink = vmport_getversion();
        }
        break;
    case OP_CALL:
    case OP_CALL_SLOTS:         /* the same call, other slots held */
        for (uint64_t i = 0; i < n; i++) {
            bad += backdoor_call(i) != i + 1;
        }
        break;
    case OP_STORE:
        for (uint64_t i = 0; i < n; i++) {
            sink = i;
        }
        break;
    case OP_ID:
        for (uint64_t i = 0; i < n; i++) {
            sink = rd32(ctrl, BACKDOOR_REG_ID);
        }
        break;
    case OP_SLOT_CALL:
        for (uint64_t i = 0; i < n; i++) {
            wr64(word, BACKDOOR_SLOTBLK_WORD, i);
            bad += rd64(ctrl, BACKDOOR_REG_SLOT_CALL(0)) != i + 1;
        }
        break;
    case OP_DOORBELL:
        for (uint64_t i = 0; i < n; i++) {
            wr32(ctrl, BACKDOOR_REG_DOORBELL, 0);
        }
        break;
    case OP_POST:
        post_raw(word, n);
        break;
    }
    (void)sink;
    if (bad) {
        failures++;
        print("bm: FAIL %u wrong results in the timed calls\n", bad);
    }
    return rdtsc() - t0;
}

/*
 * @n operations in 16 chunks (fewer when @n is small): the median chunk,
 * scaled to @n. Under TCG the host may take the vCPU thread's CPU away
 * for a while (shared build machines): that chunk drops out.
 */
static uint64_t time_chunks(int op, uint64_t n)
{
    uint64_t k = n < 16 ? n : 16, t[16];

    for (uint64_t c = 0; c < k; c++) {
        t[c] = time_op(op, n * (c + 1) / k - n * c / k);
    }
    return sort_median(t, k) * k;
}

/* Is @name in the comma-separated list @only ("" or "all": every one)? */
static bool op_selected(const char *only, const char *name)
{
    if (!*only || word_is(only, "all")) {
        return true;
    }
    while (*only && *only != ' ') {
        const char *w = name;

        while (*w && *only == *w) {
            only++, w++;
        }
        if (!*w && (*only == ',' || *only == ' ' || !*only)) {
            return true;
        }
        while (*only && *only != ',' && *only != ' ') {
            only++;
        }
        if (*only == ',') {
            only++;
        }
    }
    return false;
}

static void run_bench(uint64_t n, uint64_t reps, const char *only)
{
    uint64_t per_ms = tsc_per_ms();
    uint64_t cycles[N_OPS][16];
    bool run[N_OPS];
    bool slots = rd32(ctrl, BACKDOOR_REG_FEATURES) & BACKDOOR_FEATURE_SLOTS;

    if (reps > 16) {
        reps = 16;
    }
    for (int op = 0; op < N_OPS; op++) {
        /* A 1.0 device (slots=0) has no slots to time */
        run[op] = op_selected(only, op_names[op]) &&
                  (slots || (op != OP_SLOT_CALL && op != OP_CALL_SLOTS &&
                             op != OP_DOORBELL && op != OP_POST));
    }
    print("bm: tsc %u per ms\n", per_ms);
    for (uint64_t r = 0; r < reps; r++) {
        for (int op = 0; op < N_OPS; op++) {
            if (run[op]) {
                cycles[op][r] = time_chunks(op, n);
            }
        }
        for (int op = 0; op < N_OPS; op++) {
            /* ns * 1000 per operation, so the host can print decimals */
            uint64_t ps = per_ms ? cycles[op][r] * 1000000000ull /
                                   per_ms / n : 0;

            if (run[op]) {
                print("SAMPLE %s %u.%u\n", op_names[op], ps / 1000,
                      (ps % 1000) / 100);
            }
        }
    }
    hold_slots(0);
    for (int op = 0; op < N_OPS; op++) {
        if (run[op]) {
            print("bm: %s median %u cycles per %u\n", op_names[op],
                  sort_median(cycles[op], reps), n);
        }
    }
    print("bm: port I/O emulated in ring 0: %u\n", port_io_emulated);
}

void guest_main(uint32_t mb_info);

void guest_main(uint32_t mb_info)
{
    const uint32_t *mbi = (const uint32_t *)(uintptr_t)mb_info;
    /* QEMU passes "IMAGE ARGUMENTS": skip the image's name */
    const char *cmdline = (mbi[0] & 4) ?
                          skip_word((const char *)(uintptr_t)mbi[4]) : "";
    int bd = pci_find(BACKDOOR_PCI_VENDOR_ID, BACKDOOR_PCI_DEVICE_ID);
    int ed = pci_find(EDU_VENDOR, EDU_DEVICE);

    print("bm: ring 3, command line '%s'\n", cmdline);
    if (bd < 0) {
        print("bm: FAIL no backdoor device (%x:%x) on PCI bus 0\n",
              (uint64_t)BACKDOOR_PCI_VENDOR_ID,
              (uint64_t)BACKDOOR_PCI_DEVICE_ID);
        finish(false);
    }
    ctrl = pci_bar(bd, 0x10);
    data = pci_bar(bd, 0x18);
    print("bm: backdoor at 00:%x.0, control %x, data %x\n", (uint64_t)bd,
          (uint64_t)(uintptr_t)ctrl, (uint64_t)(uintptr_t)data);
    if ((uintptr_t)ctrl >= (8ull << 30) || (uintptr_t)data >= (8ull << 30)) {
        print("bm: FAIL a BAR lies above the 8 GiB identity map\n");
        finish(false);
    }
    call_offset = rd64(ctrl, BACKDOOR_REG_CALL_OFFSET);

    if (word_is(cmdline, "bench")) {
        const char *a = skip_word(cmdline);

        if (ed < 0) {
            print("bm: FAIL the benchmark needs -device edu\n");
            finish(false);
        }
        edu = pci_bar(ed, 0x10);
        run_bench(parse_u64(a, 20000), parse_u64(skip_word(a), 5),
                  skip_word(skip_word(a)));
    } else {
        run_tests(parse_u64(skip_word(cmdline), 1000));
    }
    finish(failures == 0);
}
