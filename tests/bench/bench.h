/* SPDX-License-Identifier: MIT */
/* Commands shared by the benchmark's guest program and callback library. */
#ifndef BENCH_H
#define BENCH_H

#define BENCH_CMD_RESET 0xbe0c000000000001ull   /* zero the call counter */
#define BENCH_CMD_COUNT 0xbe0c000000000002ull   /* read the call counter */

#endif
