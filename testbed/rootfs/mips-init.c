/*
 * /init of the big-endian MIPS twin's root filesystem (qemu-mips).
 *
 * Debian 12 has no big-endian MIPS userland, so this static program stands
 * in for busybox: built by lmx-testbed with `mips-linux-gnu-gcc -static`
 * (testbed/src/rootfs.rs), it does what testbed/rootfs/init does (mount the
 * kernel's file systems, print the userland marker line with the machine
 * and the root device) and then serves the console with a tiny command
 * reader: lines of commands separated by `;`, words split on blanks with
 * '...' and "..." quoting (adjacent pieces join, as in sh). Commands: echo,
 * cat FILE..., uname [-m], sync, poweroff, reboot. Anything else prints
 * "init: NAME: not found".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MARKER "LMX-USERLAND-READY"
#define MAX_WORDS 32

static void try_mount(const char *src, const char *dir, const char *type)
{
	if (mount(src, dir, type, 0, NULL) != 0 && errno != EBUSY)
		printf("init: mount %s on %s: %s\n", type, dir, strerror(errno));
}

/* The value of `root=` on the kernel command line, or "?". */
static void root_device(char *out, size_t len)
{
	char buf[1024];
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	char *p;

	if (fd >= 0)
		close(fd);
	snprintf(out, len, "?");
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf; (p = strstr(p, "root=")) != NULL; p += 5) {
		if (p == buf || p[-1] == ' ') {
			size_t k = strcspn(p + 5, " \n");
			snprintf(out, len, "%.*s", (int)k, p + 5);
			return;
		}
	}
}

static void cat(const char *path)
{
	char buf[512];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		printf("cat: %s: %s\n", path, strerror(errno));
		return;
	}
	fflush(stdout);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		write(1, buf, n);
	close(fd);
}

static void run(int argc, char **argv)
{
	int i;

	if (argc == 0)
		return;
	if (!strcmp(argv[0], "echo")) {
		for (i = 1; i < argc; i++)
			printf("%s%s", i > 1 ? " " : "", argv[i]);
		printf("\n");
	} else if (!strcmp(argv[0], "cat")) {
		for (i = 1; i < argc; i++)
			cat(argv[i]);
	} else if (!strcmp(argv[0], "uname")) {
		struct utsname u;
		uname(&u);
		if (argc > 1 && !strcmp(argv[1], "-m"))
			printf("%s\n", u.machine);
		else
			printf("%s %s %s\n", u.sysname, u.release, u.machine);
	} else if (!strcmp(argv[0], "sync")) {
		sync();
	} else if (!strcmp(argv[0], "poweroff") || !strcmp(argv[0], "reboot")) {
		sync();
		fflush(stdout);
		reboot(argv[0][0] == 'p' ? RB_POWER_OFF : RB_AUTOBOOT);
	} else {
		printf("init: %s: not found\n", argv[0]);
	}
}

/* Splits one line into commands and words, runs each command. */
static void interpret(char *line)
{
	char words[MAX_WORDS][256];
	char *argv[MAX_WORDS + 1];
	int argc = 0, len = 0, in_word = 0;
	char quote = 0, *p;

	for (p = line;; p++) {
		char c = *p;
		int end = c == '\0' || c == '\n' || c == '\r';

		if (quote && !end) {
			if (c == quote)
				quote = 0;
			else if (len < 255)
				words[argc][len++] = c;
			continue;
		}
		if (c == '\'' || c == '"') {
			quote = c;
			in_word = 1;
			continue;
		}
		if (end || c == ' ' || c == '\t' || c == ';') {
			if (in_word && argc < MAX_WORDS) {
				words[argc][len] = '\0';
				argv[argc] = words[argc];
				argc++;
			}
			in_word = 0;
			len = 0;
			if (end || c == ';') {
				argv[argc] = NULL;
				run(argc, argv);
				fflush(stdout);
				argc = 0;
			}
			if (end)
				return;
			continue;
		}
		in_word = 1;
		if (len < 255 && argc < MAX_WORDS)
			words[argc][len++] = c;
	}
}

int main(void)
{
	struct utsname u;
	char root[128], line[1024];

	setvbuf(stdout, NULL, _IOLBF, 0);
	try_mount("proc", "/proc", "proc");
	try_mount("sysfs", "/sys", "sysfs");
	/* CONFIG_DEVTMPFS_MOUNT usually has mounted /dev already (EBUSY). */
	try_mount("devtmpfs", "/dev", "devtmpfs");
	uname(&u);
	root_device(root, sizeof root);
	printf("%s %s root=%s\n", MARKER, u.machine, root);
	for (;;) {
		printf("# ");
		fflush(stdout);
		if (!fgets(line, sizeof line, stdin)) {
			clearerr(stdin);
			sleep(1);
			continue;
		}
		interpret(line);
	}
}
