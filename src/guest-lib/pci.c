/* SPDX-License-Identifier: MIT */
/*
 * System mode: the backdoor PCI device through sysfs. resource0 is the
 * control BAR (little-endian registers), resource2 the data BAR (RAM;
 * resource2_wc where there is one, see map_data()).
 */
#define _GNU_SOURCE
#include "guest-lib.h"

#include <ctype.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCI_ADDR_LEN sizeof("0000:00:00.0")
#define FILE_PATH_MAX (PATH_MAX + 32)     /* a device directory + name */

static const char *sysfs_root(void)
{
    const char *root = getenv(QEMU_BACKDOOR_SYSFS_ENV);

    return root && *root ? root : "/sys/bus/pci/devices";
}

static void reg_write32(qemu_backdoor_channel *ch, unsigned offset,
                        uint32_t value)
{
    *(volatile uint32_t *)((volatile char *)ch->ctrl + offset) =
        htole32(value);
}

/*
 * 8-byte registers in one access where the guest has 8-byte loads; a
 * 32-bit guest gets the low half (only RESULT has a high-half register,
 * and the sizes and offsets read here fit in 32 bits there).
 */
static uint64_t reg_read64(qemu_backdoor_channel *ch, unsigned offset)
{
    if (sizeof(void *) >= 8) {
        return le64toh(*(volatile uint64_t *)((volatile char *)ch->ctrl +
                                              offset));
    }
    return backdoor_ctrl_read32(ch, offset);
}

static int read_id_file(const char *dir, const char *name, unsigned *value)
{
    char path[FILE_PATH_MAX], buf[32];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    *value = strtoul(buf, NULL, 16);
    return 0;
}

static int is_backdoor(const char *root, const char *addr, unsigned *vendor,
                       unsigned *device)
{
    char dir[PATH_MAX];

    snprintf(dir, sizeof(dir), "%s/%s", root, addr);
    if (read_id_file(dir, "vendor", vendor) < 0 ||
        read_id_file(dir, "device", device) < 0) {
        return 0;
    }
    return *vendor == QEMU_BACKDOOR_PCI_VENDOR &&
           *device == QEMU_BACKDOOR_PCI_DEVICE;
}

/* "00:04.0" -> "0000:00:04.0"; lower case. */
static int normalize_addr(const char *in, char *out)
{
    const char *colon = strchr(in, ':');
    size_t len;

    if (!colon) {
        return -1;
    }
    len = snprintf(out, PCI_ADDR_LEN, "%s%s",
                   strchr(colon + 1, ':') ? "" : "0000:", in);
    if (len != PCI_ADDR_LEN - 1) {
        return -1;
    }
    for (char *p = out; *p; p++) {
        *p = tolower((unsigned char)*p);
    }
    return 0;
}

/* Find the device at @want, or the one with the lowest address. */
static int find_device(const char *want, char *addr)
{
    const char *root = sysfs_root();
    unsigned vendor = 0, device = 0;
    struct dirent *e;
    DIR *dir;

    if (want) {
        if (normalize_addr(want, addr) < 0) {
            return backdoor_error(EINVAL, "'%s' is not a PCI address "
                                  "(like 0000:00:04.0)", want);
        }
        if (is_backdoor(root, addr, &vendor, &device)) {
            return 0;
        }
        if (vendor == 0 && device == 0) {
            return backdoor_error(ENODEV, "no PCI device %s in %s", addr,
                                  root);
        }
        return backdoor_error(ENODEV, "PCI device %s is %04x:%04x, not the "
                              "backdoor device (%04x:%04x)", addr, vendor,
                              device, QEMU_BACKDOOR_PCI_VENDOR,
                              QEMU_BACKDOOR_PCI_DEVICE);
    }
    dir = opendir(root);
    if (!dir) {
        return backdoor_error(errno == ENOENT ? ENODEV : errno,
                              "no PCI devices in sysfs (%s: %s)", root,
                              strerror(errno));
    }
    addr[0] = '\0';
    while ((e = readdir(dir))) {
        if (e->d_name[0] != '.' && strlen(e->d_name) < PCI_ADDR_LEN &&
            is_backdoor(root, e->d_name, &vendor, &device) &&
            (!addr[0] || strcmp(e->d_name, addr) < 0)) {
            strcpy(addr, e->d_name);
        }
    }
    closedir(dir);
    if (!addr[0]) {
        return backdoor_error(ENODEV, "no backdoor PCI device (%04x:%04x) "
                              "in %s: is QEMU run with -device backdoor?",
                              QEMU_BACKDOOR_PCI_VENDOR,
                              QEMU_BACKDOOR_PCI_DEVICE, root);
    }
    return 0;
}

