/* Prints its arguments, environment entry GREETING and hostname, then exits with status 3. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
	char host[256] = "";
	gethostname(host, sizeof host);
	printf("argc=%d host=%s greeting=%s cwd=", argc, host, getenv("GREETING") ? getenv("GREETING") : "-");
	char cwd[512];
	puts(getcwd(cwd, sizeof cwd) ? cwd : "?");
	for (int i = 1; i < argc; i++)
		printf("arg[%d]=%s\n", i, argv[i]);
	fflush(stdout);
	return 3;
}
