#pragma once
/// @file detail/single_thread_domain.hpp
/// @brief Reclamation for the single-threaded bus: the same interface as epoch_domain, with a
/// plain dispatch depth instead of atomics. An object retired during a dispatch is freed when
/// the outermost dispatch of this bus returns; otherwise at once.
///
/// Not thread-safe: a single_threaded_bus and everything attached to it belong to one thread.

#include <tidings/detail/epoch.hpp>

#include <cstddef>
#include <cstdint>

namespace tidings::detail {

class single_thread_domain {
public:
    /// Counts dispatch depth so that nothing a dispatch may still read is freed under it.
    class read_section {
    public:
        /// The channel is not needed: one thread, so no writer ever waits.
        explicit read_section(single_thread_domain& domain,
                              const void* /*channel*/ = nullptr) noexcept
            : domain_(domain) {
            ++domain_.depth_;
        }
        ~read_section() {
            if (--domain_.depth_ == 0 && domain_.list_ != nullptr) [[unlikely]] {
                domain_.reclaim_retired();
            }
        }
        read_section(const read_section&) = delete;
        read_section& operator=(const read_section&) = delete;

    private:
        single_thread_domain& domain_;
    };

    single_thread_domain() noexcept = default;
    single_thread_domain(const single_thread_domain&) = delete;
    single_thread_domain& operator=(const single_thread_domain&) = delete;
    ~single_thread_domain() { reclaim_list(take_reclaimable(0)); }

    std::uint64_t retire(retired* object, const void* /*scope*/ = nullptr) noexcept {
        object->next_retired = list_;
        list_ = object;
        ++count_;
        return 0;
    }

    std::uint64_t retire(retired* first, retired* second,
                         const void* /*scope*/ = nullptr) noexcept {
        retire(first);
        return retire(second);
    }

    [[nodiscard]] static bool no_other_readers() noexcept { return true; }

    /// Everything retired, unless a dispatch of this bus is running.
    [[nodiscard]] retired* take_reclaimable(std::uint64_t /*oldest*/) noexcept {
        if (depth_ != 0) return nullptr;
        retired* all = list_;
        list_ = nullptr;
        count_ = 0;
        return all;
    }

    /// Like take_reclaimable: nothing waits in one thread.
    [[nodiscard]] retired* take_waited(std::uint64_t /*tag*/, const void* /*scope*/) noexcept {
        return take_reclaimable(0);
    }

    [[nodiscard]] std::size_t pending() const noexcept { return count_; }
    [[nodiscard]] bool in_dispatch() const noexcept { return depth_ != 0; }
    /// Not tracked in one thread (an inline dispatch and a queued one look alike here).
    [[nodiscard]] static bool in_own_inline_dispatch() noexcept { return false; }
    [[nodiscard]] static std::uint64_t oldest_epoch() noexcept { return 0; }
    static void wait(std::uint64_t /*tag*/, const void* /*scope*/) noexcept {}

private:
    /// Out of line: the publish path only tests for it.
    [[gnu::noinline]] void reclaim_retired() noexcept { reclaim_list(take_reclaimable(0)); }

    std::uint32_t depth_ = 0;
    retired* list_ = nullptr;
    std::size_t count_ = 0;
};

}  // namespace tidings::detail
