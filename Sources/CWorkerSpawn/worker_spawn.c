#define _GNU_SOURCE
#include "worker_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* Reports errno to the parent through the pipe and exits. Only async-signal-safe calls. */
static void fail_child(int report_fd) {
    int err = errno;
    ssize_t ignored = write(report_fd, &err, sizeof err);
    (void)ignored;
    _exit(127);
}

pid_t outpost_spawn_worker(const char *path, char *const argv[], char *const envp[],
                           const char *working_dir, int output_fd) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();

    /* vfork: the child borrows the daemon's memory until exec, so starting a worker does not copy
     * the daemon's page tables (as posix_spawn does). Signals stay blocked from before the vfork
     * until the child has reset every handler, so no daemon handler ever runs in the child. */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t pid = vfork();
    if (pid < 0) {
        int err = errno;
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        close(report[0]);
        close(report[1]);
        return -err;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec, and nothing that writes the daemon's memory. */
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig == SIGKILL || sig == SIGSTOP) continue;
            signal(sig, SIG_DFL); /* the daemon ignores SIGPIPE; ignored dispositions survive exec */
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail_child(report[1]);
        if (getppid() != parent) _exit(127); /* the daemon died before prctl took effect */
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0) fail_child(report[1]);
        if (dup2(output_fd, 1) < 0 || dup2(output_fd, 2) < 0) fail_child(report[1]);
        /* Close everything else except the report pipe (close-on-exec). */
        if (report[1] > 3) syscall(SYS_close_range, 3, report[1] - 1, 0);
        syscall(SYS_close_range, report[1] + 1, ~0U, 0);
        if (working_dir != NULL && chdir(working_dir) != 0) fail_child(report[1]);
        execve(path, argv, envp);
        fail_child(report[1]);
    }

    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    close(report[1]);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(report[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof child_errno) {
        /* exec failed: reap the child now so that it leaves no zombie */
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return -child_errno;
    }
    return pid;
}
