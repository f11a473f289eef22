# Adds every direct or nested subdirectory of `dir` that has a CMakeLists.txt (depth-first, one
# level of nesting handled by the child itself). Parts can be added without editing shared files.
function(ep_add_subdirectories dir)
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${dir} ${dir}/*)
  list(SORT children)
  foreach(child ${children})
    if(IS_DIRECTORY ${dir}/${child})
      if(EXISTS ${dir}/${child}/CMakeLists.txt)
        add_subdirectory(${dir}/${child})
      else()
        ep_add_subdirectories(${dir}/${child})
      endif()
    endif()
  endforeach()
endfunction()

# ep_test(<name> SOURCES a.cc b.cc LIBS ep_x ep_y [LABELS integration] [SERIAL])
# Labels: unit (default), integration (integration-haproxy: see below), browser.
# SERIAL: ctest runs its tests alone (RUN_SERIAL), for latency figures.
function(ep_test name)
  cmake_parse_arguments(T "SERIAL" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    EP_TESTDATA_DIR="${PROJECT_SOURCE_DIR}/tests/testdata"
    EP_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    EP_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  # Integration tests that start a real HAProxy (they link its fixture) are labelled
  # `integration-haproxy` instead: `-L integration` (a regex) still selects them, and
  # `make test-haproxy3` runs only them again on HAProxy 3.0 (`-L haproxy`; the other
  # integration tests cannot depend on which HAProxy is installed). One label, not a list:
  # gtest_discover_tests flattens a list-valued LABELS.
  if(T_LABELS STREQUAL "integration" AND "ep_test_haproxy" IN_LIST T_LIBS)
    set(T_LABELS integration-haproxy)
  endif()
  if(T_SERIAL)
    gtest_discover_tests(${name} PROPERTIES LABELS "${T_LABELS}" RUN_SERIAL TRUE DISCOVERY_TIMEOUT 30)
  else()
    gtest_discover_tests(${name} PROPERTIES LABELS "${T_LABELS}" DISCOVERY_TIMEOUT 30)
  endif()
endfunction()
