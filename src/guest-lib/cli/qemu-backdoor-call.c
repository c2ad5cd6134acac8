/* SPDX-License-Identifier: MIT */
/*
 * qemu-backdoor-call: call the host from a guest shell script.
 */
#define _GNU_SOURCE
#include <qemu-backdoor.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "qemu-backdoor-call"

/* Exit codes */
#define EXIT_CALL_FAILED 1      /* no channel, or a file could not be used */
#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
"Usage: " PROG " [--device BDF | --path BASE] CMD [--in FILE] [--out FILE]\n"
"                          [--size N] [--decimal]\n"
"\n"
"Call the host callbacks of a qemu-backdoor channel with command CMD (a\n"
"64-bit number: decimal, 0x hex or 0 octal) and print the result (0x hex).\n"
"\n"
"  --device BDF   the backdoor PCI device at BDF (e.g. 0000:00:04.0)\n"
"  --path BASE    the user-mode channel at BASE (BASE.ctrl, BASE.data)\n"
"                 default: $QEMU_BACKDOOR_PATH if it names a channel,\n"
"                 else the first backdoor PCI device\n"
"  --in FILE      copy FILE ('-': stdin) to the data channel before the call\n"
"  --out FILE     copy the data channel to FILE ('-': stdout) after it\n"
"  --size N       bytes --out copies (default: the size of --in, else the\n"
"                 whole data channel)\n"
"  --decimal      print the result in decimal\n"
"  -V, --version  print the library version and exit\n"
"  -h, --help     show this help and exit\n"
"\n"
"Exit status: 0 when the call ran, 1 when there is no usable channel or a\n"
"file cannot be used, 2 on a usage error. System mode needs root.\n");
}

static void die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (status == EXIT_USAGE) {
        fputs(" (see --help)", stderr);
    }
    fputc('\n', stderr);
    exit(status);
}

static uint64_t parse_number(const char *s, const char *what)
{
    char *end;
    uint64_t v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-') {
        die(EXIT_USAGE, "%s '%s' is not a 64-bit number", what, s);
    }
    return v;
}

/* Read all of @path into @buf (at most @max bytes). */
static size_t read_in(const char *path, void *buf, uint64_t max)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    size_t n;

    if (!f) {
        die(EXIT_CALL_FAILED, "cannot open %s: %s", path, strerror(errno));
    }
    n = fread(buf, 1, max, f);
    if (ferror(f)) {
        die(EXIT_CALL_FAILED, "cannot read %s: %s", path, strerror(errno));
    }
    if (n == max && fgetc(f) != EOF) {
        die(EXIT_CALL_FAILED, "%s is larger than the data channel (%" PRIu64
            " bytes)", path, max);
    }
    if (f != stdin) {
        fclose(f);
    }
    return n;
}

static void write_out(const char *path, const void *buf, size_t n)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "wb") : stdout;

    if (!f) {
        die(EXIT_CALL_FAILED, "cannot create %s: %s", path, strerror(errno));
    }
    if (fwrite(buf, 1, n, f) != n || fflush(f) ||
        (f != stdout && fclose(f))) {
        die(EXIT_CALL_FAILED, "cannot write %s: %s", path, strerror(errno));
    }
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "device", required_argument, NULL, 'd' },
        { "path", required_argument, NULL, 'p' },
        { "in", required_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' },
        { "size", required_argument, NULL, 's' },
        { "decimal", no_argument, NULL, 'D' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *in = NULL, *out = NULL;
    char *spec = NULL;
    uint64_t cmd, result, size = 0, in_size = 0;
    bool have_size = false, decimal = false;
    qemu_backdoor_channel *ch;
    int opt;

    while ((opt = getopt_long(argc, argv, "Vh", options, NULL)) != -1) {
        switch (opt) {
        case 'd':
        case 'p':
            if (spec) {
                die(EXIT_USAGE, "give one --device or --path");
            }
            if (asprintf(&spec, "%s:%s", opt == 'd' ? "pci" : "path",
                         optarg) < 0) {
                die(EXIT_CALL_FAILED, "out of memory");
            }
            break;
        case 'i':
            in = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 's':
            size = parse_number(optarg, "size");
            have_size = true;
            break;
        case 'D':
            decimal = true;
            break;
        case 'V':
            printf(PROG " %s\n", qemu_backdoor_version());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        die(EXIT_USAGE, "no command given");
    }
    if (optind + 1 < argc) {
        die(EXIT_USAGE, "unexpected argument '%s'", argv[optind + 1]);
    }
    cmd = parse_number(argv[optind], "command");

    ch = qemu_backdoor_open(spec);
    if (!ch) {
        die(EXIT_CALL_FAILED, "%s", qemu_backdoor_error());
    }
    if (have_size && size > qemu_backdoor_channel_data_size(ch)) {
        die(EXIT_USAGE, "--size %" PRIu64 " is larger than the data channel "
            "(%" PRIu64 " bytes)", size, qemu_backdoor_channel_data_size(ch));
    }

    qemu_backdoor_channel_lock(ch);
    if (in) {
        in_size = read_in(in, qemu_backdoor_channel_data(ch),
                          qemu_backdoor_channel_data_size(ch));
    }
    result = qemu_backdoor_channel_call(ch, cmd);
    if (out) {
        if (!have_size) {
            size = in ? in_size : qemu_backdoor_channel_data_size(ch);
        }
        write_out(out, qemu_backdoor_channel_data(ch), size);
    }
    qemu_backdoor_channel_unlock(ch);

    if (decimal) {
        printf("%" PRIu64 "\n", result);
    } else {
        printf("0x%" PRIx64 "\n", result);
    }
    qemu_backdoor_close(ch);
    free(spec);
    return fflush(stdout) ? EXIT_CALL_FAILED : 0;
}
