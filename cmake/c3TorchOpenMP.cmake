# The OpenMP runtime LibTorch itself loads (the torch wheel ships libgomp.so.1 in torch/lib).
# c3's own OpenMP loop (the int8 GEMV, src/model/int8_weight.cpp: at::parallel_for is a header
# template whose pragma needs -fopenmp) links that very library, so that it runs on LibTorch's
# thread pool rather than on a second pool competing for the same cores. Used by c3's build and
# by the installed package (c3Config.cmake). Sets C3_TORCH_OPENMP_LIBRARY, or leaves it NOTFOUND
# (the GEMV then runs on one thread).
find_library(C3_TORCH_OPENMP_LIBRARY NAMES libgomp.so.1 gomp PATHS "${TORCH_INSTALL_PREFIX}/lib" NO_DEFAULT_PATH)
