/* bench/noop_child: the no-op training process of bench/dispatch (issue 6: "1,000 runs of a
 * no-op child"), selected through JSLDS_TRAIN_EXE.
 *
 *   noop_child train RUN_DIR/config.toml --run-dir RUN_DIR --report-fd 3 [--resume]
 *
 * It writes one result event on the report descriptor (docs/report-format.md) and exits 0,
 * reading nothing and writing no file. Statically linked C with libc's getopt_long, so that a
 * run costs a fork, an exec and one write: on a 2-core machine the heavier stand-in
 * (tests/sweep/fake_train, about 15 ms of CPU per start for dynamic loading, TOML parsing and
 * an fsync'ed result.json) keeps both cores busy by itself, and the time its starts wait for a
 * core would count as coordinator overhead. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  static const struct option options[] = {{"run-dir", required_argument, 0, 'd'},
                                          {"report-fd", required_argument, 0, 'r'},
                                          {"resume", no_argument, 0, 's'},
                                          {0, 0, 0, 0}};
  int fd = -1;
  int c;
  while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
    if (c == 'r') {
      char* end = NULL;
      long value = strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || value < 0) {
        fprintf(stderr, "noop_child: --report-fd '%s' is not a descriptor number\n", optarg);
        return 2;
      }
      fd = (int)value;
    } else if (c == '?') {
      return 2; /* getopt_long has said what was wrong */
    }
  }
  if (fd < 0 || optind + 2 != argc || strcmp(argv[optind], "train") != 0) {
    fprintf(stderr, "usage: noop_child train CONFIG --run-dir DIR --report-fd FD [--resume]\n");
    return 2;
  }
  static const char line[] =
      "{\"event\":\"result\",\"status\":\"done\",\"step\":0,\"message\":\"\","
      "\"summary\":{\"val_bps\":0.1},\"fixed_points\":[],\"modes\":[]}\n";
  return write(fd, line, sizeof line - 1) == (ssize_t)(sizeof line - 1) ? 0 : 1;
}
