#include <zstd.h>
// Error codes (ZSTD_getErrorCode), to tell a frame over the window limit from corrupt data.
#include <zstd_errors.h>
