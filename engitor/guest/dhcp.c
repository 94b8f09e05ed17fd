/*
 * A small DHCP client (RFC 2131) for the guest init (included from init.c).
 *
 * DISCOVER, OFFER, REQUEST, ACK over a UDP socket bound to port 68 on the interface. Before the
 * interface has an address a unicast reply could not reach the socket, so requests set the
 * BROADCAST flag and servers answer to 255.255.255.255. The lease gives the address, mask, MTU,
 * routes (classless static routes, option 121, else the router option), and DNS servers, written
 * to /etc/resolv.conf. A child process keeps the lease: it renews with the server at T1,
 * rebinds with any server at T2, and starts over when the lease ends.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/random.h>

#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define DHCP_MAGIC 0x63825363u
#define DHCP_BOOT_WAIT 20 /* seconds the boot waits for a first lease */

enum { DHCPDISCOVER = 1, DHCPOFFER, DHCPREQUEST, DHCPDECLINE, DHCPACK, DHCPNAK };
enum {
	OPT_PAD = 0, OPT_SUBNET = 1, OPT_ROUTER = 3, OPT_DNS = 6, OPT_HOSTNAME = 12,
	OPT_DOMAIN = 15, OPT_MTU = 26, OPT_REQUESTED_IP = 50, OPT_LEASE = 51, OPT_TYPE = 53,
	OPT_SERVER_ID = 54, OPT_PARAMS = 55, OPT_MAX_SIZE = 57, OPT_T1 = 58, OPT_T2 = 59,
	OPT_CLIENT_ID = 61, OPT_ROUTES = 121, OPT_END = 255,
};

struct dhcp_msg {
	uint8_t op, htype, hlen, hops;
	uint32_t xid;
	uint16_t secs, flags;
	uint32_t ciaddr, yiaddr, siaddr, giaddr;
	uint8_t chaddr[16];
	uint8_t sname[64];
	uint8_t file[128];
	uint32_t magic;
	uint8_t options[312];
};

struct dhcp_lease {
	int type; /* DHCPOFFER, DHCPACK, DHCPNAK */
	in_addr_t addr, mask, server, router;
	uint32_t lease, t1, t2; /* seconds */
	in_addr_t dns[4];
	int ndns, mtu;
	char domain[128];
	uint8_t routes[255];
	int routes_len;
};

struct dhcp_client {
	const char *ifname;
	uint8_t mac[6];
	uint32_t xid;
	int sock;
};

static uint8_t *opt_put(uint8_t *p, int code, const void *data, int len) {
	*p++ = code;
	*p++ = len;
	memcpy(p, data, len);
	return p + len;
}

/* A request of `type`; `want`/`server` name the offer taken (selecting), `ciaddr` the address
 * held (renewing, rebinding). */
static int dhcp_build(struct dhcp_client *c, struct dhcp_msg *m, int type, in_addr_t want,
                      in_addr_t server, in_addr_t ciaddr) {
	static const uint8_t params[] = {OPT_SUBNET, OPT_ROUTER, OPT_DNS, OPT_DOMAIN, OPT_MTU,
	                                 OPT_LEASE, OPT_SERVER_ID, OPT_T1, OPT_T2, OPT_ROUTES};
	memset(m, 0, sizeof *m);
	m->op = 1;
	m->htype = 1;
	m->hlen = 6;
	m->xid = c->xid;
	m->flags = ciaddr ? 0 : htons(0x8000);
	m->ciaddr = ciaddr;
	memcpy(m->chaddr, c->mac, 6);
	m->magic = htonl(DHCP_MAGIC);
	uint8_t *p = m->options;
	uint8_t t = type;
	p = opt_put(p, OPT_TYPE, &t, 1);
	uint8_t cid[7] = {1};
	memcpy(cid + 1, c->mac, 6);
	p = opt_put(p, OPT_CLIENT_ID, cid, sizeof cid);
	uint16_t max_size = htons(sizeof *m);
	p = opt_put(p, OPT_MAX_SIZE, &max_size, 2);
	if (want)
		p = opt_put(p, OPT_REQUESTED_IP, &want, 4);
	if (server)
		p = opt_put(p, OPT_SERVER_ID, &server, 4);
	if (hostname)
		p = opt_put(p, OPT_HOSTNAME, hostname, strnlen(hostname, 63));
	p = opt_put(p, OPT_PARAMS, params, sizeof params);
	*p++ = OPT_END;
	return (int)(p - (uint8_t *)m);
}

