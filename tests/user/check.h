/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The user-mode test programs' check: a failure says where and why on
 * stderr and counts in failures, which main() turns into the exit status.
 */
#ifndef TESTS_USER_CHECK_H
#define TESTS_USER_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "%s:%d: check failed: %s: ", __func__,      \
                    __LINE__, #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                \
            fputc('\n', stderr);                                         \
            failures++;                                                  \
        }                                                                \
    } while (0)

#endif
