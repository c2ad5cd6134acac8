/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The supervisor's look at a process's mappings (src/user-supervisor/
 * procmaps.c): the text of /proc/PID/maps parsed line by line, and a real
 * file mapping of this process found the same way by Linux 6.11's
 * PROCMAP_QUERY (where the kernel has it) and by the text, which is what
 * older kernels get. TAP on stdout.
 */
#define _GNU_SOURCE
#include "procmaps.h"
#include "tap.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>


static void skip(const char *what, const char *why)
{
    printf("ok %d - %s # SKIP %s\n", ++n_tests, what, why);
}

static bool parse(const char *text, uint64_t addr, Vma *v)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    bool found = procmaps_parse(f, addr, v);

    fclose(f);
    return found;
}

static void test_text(void)
{
    char *text, *longpath = malloc(2001);
    Vma v;

    memset(longpath, 'x', 2000);
    longpath[2000] = '\0';
    if (asprintf(&text,
        "55d0c0000000-55d0c0002000 r--p 00000000 08:01 1234 /usr/bin/a b\n"
        "7f0000000000-7f0000010000 rw-s 00010000 fd:02 98765 /tmp/%s\n"
        "7f0000010000-7f0000011000 ---p 00000000 00:00 0 \n"
        "7f0000020000-7f0000021000 ---s 00003000 103:0a 42 "
        "/tmp/backdoor.ctrl (deleted)\n"
        "7ffff7fc1000-7ffff7fc5000 r--p 00000000 00:00 0 [vvar]\n",
        longpath) < 0) {
        abort();
    }
    ok(parse(text, 0x55d0c0001fff, &v) && v.start == 0x55d0c0000000 &&
       v.end == 0x55d0c0002000 && v.offset == 0 && v.ino == 1234 &&
       v.major == 8 && v.minor == 1, "a file mapping, path with a space");
    ok(!parse(text, 0x55d0c0002000, &v), "the end is not in the mapping");
    ok(parse(text, 0x7f0000000000, &v) && v.offset == 0x10000 &&
       v.ino == 98765 && v.major == 0xfd && v.minor == 2,
       "after a line longer than any buffer: a 2000-byte path");
    ok(parse(text, 0x7f0000010800, &v) && v.ino == 0 && v.major == 0,
       "anonymous memory");
    ok(parse(text, 0x7f0000020010, &v) && v.offset == 0x3000 &&
       v.major == 0x103 && v.minor == 0xa && v.ino == 42,
       "a deleted file, hex device numbers");
    ok(!parse(text, 0x1000, &v), "nothing mapped there");
    ok(!parse("", 0x1000, &v), "an empty maps file");
    free(text);
    free(longpath);
}

/* A page of a file mapped here, at file offset 0x1000 */
static void test_self(void)
{
    char path[] = "/tmp/procmaps-test-XXXXXX";
    int fd = mkstemp(path), maps;
    struct stat st;
    uint8_t *p;
    bool text_only = false, by_query, by_text;
    Vma q = { 0 }, t = { 0 };

    if (fd < 0 || ftruncate(fd, 0x3000) || fstat(fd, &st)) {
        printf("Bail out! cannot make %s\n", path);
        exit(1);
    }
    p = mmap(NULL, 0x2000, PROT_READ, MAP_SHARED, fd, 0x1000);
    maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    unlink(path);
    if (p == MAP_FAILED || maps < 0) {
        printf("Bail out! cannot map %s or open /proc/self/maps\n", path);
        exit(1);
    }
    by_query = procmaps_query(maps, (uintptr_t)p + 0x1800, &q, &text_only);
    if (text_only) {
        skip("PROCMAP_QUERY", "the kernel has none (before Linux 6.11)");
    } else {
        ok(by_query && q.start == (uintptr_t)p &&
           q.end == (uintptr_t)p + 0x2000 && q.offset == 0x1000 &&
           q.ino == st.st_ino, "PROCMAP_QUERY: the file's mapping, "
           "offset 0x%" PRIx64 " inode %" PRIu64, q.offset, q.ino);
    }
    text_only = true;
    by_text = procmaps_query(maps, (uintptr_t)p + 0x1800, &t, &text_only);
    ok(by_text && t.start == (uintptr_t)p && t.end == (uintptr_t)p + 0x2000 &&
       t.offset == 0x1000 && t.ino == st.st_ino &&
       (!by_query || (t.major == q.major && t.minor == q.minor)),
       "the text: the same mapping (device %u:%u)", t.major, t.minor);
    ok(procmaps_query(maps, (uintptr_t)p, &t, &text_only) &&
       t.start == (uintptr_t)p, "the text again: read from the start");
    munmap(p, 0x2000);
    text_only = false;
    ok(!procmaps_query(maps, (uintptr_t)p, &t, &text_only),
       "unmapped: nothing there");
    close(maps);
    close(fd);
}

int main(void)
{
    test_text();
    test_self();
    return tap_done();
}
