/*
 * engitor guest init: PID 1 of a single-application micro-VM.
 *
 * It prepares the few things a Linux program expects (/proc, /sys, /dev, /tmp, loopback and the
 * QEMU user network, hostname), loads the kernel modules the builder listed (dependencies
 * first), starts the one program, reaps every zombie, forwards a shutdown request to the program
 * as SIGTERM, and when the program ends prints one status line and powers the VM off.
 *
 * Configuration comes from /.engitor/init, written by the builder: one "key value" per line,
 * values with "\\" and "\n" escaped. Keys: arg, env, cwd, hostname, module, addr, gateway,
 * stop_timeout, probe; volume, tmpfs, volume_owner (volumes.c); uid, gid, groups,
 * bind_below_1024, dir, chown, chmod (users.c); network (static or dhcp). An exported image
 * adds /.engitor/deploy in the same form (read second, so it wins): network, and modalias lines
 * (modalias.c).
 *
 * Status lines start at a fresh line with "@@engitor:" so the host can find them among the
 * program's own output:
 *   @@engitor:start pid=N uptime=S        the program was started (S: seconds since boot)
 *   @@engitor:exit code=N                 it exited normally
 *   @@engitor:exit signal=N name=SIGXXX   it was killed by a signal
 *   @@engitor:error MESSAGE               init could not do its job (then exit code=127 or so)
 *   @@engitor:stopping                    a shutdown request arrived; SIGTERM was sent
 *   @@engitor:daemon left=N               the program exited 0 leaving N processes; the VM
 *                                         keeps running until they end (they get the SIGTERM)
 *
 * Asked to hold (engitor.hold on the kernel command line: a snapshot start), init waits before
 * it mounts volumes and starts the program, for the host's clock and entropy (hold.c).
 *
 * A shutdown request is the ACPI power button (QMP system_powerdown; read from evdev, which is
 * how a full system's logind sees it) or SIGTERM/SIGINT sent to init itself.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <linux/reboot.h>
#include <net/if.h>
#include <net/route.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engitor-init.h" /* the protocol with the host: headers/engitor-init.h */

#define CONFIG_PATH ENGITOR_CONFIG_PATH
#define DEPLOY_PATH "/.engitor/deploy"
#define MAX_ITEMS 4096
#define MAX_INPUTS 16

static char *args[MAX_ITEMS + 1];
static int nargs;
static char *envs[MAX_ITEMS + 1];
static int nenvs;
static char *modules[MAX_ITEMS];
static int nmodules;
static const char *cwd = "/";
static const char *hostname;
static const char *addr; /* "10.0.2.15/24" */
static const char *gateway;
static const char *network = "static"; /* or "dhcp" */
static int stop_timeout = 10;
static int probe;

static void say(const char *fmt, ...) {
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + 1, sizeof buf - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 3)
		n = sizeof buf - 3;
	/* Leading newline: the program's last output may not have ended its line. */
	buf[0] = '\n';
	buf[n + 1] = '\n';
	ssize_t ignored = write(2, buf, n + 2);
	(void)ignored;
}

#include "users.c"

