/*
 * openloop: an open-loop HTTP/1.1 load generator (no coordinated omission).
 *
 * Requests are due on a fixed schedule (RATE per second for SECONDS); each is sent on an
 * idle keep-alive connection, a new one is opened when none is idle (up to MAXCONN), and
 * a request that finds no connection is counted as "unsent" (client-side saturation:
 * reported, never hidden). Latency is measured from the request's scheduled time, so a
 * slow server cannot slow the schedule down. Answers are read by Content-Length.
 *
 * When the last request is due, one line "schedule done" goes to stderr (the caller can
 * start measuring recovery then); answers still in flight are awaited for up to DRAIN_S
 * seconds (default 10) and whatever is left is counted as "unanswered".
 *
 * usage: openloop HOST PORT REQUEST_FILE RATE SECONDS MAXCONN [DRAIN_S]
 * prints one JSON object: counts by status (and how many of them were answered within
 * the schedule's SECONDS), latency percentiles and maximum (ms) per status, connection
 * errors (a connection lost with a request on it), unsent and unanswered requests, the
 * connections opened, and per status the slowest answer to a connection's first request
 * and to a later one.
 * Every scheduled request is in exactly one of: a status, errors, unsent, unanswered.
 */
#include "http1.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXSTATUS 600 /* status 0: an answer whose status line could not be read */
#define BUF 65536

typedef struct {
    int fd, busy, connecting;
    int fresh;   /* no answer read on this connection yet */
    double opened_at; /* when connect() was called */
    double due;  /* scheduled time of the request in flight */
    size_t sent; /* bytes of the request written */
    char in[BUF];
    size_t have;
} conn_t;


static char *request;
static size_t request_len;
static struct sockaddr_in addr;
static int ep;
static double *lat[MAXSTATUS];              /* latencies (ms) per status */
static size_t nlat[MAXSTATUS], caplat[MAXSTATUS];
static size_t in_window[MAXSTATUS];         /* answers received before the schedule ended */
static long errors, unsent, opened;
/* Slowest answer per status on a connection's first request, and on a later one: a slow
   first answer points at connection set-up (the server's accept queue), not at the work. */
static double max_first[MAXSTATUS], max_reused[MAXSTATUS];
/* When (seconds into the schedule) the slowest first answer was due; the slowest connect
   (connect() to writable), and connections opened after the schedule's first second. */
static double max_first_at[MAXSTATUS], max_connect_ms, start;
static long opened_after_1s;
/* Stacks of idle connections and of unused slots: O(1) to find one for each request. */
static conn_t **idle_stack, **free_stack;
static int nidle, nfree;

static void record(int status, double ms, int within) {
    if (status < 0 || status >= MAXSTATUS) status = 0;
    if (nlat[status] == caplat[status]) {
        caplat[status] = caplat[status] ? caplat[status] * 2 : 1024;
        lat[status] = realloc(lat[status], caplat[status] * sizeof(double));
        if (!lat[status]) { perror("realloc"); exit(1); }
    }
    lat[status][nlat[status]++] = ms;
    in_window[status] += (size_t)within;
}

static void watch(conn_t *c, int op, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, op, c->fd, &ev);
}

/* Start a non-blocking connect; the connection is usable once EPOLLOUT reports it. */
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
    c->fresh = 1;
    c->opened_at = now();
    if (c->opened_at > start + 1.0) opened_after_1s++;
    opened++;
    c->busy = 0;
    c->have = 0;
    watch(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT);
    return 0;
}

/* Close a connection; a request on it is lost (counted as a connection error). */
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

/* Write what is left of the request; if the socket is full, wait for EPOLLOUT. */
static void try_send(conn_t *c) {
    while (c->sent < request_len) {
        ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
        if (n < 0) {
            if (errno == EAGAIN) watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
            else drop(c);
            return;
        }
        c->sent += (size_t)n;
    }
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
}




