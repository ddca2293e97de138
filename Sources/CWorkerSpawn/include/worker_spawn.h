#ifndef OUTPOST_WORKER_SPAWN_H
#define OUTPOST_WORKER_SPAWN_H

#include <sys/types.h>

/// Starts `path` (an absolute path) as a worker process (vfork + exec).
///
/// The child gets its own process group, stdin from /dev/null, stdout and stderr on `output_fd`,
/// default signal dispositions and an empty signal mask, no other inherited descriptors, and
/// PR_SET_PDEATHSIG(SIGKILL) so that it dies with the daemon even when the daemon is killed with
/// SIGKILL. Call it from a thread that lives as long as the daemon: Linux sends the death signal
/// when the *thread* that forked exits.
///
/// Returns the child's pid, or -errno when fork or exec failed (exec errors are reported through
/// a close-on-exec pipe, so a missing executable is an error here, not a dead child).
pid_t outpost_spawn_worker(const char *path, char *const argv[], char *const envp[],
                           const char *working_dir, int output_fd);

#endif
