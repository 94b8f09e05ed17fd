/* A classic daemon: forks, the parent exits 0 at once, the child (in its own session) listens on
 * TCP port argv[1] (default 8080; on 127.0.0.1 only when argv[2] is "loopback") and answers each
 * connection with "daemon says hi\n".
 * It announces itself through syslog() and through /dev/stdout opened by name. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

int main(int argc, char **argv) {
	int port = argc > 1 ? atoi(argv[1]) : 8080;
	FILE *out = fopen("/dev/stdout", "w");
	if (!out) {
		perror("/dev/stdout");
		return 1;
	}
	fprintf(out, "written to /dev/stdout by name\n");
	fclose(out);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0)
		return 0; /* the parent: "started in the background" */
	setsid();
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (argc > 2 && !strcmp(argv[2], "loopback"))
		addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 16) < 0) {
		perror("listen");
		return 1;
	}
	openlog("forking", LOG_PID, LOG_DAEMON);
	syslog(LOG_INFO, "listening on port %d", port);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		const char *msg = "daemon says hi\n";
		ssize_t ignored = write(c, msg, strlen(msg));
		(void)ignored;
		close(c);
	}
}