int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT REQUEST_FILE RATE SECONDS MAXCONN [DRAIN_S]\n",
                argv[0]);
        return 2;
    }
    set_address(&addr, argv[1], argv[2]);
    request_len = read_request(argv[3], &request);
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    double drain = argc == 8 ? atof(argv[7]) : 10.0;
    int maxconn = atoi(argv[6]);
    if (rate <= 0 || seconds <= 0 || maxconn <= 0) {
        fprintf(stderr, "RATE, SECONDS and MAXCONN must be positive\n");
        return 2;
    }
    conn_t *conns = calloc((size_t)maxconn, sizeof(conn_t));
    idle_stack = calloc((size_t)maxconn, sizeof(conn_t *));
    free_stack = calloc((size_t)maxconn, sizeof(conn_t *));
    if (!conns || !idle_stack || !free_stack) { perror("calloc"); return 1; }
    for (int i = maxconn - 1; i >= 0; i--) {
        conns[i].fd = -1;
        free_stack[nfree++] = &conns[i];
    }
    ep = epoll_create1(0);
    long total = (long)(rate * seconds + 0.5), next = 0, inflight = 0;
    start = now();
    double interval = 1.0 / rate, end = start + seconds;
    int announced = 0;
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        /* Send every request that is due, late ones at once (their latency counts from
           when they were due). */
        while (next < total && start + (double)next * interval <= t) {
            conn_t *c = nidle ? idle_stack[--nidle] : NULL;
            if (!c && nfree) {
                conn_t *slot = free_stack[--nfree];
                if (open_conn(slot) == 0) c = slot;
                else free_stack[nfree++] = slot; /* e.g. out of file descriptors */
            }
            if (!c) { unsent++; next++; continue; }
            c->busy = 1;
            c->sent = 0;
            c->due = start + (double)next * interval;
            if (!c->connecting) try_send(c);
            next++;
        }
        if (next >= total && !announced) {
            fprintf(stderr, "schedule done\n");
            fflush(stderr);
            announced = 1;
        }
        inflight = maxconn - nidle - nfree; /* connections with a request on them */
        if (next >= total && (inflight == 0 || t > end + drain)) break;
        /* Sleep in epoll_wait until the next request is due; under 1 ms, poll (spin).
           Spinning takes a CPU at high rates, but sleeping to the microsecond (epoll_pwait2)
           measured worse for the server sharing the machine: 14-32% less goodput in four
           alternating 8 s runs at 2x and 4x capacity on 2 CPUs. */
        double wait_ms = next < total ? (start + (double)next * interval - t) * 1000 : 10;
        int n = epoll_wait(ep, events, 256, wait_ms >= 1 ? (int)wait_ms : 0);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->fd < 0) continue; /* dropped earlier in this batch */
            if (events[i].events & EPOLLOUT) {
                if (c->connecting) {
                    int err = 0;
                    socklen_t len = sizeof err;
                    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    if (err) { drop(c); continue; }
                    c->connecting = 0;
                    double connect_ms = (now() - c->opened_at) * 1000;
                    if (connect_ms > max_connect_ms) max_connect_ms = connect_ms;
                    if (c->busy) try_send(c);
                    else { watch(c, EPOLL_CTL_MOD, EPOLLIN); idle_stack[nidle++] = c; }
                } else if (c->busy) {
                    try_send(c); /* the rest of a request the socket could not take */
                }
            }
            if (c->fd < 0 || !(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t got = read(c->fd, c->in + c->have, BUF - c->have);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) continue;
                drop(c); /* closed by the server (or failed) */
                continue;
            }
            c->have += (size_t)got;
            int status;
            double retry_after; /* not used: the schedule is fixed */
            size_t used;
            double arrived = now();
            while ((used = parse_answer(c->in, c->have, &status, &retry_after)) > 0) {
                if (c->busy) {
                    double ms = (arrived - c->due) * 1000;
                    record(status, ms, arrived <= end);
                    int s = status < 0 || status >= MAXSTATUS ? 0 : status;
                    double *slowest = c->fresh ? &max_first[s] : &max_reused[s];
                    if (ms > *slowest) {
                        *slowest = ms;
                        if (c->fresh) max_first_at[s] = c->due - start;
                    }
                    c->fresh = 0;
                    c->busy = 0;
                    idle_stack[nidle++] = c;
                }
                memmove(c->in, c->in + used, c->have - used);
                c->have -= used;
            }
            if (c->have == BUF) drop(c); /* an answer larger than the buffer */
        }
    }
    double elapsed = now() - start;
    printf("{\"offered_rate\": %.1f, \"seconds\": %.3f, \"elapsed\": %.3f, \"scheduled\": %ld, "
           "\"unsent\": %ld, \"errors\": %ld, \"unanswered\": %ld, \"connections_opened\": %ld, "
           "\"connections_opened_after_1s\": %ld, \"max_connect_ms\": %.3f, \"statuses\": {",
           rate, seconds, elapsed, total, unsent, errors, inflight, opened, opened_after_1s,
           max_connect_ms);
    int first = 1;
    for (int s = 0; s < MAXSTATUS; s++) {
        if (!nlat[s]) continue;
        qsort(lat[s], nlat[s], sizeof(double), cmp_double);
        printf("%s\"%d\": {\"count\": %zu, \"in_window\": %zu, \"p50_ms\": %.3f, "
               "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"max_first_on_connection_ms\": %.3f, "
               "\"max_first_due_at_s\": %.3f, \"max_later_on_connection_ms\": %.3f}",
               first ? "" : ", ", s, nlat[s], in_window[s], pct(lat[s], nlat[s], 50),
               pct(lat[s], nlat[s], 99), lat[s][nlat[s] - 1], max_first[s], max_first_at[s], max_reused[s]);
        first = 0;
    }
    printf("}}\n");
    return 0;
}
