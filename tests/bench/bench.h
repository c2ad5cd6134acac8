/* SPDX-License-Identifier: MIT */
/* Commands shared by the benchmark's guest program and callback library. */
#ifndef BENCH_H
#define BENCH_H

#define BENCH_CMD_RESET 0xbe0c000000000001ull   /* zero the call counter */
#define BENCH_CMD_COUNT 0xbe0c000000000002ull   /* read the call counter */
/* Events: BENCH_EVENT with arg 0 a sequence number, arg 1 the producer */
#define BENCH_EVENT     0xbe0e000000000001ull
#define BENCH_CMD_EVENTS 0xbe0c000000000003ull  /* events received */
#define BENCH_CMD_EVBAD 0xbe0c000000000004ull   /* lost << 32 | reordered */
#define BENCH_PRODUCERS 64

#endif
