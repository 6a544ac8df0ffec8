/*
 * What Concourse's worker gives a container that is not privileged (concourse/concourse,
 * worker/runtime/spec/capabilities.go and worker/runtime/spec/seccomp.go), shared by
 * unprivileged.c and container.c:
 *
 * - Capabilities: bounding, permitted, effective and inheritable sets are exactly
 *   AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE NET_RAW
 *   SETFCAP SETGID SETPCAP SETUID SYS_CHROOT (no SYS_ADMIN). We drop every other
 *   capability from the bounding set; root's permitted and effective sets after exec are
 *   then these (its inheritable set stays empty, which nothing here reads).
 * - Seccomp: an allowlist whose default action is EPERM. unshare, setns, mount, umount2,
 *   pivot_root (and the new mount API) are not on it; clone is allowed only when
 *   flags & 2080505856 (0x7C020000: CLONE_NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET)
 *   == 0; clone3 fails with ENOSYS so that glibc falls back to clone. We install the
 *   namespace and mount part of that profile as a denylist (everything else allowed),
 *   which is what decides whether buildah can build.
 *
 * Load the filter while CAP_SYS_ADMIN is still effective (dropping it from the bounding set
 * takes effect at exec), so no_new_privs is not needed and set-user-ID programs work as in
 * a Concourse task.
 */
#ifndef SLIPWAY_CONCOURSE_H
#define SLIPWAY_CONCOURSE_H

#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

static const int concourse_kept_capabilities[] = {
    CAP_AUDIT_WRITE, CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_MKNOD,
    CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_SETFCAP, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_CHROOT,
};

static int concourse_keeps(int cap) {
    for (size_t i = 0; i < sizeof concourse_kept_capabilities / sizeof concourse_kept_capabilities[0]; i++)
        if (concourse_kept_capabilities[i] == cap) return 1;
    return 0;
}

static int concourse_deny(scmp_filter_ctx ctx, const char *name, int error) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0; /* not a syscall on this architecture */
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), nr, 0);
}

/* Loads the seccomp part, then drops the capabilities; 0, or 2 after saying why on stderr. */
static int concourse_unprivileged(const char *who) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) { fprintf(stderr, "%s: seccomp_init failed\n", who); return 2; }
    const char *denied[] = {"unshare", "setns", "mount", "umount", "umount2", "pivot_root",
                            "mount_setattr", "move_mount", "fsopen", "fsmount", "fsconfig", "fspick"};
    int rc = 0;
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) rc |= concourse_deny(ctx, denied[i], EPERM);
    rc |= concourse_deny(ctx, "clone3", ENOSYS);
    /* clone: flags are argument 0 on x86; any of Concourse's namespace flags means EPERM. */
    const unsigned long namespaces = 2080505856UL;
    for (int bit = 0; bit < 64; bit++) {
        unsigned long flag = 1UL << bit;
        if (!(namespaces & flag)) continue;
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
    }
    if (rc) { fprintf(stderr, "%s: seccomp rules failed: %s\n", who, strerror(-rc)); return 2; }

    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (concourse_keeps(cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
            fprintf(stderr, "%s: PR_CAPBSET_DROP: %s\n", who, strerror(errno));
            return 2;
        }
    }
    if ((rc = seccomp_load(ctx)) != 0) { fprintf(stderr, "%s: seccomp_load failed: %s\n", who, strerror(-rc)); return 2; }
    seccomp_release(ctx);
    return 0;
}

#endif
