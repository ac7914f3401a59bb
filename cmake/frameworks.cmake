# Finds a framework by asking the build's Python (never find_package(Torch), which adds a
# libtorch.so dependency and a junk RUNPATH). Under pip's build isolation the framework is
# invisible, so a failed query is retried with the isolation variables unset: the build then
# uses the frameworks installed where the wheel goes, and downloads nothing.
#
# twinop_query_framework(<python module> <PREFIX> <AUTO|ON|OFF>) sets <PREFIX>_FOUND and either
# the <PREFIX>_* settings written by query_framework.py or <PREFIX>_IMPORT_ERROR.
macro(twinop_query_framework module prefix mode)
  set(${prefix}_FOUND FALSE)
  if(NOT "${mode}" STREQUAL "OFF")
    set(_settings ${CMAKE_CURRENT_BINARY_DIR}/${module}_settings.cmake)
    set(_query ${Python_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cmake/query_framework.py ${module} ${_settings})
    execute_process(COMMAND ${_query} RESULT_VARIABLE _status ERROR_VARIABLE _error OUTPUT_QUIET)
    if(NOT _status EQUAL 0)
      execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=PYTHONPATH --unset=PYTHONNOUSERSITE ${_query}
                      RESULT_VARIABLE _status ERROR_VARIABLE _error OUTPUT_QUIET)
    endif()
    if(_status EQUAL 0)
      include(${_settings})
      set(${prefix}_FOUND TRUE)
    else()
      string(REGEX MATCH "[A-Za-z]*Error: [^\n]*" ${prefix}_IMPORT_ERROR "${_error}")
      message(STATUS "twinop: ${module} not importable, its op is skipped (${${prefix}_IMPORT_ERROR})")
    endif()
  endif()
endmacro()
