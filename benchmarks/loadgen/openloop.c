/*
 * openloop: an open-loop HTTP/1.1 load generator (no coordinated omission).
 *
 * Requests are due on a fixed schedule (RATE per second for SECONDS); each is sent on an
 * idle keep-alive connection, a new one is opened when none is idle (up to MAXCONN), and
 * a request that finds no connection is counted as "unsent" (the client's own limit,
 * reported, never hidden). Latency is measured from the request's scheduled time, so a
 * slow server cannot slow the schedule down. Answers are read by Content-Length.
 *
 * usage: openloop HOST PORT REQUEST_FILE RATE SECONDS MAXCONN
 * prints one JSON object: counts by status, latency percentiles (ms) per status,
 * the slowest answer per status, connection errors and unsent requests.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXSTATUS 600
#define BUF 65536

typedef struct {
    int fd, busy, connecting;
    double due;          /* scheduled time of the request in flight */
    size_t sent;         /* bytes of the request written */
    char in[BUF];
    size_t have;
} conn_t;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static char *request;
static size_t request_len;
static struct sockaddr_in addr;
static int ep;
static double *lat[MAXSTATUS];
static size_t nlat[MAXSTATUS], caplat[MAXSTATUS];
static long errors, unsent;
/* Stacks of idle connections and of unused slots: O(1) to find one for each request. */
static conn_t **idle_stack, **free_stack;
static int nidle, nfree;

static void record(int status, double ms) {
    if (status < 0 || status >= MAXSTATUS) status = 0;
    if (nlat[status] == caplat[status]) {
        caplat[status] = caplat[status] ? caplat[status] * 2 : 1024;
        lat[status] = realloc(lat[status], caplat[status] * sizeof(double));
    }
    lat[status][nlat[status]++] = ms;
}

static int open_conn(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->connecting = 1;
    c->busy = 0;
    c->have = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void drop(conn_t *c) {
    if (c->busy) errors++;
    int was_idle = !c->busy && !c->connecting;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->busy = 0;
    c->connecting = 0;
    if (was_idle) { /* take it off the idle stack */
        for (int i = 0; i < nidle; i++)
            if (idle_stack[i] == c) { idle_stack[i] = idle_stack[--nidle]; break; }
    }
    free_stack[nfree++] = c;
}

static void try_send(conn_t *c) {
    while (c->sent < request_len) {
        ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
        if (n < 0) {
            if (errno != EAGAIN) drop(c);
            return;
        }
        c->sent += (size_t)n;
    }
}

/* One complete answer at the start of c->in? Returns its length, 0 if incomplete. */
static size_t parse(conn_t *c, int *status) {
    c->in[c->have < BUF ? c->have : BUF - 1] = 0;
    char *end = memmem(c->in, c->have, "\r\n\r\n", 4);
    if (!end) return 0;
    *status = atoi(c->in + 9);
    size_t length = 0;
    for (char *p = c->in; p < end; p++) {
        if ((p == c->in || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
            length = strtoul(p + 15, NULL, 10);
    }
    size_t total = (size_t)(end + 4 - c->in) + length;
    return total <= c->have ? total : 0;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i];
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT REQUEST_FILE RATE SECONDS MAXCONN\n", argv[0]);
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    FILE *f = fopen(argv[3], "rb");
    if (!f) { perror(argv[3]); return 2; }
    fseek(f, 0, SEEK_END);
    request_len = (size_t)ftell(f);
    rewind(f);
    request = malloc(request_len);
    if (fread(request, 1, request_len, f) != request_len) { perror("read"); return 2; }
    fclose(f);
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    int maxconn = atoi(argv[6]);
    conn_t *conns = calloc((size_t)maxconn, sizeof(conn_t));
    idle_stack = calloc((size_t)maxconn, sizeof(conn_t *));
    free_stack = calloc((size_t)maxconn, sizeof(conn_t *));
    for (int i = maxconn - 1; i >= 0; i--) {
        conns[i].fd = -1;
        free_stack[nfree++] = &conns[i];
    }
    long inflight = 0;
    ep = epoll_create1(0);
    long total = (long)(rate * seconds), next = 0;
    double start = now(), interval = 1.0 / rate;
    struct epoll_event events[256];
    /* Run until every request is due and answered (or 10 s past the end). */
    for (;;) {
        double t = now();
        while (next < total && start + next * interval <= t) {
            conn_t *idle = nidle ? idle_stack[--nidle] : NULL;
            if (!idle && nfree) {
                conn_t *slot = free_stack[--nfree];
                if (open_conn(slot) == 0) idle = slot;
                else free_stack[nfree++] = slot;
            }
            if (!idle) { unsent++; next++; continue; }
            idle->busy = 1;
            idle->sent = 0;
            idle->due = start + next * interval;
            if (!idle->connecting) try_send(idle);
            next++;
        }
        inflight = maxconn - nidle - nfree;
        if (next >= total && (inflight == 0 || t > start + seconds + 10)) break;
        double wait_ms = next < total ? (start + next * interval - t) * 1000 : 10;
        int n = epoll_wait(ep, events, 256, wait_ms > 1 ? (int)wait_ms : 0);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->fd < 0) continue;
            if (c->connecting && (events[i].events & EPOLLOUT)) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) { drop(c); continue; }
                c->connecting = 0;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                if (c->busy) try_send(c);
                else idle_stack[nidle++] = c;
            }
            if (c->fd < 0 || !(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t got = read(c->fd, c->in + c->have, BUF - 1 - c->have);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) continue;
                drop(c);
                continue;
            }
            c->have += (size_t)got;
            int status;
            size_t used;
            while ((used = parse(c, &status)) > 0) {
                if (c->busy) {
                    record(status, (now() - c->due) * 1000);
                    c->busy = 0;
                    idle_stack[nidle++] = c;
                }
                memmove(c->in, c->in + used, c->have - used);
                c->have -= used;
            }
            if (c->have >= BUF - 1) drop(c);
        }
    }
    double elapsed = now() - start;
    printf("{\"offered_rate\": %.1f, \"seconds\": %.3f, \"scheduled\": %ld, \"unsent\": %ld, "
           "\"errors\": %ld, \"statuses\": {", rate, elapsed, total, unsent, errors);
    int first = 1;
    for (int s = 0; s < MAXSTATUS; s++) {
        if (!nlat[s]) continue;
        qsort(lat[s], nlat[s], sizeof(double), cmp);
        printf("%s\"%d\": {\"count\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}",
               first ? "" : ", ", s, nlat[s], pct(lat[s], nlat[s], 50), pct(lat[s], nlat[s], 99),
               lat[s][nlat[s] - 1]);
        first = 0;
    }
    printf("}}\n");
    return 0;
}
