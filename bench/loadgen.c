// SPDX-License-Identifier: Apache-2.0
/*
 * loadgen.c — the load generators of the benchmarks. Loopback only: every
 * socket binds or connects to 127.0.0.1.
 *
 *   loadgen tcp-server PORT
 *       accepts on 127.0.0.1:PORT and closes each connection at once.
 *   loadgen tcp-client PORT SECONDS WORKERS [RATE]
 *       WORKERS processes, each: connect, read until the server's FIN, close,
 *       again, for SECONDS. Closed loop (a worker waits for its connection to
 *       end), so the accept queue never overflows and no SYN is retransmitted.
 *       With RATE, the workers together start RATE connections a second, on
 *       a fixed schedule (a late one is caught up, so the average holds);
 *       without it, as many as they can.
 *   loadgen dns-server PORT
 *       answers every query on 127.0.0.1:PORT with one A record (198.18.0.1).
 *   loadgen dns-client PORT SECONDS WORKERS [RATE]
 *       WORKERS processes, each: send a query, wait for the answer, again
 *       (RATE: as for tcp-client).
 *
 * Servers print "ready" once listening and run until SIGTERM/SIGINT. Clients
 * print one line: "<done> <errors> <seconds> <last error>", e.g.
 * "182345 0 4.000 -", where <done> is completed connections or answers.
 *
 * The server closes first, so TIME_WAIT stays on the server side, where a new
 * SYN for the same 4-tuple (with newer TCP timestamps) is accepted: the client
 * never runs out of ephemeral ports however long it runs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

struct worker_result {
	uint64_t done;
	uint64_t errors;
	int last_errno;
	char _pad[64 - 2 * sizeof(uint64_t) - sizeof(int)]; /* one cache line each */
};

static volatile sig_atomic_t stop;

/* RATE given: a worker's k-th operation is due at pace_start + k * pace_interval. */
static double pace_start, pace_interval;
static uint64_t pace_next;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* Waits until the worker's next operation is due (no wait without RATE). */
static void pace(void)
{
	double wait;

	if (pace_interval <= 0)
		return;
	wait = pace_start + pace_next++ * pace_interval - now_s();
	if (wait > 0) {
		struct timespec ts = { .tv_sec = (time_t)wait, .tv_nsec = (long)((wait - (time_t)wait) * 1e9) };

		nanosleep(&ts, NULL);
	}
}

static int parse_int(const char *s, const char *name, int lo, int hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "loadgen: %s must be an integer in [%d, %d], got '%s'\n", name, lo, hi, s);
		exit(2);
	}
	return (int)v;
}

/* Servers stop on SIGTERM/SIGINT: no SA_RESTART, so a blocked call returns EINTR. */
static void handle_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

static int bound_socket(int type, int port)
{
	struct sockaddr_in a = loopback(port);
	int one = 1;
	int fd = socket(AF_INET, type, 0);

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("SO_REUSEADDR");
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("bind 127.0.0.1");
	return fd;
}

static void say_ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

/* --- TCP ---------------------------------------------------------------- */

static int tcp_server(int port)
{
	int lfd = bound_socket(SOCK_STREAM, port);

	if (listen(lfd, 4096) < 0)
		die("listen");
	handle_stop_signals();
	say_ready();
	while (!stop) {
		int fd = accept(lfd, NULL, NULL);

		if (fd >= 0)
			close(fd);
		else if (errno != EINTR && errno != ECONNABORTED)
			die("accept");
	}
	return 0;
}

/* One worker: connect, wait for the server's FIN, close; until the deadline. */
static void tcp_worker(int port, double deadline, struct worker_result *r)
{
	struct sockaddr_in a = loopback(port);
	char byte;

	while (pace(), now_s() < deadline) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0)
			die("socket");
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || read(fd, &byte, 1) < 0) {
			r->errors++;
			r->last_errno = errno;
			close(fd);
			usleep(1000);
			continue;
		}
		close(fd);
		r->done++;
	}
}

/* --- DNS ---------------------------------------------------------------- */

/* bench.flowtap.test IN A, recursion desired; bytes 0-1 are the id. */
static const unsigned char dns_query[] = {
	0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	5, 'b', 'e', 'n', 'c', 'h', 7, 'f', 'l', 'o', 'w', 't', 'a', 'p', 4, 't', 'e', 's', 't', 0,
	0x00, 0x01, 0x00, 0x01,
};

