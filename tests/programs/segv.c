/* Dies of SIGSEGV after saying so. */
#include <stdio.h>

int main(void) {
	puts("about to crash");
	fflush(stdout);
	volatile int *p = 0;
	return *p;
}
