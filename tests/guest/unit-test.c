/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest library without a VM (TAP): a fake sysfs tree and channel files
 * without a helper, made in a temporary directory. Runs natively and, built
 * static, under qemu-<arch> for other guest architectures (big-endian
 * s390x checks the little-endian register accesses).
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CTRL_SIZE 4096
#define DATA_SIZE 8192

static int n, failed;
static char dir[64];

static void check(int ok, const char *name, const char *fmt, ...)
{
    va_list ap;

    printf("%sok %d - /guest-lib/%s\n", ok ? "" : "not ", ++n, name);
    if (!ok) {
        printf("# ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        failed = 1;
    }
}

static void put(const char *path, const void *buf, size_t len, size_t size)
{
    FILE *f = fopen(path, "wb");

    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) ||
        truncate(path, size)) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
}

/* A fake sysfs device directory; @id 0: not a backdoor. */
static void fake_device(const char *addr, uint32_t id, uint64_t call)
{
    uint8_t regs[0x30] = { 0 };
    char path[256];
    uint32_t v32;
    uint64_t v64;

    snprintf(path, sizeof(path), "%s/sys/%s", dir, addr);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/sys/%s/vendor", dir, addr);
    put(path, id ? "0x1234\n" : "0x8086\n", 7, 7);
    snprintf(path, sizeof(path), "%s/sys/%s/device", dir, addr);
    put(path, id ? "0xbd01\n" : "0x2918\n", 7, 7);
    if (!id) {
        return;
    }
    /* Registers as the device has them: little-endian */
    v32 = htole32(id);
    memcpy(regs + 0x00, &v32, 4);
    v32 = htole32(1);
    memcpy(regs + 0x04, &v32, 4);
    v64 = htole64(DATA_SIZE);
    memcpy(regs + 0x08, &v64, 8);
    v64 = htole64(0);                   /* CALL_OFFSET moved away */
    memcpy(regs + 0x20, &v64, 8);
    v64 = htole64(call);                /* what a CALL read returns */
    memcpy(regs + 0x28, &v64, 8);
    snprintf(path, sizeof(path), "%s/sys/%s/resource0", dir, addr);
    put(path, regs, sizeof(regs), CTRL_SIZE);
    snprintf(path, sizeof(path), "%s/sys/%s/resource2", dir, addr);
    put(path, "", 0, DATA_SIZE);
}

static void expect_error(const char *name, const char *spec, int err,
                         const char *text)
{
    qemu_backdoor_channel *ch = qemu_backdoor_open(spec);
    int e = errno;

    check(!ch && e == err && strstr(qemu_backdoor_error(), text), name,
          "open(%s): %p, errno %d (want %d), '%s' (want '%s')",
          spec ? spec : "NULL", (void *)ch, e, err, qemu_backdoor_error(),
          text);
    qemu_backdoor_close(ch);
}

