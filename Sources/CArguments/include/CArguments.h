#ifndef SLIPWAY_C_ARGUMENTS_H
#define SLIPWAY_C_ARGUMENTS_H

/// The program's argc and argv as the C library passed them, captured before main runs.
/// Swift's CommandLine.arguments finds them on Linux through /proc/self/maps, so without
/// /proc (a bare chroot) it is empty; glibc hands them to initialisers instead. 0 and NULL
/// when they were not captured (a C library that does not pass them).
int slipway_argc(void);
char *const *slipway_argv(void);

#endif
