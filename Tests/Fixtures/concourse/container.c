/*
 * container: run a command in a container made as Concourse's worker makes one (its
 * containerd runtime, through runc), from an image's unpacked root filesystem.
 *
 *   cc -o container container.c -lseccomp
 *   container [--privileged] [--upper DIR] [--bind SRC:DST]... [--env NAME=VALUE]...
 *             [--cwd DIR] ROOTFS COMMAND [ARG...]
 *
 * What it models (concourse/concourse worker/runtime/spec: spec.go, mounts.go,
 * namespaces.go, capabilities.go, seccomp.go):
 *
 * - New mount, pid, uts and ipc namespaces; not privileged, also a user namespace mapping
 *   container root to the host's highest id (4294967294) and ids 1… to themselves
 *   (spec.OciIDMappings). The image's files must then belong to that id, as Concourse's
 *   "namespaced" volumes do: the caller shifts them (the test chowns its copy).
 * - The root: ROOTFS as the lower layer of an overlay whose upper and work directories are
 *   under --upper DIR (each container writes to its own copy, as on Concourse's overlay
 *   volumes), else ROOTFS itself; entered with pivot_root, the old root detached, as runc.
 * - Concourse's default mounts: proc on /proc; a tmpfs /dev (mode 755, 64 MiB) holding
 *   null, zero, full, random, urandom and tty (bound from the host, as runc does in a user
 *   namespace), devpts on /dev/pts, a tmpfs /dev/shm (1777), mqueue on /dev/mqueue, the
 *   fd, stdin, stdout, stderr and ptmx links; sysfs on /sys (read-only unless privileged)
 *   with the host's cgroup hierarchy on /sys/fs/cgroup.
 * - A tmpfs /tmp (mode 1777). Concourse mounts none there; the harness does, so that
 *   temporary files never share a filesystem with the step's directories below it.
 * - --bind SRC:DST: the step's directories where Concourse mounts them (read-write).
 * - The environment is exactly the --env values (the image's Env and what Concourse adds);
 *   the working directory is --cwd (default /); the command is found in that PATH.
 * - Privileged: real root with every capability and no seccomp. Otherwise Concourse's
 *   capabilities and seccomp (concourse.h), applied last, as runc does before exec.
 * - An init as pid 1 that reaps orphans, as gdn-init does; the command is its child.
 *
 * What it leaves out, and why: a network namespace (the test's registry, git daemon and
 * sshd listen on the host's loopback), cgroup limits, the /tmp/gdn-init bind mount, and the
 * hosts and resolv.conf files Concourse writes (the image's /etc/hosts names localhost).
 * Without a network namespace the kernel refuses a new sysfs in a user namespace, so there
 * the host's /sys is bound read-only instead.
 *
 * Exits with the command's status (128+N when signal N ended it), 2 when the container
 * could not be made, saying why in one line.
 */
#include "concourse.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROOT_ID 4294967294U /* the host id Concourse maps container root to: the highest valid one */
#define MAX_ITEMS 64

static const char *who = "container";

static void fail(const char *what, const char *path) {
    fprintf(stderr, "%s: %s%s%s: %s\n", who, what, path ? " " : "", path ? path : "", strerror(errno));
    _exit(2);
}

/* root followed by suffix into out (PATH_MAX bytes); a path too long is an error, not a cut. */
static void join(char *out, const char *root, const char *suffix) {
    if (snprintf(out, PATH_MAX, "%s%s", root, suffix) >= PATH_MAX) {
        errno = ENAMETOOLONG;
        fail("path", suffix);
    }
}

static void mkdirs(const char *path, mode_t mode) {
    char buffer[PATH_MAX];
    snprintf(buffer, sizeof buffer, "%s", path);
    for (char *p = buffer + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buffer, mode) != 0 && errno != EEXIST) fail("mkdir", buffer);
        *p = '/';
    }
    if (mkdir(buffer, mode) != 0 && errno != EEXIST) fail("mkdir", buffer);
}

static void mount_at(const char *root, const char *target, const char *source, const char *type,
                     unsigned long flags, const char *data) {
    char path[PATH_MAX];
    join(path, root, target);
    mkdirs(path, 0755);
    if (mount(source, path, type, flags, data) != 0) fail("mount", path);
}

/* A host device node bound onto a file in the container's /dev (mknod is refused in a
 * user namespace; runc binds there too). */
static void bind_device(const char *root, const char *name) {
    char path[PATH_MAX], host[PATH_MAX], relative[64];
    snprintf(relative, sizeof relative, "/dev/%s", name);
    join(path, root, relative);
    join(host, "", relative);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) fail("create", path);
    close(fd);
    if (mount(host, path, NULL, MS_BIND, NULL) != 0) fail("bind", host);
}

static void link_at(const char *root, const char *target, const char *name) {
    char path[PATH_MAX];
    join(path, root, name);
    if (symlink(target, path) != 0 && errno != EEXIST) fail("symlink", path);
}

struct options {
    int privileged;
    const char *upper;
    const char *binds[MAX_ITEMS];
    int bind_count;
    char *env[MAX_ITEMS + 1];
    int env_count;
    const char *cwd;
    const char *rootfs;
    char **command;
};