int main(void)
{
    uint32_t id = 0x42440100;
    char path[256], sys[128], base[128];
    qemu_backdoor_channel *ch;
    uint64_t v;

    strcpy(dir, "/tmp/guest-lib-test.XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    snprintf(sys, sizeof(sys), "%s/sys", dir);
    mkdir(sys, 0755);
    setenv(QEMU_BACKDOOR_SYSFS_ENV, sys, 1);
    unsetenv(QEMU_BACKDOOR_PATH_ENV);

    expect_error("pci/none", NULL, ENODEV, "no backdoor PCI device");
    fake_device("0000:00:03.0", 0, 0);
    fake_device("0000:00:05.0", 0x42440100, 0x1122334455667788ull);
    fake_device("0000:00:04.0", 0x42440200, 0);

    expect_error("pci/version", "pci", EPROTO,
                 "0000:00:04.0: register map version 2.0");
    expect_error("pci/not-backdoor", "pci:0000:00:03.0", ENODEV,
                 "is 8086:2918, not the backdoor device");
    expect_error("pci/no-such-device", "pci:00:09.0", ENODEV,
                 "no PCI device 0000:00:09.0");
    expect_error("pci/bad-address", "pci:nonsense", EINVAL,
                 "not a PCI address");
    expect_error("spec/unknown", "bogus", EINVAL, "unknown channel");

    ch = qemu_backdoor_open("00:05.0");
    check(ch != NULL, "pci/open", "%s", qemu_backdoor_error());
    if (ch) {
        check(qemu_backdoor_channel_mode(ch) == QEMU_BACKDOOR_GUEST_SYSTEM &&
              !strcmp(qemu_backdoor_channel_name(ch), "0000:00:05.0") &&
              qemu_backdoor_channel_id(ch) == id &&
              qemu_backdoor_channel_data_size(ch) == DATA_SIZE - 8,
              "pci/properties", "mode %d name %s id 0x%x size %" PRIu64,
              qemu_backdoor_channel_mode(ch), qemu_backdoor_channel_name(ch),
              qemu_backdoor_channel_id(ch),
              qemu_backdoor_channel_data_size(ch));
        /* A plain file cannot run the call: CALL reads its bytes */
        v = qemu_backdoor_channel_call(ch, 0xabcdef);
        check(v == 0x1122334455667788ull, "pci/call-reads-le",
              "0x%" PRIx64, v);
        memcpy(&v, (char *)qemu_backdoor_channel_data(ch) + DATA_SIZE - 8,
               8);
        check(v == 0xabcdef, "pci/call-word", "0x%" PRIx64, v);
        qemu_backdoor_close(ch);
        snprintf(path, sizeof(path), "%s/0000:00:05.0/resource0", sys);
        FILE *f = fopen(path, "rb");
        fseek(f, 0x20, SEEK_SET);
        if (fread(&v, 8, 1, f) != 1) {
            v = 0;
        }
        fclose(f);
        check(le64toh(v) == DATA_SIZE - 8, "pci/call-offset-reset",
              "CALL_OFFSET 0x%" PRIx64, le64toh(v));
    }

    /*
     * A control BAR that does not start its page (Linux on ppc64 pseries
     * packs 4 KiB BARs into 64 KiB pages; here, with 4 KiB host pages, a
     * BAR at 0x800 into its page): the registers are at the BAR's offset
     * in the mapping, another BAR (here: zeros) at offset 0.
     */
    fake_device("0000:00:06.0", 0x42440100, 0x99);
    snprintf(path, sizeof(path), "%s/0000:00:06.0/resource0", sys);
    {
        char page[0x800 + 0x30] = { 0 };
        FILE *f = fopen(path, "rb");

        if (!f || fread(page + 0x800, 1, 0x30, f) != 0x30) {
            printf("Bail out! cannot read %s\n", path);
            return 1;
        }
        fclose(f);
        put(path, page, sizeof(page), CTRL_SIZE);
    }
    snprintf(path, sizeof(path), "%s/0000:00:06.0/resource", sys);
    put(path, "0x0000200080001800 0x00002000800027ff 0x0000000000040200\n"
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
        "0x0000210000100000 0x00002100001fffff 0x0000000000140204\n", 171,
        171);
    ch = qemu_backdoor_open("00:06.0");
    v = ch ? qemu_backdoor_channel_call(ch, 1) : 0;
    check(ch && qemu_backdoor_channel_id(ch) == 0x42440100 && v == 0x99,
          "pci/bar-inside-page", "%s, id 0x%x, call 0x%" PRIx64,
          ch ? "open" : qemu_backdoor_error(),
          ch ? qemu_backdoor_channel_id(ch) : 0, v);
    qemu_backdoor_close(ch);

    /* User mode: files as a helper makes them, but no helper */
    snprintf(base, sizeof(base), "%s/chan", dir);
    snprintf(path, sizeof(path), "%s.ctrl", base);
    put(path, &id, sizeof(id), 65536);
    snprintf(path, sizeof(path), "%s.data", base);
    put(path, "", 0, 1 << 20);
    expect_error("user/no-helper", base, ENODEV,
                 "no user-mode helper serves");
    expect_error("user/missing", "path:/nonexistent/x", ENODEV,
                 "no user-mode channel at /nonexistent/x");
    id = 0x12345678;
    snprintf(path, sizeof(path), "%s/bad.ctrl", dir);
    put(path, &id, sizeof(id), 65536);
    snprintf(path, sizeof(path), "path:%s/bad", dir);
    expect_error("user/bad-id", path, ENODEV, "not a backdoor");

    /* init(): both places are named in the message */
    setenv(QEMU_BACKDOOR_PATH_ENV, base, 1);
    setenv(QEMU_BACKDOOR_SYSFS_ENV, "/nonexistent", 1);
    errno = 0;
    check(qemu_backdoor_init(NULL) == -1 && errno == ENODEV &&
          strstr(qemu_backdoor_error(), "QEMU_BACKDOOR_PATH: no user-mode "
                 "helper serves") &&
          strstr(qemu_backdoor_error(), "no PCI devices in sysfs"),
          "init/no-channel", "errno %d: %s", errno, qemu_backdoor_error());
    check(qemu_backdoor_init("/tmp/backdoor") == -1 &&
          strstr(qemu_backdoor_error(), "no user-mode channel at "
                 "/tmp/backdoor"), "init/seed-no-channel", "%s",
          qemu_backdoor_error());
    errno = 0;
    check(qemu_backdoor(1) == UINT64_MAX && errno == ENODEV &&
          qemu_backdoor_data() == NULL, "init/call-without-channel",
          "errno %d", errno);
    check(QEMU_BACKDOOR_GUEST_CHECK_VERSION(0, 1, 0) &&
          !QEMU_BACKDOOR_GUEST_CHECK_VERSION(99, 0, 0) &&
          !strncmp(qemu_backdoor_version(), "0.", 2), "version", "%s",
          qemu_backdoor_version());

    if (fork() == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(1);
    }
    printf("1..%d\n", n);
    return failed;
}
