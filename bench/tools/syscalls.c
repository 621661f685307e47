// The kernel side's cost per syscall, for bench/live: what a process pays
// with the agent's tracepoints attached, watched or not. Waits for a line on
// stdin before each measurement, then prints "getppid_ns exchange_ns":
//   getppid_ns   one getppid(2): a syscall the agent never records, so its
//                cost is the tracepoint path every syscall of the host takes;
//   exchange_ns  one 100-byte write(2) on a loopback TCP connection and the
//                read(2) of it at the other end: two records when watched.
// Best of 5 runs of N each (the least disturbed by the rest of the host).
//   syscalls N
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void connected_pair(int *client, int *server) {
  struct sockaddr_in addr = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  socklen_t len = sizeof addr;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr *)&addr, &len)) {
    perror("listen");
    exit(1);
  }
  *client = socket(AF_INET, SOCK_STREAM, 0);
  if (*client < 0 || connect(*client, (struct sockaddr *)&addr, sizeof addr)) {
    perror("connect");
    exit(1);
  }
  *server = accept(listener, NULL, NULL);
  if (*server < 0) {
    perror("accept");
    exit(1);
  }
  int one = 1;
  setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  close(listener);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: syscalls N\n");
    return 2;
  }
  long n = atol(argv[1]);
  char line[64];
  char payload[100], sink[100];
  for (int i = 0; i < 100; i++) payload[i] = 'a' + i % 26;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    // A new connection each time: one accepted while the agent runs is one it knows from the start.
    int client, server;
    connected_pair(&client, &server);
    double best_getppid = 1e18, best_exchange = 1e18;
    for (int run = 0; run < 5; run++) {
      double t = now_ns();
      for (long i = 0; i < n; i++) syscall(SYS_getppid);
      double d = (now_ns() - t) / n;
      if (d < best_getppid) best_getppid = d;
      t = now_ns();
      for (long i = 0; i < n / 10; i++) {
        if (write(client, payload, sizeof payload) != sizeof payload) return 1;
        for (size_t got = 0; got < sizeof sink;) {
          ssize_t r = read(server, sink + got, sizeof sink - got);
          if (r <= 0) return 1;
          got += r;
        }
      }
      d = (now_ns() - t) / (n / 10);
      if (d < best_exchange) best_exchange = d;
    }
    close(client);
    close(server);
    printf("%.1f %.1f\n", best_getppid, best_exchange);
  }
  return 0;
}
