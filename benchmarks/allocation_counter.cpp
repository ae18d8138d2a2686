/// @file allocation_counter.cpp
/// @brief Replaces the global operator new of the executable it is linked into, to count heap
/// allocations (see allocation_counter.hpp). Only allocations pay for the count: a contender
/// that does not allocate runs exactly as it would without it. The standard library's array and
/// nothrow forms forward to the two replaced here. In a file of its own so that no caller sees
/// these definitions: inlined next to a `new` expression, GCC would take the free() in delete
/// for a mismatched deallocation (-Wmismatched-new-delete).

#include "allocation_counter.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::uint64_t> allocation_count{0};
}  // namespace

std::uint64_t tidings_bench::allocations_so_far() noexcept {
    return allocation_count.load(std::memory_order_relaxed);
}

void* operator new(std::size_t size) {
    allocation_count.fetch_add(1, std::memory_order_relaxed);
    if (void* memory = std::malloc(std::max<std::size_t>(size, 1))) return memory;
    throw std::bad_alloc{};
}

void* operator new(std::size_t size, std::align_val_t alignment) {
    allocation_count.fetch_add(1, std::memory_order_relaxed);
    const auto align = static_cast<std::size_t>(alignment);
    // aligned_alloc wants a size that is a multiple of the alignment.
    const std::size_t rounded = (std::max<std::size_t>(size, 1) + align - 1) / align * align;
    if (void* memory = std::aligned_alloc(align, rounded)) return memory;
    throw std::bad_alloc{};
}

void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete(void* memory, std::align_val_t) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t, std::align_val_t) noexcept { std::free(memory); }
