/* Prints the CPU flags the guest kernel sees (the "flags" line of /proc/cpuinfo). */
#include <stdio.h>
#include <string.h>

int main(void) {
	char line[8192];
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return 1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "flags", 5)) {
			fputs(strchr(line, ':') + 1, stdout);
			break;
		}
	fclose(f);
	return 0;
}
