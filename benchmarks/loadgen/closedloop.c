/*
 * closedloop: N HTTP/1.1 clients in a closed loop, that honour Retry-After or ignore it.
 *
 * Each of CONNECTIONS keep-alive connections sends the request, waits for its answer and
 * sends the next at once (a client that retries as fast as it is answered), or, with
 * HONOUR=1, waits the answer's Retry-After seconds first when it got one (a well-behaved
 * client). A connection the server closes is opened again. After SECONDS the clients
 * stop; answers still on their way are not waited for. Latency is from a request's write
 * to its answer, per status.
 *
 * usage: closedloop HOST PORT REQUEST_FILE CONNECTIONS SECONDS HONOUR
 * prints one JSON object: per status the count, p50/p99/max (ms); errors (a connection
 * lost with a request on it), connections opened, elapsed seconds.
 */
#include "http1.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXSTATUS 600
#define BUF 65536

typedef struct {
    int fd, connecting, busy;
    double sent_at, wake_at; /* wake_at > 0: waiting out a Retry-After */
    size_t sent;
    char in[BUF];
    size_t have;
} conn_t;


static char *request;
static size_t request_len;
static struct sockaddr_in addr;
static int ep;
static double *lat[MAXSTATUS];
static size_t nlat[MAXSTATUS], caplat[MAXSTATUS];
static long errors, opened;

static void record(int status, double ms) {
    if (status < 0 || status >= MAXSTATUS) status = 0;
    if (nlat[status] == caplat[status]) {
        caplat[status] = caplat[status] ? caplat[status] * 2 : 1024;
        lat[status] = realloc(lat[status], caplat[status] * sizeof(double));
        if (!lat[status]) { perror("realloc"); exit(1); }
    }
    lat[status][nlat[status]++] = ms;
}

static void watch(conn_t *c, int op, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, op, c->fd, &ev);
}

static void open_conn(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) { perror("socket"); exit(1); }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        perror("connect");
        exit(1);
    }
    c->connecting = 1;
    c->busy = 0;
    c->have = 0;
    c->wake_at = 0;
    opened++;
    watch(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT);
}

static void reopen(conn_t *c) {
    if (c->busy) errors++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    open_conn(c);
}

static void try_send(conn_t *c) {
    while (c->sent < request_len) {
        ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
        if (n < 0) {
            if (errno == EAGAIN) watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
            else reopen(c);
            return;
        }
        c->sent += (size_t)n;
    }
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void start_request(conn_t *c) {
    c->busy = 1;
    c->sent = 0;
    c->wake_at = 0;
    c->sent_at = now();
    try_send(c);
}




int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT REQUEST_FILE CONNECTIONS SECONDS HONOUR\n", argv[0]);
        return 2;
    }
    set_address(&addr, argv[1], argv[2]);
    request_len = read_request(argv[3], &request);
    int nconn = atoi(argv[4]), honour = atoi(argv[6]);
    double seconds = atof(argv[5]);
    if (nconn <= 0 || seconds <= 0) {
        fprintf(stderr, "CONNECTIONS and SECONDS must be positive\n");
        return 2;
    }
    conn_t *conns = calloc((size_t)nconn, sizeof(conn_t));
    if (!conns) { perror("calloc"); return 1; }
    ep = epoll_create1(0);
    double start = now(), end = start + seconds;
    for (int i = 0; i < nconn; i++) open_conn(&conns[i]);
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        if (t >= end) break;
        double next_wake = end;
        for (int i = 0; i < nconn; i++) { /* clients whose Retry-After has passed */
            conn_t *c = &conns[i];
            if (c->wake_at > 0 && c->wake_at <= t) start_request(c);
            else if (c->wake_at > 0 && c->wake_at < next_wake) next_wake = c->wake_at;
        }
        int wait_ms = (int)((next_wake - t) * 1000) + 1;
        int n = epoll_wait(ep, events, 256, wait_ms);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (events[i].events & EPOLLOUT) {
                if (c->connecting) {
                    int err = 0;
                    socklen_t len = sizeof err;
                    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    if (err) { reopen(c); continue; }
                    c->connecting = 0;
                    start_request(c);
                    continue;
                }
                if (c->busy) try_send(c);
            }
            if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t got = read(c->fd, c->in + c->have, BUF - c->have);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) continue;
                reopen(c);
                continue;
            }
            c->have += (size_t)got;
            int status;
            double retry_after;
            size_t used;
            double arrived = now();
            while ((used = parse_answer(c->in, c->have, &status, &retry_after)) > 0) {
                memmove(c->in, c->in + used, c->have - used);
                c->have -= used;
                if (!c->busy) continue;
                record(status, (arrived - c->sent_at) * 1000);
                c->busy = 0;
                if (honour && retry_after > 0) c->wake_at = arrived + retry_after;
                else start_request(c);
            }
            if (c->have == BUF) reopen(c);
        }
    }
    double elapsed = now() - start;
    printf("{\"connections\": %d, \"honour_retry_after\": %d, \"seconds\": %.3f, "
           "\"errors\": %ld, \"connections_opened\": %ld, \"statuses\": {",
           nconn, honour, elapsed, errors, opened);
    int first = 1;
    for (int s = 0; s < MAXSTATUS; s++) {
        if (!nlat[s]) continue;
        qsort(lat[s], nlat[s], sizeof(double), cmp_double);
        printf("%s\"%d\": {\"count\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}",
               first ? "" : ", ", s, nlat[s], pct(lat[s], nlat[s], 50), pct(lat[s], nlat[s], 99),
               lat[s][nlat[s] - 1]);
        first = 0;
    }
    printf("}}\n");
    return 0;
}