/*
 * Where BAR @bar starts inside its page. sysfs maps whole pages from the
 * one that holds the BAR's start, so a BAR smaller than a page that is not
 * page-aligned starts that far into the mapping. Linux on ppc64 pseries
 * (64 KiB pages) packs the 4 KiB control BARs of several devices into one
 * page: offset 0 of the mapping is then the first device's registers.
 */
static size_t bar_page_offset(const char *dir, unsigned bar)
{
    char path[FILE_PATH_MAX];
    unsigned long long start = 0, end, flags;
    size_t page = sysconf(_SC_PAGESIZE);
    FILE *f;

    snprintf(path, sizeof(path), "%s/resource", dir);
    f = fopen(path, "re");
    if (!f) {
        return 0;
    }
    for (unsigned i = 0; i <= bar; i++) {
        if (fscanf(f, "%llx %llx %llx", &start, &end, &flags) != 3) {
            start = 0;
            break;
        }
    }
    fclose(f);
    return start & (page - 1);
}

static void unmap_resource(void *p, size_t size)
{
    size_t page_off = (uintptr_t)p & (sysconf(_SC_PAGESIZE) - 1);

    munmap((char *)p - page_off, size + page_off);
}

/*
 * Map sysfs resource file @name (resource<@bar>) of @dir; @size 0: the
 * whole file.
 */
static void *map_resource(const char *dir, const char *name, unsigned bar,
                          size_t *size)
{
    char path[FILE_PATH_MAX];
    struct stat st;
    size_t page_off;
    void *p;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) {
        backdoor_error(errno, "cannot open %s: %s%s", path, strerror(errno),
                       errno == EACCES || errno == EPERM ?
                       " (mapping PCI resources needs root)" : "");
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        backdoor_error(errno, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (*size == 0) {
        *size = st.st_size;
    } else if ((uint64_t)st.st_size < *size) {
        backdoor_error(ENODEV, "%s has %jd bytes, the device says %zu", path,
                       (intmax_t)st.st_size, *size);
        close(fd);
        return NULL;
    }
    page_off = bar_page_offset(dir, bar);
    p = mmap(NULL, *size + page_off, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             0);
    if (p != MAP_FAILED) {
        p = (char *)p + page_off;
    } else {
        backdoor_error(errno, "cannot map %s: %s%s", path, strerror(errno),
                       errno == EPERM ?
                       " (kernel lockdown or not root?)" : "");
        p = NULL;
    }
    close(fd);
    return p;
}

/*
 * The data BAR is RAM in QEMU and programs use it as memory (memcpy,
 * strcpy, stdio), so it wants a Normal memory mapping. resource2 maps it
 * as Device memory on arm64 (pgprot_device), where unaligned accesses and
 * DC ZVA fault (SIGBUS) as on hardware: QEMU 10.0 emulates that, 7.2 not.
 * The device marks the BAR prefetchable, so Linux also offers
 * resource2_wc: Normal non-cacheable on arm64. x86 keeps resource2:
 * uncached there allows any access, and it keeps every data store ordered
 * before the read of CALL without a store fence (a WC store need not be).
 * Kernels without resource2_wc get resource2, as before.
 */
static void *map_data(const char *dir, size_t size)
{
#if !defined(__x86_64__) && !defined(__i386__)
    char path[FILE_PATH_MAX];

    snprintf(path, sizeof(path), "%s/resource2_wc", dir);
    if (access(path, F_OK) == 0) {
        return map_resource(dir, "resource2_wc", 2, &size);
    }
#endif
    return map_resource(dir, "resource2", 2, &size);
}

/*
 * Turn on memory decoding if no firmware did (sysfs "enable" reads 0),
 * before the first access: SeaBIOS enables the device, but on ppc64
 * pseries SLOF lists it and Linux assigns its BARs without enabling it.
 * A load from a BAR that does not decode is a failed bus transaction,
 * which QEMU 10.0 turns into a machine check on ppc64 (a guest that
 * loops in its handler); 7.2 returned junk.
 */
static void enable_device(const char *dir)
{
    char path[FILE_PATH_MAX], state = '1';
    int fd;

    snprintf(path, sizeof(path), "%s/enable", dir);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return;     /* not root: the ID check says what is wrong */
    }
    if (read(fd, &state, 1) == 1 && state == '0' &&
        pwrite(fd, "1", 1, 0) < 0) {
        /* the ID check below says what is wrong */
    }
    close(fd);
}

