// oneDNN's C API (Debian: libdnnl-dev, which ships no pkg-config file; the header and library are
// in the default search paths). Debian builds oneDNN with the GNU OpenMP runtime; Walloc sets its
// team size per call (the one OpenMP routine it needs is declared here, as omp.h belongs to the
// compiler rather than to a Debian -dev package).
#include <oneapi/dnnl/dnnl.h>

void omp_set_num_threads(int num_threads);
