/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The real libc functions behind the helper's interposers (libc.h).
 */
#define _GNU_SOURCE
#include "libc.h"

#include <dlfcn.h>
#include <stdbool.h>

static BackdoorLibc libc;
static bool looked_up;

const BackdoorLibc *backdoor_libc(void)
{
    if (!__atomic_load_n(&looked_up, __ATOMIC_ACQUIRE)) {
        /* Two threads may both look up: they find the same */
#define BACKDOOR_LIBC_LOOKUP(ret, name, params) \
        libc.name = dlsym(RTLD_NEXT, #name);
        BACKDOOR_LIBC_LIST(BACKDOOR_LIBC_LOOKUP)
#undef BACKDOOR_LIBC_LOOKUP
        __atomic_store_n(&looked_up, true, __ATOMIC_RELEASE);
    }
    return &libc;
}
