# Warnings for our own targets only (LibTorch's headers are included as system headers).
function(c3_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()
