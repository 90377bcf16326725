/* Runs a command and appends one JSON line to OUT_FILE: wall seconds, client CPU seconds
 * (user+sys of the command and every process it waited for) and peak RSS in MiB (largest
 * process in its tree). In C so that the fork does not charge the parent's memory to the
 * child's peak RSS; the JSON goes to a file so the command's own output stays separate.
 * Build: cc -O2 -o measure measure.c    Usage: measure LABEL OUT_FILE -- CMD...
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: measure LABEL OUT_FILE -- CMD...\n");
        return 2;
    }
    FILE *out = fopen(argv[2], "a");
    if (!out) {
        perror(argv[2]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[4], argv + 4);
        perror(argv[4]);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(out, "{\"label\": \"%s\", \"wall_s\": %.3f, \"cpu_s\": %.3f, \"rss_mib\": %.1f, \"exit\": %d}\n",
            argv[1], wall, cpu, ru.ru_maxrss / 1024.0, code);
    fclose(out);
    return code;
}
