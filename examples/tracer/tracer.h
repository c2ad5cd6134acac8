/* SPDX-License-Identifier: MIT */
/*
 * The tracer's protocol, shared by its guest program and callback library.
 *
 * A call with command TRACER_CMD(event) records one event: the data
 * channel holds its message, NUL-terminated. The result is the event's
 * sequence number on the host (1, 2, ...), so the guest can tell that
 * none was lost.
 *
 * On a device with event rings (register map 1.1) the worker threads post
 * their events instead, without an exit: command TRACER_CMD(event),
 * arguments thread, step and the CPU it ran on. The host numbers them in
 * the same sequence, so the guest's final call still tells that none was
 * lost.
 */
#ifndef TRACER_H
#define TRACER_H

#define TRACER_MAGIC            0x54524345ull       /* "TRCE" */
#define TRACER_CMD(event)       ((TRACER_MAGIC << 32) | (uint32_t)(event))
#define TRACER_IS_CMD(cmd)      ((cmd) >> 32 == TRACER_MAGIC)
#define TRACER_EVENT(cmd)       ((uint32_t)(cmd))

#endif /* TRACER_H */