static double uptime(void) {
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The first line of a small file (a sysfs attribute), without its newline; -1 if unreadable
 * or empty. For the parts below: modalias, the report channel's name, a disk's serial. */
static int read_small(const char *path, char *buf, size_t size) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

#include "modalias.c"

static char *unescape(char *s) {
	char *out = s, *in = s;
	while (*in) {
		if (in[0] == '\\' && in[1] == 'n') {
			*out++ = '\n';
			in += 2;
		} else if (in[0] == '\\' && in[1] == '\\') {
			*out++ = '\\';
			in += 2;
		} else {
			*out++ = *in++;
		}
	}
	*out = 0;
	return s;
}

#include "devlog.c"
#include "ports.c"
#include "listen.c"
#include "hold.c"
#include "volumes.c"

static int read_config(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	char *buf = malloc(st.st_size + 1);
	ssize_t got = 0;
	while (buf && got < st.st_size) {
		ssize_t n = read(fd, buf + got, st.st_size - got);
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	if (!buf || got != st.st_size)
		return -1;
	buf[got] = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *value = strchr(line, ' ');
		if (!value)
			continue;
		*value++ = 0;
		unescape(value);
		if (!strcmp(line, "arg") && nargs < MAX_ITEMS)
			args[nargs++] = value;
		else if (!strcmp(line, "env") && nenvs < MAX_ITEMS)
			envs[nenvs++] = value;
		else if (!strcmp(line, "module") && nmodules < MAX_ITEMS)
			modules[nmodules++] = value;
		else if (!strcmp(line, "cwd"))
			cwd = value;
		else if (!strcmp(line, "hostname"))
			hostname = value;
		else if (!strcmp(line, "addr"))
			addr = value;
		else if (!strcmp(line, "gateway"))
			gateway = value;
		else if (!strcmp(line, "network"))
			network = value;
		else if (!strcmp(line, "modalias") && naliases < MAX_ITEMS)
			aliases[naliases++] = value;
		else if (!strcmp(line, "stop_timeout"))
			stop_timeout = atoi(value);
		else if (!strcmp(line, "probe"))
			probe = 1;
		else
			(void)(volume_config(line, value) || users_config(line, value));
	}
	return 0;
}

static void mount_fs(const char *src, const char *dst, const char *type, unsigned long flags,
                     const char *data) {
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		say("@@engitor:warning mount %s on %s: %s", type, dst, strerror(errno));
}

/* The initramfs root is already a writable tmpfs; a fresh tmpfs over a directory would hide
 * what the image put there, so only empty ones get their own mount. */
static int is_empty_dir(const char *path) {
	DIR *d = opendir(path);
	if (!d)
		return 1;
	struct dirent *e;
	int empty = 1;
	while (empty && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

static void setup_filesystems(void) {
	mount_fs("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_fs("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_fs("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_fs("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=0,mode=620,ptmxmode=666");
	mount_fs("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	if (is_empty_dir("/tmp"))
		mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	if (is_empty_dir("/run"))
		mount_fs("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	/* The program's stdio: the console, which the kernel opened only if the node existed. */
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd >= 0) {
		for (int i = 0; i < 3; i++)
			if (fcntl(i, F_GETFD) < 0)
				dup2(fd, i);
		if (fd > 2)
			close(fd);
	}
	setup_dev_links();
}

static void load_modules(void) {
	for (int i = 0; i < nmodules; i++) {
		int fd = open(modules[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			say("@@engitor:warning module %s: %s", modules[i], strerror(errno));
			continue;
		}
		if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
			say("@@engitor:warning module %s: %s", modules[i], strerror(errno));
		close(fd);
	}
}

static int ifreq_addr(int sock, unsigned long req, const char *ifname, in_addr_t a) {
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = a;
	return ioctl(sock, req, &ifr);
}

static int if_up(int sock, const char *ifname) {
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(sock, SIOCSIFFLAGS, &ifr);
}

#include "dhcp.c"

static void setup_network(void) {
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		say("@@engitor:warning socket: %s", strerror(errno));
		return;
	}
	if (if_up(sock, "lo") < 0)
		say("@@engitor:warning lo: %s", strerror(errno));
	int dhcp = !strcmp(network, "dhcp");
	if (!addr && !dhcp)
		goto out;
	/* virtio_net registers eth0 from its probe; give it a moment to appear (a cloud NIC on a
	 * bus the host offers late, as VMBus, longer). */
	for (int i = 0; i < (dhcp ? 2000 : 400) && !if_nametoindex("eth0"); i++)
		usleep(5000);
	if (!if_nametoindex("eth0")) {
		say("@@engitor:warning eth0 did not appear; no network");
		goto out;
	}
	if (dhcp) {
		dhcp_configure("eth0");
		goto out;
	}
	char ip[64];
	snprintf(ip, sizeof ip, "%s", addr);
	int prefix = 24;
	char *slash = strchr(ip, '/');
	if (slash) {
		*slash = 0;
		prefix = atoi(slash + 1);
	}
	in_addr_t mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	if (ifreq_addr(sock, SIOCSIFADDR, "eth0", inet_addr(ip)) < 0 ||
	    ifreq_addr(sock, SIOCSIFNETMASK, "eth0", mask) < 0 || if_up(sock, "eth0") < 0) {
		say("@@engitor:warning eth0 %s: %s", addr, strerror(errno));
		goto out;
	}
	if (gateway) {
		struct rtentry rt;
		memset(&rt, 0, sizeof rt);
		struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
		gw->sin_family = AF_INET;
		gw->sin_addr.s_addr = inet_addr(gateway);
		((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
		((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		rt.rt_dev = "eth0";
		if (ioctl(sock, SIOCADDRT, &rt) < 0 && errno != EEXIST)
			say("@@engitor:warning default route via %s: %s", gateway, strerror(errno));
	}
out:
	close(sock);
}

/* Input devices that can report KEY_POWER: the ACPI power button. */
static int open_power_buttons(int *fds) {
	int n = 0;
	for (int i = 0; i < 32 && n < MAX_INPUTS; i++) {
		char path[64];
		snprintf(path, sizeof path, "/dev/input/event%d", i);
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		unsigned long keys[KEY_MAX / (8 * sizeof(long)) + 1];
		memset(keys, 0, sizeof keys);
		if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof keys), keys) >= 0 &&
		    (keys[KEY_POWER / (8 * sizeof(long))] >> (KEY_POWER % (8 * sizeof(long)))) & 1)
			fds[n++] = fd;
		else
			close(fd);
	}
	return n;
}

static int power_pressed(int fd) {
	struct input_event ev[16];
	int pressed = 0;
	ssize_t n;
	while ((n = read(fd, ev, sizeof ev)) > 0)
		for (size_t i = 0; i < n / sizeof ev[0]; i++)
			if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1)
				pressed = 1;
	return pressed;
}

static const char *signame(int sig) {
	static const struct {
		int sig;
		const char *name;
	} names[] = {
	    {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
	    {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
	    {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
	    {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGSTKFLT, "SIGSTKFLT"},
	    {SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"},
	    {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"}, {SIGURG, "SIGURG"},   {SIGXCPU, "SIGXCPU"},
	    {SIGXFSZ, "SIGXFSZ"}, {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},
	    {SIGWINCH, "SIGWINCH"}, {SIGIO, "SIGIO"}, {SIGPWR, "SIGPWR"}, {SIGSYS, "SIGSYS"},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].sig == sig)
			return names[i].name;
	return "SIGUNKNOWN";
}

static void power_off(void) {
	sync();
	reboot(LINUX_REBOOT_CMD_POWER_OFF);
	/* Only reached if power-off failed; with panic=-1 and -no-reboot QEMU still exits. */
	for (;;)
		pause();
}

/* After the program: ask the rest to stop, give them a moment, then power off. */
static void finish(int status) {
	kill(-1, SIGTERM);
	for (int i = 0; i < 20; i++) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			break;
		usleep(10000);
	}
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	read_devlog(); /* what was logged just before the end */
	unmount_volumes();
	if (WIFSIGNALED(status))
		say("@@engitor:exit signal=%d name=%s%s", WTERMSIG(status), signame(WTERMSIG(status)),
		    WCOREDUMP(status) ? " core=1" : "");
	else
		say("@@engitor:exit code=%d", WEXITSTATUS(status));
	power_off();
}

/*
 * Fork and exec the program. A close-on-exec pipe tells whether execve succeeded (it closes
 * with nothing written) or failed (the child writes errno): "start" is said only for a program
 * that really started. Returns its pid, or -1.
 */
static pid_t start_program(sigset_t *mask) {
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		say("@@engitor:error pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		sigprocmask(SIG_UNBLOCK, mask, NULL);
		int err;
		if (drop_privileges() < 0) {
			err = errno;
			say("@@engitor:error cannot run as uid %ld gid %ld: %s", run_uid, run_gid,
			    strerror(err));
		} else if (chdir(cwd) < 0) {
			err = errno;
			say("@@engitor:error workdir %s: %s", cwd, strerror(err));
		} else {
			execve(args[0], args, envs);
			err = errno;
			say("@@engitor:error cannot execute %s: %s", args[0], strerror(err));
		}
		ssize_t ignored = write(pipefd[1], &err, sizeof err);
		(void)ignored;
		_exit(err == ENOENT ? 127 : 126);
	}
	close(pipefd[1]);
	if (pid < 0) {
		say("@@engitor:error fork: %s", strerror(errno));
		close(pipefd[0]);
		return -1;
	}
	int err;
	ssize_t got;
	while ((got = read(pipefd[0], &err, sizeof err)) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	if (got <= 0)
		say("@@engitor:start pid=%d uptime=%.3f", pid, uptime());
	return pid;
}

/*
 * The program ended. A program that exits 0 and leaves processes behind has daemonized (forked,
 * and the parent returned): as PID 1, init is the subreaper of every orphan, so instead of
 * ending the VM it keeps it on them (0 is returned: no single program pid any more) until the
 * last one ends or a stop request reaches them all. Otherwise the VM ends with the status.
 */
/* Processes other than init, kernel threads and zombies. */
static int user_processes(void) {
	int left = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int p = atoi(e->d_name);
		char path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%d/stat", p);
		int fd = p > 2 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		char *after = strrchr(buf, ')');
		char state = 0;
		int ppid = 0;
		if (after && sscanf(after + 2, "%c %d", &state, &ppid) == 2 && ppid != 2 && state != 'Z')
			left++;
	}
	if (d)
		closedir(d);
	return left;
}

static pid_t program_ended(int status) {
	int left;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && (left = user_processes()) > 0) {
		say("@@engitor:daemon left=%d", left);
		return 0;
	}
	finish(status);
	return -1;
}

int main(void) {
	if (getpid() != 1) {
		fprintf(stderr, "engitor init: must run as PID 1 inside an engitor VM\n");
		return 1;
	}
	setsid();
	setup_filesystems();
	if (read_config(CONFIG_PATH) < 0) {
		say("@@engitor:error cannot read %s: %s", CONFIG_PATH, strerror(errno));
		finish(127 << 8);
	}
	if (probe) {
		say("@@engitor:probe ok uptime=%.3f", uptime());
		power_off();
	}
	read_config(DEPLOY_PATH); /* only in exported images */
	load_modules();
	load_device_modules();
	hold_for_host(); /* a snapshot start saves or resumes the VM here */
	if (mount_volumes() < 0)
		finish(127 << 8);
	make_owned_dirs(); /* after the volumes: a tmpfiles.d folder may be on one */
	setup_network();
	if (hostname && sethostname(hostname, strlen(hostname)) < 0)
		say("@@engitor:warning hostname: %s", strerror(errno));
	if (!nargs) {
		say("@@engitor:error no program configured");
		finish(127 << 8);
	}

	open_devlog();

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGPWR);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	/* Ctrl-Alt-Del becomes SIGINT to init instead of an immediate reboot. */
	reboot(LINUX_REBOOT_CMD_CAD_OFF);

	pid_t pid = start_program(&mask);
	if (pid < 0)
		finish(127 << 8);
	double started = uptime();

	struct pollfd pfds[2 + MAX_INPUTS];
	int inputs[MAX_INPUTS];
	int ninputs = open_power_buttons(inputs);
	pfds[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
	pfds[1] = (struct pollfd){.fd = devlog_fd, .events = POLLIN};
	for (int i = 0; i < ninputs; i++)
		pfds[2 + i] = (struct pollfd){.fd = inputs[i], .events = POLLIN};

	double deadline = 0; /* when set: SIGKILL the program at this uptime */
	double next_scan = 0;
	int last_status = 0;
	for (;;) {
		/* Listening sockets: often while the program starts, then now and then. */
		double now = uptime();
		if (now >= next_scan) {
			report_listeners();
			next_scan = now + (now - started < 30 ? 0.1 : 0.5);
		}
		double wake = next_scan;
		if (deadline > 0 && deadline < wake)
			wake = deadline;
		int timeout = wake > now ? (int)((wake - now) * 1000) + 1 : 0;
		int ready = poll(pfds, 2 + ninputs, timeout);
		int stop = 0;
		if (ready < 0 && errno != EINTR)
			say("@@engitor:warning poll: %s", strerror(errno));
		if (ready > 0 && (pfds[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si)
				if (si.ssi_signo != SIGCHLD)
					stop = 1;
		}
		if (ready > 0 && (pfds[1].revents & POLLIN))
			read_devlog();
		for (int i = 0; ready > 0 && i < ninputs; i++)
			if ((pfds[2 + i].revents & POLLIN) && power_pressed(inputs[i]))
				stop = 1;
		int status;
		pid_t dead;
		while ((dead = waitpid(-1, &status, WNOHANG)) > 0) {
			last_status = status;
			if (dead == pid)
				pid = program_ended(status);
		}
		/* Following a daemon: the VM lives while any process does. */
		if (pid == 0 && dead < 0 && errno == ECHILD)
			finish(last_status);
		if (stop && deadline == 0) {
			say("@@engitor:stopping");
			kill(pid > 0 ? pid : -1, SIGTERM);
			deadline = uptime() + stop_timeout;
		}
		if (deadline > 0 && uptime() >= deadline) {
			say("@@engitor:warning program ignored SIGTERM for %ds; killing it", stop_timeout);
			kill(pid > 0 ? pid : -1, SIGKILL);
			deadline = -1;
		}
	}
}
