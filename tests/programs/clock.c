/* Reports the guest's clocksource and whether its wall clock came from the RTC. */
#include <stdio.h>
#include <time.h>

int main(void) {
	char source[64] = "?";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (f) {
		if (fscanf(f, "%63s", source) != 1)
			source[0] = '?';
		fclose(f);
	}
	time_t now = time(NULL);
	printf("clocksource=%s year=%d\n", source, gmtime(&now)->tm_year + 1900);
	return 0;
}
