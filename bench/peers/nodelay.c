/* LD_PRELOAD shim: sets TCP_NODELAY on every accepted TCP socket.
 *
 * s3s-fs answers small GETs in several writes; without TCP_NODELAY, Nagle plus the client's
 * delayed ACK can stall each response by ~40 ms, which would make the server the bottleneck
 * of a small-object benchmark. Build: cc -shared -fPIC -O2 -o nodelay.so nodelay.c -ldl
 * Set NODELAY_LOG=1 to print one line to stderr the first time it applies.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static int logged;

static void nodelay(int fd) {
    int one = 1;
    if (fd < 0) return;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 && !logged) {
        logged = 1;
        if (getenv("NODELAY_LOG")) fprintf(stderr, "nodelay: TCP_NODELAY set on accepted sockets\n");
    }
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = dlsym(RTLD_NEXT, "accept");
    int c = real(fd, addr, len);
    nodelay(c);
    return c;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = dlsym(RTLD_NEXT, "accept4");
    int c = real(fd, addr, len, flags);
    nodelay(c);
    return c;
}
