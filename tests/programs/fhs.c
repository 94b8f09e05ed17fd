/* Checks the file system a daemon expects: writes a file in each directory it names, checks the
 * /dev links and the /var/run link, and prints one line per check: "ok WHAT" or "FAIL WHAT: why". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define TMPFS_MAGIC 0x01021994

static int failures;

static void check(int ok, const char *what) {
	if (ok)
		printf("ok %s\n", what);
	else {
		printf("FAIL %s: %s\n", what, strerror(errno));
		failures++;
	}
}

static int writable(const char *dir) {
	char path[256];
	snprintf(path, sizeof path, "%s/probe", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 0;
	close(fd);
	return unlink(path) == 0;
}

static int is_tmpfs(const char *dir) {
	struct statfs fs;
	return statfs(dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

int main(void) {
	const char *dirs[] = {"/tmp", "/run", "/var/lib", "/var/log", "/var/tmp", "/var/cache",
	                      "/dev/shm"};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		check(writable(dirs[i]), dirs[i]);
	check(is_tmpfs("/run") && is_tmpfs("/tmp") && is_tmpfs("/dev/shm"), "tmpfs");
	char target[64] = "";
	check(readlink("/var/run", target, sizeof target - 1) > 0 && !strcmp(target, "/run"),
	      "/var/run -> /run");
	struct stat a, b;
	check(stat("/dev/stderr", &a) == 0 && fstat(2, &b) == 0 && a.st_rdev == b.st_rdev,
	      "/dev/stderr");
	check(access("/dev/fd/0", F_OK) == 0 && access("/dev/stdin", F_OK) == 0, "/dev/fd");
	struct stat log;
	check(stat("/dev/log", &log) == 0 && S_ISSOCK(log.st_mode), "/dev/log");
	fflush(stdout);
	return failures;
}
