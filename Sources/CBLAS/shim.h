// OpenBLAS's CBLAS interface (Debian: libopenblas-dev, pkg-config name "openblas").
#include <cblas.h>

// LAPACK's symmetric eigensolver; OpenBLAS exports LAPACK's Fortran symbols, but Debian's
// libopenblas-dev ships no LAPACK header, so the one routine Walloc uses is declared here.
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
             float *work, const int *lwork, int *iwork, const int *liwork, int *info);
