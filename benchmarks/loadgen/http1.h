/*
 * What openloop.c and closedloop.c share: the clock, the request file, the server's
 * address, reading one HTTP/1.1 answer by its Content-Length, and percentiles.
 * Header-only (static functions): each generator is still built from its one .c file.
 */
#ifndef LOADGEN_HTTP1_H
#define LOADGEN_HTTP1_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The whole file at path into *data (exits with status 2 when it cannot be read). */
static size_t read_request(const char *path, char **data) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    rewind(f);
    *data = malloc(len);
    if (!*data || fread(*data, 1, len, f) != len) { perror("read"); exit(2); }
    fclose(f);
    return len;
}

/* HOST (IPv4) and PORT into addr (exits with status 2 on a bad address). */
static void set_address(struct sockaddr_in *addr, const char *host, const char *port) {
    addr->sin_family = AF_INET;
    addr->sin_port = htons((unsigned short)atoi(port));
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1) {
        fprintf(stderr, "not an IPv4 address: %s\n", host);
        exit(2);
    }
}

/* One complete answer at the start of in[0..have)? Its length (0: incomplete), its
   status (0: no status line) and its Retry-After in seconds (0: none). */
static size_t parse_answer(char *in, size_t have, int *status, double *retry_after) {
    char *end = memmem(in, have, "\r\n\r\n", 4);
    if (!end) return 0;
    *end = 0; /* headers as one string while they are read (restored below) */
    *status = strncmp(in, "HTTP/1.", 7) == 0 ? atoi(in + 9) : 0;
    size_t length = 0;
    *retry_after = 0;
    for (char *p = in; p < end; p++) {
        if (p != in && p[-1] != '\n') continue;
        if (strncasecmp(p, "content-length:", 15) == 0) length = strtoul(p + 15, NULL, 10);
        if (strncasecmp(p, "retry-after:", 12) == 0) *retry_after = atof(p + 12);
    }
    *end = '\r';
    size_t total = (size_t)(end + 4 - in) + length;
    return total <= have ? total : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) { /* nearest rank, v sorted */
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i];
}

#endif
