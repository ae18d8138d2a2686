# tidings_add_compile_fail_test(NAME <name> SOURCE <file.cpp> EXPECT <regex>)
#
# Adds the ctest test `compile_fail.<name>`: compiling <file.cpp> with the project's C++
# compiler (-std=c++20 -fsyntax-only, tidings' include directory) must fail, and the
# compiler's output must match <regex> (a CMake regular expression). The work is done by
# cmake/check_compile_fail.cmake at test time, so nothing is compiled at build time.
include_guard(GLOBAL)

function(tidings_add_compile_fail_test)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;SOURCE;EXPECT" "")
    if(NOT arg_NAME OR NOT arg_SOURCE OR arg_EXPECT STREQUAL "")
        message(FATAL_ERROR "tidings_add_compile_fail_test: NAME, SOURCE and EXPECT are required")
    endif()
    get_filename_component(source "${arg_SOURCE}" ABSOLUTE)
    get_filename_component(include_dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../include" ABSOLUTE)
    # A `;` would split the command line argument in two; $<SEMICOLON> keeps the regex whole.
    string(REPLACE ";" "$<SEMICOLON>" expect "${arg_EXPECT}")
    add_test(NAME "compile_fail.${arg_NAME}"
        COMMAND "${CMAKE_COMMAND}"
            "-DCXX=${CMAKE_CXX_COMPILER}"
            "-DSRC=${source}"
            "-DINC=${include_dir}"
            "-DEXPECT=${expect}"
            -P "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/check_compile_fail.cmake")
    set_tests_properties("compile_fail.${arg_NAME}" PROPERTIES
        LABELS compile_fail
        TIMEOUT 120)
endfunction()
