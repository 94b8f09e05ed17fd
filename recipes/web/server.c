/* A small HTTP/1.0 file server for engitor's examples and tests.
 *
 *   server [-port N] [-root DIR] [-name TEXT]
 *
 *   GET /path          a file under DIR (index.html for folders); no "..", no dotfiles
 *   GET /exit?code=N   answers "bye N", then the server exits with status N
 *   GET /env/NAME      the value of environment variable NAME (404 when unset)
 *   GET /args          argv, one per line
 *   GET /healthz       "ok NAME"
 *
 * One request per connection, one connection at a time: enough to serve a page and small
 * enough to read. SIGTERM ends it with status 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root = ".";
static const char *name = "web";
static int g_argc;
static char **g_argv;

static void on_term(int sig) { (void)sig; _exit(0); }

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void reply(int fd, int status, const char *type, const char *body, size_t len) {
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found"
                       : status == 400 ? "Bad Request" : "Method Not Allowed";
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, reason, type, len);
    if (write_all(fd, head, (size_t)n) == 0 && len) write_all(fd, body, len);
}

static void reply_text(int fd, int status, const char *text) {
    reply(fd, status, "text/plain; charset=utf-8", text, strlen(text));
}

static const char *content_type(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html") || !strcmp(dot, ".htm")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".txt")) return "text/plain; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css";
    if (!strcmp(dot, ".js")) return "text/javascript";
    if (!strcmp(dot, ".json")) return "application/json";
    if (!strcmp(dot, ".png")) return "image/png";
    return "application/octet-stream";
}

static void serve_file(int fd, const char *url) {
    /* Refuse anything that could leave the root: "..", dotfiles, backslashes. */
    if (strstr(url, "/.") || strchr(url, '\\')) { reply_text(fd, 404, "not found\n"); return; }
    char path[4096];
    int n = snprintf(path, sizeof path, "%s%s", root, url);
    if (n < 0 || (size_t)n >= sizeof path - 16) { reply_text(fd, 400, "path too long\n"); return; }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        strcat(path, path[n - 1] == '/' ? "index.html" : "/index.html");
    }
    int file = open(path, O_RDONLY | O_CLOEXEC);
    if (file < 0 || fstat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (file >= 0) close(file);
        reply_text(fd, 404, "not found\n");
        return;
    }
    char *body = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (body && got < (size_t)st.st_size) {
        ssize_t r = read(file, body + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(file);
    if (!body) { reply_text(fd, 400, "out of memory\n"); return; }
    reply(fd, 200, content_type(path), body, got);
    free(body);
}

/* Returns -1 to keep serving, or the exit status the client asked for. */
static int handle(int fd) {
    char req[8192];
    size_t len = 0;
    while (len < sizeof req - 1) {
        ssize_t r = read(fd, req + len, sizeof req - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        req[len] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[len] = 0;
    char method[8], url[4096];
    if (sscanf(req, "%7s %4095s", method, url) != 2) { reply_text(fd, 400, "bad request\n"); return -1; }
    if (strcmp(method, "GET") != 0) { reply_text(fd, 405, "only GET\n"); return -1; }

    char text[8192];
    if (!strncmp(url, "/exit", 5) && (url[5] == 0 || url[5] == '?')) {
        const char *code = strstr(url, "code=");
        int status = code ? atoi(code + 5) & 255 : 0;
        snprintf(text, sizeof text, "bye %d\n", status);
        reply_text(fd, 200, text);
        return status;
    }
    if (!strcmp(url, "/healthz")) {
        snprintf(text, sizeof text, "ok %s\n", name);
        reply_text(fd, 200, text);
        return -1;
    }
    if (!strncmp(url, "/env/", 5)) {
        const char *value = getenv(url + 5);
        if (!value) { reply_text(fd, 404, "unset\n"); return -1; }
        snprintf(text, sizeof text, "%s\n", value);
        reply_text(fd, 200, text);
        return -1;
    }
    if (!strcmp(url, "/args")) {
        size_t used = 0;
        text[0] = 0;
        for (int i = 0; i < g_argc && used < sizeof text - 1; i++)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s\n", g_argv[i]);
        reply_text(fd, 200, text);
        return -1;
    }
    char *query = strchr(url, '?');
    if (query) *query = 0;
    serve_file(fd, url);
    return -1;
}

int main(int argc, char **argv) {
    int port = 8080;
    g_argc = argc;
    g_argv = argv;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-root") && i + 1 < argc) root = argv[++i];
        else if (!strcmp(argv[i], "-name") && i + 1 < argc) name = argv[++i];
        else {
            fprintf(stderr, "usage: %s [-port N] [-root DIR] [-name TEXT]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);

    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int v6 = s >= 0;
    if (!v6) s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("socket"); return 1; }
    int one = 1, zero = 0;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int bound;
    if (v6) {
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                                  .sin6_addr = IN6ADDR_ANY_INIT };
        bound = bind(s, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY) };
        bound = bind(s, (struct sockaddr *)&a, sizeof a);
    }
    if (bound < 0 || listen(s, 16) < 0) { perror("bind/listen"); return 1; }
    printf("%s: serving %s on port %d\n", name, root, port);
    fflush(stdout);

    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR) continue;
            perror("accept");
            return 1;
        }
        int status = handle(c);
        shutdown(c, SHUT_WR);
        close(c);
        if (status >= 0) {
            printf("%s: exiting with status %d\n", name, status);
            fflush(stdout);
            return status;
        }
    }
}
