// A paced HTTP/1.1 keep-alive client for bench/live: RATE GET requests a second
// for SECONDS on one connection, each timed from write to the end of its
// response (Content-Length framed). Prints "p50_us p99_us requests".
//   pace PORT RATE SECONDS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: pace PORT RATE SECONDS\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double rate = atof(argv[2]), seconds = atof(argv[3]);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
    perror("connect");
    return 1;
  }
  const char req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
  long total = (long)(rate * seconds);
  double *lat = malloc(sizeof(double) * total);
  static char buf[1 << 16]; // room for bench/tools/api-server.js's 8.7 KB responses
  double start = now();
  for (long i = 0; i < total; i++) {
    double due = start + i / rate;
    double t = now();
    if (due > t) {
      struct timespec pause = {0, (long)((due - t) * 1e9)};
      nanosleep(&pause, NULL);
    }
    double sent = now();
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
      perror("write");
      return 1;
    }
    size_t have = 0;
    for (;;) {
      ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
      if (n <= 0) {
        fprintf(stderr, "connection closed\n");
        return 1;
      }
      have += n;
      buf[have] = 0;
      char *end = strstr(buf, "\r\n\r\n");
      char *cl = strcasestr(buf, "content-length:");
      if (end && cl && have >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10)) break;
    }
    lat[i] = (now() - sent) * 1e6;
  }
  qsort(lat, total, sizeof(double), cmp);
  printf("%.1f %.1f %ld\n", lat[total / 2], lat[total * 99 / 100], total);
  return 0;
}
