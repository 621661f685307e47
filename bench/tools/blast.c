// A paced load of small TCP writes on loopback, for bench/live: every write is
// one write(2), so one data record for the agent. A reader thread drains the
// other end. Prints the writes it made.
//   blast PORT RATE_PER_SEC SECONDS SIZE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int listener;

static void *drain(void *arg) {
  (void)arg;
  int fd = accept(listener, NULL, NULL);
  char buf[65536];
  while (read(fd, buf, sizeof buf) > 0) {
  }
  close(fd);
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: blast PORT RATE SECONDS SIZE\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double rate = atof(argv[2]), seconds = atof(argv[3]);
  int size = atoi(argv[4]);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 1)) {
    perror("bind/listen");
    return 1;
  }
  pthread_t reader;
  pthread_create(&reader, NULL, drain, NULL);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
    perror("connect");
    return 1;
  }
  char *msg = malloc(size);
  memset(msg, 'x', size);
  long writes = 0;
  double start = now(), end = start + seconds;
  // Pace in 1 ms slices: write what the rate owes so far, then sleep.
  for (double t = start; t < end; t = now()) {
    long owed = (long)((t - start) * rate) - writes;
    for (long i = 0; i < owed; i++, writes++)
      if (write(fd, msg, size) != size) {
        perror("write");
        return 1;
      }
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
  }
  close(fd);
  pthread_join(reader, NULL);
  printf("%ld\n", writes);
  return 0;
}
