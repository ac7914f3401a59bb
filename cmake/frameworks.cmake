# Finds the frameworks by asking the build's Python (never find_package(Torch), which adds a
# libtorch.so dependency and a junk RUNPATH). Under pip's build isolation the frameworks are
# invisible, so a failed query is retried with the isolation variables unset: the build then
# uses the frameworks installed where the wheel goes, and downloads nothing.
#
# twinop_query_frameworks() reads TWINOP_TORCH, TWINOP_TORCH_STABLE, TWINOP_TF and TWINOP_JAX
# (AUTO|ON|OFF; torch is asked for when either of its ops is wanted) and sets TORCH_FOUND,
# TF_FOUND and JAX_FOUND, and either the TORCH_* / TF_* / JAX_* settings written by
# query_framework.py or TORCH_IMPORT_ERROR / TF_IMPORT_ERROR / JAX_IMPORT_ERROR.
macro(twinop_query_frameworks)
  set(TORCH_FOUND FALSE)
  set(TF_FOUND FALSE)
  set(JAX_FOUND FALSE)
  set(_wanted)
  if(NOT (TWINOP_TORCH STREQUAL "OFF" AND TWINOP_TORCH_STABLE STREQUAL "OFF"))
    list(APPEND _wanted torch)
  endif()
  if(NOT TWINOP_TF STREQUAL "OFF")
    list(APPEND _wanted tensorflow)
  endif()
  if(NOT TWINOP_JAX STREQUAL "OFF")
    list(APPEND _wanted jax)
  endif()
  if(_wanted)
    set(_query ${Python_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cmake/query_framework.py ${CMAKE_CURRENT_BINARY_DIR} ${_wanted})
    execute_process(COMMAND ${_query} RESULT_VARIABLE _status OUTPUT_QUIET ERROR_QUIET)
    if(NOT _status EQUAL 0)
      execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=PYTHONPATH --unset=PYTHONNOUSERSITE ${_query}
                      OUTPUT_QUIET ERROR_QUIET)
    endif()
  endif()
  foreach(_module IN LISTS _wanted)
    if(_module STREQUAL "torch")
      set(_prefix TORCH)
    elseif(_module STREQUAL "jax")
      set(_prefix JAX)
    else()
      set(_prefix TF)
    endif()
    if(EXISTS ${CMAKE_CURRENT_BINARY_DIR}/${_module}_settings.cmake)
      include(${CMAKE_CURRENT_BINARY_DIR}/${_module}_settings.cmake)
      set(${_prefix}_FOUND TRUE)
    else()
      file(READ ${CMAKE_CURRENT_BINARY_DIR}/${_module}_import_error.txt ${_prefix}_IMPORT_ERROR)
      message(STATUS "twinop: ${_module} not importable, its op is skipped (${${_prefix}_IMPORT_ERROR})")
    endif()
  endforeach()
endmacro()
