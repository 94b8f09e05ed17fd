/* Counts its runs in a file on a volume: reads DIR/count, adds one, writes it back with fsync,
 * prints "count=N". With a second argument "hold", keeps running (for lock and kill tests);
 * with "stubborn", keeps running and ignores SIGTERM (for the stop timeout). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	const char *dir = argc > 1 ? argv[1] : "/data";
	char path[4096];
	snprintf(path, sizeof path, "%s/count", dir);
	long n = 0;
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	n++;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	dprintf(fd, "%ld\n", n);
	if (fsync(fd) < 0 || close(fd) < 0) {
		perror("fsync");
		return 1;
	}
	printf("count=%ld\n", n);
	fflush(stdout);
	if (argc > 2 && !strcmp(argv[2], "stubborn"))
		signal(SIGTERM, SIG_IGN);
	if (argc > 2 && (!strcmp(argv[2], "hold") || !strcmp(argv[2], "stubborn")))
		for (;;)
			pause();
	return 0;
}
