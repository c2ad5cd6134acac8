/* SPDX-License-Identifier: MIT */
/*
 * The file transfer protocol, shared by its guest program and callback
 * library. Values in the data channel are 64-bit words in the guest's byte
 * order; results are a count or a negative errno.
 *
 *   FT_PUT_OPEN   data: NAME\0       create NAME in the host directory
 *   FT_PUT_DATA   data: n, bytes     append n bytes; result n
 *   FT_GET_OPEN   data: NAME\0       open NAME; result its size
 *   FT_GET_DATA   data: n            read up to n bytes to data + 8;
 *                                    result the count, 0 at the end
 *   FT_CLOSE                         close; result 0 (a failed write
 *                                    shows here too)
 *
 * NAME is a plain file name: no '/', not starting with '.'. One transfer
 * at a time per device.
 */
#ifndef FILE_TRANSFER_H
#define FILE_TRANSFER_H

#define FT_PUT_OPEN     0x46540001u
#define FT_PUT_DATA     0x46540002u
#define FT_GET_OPEN     0x46540003u
#define FT_GET_DATA     0x46540004u
#define FT_CLOSE        0x46540005u

#define FT_HEADER       8       /* the count word before the bytes */

#endif /* FILE_TRANSFER_H */
