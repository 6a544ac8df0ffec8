/*
 * unprivileged: run a command the way Concourse runs a task that is not privileged.
 *
 *   cc -o unprivileged unprivileged.c -lseccomp
 *   unprivileged COMMAND [ARG...]
 *
 * Applies Concourse's capability set and the namespace and mount part of its seccomp
 * profile (concourse.h says which and why) to COMMAND.
 *
 * The test runs this inside `unshare --user --map-root-user`, the user namespace
 * Concourse puts such a container in. container.c models the rest of such a container
 * (its own root, mounts, environment and uid mapping).
 *
 * Run it as root (it drops capabilities).
 */
#include "concourse.h"

#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: unprivileged COMMAND [ARG...]\n");
        return 2;
    }
    int rc = concourse_unprivileged("unprivileged");
    if (rc) return rc;
    execvp(argv[1], argv + 1);
    fprintf(stderr, "unprivileged: %s: %s\n", argv[1], strerror(errno));
    return 127;
}
