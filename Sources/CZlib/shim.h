#include <zlib.h>

// deflateInit2/inflateInit2 are macros; Swift cannot call macros, so wrap them.
static inline int slipway_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
static inline int slipway_deflateInit2(z_streamp strm, int level, int windowBits) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
