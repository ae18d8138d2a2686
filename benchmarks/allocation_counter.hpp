#pragma once
/// @file allocation_counter.hpp
/// @brief Counts the heap allocations of the whole process: allocation_counter.cpp, linked into
/// a benchmark executable, replaces the global operator new.
///
/// Thread safety: any thread may allocate and read the count. The count is relaxed: read it
/// after the threads whose allocations matter have signalled the reader (through an acquire)
/// or have been joined.

#include <cstdint>

namespace tidings_bench {

/// @brief Calls to operator new (every form) by any thread since the process started.
std::uint64_t allocations_so_far() noexcept;

}  // namespace tidings_bench