/* In the new namespaces: the root, the mounts, pivot_root; the process ends in the new root. */
static void make_root(const struct options *o) {
    static char root[PATH_MAX];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("make / private", NULL);
    if (o->upper) {
        char upper[PATH_MAX], work[PATH_MAX], data[3 * PATH_MAX + 64];
        join(upper, o->upper, "/upper");
        join(work, o->upper, "/work");
        join(root, o->upper, "/root");
        snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s", o->rootfs, upper, work);
        if (mount("overlay", root, "overlay", 0, data) != 0) fail("mount overlay on", root);
    } else {
        join(root, o->rootfs, "");
        if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) != 0) fail("bind", root);
    }

    mount_at(root, "/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
    mount_at(root, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    const char *devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) bind_device(root, devices[i]);
    mount_at(root, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    mount_at(root, "/dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777");
    mount_at(root, "/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
    link_at(root, "/proc/self/fd", "/dev/fd");
    link_at(root, "/proc/self/fd/0", "/dev/stdin");
    link_at(root, "/proc/self/fd/1", "/dev/stdout");
    link_at(root, "/proc/self/fd/2", "/dev/stderr");
    link_at(root, "pts/ptmx", "/dev/ptmx");
    if (o->privileged) {
        mount_at(root, "/sys", "sysfs", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
        mount_at(root, "/sys/fs/cgroup", "/sys/fs/cgroup", NULL, MS_BIND | MS_REC, NULL);
    } else {
        mount_at(root, "/sys", "/sys", NULL, MS_BIND | MS_REC, NULL);
        char sys[PATH_MAX];
        join(sys, root, "/sys");
        if (mount(NULL, sys, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) != 0)
            fail("remount read-only", sys);
    }
    /* A tmpfs /tmp, which Concourse does not mount: a stricter case than Concourse's, where
     * temporary files and the step's directories (bound below, under /tmp/build) are always
     * on different filesystems, so a rename from one to the other fails (EXDEV). */
    mount_at(root, "/tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    for (int i = 0; i < o->bind_count; i++) {
        char source[PATH_MAX];
        snprintf(source, sizeof source, "%s", o->binds[i]);
        char *colon = strchr(source, ':');
        *colon = 0;
        mount_at(root, colon + 1, source, NULL, MS_BIND | MS_REC, NULL);
    }

    if (chdir(root) != 0) fail("chdir", root);
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root", root);
    if (umount2(".", MNT_DETACH) != 0) fail("detach the old root", NULL);
    if (chdir("/") != 0) fail("chdir", "/");
}

/* pid 1: starts the command, reaps every child, exits with the command's status. */
static int init(const struct options *o) {
    pid_t command = fork();
    if (command < 0) fail("fork", NULL);
    if (command == 0) {
        if (chdir(o->cwd) != 0) fail("chdir", o->cwd);
        if (!o->privileged && concourse_unprivileged(who) != 0) _exit(2);
        environ = (char **)o->env;
        execvp(o->command[0], o->command);
        fprintf(stderr, "%s: %s: %s\n", who, o->command[0], strerror(errno));
        _exit(127);
    }
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) fail("wait", NULL);
        if (pid != command) continue;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
}

static void write_file(pid_t pid, const char *name, const char *text) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) fail("write", path);
    close(fd);
}

static void usage(void) {
    fprintf(stderr, "usage: container [--privileged] [--upper DIR] [--bind SRC:DST]... [--env NAME=VALUE]... [--cwd DIR] ROOTFS COMMAND [ARG...]\n");
    exit(2);
}

int main(int argc, char **argv) {
    struct options o = {.cwd = "/"};
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--privileged") == 0) { o.privileged = 1; continue; }
        if (i + 1 >= argc) usage();
        const char *value = argv[++i];
        if (strcmp(flag, "--upper") == 0) o.upper = value;
        else if (strcmp(flag, "--cwd") == 0) o.cwd = value;
        else if (strcmp(flag, "--bind") == 0 && o.bind_count < MAX_ITEMS && strchr(value, ':') && strchr(value, ':')[1] == '/')
            o.binds[o.bind_count++] = value;
        else if (strcmp(flag, "--env") == 0 && o.env_count < MAX_ITEMS && strchr(value, '='))
            o.env[o.env_count++] = (char *)value;
        else usage();
    }
    if (argc - i < 2) usage();
    o.rootfs = argv[i];
    o.command = argv + i + 1;

    if (o.upper) {
        /* The overlay's writable half belongs to the container's root, as its image does. */
        const char *parts[] = {"upper", "work", "root"};
        for (size_t p = 0; p < 3; p++) {
            char path[PATH_MAX], part[16];
            snprintf(part, sizeof part, "/%s", parts[p]);
            join(path, o.upper, part);
            mkdirs(path, 0755);
            if (!o.privileged && chown(path, ROOT_ID, ROOT_ID) != 0) fail("chown", path);
        }
    }

    int sync[2];
    if (pipe2(sync, O_CLOEXEC) != 0) fail("pipe", NULL);
    unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
    if (!o.privileged) flags |= CLONE_NEWUSER;
    /* clone without a new stack: the child goes on from here, like fork. */
    pid_t child = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (child < 0) fail("clone", NULL);
    if (child == 0) {
        close(sync[1]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char go;
        if (read(sync[0], &go, 1) != 1) { fprintf(stderr, "%s: the parent did not map the user namespace\n", who); _exit(2); }
        if (!o.privileged) {
            if (setresgid(0, 0, 0) != 0) fail("setresgid", NULL);
            if (setresuid(0, 0, 0) != 0) fail("setresuid", NULL);
            if (setgroups(0, NULL) != 0) fail("setgroups", NULL);
        }
        if (sethostname("concourse-container", 19) != 0) fail("sethostname", NULL);
        make_root(&o);
        _exit(init(&o));
    }
    close(sync[0]);
    if (!o.privileged) {
        char map[128];
        snprintf(map, sizeof map, "0 %u 1\n1 1 %u\n", ROOT_ID, ROOT_ID - 1);
        write_file(child, "uid_map", map);
        write_file(child, "gid_map", map);
    }
    if (write(sync[1], "g", 1) != 1) fail("signal the container", NULL);
    close(sync[1]);
    int status;
    if (waitpid(child, &status, 0) < 0) fail("waitpid", NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
