# tidings_set_warnings(<target> [NO_SANITIZE] [STRICT])
#
# Applies tidings' warning flags, and the sanitizers chosen with TIDINGS_SANITIZE, to one of
# our own targets (tests, examples, benchmarks). Never call it on the INTERFACE target
# `tidings`: consumers choose their own flags. NO_SANITIZE leaves the target's code
# uninstrumented (for third-party code such as Catch2's main, linked into a sanitized
# executable). STRICT adds the flags our strictest users build with (-Wshadow -Wconversion
# -Wsign-conversion -Wold-style-cast, and -Wuseless-cast on GCC): the examples and the strict
# consumer use it, so that every header template they instantiate is checked with them.
#
#   TIDINGS_WERROR    ON: warnings are errors.
#   TIDINGS_SANITIZE  "" | "address;undefined" | "thread": any list of -fsanitize= names,
#                     separated by ";" or ",".
include_guard(GLOBAL)

function(tidings_set_warnings target)
    cmake_parse_arguments(PARSE_ARGV 1 arg "NO_SANITIZE;STRICT" "" "")
    # Standard C++20, so that -Wpedantic means what it says.
    set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)

    if(MSVC)
        target_compile_options(${target} PRIVATE /W4 /permissive-)
        if(TIDINGS_WERROR)
            target_compile_options(${target} PRIVATE /WX)
        endif()
    else()
        target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
        if(arg_STRICT)
            target_compile_options(${target} PRIVATE
                -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast)
            if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
                target_compile_options(${target} PRIVATE -Wuseless-cast)
            endif()
        endif()
        if(TIDINGS_WERROR)
            target_compile_options(${target} PRIVATE -Werror)
        endif()
    endif()

    # Accept "address,undefined" as well as "address;undefined".
    string(REPLACE "," ";" sanitize "${TIDINGS_SANITIZE}")
    if(NOT sanitize OR arg_NO_SANITIZE)
        return()
    endif()
    if(MSVC)
        message(FATAL_ERROR "TIDINGS_SANITIZE is supported with GCC and Clang only")
    endif()
    if("thread" IN_LIST sanitize AND "address" IN_LIST sanitize)
        message(FATAL_ERROR "TIDINGS_SANITIZE: thread and address cannot be combined")
    endif()
    list(JOIN sanitize "," sanitizers)
    set(flags "-fsanitize=${sanitizers}" -fno-omit-frame-pointer)
    if("undefined" IN_LIST sanitize)
        # Make every UBSan finding fatal, so that ctest sees it.
        list(APPEND flags -fno-sanitize-recover=all)
    endif()
    target_compile_options(${target} PRIVATE ${flags})
    target_link_options(${target} PRIVATE ${flags})
endfunction()
