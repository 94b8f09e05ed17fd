/*
 * Volumes: ext4 disks (virtio-blk, found by the serial number the host gave each one) and
 * tmpfs, mounted before the program starts and unmounted after it ends.
 *
 * Config keys (see engitor/image/init.py):
 *   volume SERIAL /guest/path    an ext4 disk
 *   tmpfs /guest/path            a RAM file system
 *   volume_owner UID GID         who owns what the volumes hold (the image's user)
 * Lines come in mount order: a parent before a volume mounted inside it.
 *
 * A disk whose root is not owned by volume_owner is chowned through, once: a volume made and
 * seeded on the host holds root's files, and a daemon that drops privileges must write there.
 */
#include <ftw.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define MAX_VOLUMES 64

static struct {
	const char *serial; /* NULL: tmpfs */
	const char *path;
	int mounted;
} volumes[MAX_VOLUMES];
static int nvolumes;
static long volume_uid = -1, volume_gid = -1;

/* One config line; 1 when the key was a volume key. */
static int volume_config(const char *key, char *value) {
	if (!strcmp(key, "volume_owner")) {
		if (sscanf(value, "%ld %ld", &volume_uid, &volume_gid) != 2)
			volume_uid = volume_gid = -1;
		return 1;
	}
	int disk = !strcmp(key, "volume");
	if (!disk && strcmp(key, "tmpfs"))
		return 0;
	if (nvolumes == MAX_VOLUMES)
		return 1;
	if (disk) {
		char *space = strchr(value, ' ');
		if (!space)
			return 1;
		*space = 0;
		volumes[nvolumes].serial = value;
		volumes[nvolumes].path = space + 1;
	} else {
		volumes[nvolumes].path = value;
	}
	nvolumes++;
	return 1;
}

static void mkdir_p(const char *path) {
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

/* /dev/vdX of the virtio-blk disk with this serial, waiting for the driver's probe. */
static int find_disk(const char *serial, char *dev, size_t size) {
	for (int tries = 0; tries < 1000; tries++) {
		DIR *d = opendir("/sys/block");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (strncmp(e->d_name, "vd", 2))
				continue;
			char path[300], text[64];
			snprintf(path, sizeof path, "/sys/block/%s/serial", e->d_name);
			if (read_small(path, text, sizeof text) == 0 && !strcmp(text, serial)) {
				snprintf(dev, size, "/dev/%s", e->d_name);
				closedir(d);
				return 0;
			}
		}
		if (d)
			closedir(d);
		usleep(5000);
	}
	return -1;
}

static int chown_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	if (lchown(path, volume_uid, volume_gid) < 0)
		say("@@engitor:warning chown %s: %s", path, strerror(errno));
	return 0;
}

static void own_volume(const char *path) {
	struct stat st;
	if (volume_uid < 0 || stat(path, &st) < 0)
		return;
	if (st.st_uid != (uid_t)volume_uid || st.st_gid != (gid_t)volume_gid)
		nftw(path, chown_entry, 32, FTW_PHYS | FTW_MOUNT);
}

/*
 * A VM restored from a snapshot start's save (hold.c) may have another disk than the save's
 * (another volume of the same size, or the same one written since), and the kernel read the
 * first blocks of the save's while it booted (the partition scan): what it cached of a disk
 * goes before the disk is mounted. (ext4's mount drops it too today, changing the block size;
 * this does not count on that.) In a boot nothing is cached and this costs nothing.
 */
static void forget_cached_blocks(const char *dev) {
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, BLKFLSBUF, 0) < 0)
		say("@@engitor:warning forgetting the cache of %s: %s", dev, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* 0 when every volume is mounted; the program must not start without its data. */
static int mount_volumes(void) {
	for (int i = 0; i < nvolumes; i++) {
		const char *path = volumes[i].path;
		mkdir_p(path);
		if (!volumes[i].serial) {
			if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) {
				say("@@engitor:error tmpfs on %s: %s", path, strerror(errno));
				return -1;
			}
		} else {
			char dev[64];
			if (find_disk(volumes[i].serial, dev, sizeof dev) < 0) {
				say("@@engitor:error volume for %s: no disk with serial %s", path,
				    volumes[i].serial);
				return -1;
			}
			forget_cached_blocks(dev);
			if (mount(dev, path, "ext4", MS_NOSUID | MS_NODEV, "") < 0) {
				say("@@engitor:error mount %s (ext4) on %s: %s", dev, path, strerror(errno));
				return -1;
			}
		}
		volumes[i].mounted = 1;
		own_volume(path);
	}
	return 0;
}

/* After the program: clean unmounts leave nothing for the journal to replay. */
static void unmount_volumes(void) {
	sync();
	for (int i = nvolumes - 1; i >= 0; i--)
		if (volumes[i].mounted && umount2(volumes[i].path, 0) < 0 && volumes[i].serial)
			say("@@engitor:warning unmount %s: %s", volumes[i].path, strerror(errno));
}
