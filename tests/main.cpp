// Catch2's main(); the test cases are in the other tests/*.cpp files.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
