"""Settings for the whole test run, applied before any test module imports NumPy."""

import os

# One BLAS thread (unless the environment says otherwise): the tests' matrices are small,
# and on a busy two-core machine OpenBLAS's spinning threads made them 10-30x slower.
# Notebook kernels started by the tests inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