static void pci_close(qemu_backdoor_channel *ch)
{
    if (ch->data) {
        unmap_resource(ch->data, ch->data_size);
    }
    if (ch->ctrl) {
        unmap_resource((void *)ch->ctrl, ch->ctrl_size);
    }
}

static int pci_open(qemu_backdoor_channel *ch, const char *where)
{
    char addr[PCI_ADDR_LEN], dir[PATH_MAX], what[PATH_MAX + 32];
    uint64_t size, call_offset;

    if (find_device(where, addr) < 0) {
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/%s", sysfs_root(), addr);
    snprintf(what, sizeof(what), "backdoor PCI device %s", addr);
    enable_device(dir);
    ch->ctrl = map_resource(dir, "resource0", 0, &ch->ctrl_size);
    if (!ch->ctrl) {
        return -1;
    }
    if (ch->ctrl_size < BACKDOOR_REG_END) {
        backdoor_error(ENODEV, "%s: control BAR of %zu bytes, too small",
                       what, ch->ctrl_size);
        goto fail;
    }
    ch->id = backdoor_ctrl_read32(ch, BACKDOOR_REG_ID);
    if (backdoor_check_id(ch->id, what) < 0) {
        goto fail;
    }
    if (!(backdoor_ctrl_read32(ch, BACKDOOR_REG_FEATURES) &
          BACKDOOR_FEATURE_CALL)) {
        backdoor_error(ENODEV, "%s has no CALL register", what);
        goto fail;
    }
    size = reg_read64(ch, BACKDOOR_REG_DATA_SIZE);
    if (size < 2 * BACKDOOR_CALL_WORD_SIZE || size % BACKDOOR_CALL_WORD_SIZE ||
        size > SIZE_MAX) {
        backdoor_error(ENODEV, "%s: bad DATA_SIZE %" PRIu64, what, size);
        goto fail;
    }
    ch->data_size = size;
    ch->data = map_data(dir, size);
    if (!ch->data) {
        goto fail;
    }
    /* Always the default call word; another program may have moved it */
    call_offset = size - BACKDOOR_CALL_WORD_SIZE;
    if (reg_read64(ch, BACKDOOR_REG_CALL_OFFSET) != call_offset) {
        reg_write32(ch, BACKDOOR_REG_CALL_OFFSET, call_offset);
    }
    ch->call_word = (volatile uint64_t *)((char *)ch->data + call_offset);
    backdoor_slots_open(ch);
    ch->name = strdup(addr);
    if (!ch->name) {
        backdoor_error(ENOMEM, "out of memory");
        goto fail;
    }
    return 0;

fail:
    pci_close(ch);
    return -1;
}

/* SLOT_ALLOC is read; SLOT_FREE and DOORBELL are written (one exit) */
static uint64_t pci_slot_op(qemu_backdoor_channel *ch, unsigned reg,
                            uint64_t value)
{
    if (reg == BACKDOOR_REG_SLOT_ALLOC) {
        return backdoor_ctrl_read32(ch, reg);
    }
    backdoor_ctrl_write32(ch, reg, value);
    return 0;
}

const BackdoorTransport backdoor_pci_transport = {
    .mode = QEMU_BACKDOOR_GUEST_SYSTEM,
    .open = pci_open,
    /* no .call: backdoor_pci_call() runs inline in the call path */
    .close = pci_close,
    .slot_op = pci_slot_op,
};
