/* What must differ between VMs restored from one save: prints the wall clock (nanoseconds
 * since the epoch) and 16 bytes from getrandom(2), which draws on the kernel's CRNG. */
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

int main(void) {
	struct timespec now;
	unsigned char bytes[16];
	clock_gettime(CLOCK_REALTIME, &now);
	if (getrandom(bytes, sizeof bytes, 0) != sizeof bytes)
		return 1;
	printf("realtime=%lld.%09ld random=", (long long)now.tv_sec, now.tv_nsec);
	for (unsigned i = 0; i < sizeof bytes; i++)
		printf("%02x", bytes[i]);
	printf("\n");
	return 0;
}
