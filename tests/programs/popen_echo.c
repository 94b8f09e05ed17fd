/* Runs a shell pipeline through popen(3): needs /bin/sh in the image. */
#include <stdio.h>

int main(void) {
	FILE *p = popen("echo shell says $((6 * 7))", "r");
	if (!p) {
		perror("popen");
		return 1;
	}
	char line[128];
	while (fgets(line, sizeof line, p))
		fputs(line, stdout);
	return pclose(p) == 0 ? 0 : 3;
}
