/*
 * The /dev a program expects beyond devtmpfs: /dev/fd and /dev/std{in,out,err} links (programs
 * told to log to /dev/stdout open it by name) and /dev/log, the syslog socket. What arrives on
 * /dev/log goes to the console as "TAG[PID]: message", without the priority and time stamp
 * (the console is the log; the host keeps it).
 */
#include <sys/un.h>

static int devlog_fd = -1;

static void setup_dev_links(void) {
	static const char *links[][2] = {
	    {"/proc/self/fd", "/dev/fd"},
	    {"/proc/self/fd/0", "/dev/stdin"},
	    {"/proc/self/fd/1", "/dev/stdout"},
	    {"/proc/self/fd/2", "/dev/stderr"},
	};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			say("@@engitor:warning %s: %s", links[i][1], strerror(errno));
}

static void open_devlog(void) {
	struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
	devlog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (devlog_fd < 0)
		return;
	unlink(addr.sun_path);
	if (bind(devlog_fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		say("@@engitor:warning /dev/log: %s", strerror(errno));
		close(devlog_fd);
		devlog_fd = -1;
		return;
	}
	chmod(addr.sun_path, 0666); /* programs that dropped privileges log too */
}

/* "<PRI>Mmm dd hh:mm:ss TAG: msg" (RFC 3164, as glibc's syslog() sends it) -> "TAG: msg". */
static const char *syslog_body(const char *msg) {
	if (msg[0] == '<') {
		const char *end = strchr(msg, '>');
		if (end && end - msg <= 4)
			msg = end + 1;
	}
	if (strlen(msg) >= 16 && msg[3] == ' ' && msg[6] == ' ' && msg[9] == ':' && msg[12] == ':' &&
	    msg[15] == ' ')
		msg += 16;
	return msg;
}

static void read_devlog(void) {
	char buf[4096];
	ssize_t n;
	while (devlog_fd >= 0 && (n = recv(devlog_fd, buf, sizeof buf - 2, 0)) > 0) {
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == 0))
			n--;
		buf[n] = 0;
		const char *body = syslog_body(buf);
		size_t len = strlen(body);
		char line[sizeof buf + 1];
		memcpy(line, body, len);
		line[len] = '\n';
		ssize_t ignored = write(2, line, len + 1);
		(void)ignored;
	}
}