/* The answer appended to the question: name → offset 12, A, IN, TTL 60, 198.18.0.1. */
static const unsigned char dns_answer[] = {
	0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 198, 18, 0, 1,
};

static int dns_server(int port)
{
	int fd = bound_socket(SOCK_DGRAM, port);
	unsigned char buf[512];

	handle_stop_signals();
	say_ready();
	while (!stop) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		ssize_t n = recvfrom(fd, buf, sizeof buf - sizeof dns_answer, 0, (struct sockaddr *)&peer, &plen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("recvfrom");
		}
		if (n < 12)
			continue;
		buf[2] = 0x81; /* QR, RD */
		buf[3] = 0x80; /* RA, NOERROR */
		buf[6] = 0;
		buf[7] = 1; /* ANCOUNT */
		memcpy(buf + n, dns_answer, sizeof dns_answer);
		sendto(fd, buf, n + sizeof dns_answer, 0, (struct sockaddr *)&peer, plen);
	}
	return 0;
}

static void dns_worker(int port, double deadline, struct worker_result *r)
{
	struct sockaddr_in a = loopback(port);
	struct timeval tv = { .tv_sec = 1 };
	unsigned char q[sizeof dns_query], buf[512];
	uint16_t id = (uint16_t)getpid();
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
		die("SO_RCVTIMEO");
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	memcpy(q, dns_query, sizeof q);
	while (pace(), now_s() < deadline) {
		id++;
		q[0] = id >> 8;
		q[1] = id & 0xff;
		if (send(fd, q, sizeof q, 0) < 0 || recv(fd, buf, sizeof buf, 0) < 0) {
			r->errors++;
			r->last_errno = errno;
			continue;
		}
		r->done++;
	}
	close(fd);
}

/* --- clients: fork the workers, sum their results -------------------------- */

static int run_client(void (*worker)(int, double, struct worker_result *), int port, int seconds,
		      int workers, int rate)
{
	struct worker_result *res;
	uint64_t done = 0, errors = 0;
	int last_errno = 0;
	double start, deadline, elapsed;

	res = mmap(NULL, sizeof(*res) * workers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		die("mmap");
	memset(res, 0, sizeof(*res) * workers);
	start = now_s();
	deadline = start + seconds;
	for (int i = 0; i < workers; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			if (rate > 0) {
				/* each worker RATE/WORKERS a second, the workers' schedules interleaved */
				pace_interval = (double)workers / rate;
				pace_start = start + i * pace_interval / workers;
			}
			worker(port, deadline, &res[i]);
			_exit(0);
		}
	}
	for (int i = 0; i < workers; i++) {
		int status;

		if (wait(&status) < 0)
			die("wait");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "loadgen: a worker failed\n");
			return 1;
		}
	}
	elapsed = now_s() - start;
	for (int i = 0; i < workers; i++) {
		done += res[i].done;
		errors += res[i].errors;
		if (res[i].last_errno)
			last_errno = res[i].last_errno;
	}
	printf("%llu %llu %.3f %s\n", (unsigned long long)done, (unsigned long long)errors, elapsed,
	       last_errno ? strerrorname_np(last_errno) : "-");
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen tcp-server PORT | tcp-client PORT SECONDS WORKERS [RATE] |\n"
			"               dns-server PORT | dns-client PORT SECONDS WORKERS [RATE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int port;

	if (argc < 3)
		usage();
	port = parse_int(argv[2], "PORT", 1, 65535);
	if (strcmp(argv[1], "tcp-server") == 0 && argc == 3)
		return tcp_server(port);
	if (strcmp(argv[1], "dns-server") == 0 && argc == 3)
		return dns_server(port);
	if (argc != 5 && argc != 6)
		usage();
	int seconds = parse_int(argv[3], "SECONDS", 1, 3600);
	int workers = parse_int(argv[4], "WORKERS", 1, MAX_WORKERS);
	int rate = argc == 6 ? parse_int(argv[5], "RATE", 1, 1000000) : 0;

	if (strcmp(argv[1], "tcp-client") == 0)
		return run_client(tcp_worker, port, seconds, workers, rate);
	if (strcmp(argv[1], "dns-client") == 0)
		return run_client(dns_worker, port, seconds, workers, rate);
	usage();
	return 2;
}
