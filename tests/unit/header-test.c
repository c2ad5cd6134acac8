/* SPDX-License-Identifier: MIT */
/*
 * The public headers on their own: guest-endian helpers of
 * <qemu-backdoor-callbacks.h> and the seed's ldq_p family of
 * <backdoor/qemu/qemu-backdoor.h>, for both guest byte orders.
 */
#include <backdoor/qemu/qemu-backdoor.h>

#include <stdio.h>

static int n, failed;

static void check(int ok, const char *name)
{
    printf("%sok %d - /header/%s\n", ok ? "" : "not ", ++n, name);
    failed |= !ok;
}

/* The seed API's two functions, so this program links like a seed library. */
void qemu_backdoor_init(uint64_t data_size)
{
    (void)data_size;
}

void qemu_backdoor(uint64_t cmd, void *data)
{
    (void)cmd;
    (void)data;
}

int main(void)
{
    const uint8_t be[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    uint8_t buf[9] = { 0 };
    qemu_backdoor_call call = { .data = buf, .guest_big_endian = true };

    printf("1..8\n");
    check(qemu_backdoor_ld64(true, be) == 0x0102030405060708ULL,
          "ld64/big-endian");
    check(qemu_backdoor_ld64(false, be) == 0x0807060504030201ULL,
          "ld64/little-endian");
    check(qemu_backdoor_ld32(true, be + 1) == 0x02030405 &&
          qemu_backdoor_ld16(false, be + 1) == 0x0302 &&
          qemu_backdoor_ld8(true, be + 7) == 8, "ld32-ld16-ld8/unaligned");

    qemu_backdoor_data_st64(&call, 1, 0x1122334455667788ULL);
    check(buf[1] == 0x11 && buf[8] == 0x88 &&
          qemu_backdoor_data_ld64(&call, 1) == 0x1122334455667788ULL,
          "data_st64/big-endian-guest");
    call.guest_big_endian = false;
    check(qemu_backdoor_data_ld64(&call, 1) == 0x8877665544332211ULL,
          "data_ld64/little-endian-guest");

    qemu_backdoor_compat_guest_big_endian = 1;
    check(ldq_p(be) == 0x0102030405060708ULL && ldl_p(be) == 0x01020304 &&
          lduw_p(be) == 0x0102 && ldub_p(be) == 1, "seed-ldq_p/big-endian");
    stl_p(buf, 0xcafe);
    check(buf[2] == 0xca && buf[3] == 0xfe, "seed-stl_p/big-endian");
    qemu_backdoor_compat_guest_big_endian = 0;
    check(ldq_p(be) == 0x0807060504030201ULL, "seed-ldq_p/little-endian");
    return failed;
}
