/*
 * Users and owned directories, for init.c (#included there).
 *
 * Config keys (see engitor/image/init.py):
 *   dir MODE UID GID PATH     make PATH (and parents) at boot with this mode and owner, as
 *                             systemd-tmpfiles does for tmpfiles.d's `d` lines (/run is a tmpfs)
 *   chown UID GID PATH        give an existing PATH this owner (what a postinst's chown did)
 *   chmod MODE UID GID PATH   and this mode too (dpkg-statoverride)
 *   uid N / gid N / groups G,G,...   run the program as this user, group, supplementary groups
 *   bind_below_1024 1         keep CAP_NET_BIND_SERVICE (ambient) after dropping root, for a
 *                             forwarded guest port below 1024
 */
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>

#define MAX_DIRS 512

struct owned {
	const char *path;
	mode_t mode; /* 0: keep the mode (a chown line) */
	int make;    /* a dir line: make it first */
	uid_t uid;
	gid_t gid;
};

static struct owned owned[MAX_DIRS];
static int nowned;
static long run_uid = -1, run_gid = -1;
static gid_t run_groups[64];
static int nrun_groups;
static int bind_below_1024;

/* Returns 1 when the key is one of ours. */
static int users_config(const char *key, char *value) {
	if (!strcmp(key, "uid")) {
		run_uid = atol(value);
	} else if (!strcmp(key, "gid")) {
		run_gid = atol(value);
	} else if (!strcmp(key, "groups")) {
		char *save = NULL;
		for (char *g = strtok_r(value, ",", &save); g && nrun_groups < 64;
		     g = strtok_r(NULL, ",", &save))
			run_groups[nrun_groups++] = (gid_t)atol(g);
	} else if (!strcmp(key, "bind_below_1024")) {
		bind_below_1024 = atoi(value);
	} else if ((!strcmp(key, "dir") || !strcmp(key, "chown") || !strcmp(key, "chmod")) &&
		   nowned < MAX_DIRS) {
		int with_mode = strcmp(key, "chown") != 0;
		unsigned mode = 0, uid = 0, gid = 0;
		int used = 0;
		if (with_mode ? sscanf(value, "%o %u %u %n", &mode, &uid, &gid, &used) < 3
			      : sscanf(value, "%u %u %n", &uid, &gid, &used) < 2)
			return 1;
		owned[nowned++] = (struct owned){value + used, with_mode ? (mode_t)mode : 0,
						 key[0] == 'd', uid, gid};
	} else {
		return 0;
	}
	return 1;
}

static void mkdir_parents(char *path) {
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(path, 0755);
		*p = '/';
	}
}

static void make_owned_dirs(void) {
	for (int i = 0; i < nowned; i++) {
		struct owned *o = &owned[i];
		if (o->make) {
			char path[4096];
			snprintf(path, sizeof path, "%s", o->path);
			mkdir_parents(path);
			if (mkdir(path, o->mode & 07777) < 0 && errno != EEXIST) {
				say("@@engitor:warning mkdir %s: %s", path, strerror(errno));
				continue;
			}
		}
		if (chown(o->path, o->uid, o->gid) < 0) {
			if (errno != ENOENT)
				say("@@engitor:warning chown %s: %s", o->path, strerror(errno));
			continue;
		}
		/* After chown, which clears set-group-id bits (haproxy's 2775). */
		if (o->mode && chmod(o->path, o->mode & 07777) < 0)
			say("@@engitor:warning chmod %s: %s", o->path, strerror(errno));
	}
}

static int keep_bind_capability(void) {
	struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	unsigned bit = 1u << (CAP_NET_BIND_SERVICE % 32);
	data[0].permitted = data[0].effective = data[0].inheritable = bit;
	if (syscall(SYS_capset, &head, data) < 0)
		return -1;
	return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
}

/* In the child, before exec: become the configured user. Returns -1 (errno set) on failure. */
static int drop_privileges(void) {
	if (run_uid < 0)
		return 0;
	gid_t gid = run_gid >= 0 ? (gid_t)run_gid : (gid_t)run_uid;
	if (setgroups(nrun_groups, run_groups) < 0 || setgid(gid) < 0)
		return -1;
	if (bind_below_1024 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return -1;
	if (setuid((uid_t)run_uid) < 0)
		return -1;
	if (bind_below_1024 && keep_bind_capability() < 0)
		return -1;
	return 0;
}
