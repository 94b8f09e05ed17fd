/*
 * Drivers for the devices that are there: PCI machines and clouds (included from init.c).
 *
 * An exported image's /.engitor/deploy lists "modalias PATTERN MODULE.ko..." lines: a device
 * pattern from a module's alias= entries and the module with its dependencies in load order
 * (the builder read them from each module's .modinfo). Each device's sysfs modalias is matched
 * against every pattern with fnmatch, as kmod does; a match loads the modules. Loading a bus
 * driver makes new devices appear (virtio_pci reveals the virtio NIC and disks, hv_vmbus the
 * VMBus NIC), so the scan repeats until a round loads nothing new.
 */
#include <fnmatch.h>

#define MAX_LOADED 256

static char *aliases[MAX_ITEMS]; /* "PATTERN PATH [PATH...]" */
static int naliases;
static const char *loaded[MAX_LOADED];
static int nloaded;

static int load_once(const char *path) {
	for (int i = 0; i < nloaded; i++)
		if (!strcmp(loaded[i], path))
			return 0;
	if (nloaded < MAX_LOADED)
		loaded[nloaded++] = strdup(path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say("@@engitor:warning module %s: %s", path, strerror(errno));
		return 0;
	}
	int ok = syscall(SYS_finit_module, fd, "", 0) == 0;
	if (!ok && errno != EEXIST)
		say("@@engitor:warning module %s: %s", path, strerror(errno));
	close(fd);
	return ok;
}

/* Load the modules of every alias matching `modalias`; returns how many were new. */
static int load_for_device(const char *modalias) {
	int fresh = 0;
	for (int i = 0; i < naliases; i++) {
		char line[1024];
		snprintf(line, sizeof line, "%s", aliases[i]);
		char *save = NULL;
		char *pattern = strtok_r(line, " ", &save);
		if (!pattern || fnmatch(pattern, modalias, 0) != 0)
			continue;
		for (char *path = strtok_r(NULL, " ", &save); path; path = strtok_r(NULL, " ", &save))
			fresh += load_once(path);
	}
	return fresh;
}

/* One pass over /sys/bus/ * /devices/ * /modalias; returns how many modules it loaded. */
static int scan_devices(void) {
	int fresh = 0;
	DIR *buses = opendir("/sys/bus");
	if (!buses)
		return 0;
	struct dirent *bus;
	while ((bus = readdir(buses))) {
		if (bus->d_name[0] == '.')
			continue;
		char dir[512];
		snprintf(dir, sizeof dir, "/sys/bus/%s/devices", bus->d_name);
		DIR *devices = opendir(dir);
		if (!devices)
			continue;
		struct dirent *dev;
		while ((dev = readdir(devices))) {
			char path[1024], modalias[512];
			if (dev->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s/modalias", dir, dev->d_name);
			if (read_small(path, modalias, sizeof modalias) == 0)
				fresh += load_for_device(modalias);
		}
		closedir(devices);
	}
	closedir(buses);
	return fresh;
}

static void load_device_modules(void) {
	for (int round = 0; naliases && round < 8; round++)
		if (!scan_devices())
			break;
}
