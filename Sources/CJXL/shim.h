// libjxl and its thread pool (Debian: libjxl-dev, pkg-config names "libjxl" and "libjxl_threads"),
// for the JPEG XL evaluation baseline.
#include <jxl/decode.h>
#include <jxl/encode.h>
#include <jxl/thread_parallel_runner.h>
