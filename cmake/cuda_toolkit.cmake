# Finds the CUDA compiler: the system's (CUDACXX, nvcc on PATH or in $CUDA_PATH/bin, where CMake
# looks) or the one pip installs into the build's Python environment (requirements-cuda.txt), asked
# of that Python by cmake/query_cuda_toolkit.py, which also checks the toolkit is whole, of one
# release, and of the CUDA that torch and JAX were built with.
#
# twinop_find_cuda_compiler() reads TWINOP_CUDA_TOOLKIT (AUTO: the system's, else pip's; SYSTEM;
# PIP) and TORCH_CUDA_VERSION / JAX_CUDA_VERSION, and sets TWINOP_CUDA_FROM to "system", "pip" or
# "" (none found), and, where pip's was asked for, PIP_CUDA_STATUS (0 found, 1 not installed,
# 2 unusable) with PIP_CUDA_* (query_cuda_toolkit.py's settings) or PIP_CUDA_ERROR. For pip's, it
# points CMAKE_CUDA_COMPILER at its nvcc.
macro(twinop_find_cuda_compiler)
  set(TWINOP_CUDA_FROM "")
  set(PIP_CUDA_STATUS 1)
  set(PIP_CUDA_COMPILER "")
  set(PIP_CUDA_ERROR "not looked for: TWINOP_CUDA_TOOLKIT=SYSTEM")
  if(NOT TWINOP_CUDA_TOOLKIT STREQUAL "SYSTEM")
    set(_query ${Python_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cmake/query_cuda_toolkit.py
               ${CMAKE_CURRENT_BINARY_DIR} torch=${TORCH_CUDA_VERSION} jax=${JAX_CUDA_VERSION})
    execute_process(COMMAND ${_query} RESULT_VARIABLE PIP_CUDA_STATUS OUTPUT_QUIET ERROR_QUIET)
    if(PIP_CUDA_STATUS EQUAL 1)  # none: pip's build isolation may hide it, as for the frameworks
      execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=PYTHONPATH --unset=PYTHONNOUSERSITE ${_query}
                      RESULT_VARIABLE PIP_CUDA_STATUS OUTPUT_QUIET ERROR_QUIET)
    endif()
    if(PIP_CUDA_STATUS EQUAL 0)
      include(${CMAKE_CURRENT_BINARY_DIR}/cuda_toolkit_settings.cmake)
    else()
      file(READ ${CMAKE_CURRENT_BINARY_DIR}/cuda_toolkit_error.txt PIP_CUDA_ERROR)
    endif()
  endif()
  if(NOT TWINOP_CUDA_TOOLKIT STREQUAL "PIP")
    include(CheckLanguage)
    check_language(CUDA)  # probing nvcc takes seconds: only where CUDA could be used
  endif()
  # The compiler check_language() found, or an earlier configure cached: pip's, or the system's.
  if(CMAKE_CUDA_COMPILER AND NOT CMAKE_CUDA_COMPILER STREQUAL PIP_CUDA_COMPILER
     AND NOT TWINOP_CUDA_TOOLKIT STREQUAL "PIP")
    set(TWINOP_CUDA_FROM system)
  elseif(PIP_CUDA_STATUS EQUAL 0)
    set(TWINOP_CUDA_FROM pip)
    set(CMAKE_CUDA_COMPILER ${PIP_CUDA_COMPILER} CACHE FILEPATH "CUDA compiler" FORCE)
    set(CMAKE_CUDA_COMPILER ${PIP_CUDA_COMPILER})  # check_language() also left a NOTFOUND variable
    # nvcc looks for cudart and cudadevrt in the toolkit's lib64; pip puts them in lib.
    string(APPEND CMAKE_CUDA_FLAGS " -L${PIP_CUDA_LIBRARY_DIR}")
    # find_package(CUDAToolkit) requires a libcudart.so, a name pip does not ship (libcudart.so.13 only).
    set(CUDA_CUDART ${PIP_CUDA_CUDART} CACHE FILEPATH "CUDA runtime library" FORCE)
  endif()
endmacro()
