/* SPDX-License-Identifier: MIT */
/*
 * The 2011 seed's guest example, as its documentation wrote it; only
 * <string.h> was added, for strerror(). The same binary runs in a VM and
 * under qemu-<arch>.
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <qemu-backdoor.h>


int main()
{
    /* This base path is only applicable to 'user' mode */
    if (qemu_backdoor_init("/tmp/backdoor") != 0) {
        fprintf(stderr, "error: qemu_backdoor_init: %s\n", strerror(errno));
        abort();
    }

    /* Get a pointer to beginning of the data channel */
    uint32_t * data = qemu_backdoor_data();
    /* Write anything into the channel */
    *data = 0xcafe;
    /* Invoke the channel */
    qemu_backdoor(0xbabe);
}
