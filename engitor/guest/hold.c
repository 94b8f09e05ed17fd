/*
 * The hold of a snapshot start (headers/engitor-init.h; the host side is vm/snapshot.py).
 *
 * Everything the init does before this point is the same in every VM of an image: the host
 * saves the VM while the init waits here, and later VMs of the image are restored from that save
 * instead of booting. What must differ between them comes with the host's "go" line: the wall
 * clock (a restored guest's clock would be the save's) and fresh entropy, mixed into the kernel's
 * pool and made its next key at once (RNDRESEEDCRNG), so that no two restored VMs share a random
 * stream. The program has not run yet, so no user space holds random state of the save.
 */
#include <linux/random.h>
#include <sys/mman.h>

#define HOLD_PORT_WAIT_MS 5000 /* the kernel adds ports as the host announces them */

static int hold_requested(void) {
	char cmdline[4096];
	if (read_small("/proc/cmdline", cmdline, sizeof cmdline) < 0)
		return 0;
	for (char *arg = strtok(cmdline, " "); arg; arg = strtok(NULL, " "))
		if (!strcmp(arg, ENGITOR_HOLD_ARG))
			return 1;
	return 0;
}

static int hex_bytes(const char *hex, unsigned char *out, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

static void reseed(const unsigned char *seed, size_t n) {
	struct {
		int entropy_count, buf_size;
		unsigned char buf[64];
	} add = {.entropy_count = (int)(8 * n), .buf_size = (int)n};
	memcpy(add.buf, seed, n);
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, RNDADDENTROPY, &add) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
		say("@@engitor:warning reseeding the RNG: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Reads one line (up to size-1 bytes) from a blocking descriptor. */
static int read_line(int fd, char *buf, size_t size) {
	size_t used = 0;
	while (used < size - 1) {
		ssize_t n = read(fd, buf + used, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (buf[used] == '\n')
			break;
		used++;
	}
	buf[used] = 0;
	return 0;
}

/* A field of /proc/meminfo, in KiB; -1 if missing. */
static long meminfo_kb(const char *field) {
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "re");
	while (f && kb < 0 && fgets(line, sizeof line, f))
		if (!strncmp(line, field, strlen(field)))
			kb = atol(line + strlen(field));
	if (f)
		fclose(f);
	return kb;
}

/*
 * Free pages keep what they last held (the initramfs archive, the kernel's init code): a save
 * would carry them and every restore write them into host memory. The kernel hands out zeroed
 * pages, so taking most of the free memory and giving it back leaves it zero, which QEMU's
 * migration skips. A reserve stays free (the kernel's watermarks, what the program needs first).
 */
static void zero_free_memory(void) {
	long free_kb = meminfo_kb("MemFree:"), total_kb = meminfo_kb("MemTotal:");
	long reserve_kb = 4096 + total_kb / 8;
	if (free_kb < 0 || total_kb < 0 || free_kb <= reserve_kb)
		return;
	size_t len = (size_t)(free_kb - reserve_kb) * 1024;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_NORESERVE, -1, 0);
	if (p != MAP_FAILED)
		munmap(p, len);
}

static void hold_for_host(void) {
	if (!hold_requested())
		return;
	int fd = -1;
	for (int waited = 0; fd < 0 && waited < HOLD_PORT_WAIT_MS; waited += 10)
		if ((fd = open_virtio_port(ENGITOR_HOLD_PORT, O_RDWR)) < 0)
			usleep(10000);
	if (fd < 0) {
		say("@@engitor:warning no hold port; the program starts without a snapshot");
		return;
	}
	zero_free_memory();
	say("@@engitor:hold");
	char line[256], seed_hex[129];
	struct timespec now;
	unsigned char seed[32];
	if (write(fd, "hold\n", 5) != 5 || read_line(fd, line, sizeof line) < 0 ||
	    sscanf(line, "go %ld %ld %128s", &now.tv_sec, &now.tv_nsec, seed_hex) != 3 ||
	    strlen(seed_hex) != 2 * sizeof seed || hex_bytes(seed_hex, seed, sizeof seed) < 0) {
		say("@@engitor:warning the hold port closed without a valid go line");
		close(fd);
		return;
	}
	if (clock_settime(CLOCK_REALTIME, &now) < 0)
		say("@@engitor:warning setting the clock: %s", strerror(errno));
	reseed(seed, sizeof seed);
	ssize_t ignored = write(fd, "resumed\n", 8);
	(void)ignored;
	close(fd);
}
