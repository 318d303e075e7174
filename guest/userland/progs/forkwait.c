/* fork/wait: children report through exit codes and a pipe; one child execs /bin/echo. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    for (int i = 0; i < 5; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char msg[32];
            int n = snprintf(msg, sizeof msg, "child%d\n", i);
            if (write(fds[1], msg, (size_t)n) != n)
                _exit(100);
            _exit(i * 3);
        }
    }
    close(fds[1]);
    int sum = 0, kids = 0;
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid < 0)
            break;
        kids++;
        if (WIFEXITED(status))
            sum += WEXITSTATUS(status);
    }
    char buf[256];
    ssize_t got, len = 0;
    while ((got = read(fds[0], buf + len, sizeof buf - 1 - (size_t)len)) > 0)
        len += got;
    buf[len] = 0;
    int lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    printf("children %d exit-sum %d pipe-lines %d\n", kids, sum, lines);
    fflush(stdout);

    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/echo", "echo", "exec ok", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("exec child status %d\n", WEXITSTATUS(status));
    pid = fork();
    if (pid == 0) {
        abort();
    }
    waitpid(pid, &status, 0);
    printf("abort child signalled %d sig %d\n", WIFSIGNALED(status), WTERMSIG(status));
    return 0;
}
