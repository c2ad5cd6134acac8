/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Decoding and emulation of the one host x86-64 instruction that accessed
 * a control page, on an abstract register file. Neither QEMU nor signals
 * appear here: the in-process helper converts from a ucontext_t in its
 * SIGSEGV handler, the supervisor's tracer from the registers ptrace gives.
 *
 * qemu-<arch> runs guest loads and stores as host mov, movzx, movsx, movsxd
 * or movbe (big-endian guests on hosts with MOVBE): those are emulated
 * here (x86_decode_access, x86_emulate_access). Any other instruction with
 * one memory operand (an atomic read-modify-write in QEMU's helpers) can
 * only be run for real, on a copy of the register's bytes:
 * x86_decode_out_of_line says how.
 */
#ifndef X86_EMULATE_H
#define X86_EMULATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* General-purpose registers, in the encoding's order. */
typedef enum X86Gpr {
    X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RSP, X86_RBP, X86_RSI, X86_RDI,
    X86_R8, X86_R9, X86_R10, X86_R11, X86_R12, X86_R13, X86_R14, X86_R15,
    X86_NR_GPRS,
    X86_NO_GPR = -1,
} X86Gpr;

typedef struct X86Regs {
    uint64_t gpr[X86_NR_GPRS];
    uint64_t rip;
} X86Regs;

/* A register operand: its GPR, width in bytes, and bit position (8: ah). */
typedef struct X86RegOperand {
    X86Gpr gpr;
    uint8_t size;
    uint8_t shift;
} X86RegOperand;

/* A memory operand: disp + base + index * scale. */
typedef struct X86MemOperand {
    X86Gpr base;            /* X86_NO_GPR: none, or RIP-relative */
    X86Gpr index;
    bool rip_relative;
    bool segment;           /* fs: or gs: override, base unknown here */
    uint8_t scale;
    int64_t disp;
} X86MemOperand;

/* A plain load or store, decoded. */
typedef struct X86Access {
    uint8_t len;            /* of the instruction */
    uint8_t size;           /* bytes accessed: 1, 2, 4 or 8 */
    bool store;
    bool movbe;             /* byte-swapping load or store */
    bool sign_extend;       /* movsx, movsxd */
    bool has_imm;           /* a store of an immediate */
    uint64_t imm;
    X86RegOperand reg;      /* source of a store, destination of a load */
    X86MemOperand mem;
} X86Access;

/*
 * A load or store between memory and an xmm register: SSE or AVX moves of
 * 16 bytes (QEMU 10 moves a 16-byte guest pair, aarch64 ldp or stp, this
 * way), and movq or movd of 8 or 4.
 */
typedef struct X86VecAccess {
    uint8_t len;
    uint8_t size;           /* 4, 8 or 16 */
    bool store;
    bool vex;               /* a VEX load zeroes the register above 128 */
    uint8_t xmm;            /* register number, 0 to 15 */
    X86MemOperand mem;
} X86VecAccess;

/* How to run another one-memory-operand instruction on a copy. */
typedef struct X86OutOfLine {
    uint8_t len;
    uint8_t size;           /* of the memory operand, 1 to 64 bytes */
    bool read;              /* the instruction reads the operand */
    bool write;             /* ... writes it */
    bool write_if_changed;  /* cmpxchg: writes only when the compare holds */
    X86MemOperand mem;
    X86Gpr reloc;           /* base or index register, used for nothing else */
    uint8_t scale;          /* reloc's scale (1 for a base) */
    bool uses_rsp;          /* uses the stack pointer, also to address */
    bool beyond;            /* may touch memory past the operand (bt*) */
    bool gprs_only;         /* no register but GPRs and flags is involved */
} X86OutOfLine;

typedef struct X86Decoder X86Decoder;

/* A decoder with a small cache of decoded accesses; NULL if capstone fails. */
X86Decoder *x86_decoder_new(void);
void x86_decoder_free(X86Decoder *d);

/*
 * Decode @n bytes of code found at host address @pc as a plain load or
 * store. Decodings are cached by @pc and the bytes, so the result stays
 * valid until the next call on @d. NULL: not such an instruction.
 */
const X86Access *x86_decode_access(X86Decoder *d, uint64_t pc,
                                   const uint8_t *code, size_t n);

/*
 * The address @a accesses with @regs; false when it depends on a segment
 * base (fs:, gs:), which the register file does not hold.
 */
bool x86_access_address(const X86Access *a, const X86Regs *regs,
                        uint64_t *addr);

/*
 * Run @a on @regs, with @rip at the instruction: a store hands @write the
 * value it writes, a load puts what @read returns in its destination
 * register, as the CPU would (32-bit zero-extends, 8 and 16-bit merge,
 * movsx sign-extends); values are in the guest's byte order
 * (@big_endian), @size bytes wide. rip then moves past the instruction.
 */
void x86_emulate_access(const X86Access *a, X86Regs *regs, bool big_endian,
                        uint64_t (*read)(void *opaque, unsigned size),
                        void (*write)(void *opaque, unsigned size,
                                      uint64_t value),
                        void *opaque);

/*
 * Decode @n bytes of code at @pc as an instruction that can run out of
 * line: one memory operand of 1 to 64 bytes, read or written, no control
 * transfer, not RIP-relative, and a base (or index)
 * register other than rsp that nothing else in the instruction uses, so
 * that moving it moves the access. False otherwise.
 */
bool x86_decode_out_of_line(X86Decoder *d, uint64_t pc, const uint8_t *code,
                            size_t n, X86OutOfLine *o);

/* The address @mem of an instruction of @len bytes has with @regs. */
bool x86_mem_address(const X86MemOperand *mem, uint8_t len,
                     const X86Regs *regs, uint64_t *addr);

/* Decode @n bytes of code at @pc as an xmm load or store; false if not. */
bool x86_decode_vector_access(X86Decoder *d, uint64_t pc,
                              const uint8_t *code, size_t n,
                              X86VecAccess *v);

/*
 * Run @v on @xmm, the 16 bytes of its register, as register accesses of at
 * most 8 bytes in address order: @read and @write get the byte offset in
 * the access and a width; values in the guest's byte order. A load of
 * fewer than 16 bytes zeroes the rest of @xmm; the caller zeroes what is
 * above 128 bits after a VEX load, and moves rip past the instruction.
 */
void x86_emulate_vector(const X86VecAccess *v, uint8_t xmm[16],
                        bool big_endian,
                        uint64_t (*read)(void *opaque, unsigned at,
                                         unsigned size),
                        void (*write)(void *opaque, unsigned at,
                                      unsigned size, uint64_t value),
                        void *opaque);

/* Value of a register operand in @regs. */
uint64_t x86_reg_get(const X86Regs *regs, X86RegOperand r);

#endif /* X86_EMULATE_H */
