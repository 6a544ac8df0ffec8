#include <stdlib.h>  /* defines __GLIBC__ under glibc */
#include "CArguments.h"

static int captured_argc = 0;
static char *const *captured_argv = NULL;

#if defined(__GLIBC__)
/* glibc calls each .init_array entry with (argc, argv, envp); other C libraries may not. */
static void capture(int argc, char **argv, char **envp) {
    (void)envp;
    captured_argc = argc;
    captured_argv = argv;
}

__attribute__((section(".init_array"), used))
static void (*const capture_entry)(int, char **, char **) = capture;
#endif

int slipway_argc(void) { return captured_argc; }

char *const *slipway_argv(void) { return captured_argv; }