static uint32_t get32(const uint8_t *p) {
	uint32_t v;
	memcpy(&v, p, 4);
	return ntohl(v);
}

static int dhcp_parse(struct dhcp_client *c, const struct dhcp_msg *m, ssize_t len,
                      struct dhcp_lease *l) {
	if (len < (ssize_t)offsetof(struct dhcp_msg, options) || m->op != 2 || m->xid != c->xid ||
	    ntohl(m->magic) != DHCP_MAGIC || memcmp(m->chaddr, c->mac, 6))
		return -1;
	memset(l, 0, sizeof *l);
	l->addr = m->yiaddr;
	const uint8_t *p = m->options, *end = (const uint8_t *)m + len;
	while (p < end && *p != OPT_END) {
		if (*p == OPT_PAD) {
			p++;
			continue;
		}
		if (p + 2 > end || p + 2 + p[1] > end)
			break;
		int code = p[0], n = p[1];
		const uint8_t *v = p + 2;
		if (code == OPT_TYPE && n >= 1)
			l->type = v[0];
		else if (code == OPT_SUBNET && n >= 4)
			memcpy(&l->mask, v, 4);
		else if (code == OPT_ROUTER && n >= 4)
			memcpy(&l->router, v, 4);
		else if (code == OPT_SERVER_ID && n >= 4)
			memcpy(&l->server, v, 4);
		else if (code == OPT_LEASE && n >= 4)
			l->lease = get32(v);
		else if (code == OPT_T1 && n >= 4)
			l->t1 = get32(v);
		else if (code == OPT_T2 && n >= 4)
			l->t2 = get32(v);
		else if (code == OPT_MTU && n >= 2)
			l->mtu = v[0] << 8 | v[1];
		else if (code == OPT_DOMAIN)
			snprintf(l->domain, sizeof l->domain, "%.*s", n, (const char *)v);
		else if (code == OPT_ROUTES) {
			memcpy(l->routes, v, n);
			l->routes_len = n;
		} else if (code == OPT_DNS)
			for (int i = 0; i + 4 <= n && l->ndns < 4; i += 4)
				memcpy(&l->dns[l->ndns++], v + i, 4);
		p += 2 + n;
	}
	if (!l->lease)
		l->lease = 3600;
	if (!l->t1 || l->t1 >= l->lease)
		l->t1 = l->lease / 2;
	if (!l->t2 || l->t2 >= l->lease || l->t2 <= l->t1)
		l->t2 = l->lease / 8 * 7;
	if (!l->mask) /* the address's classful mask, as old clients did */
		l->mask = htonl(IN_CLASSA(ntohl(l->addr)) ? 0xff000000 :
		                IN_CLASSB(ntohl(l->addr)) ? 0xffff0000 : 0xffffff00);
	return l->type ? 0 : -1;
}

static int dhcp_open(struct dhcp_client *c) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
	if (setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, c->ifname, strlen(c->ifname)) < 0)
		say("@@engitor:warning dhcp: bind to %s: %s", c->ifname, strerror(errno));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(DHCP_CLIENT_PORT)};
	if (bind(s, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(s);
		return -1;
	}
	c->sock = s;
	return 0;
}

/* Send `m` and wait up to `timeout` seconds for a reply of one of the wanted types. */
static int dhcp_exchange(struct dhcp_client *c, struct dhcp_msg *m, int len, in_addr_t to,
                         double timeout, struct dhcp_lease *l, int want1, int want2) {
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(DHCP_SERVER_PORT),
	                          .sin_addr.s_addr = to};
	if (sendto(c->sock, m, len, 0, (struct sockaddr *)&dst, sizeof dst) < 0)
		return -1;
	double deadline = uptime() + timeout;
	for (double left; (left = deadline - uptime()) > 0;) {
		struct pollfd pfd = {.fd = c->sock, .events = POLLIN};
		if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		struct dhcp_msg reply;
		ssize_t n = recv(c->sock, &reply, sizeof reply, 0);
		if (n > 0 && dhcp_parse(c, &reply, n, l) == 0 &&
		    (l->type == want1 || l->type == want2))
			return 0;
	}
	return -1;
}

