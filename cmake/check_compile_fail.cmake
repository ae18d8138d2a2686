# cmake -DCXX=<compiler> -DSRC=<snippet.cpp> -DINC=<include dir> -DEXPECT=<regex>
#       -P check_compile_fail.cmake
#
# Passes when <snippet.cpp> does NOT compile and the diagnostics match EXPECT.
foreach(var CXX SRC INC EXPECT)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "check_compile_fail.cmake: -D${var}=... is required")
    endif()
endforeach()

# Plain ASCII quotes and English messages, whatever the user's locale.
set(ENV{LC_ALL} C)

execute_process(
    COMMAND "${CXX}" -std=c++20 -fsyntax-only "-I${INC}" "${SRC}"
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)

if(result EQUAL 0)
    message(FATAL_ERROR "${SRC} compiled, but it must not.\nExpected an error matching: ${EXPECT}")
endif()
if(NOT output MATCHES "${EXPECT}")
    message(FATAL_ERROR "${SRC} failed to compile, but no diagnostic matched: ${EXPECT}\n"
        "Compiler output:\n${output}")
endif()
message(STATUS "OK: ${SRC} failed to compile as expected (matched: ${EXPECT})")
