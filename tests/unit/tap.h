/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TAP for the unit tests in C: ok() prints one check, tap_done() the plan
 * and gives main()'s exit status.
 */
#ifndef BACKDOOR_UNIT_TAP_H
#define BACKDOOR_UNIT_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int n_tests, n_failed;

static void __attribute__((format(printf, 2, 3)))
ok(int cond, const char *fmt, ...)
{
    va_list ap;

    n_tests++;
    n_failed += !cond;
    printf("%s %d - ", cond ? "ok" : "not ok", n_tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static int tap_done(void)
{
    printf("1..%d\n", n_tests);
    return n_failed ? 1 : 0;
}

#endif /* BACKDOOR_UNIT_TAP_H */