/* DISCOVER/OFFER then REQUEST/ACK, retrying with growing waits for up to `patience` seconds. */
static int dhcp_acquire(struct dhcp_client *c, struct dhcp_lease *l, double patience) {
	double deadline = uptime() + patience, wait = 1;
	struct dhcp_msg m;
	while (uptime() < deadline) {
		getrandom(&c->xid, sizeof c->xid, 0);
		struct dhcp_lease offer;
		int len = dhcp_build(c, &m, DHCPDISCOVER, 0, 0, 0);
		if (dhcp_exchange(c, &m, len, INADDR_BROADCAST, wait, &offer, DHCPOFFER, 0) == 0) {
			len = dhcp_build(c, &m, DHCPREQUEST, offer.addr, offer.server, 0);
			if (dhcp_exchange(c, &m, len, INADDR_BROADCAST, 4, l, DHCPACK, DHCPNAK) == 0 &&
			    l->type == DHCPACK)
				return 0;
		}
		if (wait < 8)
			wait *= 2;
	}
	return -1;
}

static void add_route(int sock, const char *ifname, in_addr_t dst, in_addr_t mask,
                      in_addr_t gateway) {
	struct rtentry rt;
	memset(&rt, 0, sizeof rt);
	struct sockaddr_in *sin = (struct sockaddr_in *)&rt.rt_dst;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = dst;
	sin = (struct sockaddr_in *)&rt.rt_genmask;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = mask;
	sin = (struct sockaddr_in *)&rt.rt_gateway;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = gateway;
	rt.rt_flags = RTF_UP | (gateway ? RTF_GATEWAY : 0) | (mask == 0xffffffffu ? RTF_HOST : 0);
	rt.rt_dev = (char *)ifname;
	if (ioctl(sock, SIOCADDRT, &rt) < 0 && errno != EEXIST)
		say("@@engitor:warning dhcp route: %s", strerror(errno));
}

static void dhcp_routes(int sock, const char *ifname, const struct dhcp_lease *l) {
	if (l->routes_len) { /* RFC 3442: width, significant octets of the destination, router */
		for (int i = 0; i < l->routes_len;) {
			int width = l->routes[i++], octets = (width + 7) / 8;
			if (width > 32 || i + octets + 4 > l->routes_len)
				break;
			in_addr_t dst = 0, gw;
			memcpy(&dst, l->routes + i, octets);
			memcpy(&gw, l->routes + i + octets, 4);
			i += octets + 4;
			in_addr_t mask = width ? htonl(~0u << (32 - width)) : 0;
			add_route(sock, ifname, dst & mask, mask, gw);
		}
		return;
	}
	if (!l->router)
		return;
	/* A router outside the subnet (clouds hand out /32s) is reached on the link first. */
	if ((l->router & l->mask) != (l->addr & l->mask))
		add_route(sock, ifname, l->router, 0xffffffffu, 0);
	add_route(sock, ifname, 0, 0, l->router);
}

static void dhcp_resolv(const struct dhcp_lease *l) {
	if (!l->ndns)
		return;
	FILE *f = fopen("/etc/resolv.conf.dhcp", "w");
	if (!f)
		return;
	if (l->domain[0])
		fprintf(f, "search %s\n", l->domain);
	for (int i = 0; i < l->ndns; i++)
		fprintf(f, "nameserver %s\n", inet_ntoa(*(struct in_addr *)&l->dns[i]));
	fclose(f);
	rename("/etc/resolv.conf.dhcp", "/etc/resolv.conf");
}

static int dhcp_apply(const char *ifname, const struct dhcp_lease *l) {
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -1;
	int rc = 0;
	if (ifreq_addr(sock, SIOCSIFADDR, ifname, l->addr) < 0 ||
	    ifreq_addr(sock, SIOCSIFNETMASK, ifname, l->mask) < 0 || if_up(sock, ifname) < 0) {
		say("@@engitor:warning dhcp: configuring %s: %s", ifname, strerror(errno));
		rc = -1;
	} else {
		if (l->mtu >= 576) {
			struct ifreq ifr;
			memset(&ifr, 0, sizeof ifr);
			strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
			ifr.ifr_mtu = l->mtu;
			ioctl(sock, SIOCSIFMTU, &ifr);
		}
		dhcp_routes(sock, ifname, l);
		dhcp_resolv(l);
	}
	close(sock);
	return rc;
}

