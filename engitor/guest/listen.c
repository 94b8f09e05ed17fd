/*
 * Readiness: the TCP sockets that listen in the guest, reported to the host.
 *
 * The host side of a QEMU user-network port forward accepts connections while the guest still
 * boots, so only the guest can say when a program listens. The init reads /proc/net/tcp and
 * tcp6 (state 0A, LISTEN) a few times a second and, whenever the set changes, writes one line
 * to the virtio-serial port named org.engitor.0 (a file on the host, beside the console):
 *   listen uptime=S ADDR:PORT ...        (an empty list when nothing listens any more)
 * A separate port keeps these reports out of the program's console output, where a program's
 * unfinished line could split them.
 */
#include <arpa/inet.h>

static int report_fd = -1;
static char reported[8192];
static int reported_once;

/* Appends " ADDR:PORT" for each listening socket in one /proc/net file. */
static void scan_listeners(const char *file, int v6, char *out, size_t size) {
	FILE *f = fopen(file, "re");
	if (!f)
		return;
	char line[512];
	if (!fgets(line, sizeof line, f)) { /* the header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		char local[64];
		unsigned port, state;
		if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*s %x", local, &port, &state) != 3 ||
		    state != 0x0A)
			continue;
		unsigned char bytes[16];
		/* The kernel prints each 32-bit word of the address in host (little-endian) order. */
		for (int w = 0; w < (v6 ? 4 : 1); w++) {
			unsigned word;
			char part[9];
			memcpy(part, local + 8 * w, 8);
			part[8] = 0;
			word = strtoul(part, NULL, 16);
			memcpy(bytes + 4 * w, &word, 4);
		}
		char text[INET6_ADDRSTRLEN];
		inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text);
		size_t used = strlen(out);
		snprintf(out + used, size - used, v6 ? " [%s]:%u" : " %s:%u", text, port);
	}
	fclose(f);
}

/* Report the listening sockets if they changed since the last report. */
static void report_listeners(void) {
	if (report_fd < 0)
		report_fd = open_virtio_port(ENGITOR_REPORT_PORT, O_WRONLY);
	if (report_fd < 0)
		return;
	char now[sizeof reported] = "";
	scan_listeners("/proc/net/tcp", 0, now, sizeof now);
	scan_listeners("/proc/net/tcp6", 1, now, sizeof now);
	if (reported_once && !strcmp(now, reported))
		return;
	char line[sizeof now + 64];
	int n = snprintf(line, sizeof line, "listen uptime=%.3f%s\n", uptime(), now);
	if (n > 0 && write(report_fd, line, n < (int)sizeof line ? n : (int)sizeof line - 1) > 0) {
		memcpy(reported, now, sizeof now);
		reported_once = 1;
	}
}
