# Run with cmake -P. Checks that an installed mailbars can be used by another project:
#  1. `cmake --install BUILD_DIR --prefix WORK_DIR/prefix`;
#  2. configure and build PROJECT_DIR with find_package(mailbars) (shared and static targets);
#  3. run both programs (they compare mailbars_version() with MAILBARS_VERSION_STRING);
#  4. compile the same program with `pkg-config --cflags --libs mailbars` and run it.
# Inputs (-D): BUILD_DIR PROJECT_DIR WORK_DIR C_COMPILER PKG_CONFIG LIBDIR EXPECTED_VERSION
#              EXTRA_FLAGS (compiler+linker flags for the consumer, e.g. sanitizers).
cmake_minimum_required(VERSION 3.25)

set(passed 0)
set(failed 0)

# Ends the test with the closing count line; FATAL_ERROR when anything failed.
function(finish)
  message("${passed} passed, ${failed} failed")
  if(failed GREATER 0)
    message(FATAL_ERROR "consumer test failed")
  endif()
endfunction()

# Runs a command (the arguments after NAME), counts it as one check, stops at the first failure.
# With EXPECT "text" the command's stdout must contain that text (literally).
function(step name)
  cmake_parse_arguments(S "" "EXPECT" "COMMAND" ${ARGN})
  execute_process(COMMAND ${S_COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  set(ok TRUE)
  if(NOT rc EQUAL 0)
    set(ok FALSE)
  elseif(DEFINED S_EXPECT)
    string(FIND "${out}" "${S_EXPECT}" at)
    if(at EQUAL -1)
      set(ok FALSE)
      string(APPEND err "expected output containing: ${S_EXPECT}\n")
    endif()
  endif()
  if(ok)
    math(EXPR p "${passed} + 1")
    set(passed ${p} PARENT_SCOPE)
    message("ok: ${name}")
  else()
    math(EXPR f "${failed} + 1")
    set(failed ${f})
    message("FAILED: ${name} (exit ${rc})\n--- command: ${S_COMMAND}\n--- stdout:\n${out}\n"
            "--- stderr:\n${err}")
    finish()
  endif()
endfunction()

foreach(v BUILD_DIR PROJECT_DIR WORK_DIR C_COMPILER LIBDIR EXPECTED_VERSION)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "consumer_test.cmake: -D${v}=... is required")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
separate_arguments(extra UNIX_COMMAND "${EXTRA_FLAGS}")
set(expect "mailbars ${EXPECTED_VERSION}\n")

step("install into a temporary prefix"
     COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

step("configure the consumer with find_package(mailbars)"
     EXPECT "found in ${prefix}/"
     COMMAND ${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${WORK_DIR}/build"
             "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_C_COMPILER=${C_COMPILER}"
             "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}"
             -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)

step("build the consumer" COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}/build")

step("run the consumer (mailbars::mailbars, shared)" EXPECT "${expect}"
     COMMAND "${WORK_DIR}/build/consumer")

step("run the consumer (mailbars::mailbars_static)" EXPECT "${expect}"
     COMMAND "${WORK_DIR}/build/consumer_static")

if(NOT PKG_CONFIG)
  message("skipped: the pkg-config checks (pkg-config not found)")
  finish()
  return()
endif()

set(ENV{PKG_CONFIG_PATH} "${prefix}/${LIBDIR}/pkgconfig")
step("pkg-config finds mailbars in the prefix" COMMAND "${PKG_CONFIG}" --exists --print-errors
     mailbars)
execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs mailbars
                OUTPUT_VARIABLE pc_flags OUTPUT_STRIP_TRAILING_WHITESPACE)
message("pkg-config --cflags --libs mailbars: ${pc_flags}")
string(FIND "${pc_flags}" "-I${prefix}/include" at_inc)
string(FIND "${pc_flags}" "-L${prefix}/${LIBDIR}" at_lib)
if(at_inc EQUAL -1 OR at_lib EQUAL -1)
  message("FAILED: pkg-config flags do not point into ${prefix}: ${pc_flags}")
  math(EXPR failed "${failed} + 1")
  finish()
endif()
separate_arguments(pc_list UNIX_COMMAND "${pc_flags}")

step("compile the consumer with pkg-config flags"
     COMMAND "${C_COMPILER}" ${extra} "${PROJECT_DIR}/main.c" -o "${WORK_DIR}/consumer_pc"
             ${pc_list} "-Wl,-rpath,${prefix}/${LIBDIR}")

step("run the pkg-config consumer" EXPECT "${expect}" COMMAND "${WORK_DIR}/consumer_pc")

finish()