static void say_lease(const char *what, const struct dhcp_lease *l) {
	char a[16], gw[16];
	snprintf(a, sizeof a, "%s", inet_ntoa(*(struct in_addr *)&l->addr));
	snprintf(gw, sizeof gw, "%s", inet_ntoa(*(struct in_addr *)&l->router));
	say("@@engitor:dhcp %s addr=%s/%d gateway=%s lease=%u", what, a,
	    __builtin_popcount(l->mask), gw, l->lease);
}

/* The child keeping the lease: renew (unicast) from T1, rebind (broadcast) from T2, start over
 * when it ends. Runs until init ends it. */
static void dhcp_keep(struct dhcp_client *c, struct dhcp_lease l, double got) {
	for (;;) {
		double now = uptime();
		if (l.addr && now < got + l.t1) {
			sleep((unsigned)(got + l.t1 - now) + 1);
			continue;
		}
		int rebinding = !l.addr || now >= got + l.t2;
		if (!l.addr || now >= got + l.lease) {
			struct dhcp_lease fresh;
			if (dhcp_acquire(c, &fresh, 60) == 0 && dhcp_apply(c->ifname, &fresh) == 0) {
				l = fresh, got = uptime();
				say_lease("bound", &l);
			} else {
				l.addr = 0;
			}
			continue;
		}
		struct dhcp_msg m;
		struct dhcp_lease ack;
		getrandom(&c->xid, sizeof c->xid, 0);
		int len = dhcp_build(c, &m, DHCPREQUEST, 0, 0, l.addr);
		double sent = uptime();
		if (dhcp_exchange(c, &m, len, rebinding ? INADDR_BROADCAST : l.server, 10, &ack, DHCPACK,
		                  DHCPNAK) == 0) {
			if (ack.type == DHCPNAK) {
				l.addr = 0; /* the address is no longer ours: start over */
				continue;
			}
			if (ack.addr != l.addr || ack.mask != l.mask)
				dhcp_apply(c->ifname, &ack);
			l = ack, got = sent;
			say_lease(rebinding ? "rebound" : "renewed", &l);
			continue;
		}
		/* No answer: retry halfway to the next deadline (RFC 2131 4.4.5), at least 10 s on. */
		double next = rebinding ? got + l.lease : got + l.t2;
		double pause = (next - uptime()) / 2;
		sleep(pause > 10 ? (unsigned)pause : 10);
	}
}

/* Configure `ifname` by DHCP; the boot waits up to DHCP_BOOT_WAIT seconds for a lease. */
static void dhcp_configure(const char *ifname) {
	struct dhcp_client c = {.ifname = ifname, .sock = -1};
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	if (sock < 0 || ioctl(sock, SIOCGIFHWADDR, &ifr) < 0 || if_up(sock, ifname) < 0) {
		say("@@engitor:warning dhcp: %s: %s", ifname, strerror(errno));
		if (sock >= 0)
			close(sock);
		return;
	}
	close(sock);
	memcpy(c.mac, ifr.ifr_hwaddr.sa_data, 6);
	if (dhcp_open(&c) < 0) {
		say("@@engitor:warning dhcp socket: %s", strerror(errno));
		return;
	}
	struct dhcp_lease l = {0};
	if (dhcp_acquire(&c, &l, DHCP_BOOT_WAIT) == 0 && dhcp_apply(ifname, &l) == 0)
		say_lease("bound", &l);
	else
		say("@@engitor:warning dhcp: no lease on %s yet; still trying", ifname);
	if (l.addr && l.lease == 0xffffffffu) {
		close(c.sock);
		return; /* an infinite lease needs no keeping */
	}
	double got = uptime();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_NAME, "engitor-dhcp");
		dhcp_keep(&c, l, got);
		_exit(0);
	}
	close(c.sock);
}
