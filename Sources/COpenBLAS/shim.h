// OpenBLAS's CBLAS interface plus its extensions (openblas_get_corename, openblas_set_num_threads).
// Debian's alternatives put cblas.h at /usr/include/x86_64-linux-gnu/cblas.h (libopenblas-dev).
#include <cblas.h>
