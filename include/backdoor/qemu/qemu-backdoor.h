/* SPDX-License-Identifier: MIT */
/*
 * The 2011 seed's host callback API, unchanged.
 *
 * A library that exports only these two functions is loaded by the backdoor
 * device and the user-mode helper and called as the seed documents:
 * qemu_backdoor_init() once with the data channel size, qemu_backdoor() for
 * every guest call with the command and a pointer to the data channel.
 * The guest's call returns 0. New code should use
 * <qemu-backdoor-callbacks.h>, which also returns a result to the guest.
 *
 * The seed read guest values with QEMU's ldq_p() family from "cpu.h"; this
 * header provides the same names without QEMU internals: they load and store
 * in the guest's byte order.
 */
#ifndef BACKDOOR_QEMU_QEMU_BACKDOOR_H
#define BACKDOOR_QEMU_QEMU_BACKDOOR_H

#include <qemu-backdoor-callbacks.h>

#ifdef __cplusplus
extern "C" {
#endif

QEMU_BACKDOOR_EXPORT void qemu_backdoor_init(uint64_t data_size);
QEMU_BACKDOOR_EXPORT void qemu_backdoor(uint64_t cmd, void *data);

/*
 * Set by the host, before qemu_backdoor_init() runs, to the guest's byte
 * order. Weak so that every translation unit may include this header.
 */
__attribute__((weak)) QEMU_BACKDOOR_EXPORT
int qemu_backdoor_compat_guest_big_endian;

static inline uint64_t ldq_p(const void *ptr)
{
    return qemu_backdoor_ld64(qemu_backdoor_compat_guest_big_endian, ptr);
}

static inline uint32_t ldl_p(const void *ptr)
{
    return qemu_backdoor_ld32(qemu_backdoor_compat_guest_big_endian, ptr);
}

static inline int lduw_p(const void *ptr)
{
    return qemu_backdoor_ld16(qemu_backdoor_compat_guest_big_endian, ptr);
}

static inline int ldub_p(const void *ptr)
{
    return *(const uint8_t *)ptr;
}

static inline void stq_p(void *ptr, uint64_t v)
{
    qemu_backdoor_st64(qemu_backdoor_compat_guest_big_endian, ptr, v);
}

static inline void stl_p(void *ptr, uint32_t v)
{
    qemu_backdoor_st32(qemu_backdoor_compat_guest_big_endian, ptr, v);
}

static inline void stw_p(void *ptr, uint16_t v)
{
    qemu_backdoor_st16(qemu_backdoor_compat_guest_big_endian, ptr, v);
}

static inline void stb_p(void *ptr, uint8_t v)
{
    *(uint8_t *)ptr = v;
}

#ifdef __cplusplus
}
#endif

#endif /* BACKDOOR_QEMU_QEMU_BACKDOOR_H */
