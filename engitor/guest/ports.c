/*
 * virtio-serial ports, found by the name the host gave each one (QEMU's virtserialport name=):
 * the report channel (listen.c) and the hold port of a snapshot start (hold.c).
 */

/* The /dev/vportNpM named `name`, opened with `flags`; -1 while the kernel has not added it. */
static int open_virtio_port(const char *name, int flags) {
	int fd = -1;
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	while (d && fd < 0 && (e = readdir(d))) {
		char path[300], found[64];
		snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
		if (read_small(path, found, sizeof found) < 0 || strcmp(found, name))
			continue;
		snprintf(path, sizeof path, "/dev/%s", e->d_name);
		fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
	}
	if (d)
		closedir(d);
	return fd;
}
