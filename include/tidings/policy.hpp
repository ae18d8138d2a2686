#pragma once
/// @file policy.hpp
/// @brief The threading policies a bus is instantiated with, and the policy for exceptions
/// thrown by handlers.

#include <tidings/detail/epoch.hpp>
#include <tidings/detail/plain_atomic.hpp>
#include <tidings/detail/single_thread_domain.hpp>
#include <tidings/fwd.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string_view>
#include <type_traits>

namespace tidings {

/// @brief Threading policy of tidings::bus: any function may be called from any thread.
/// In steady state `publish` takes no lock and writes only the publishing thread's own memory
/// (see basic_bus for the rare exceptions); subscribe and unsubscribe take the bus's mutex and
/// reclaim old snapshots with epochs (see detail/epoch.hpp).
struct thread_safe {
    using mutex_type = std::mutex;
    template <class T>
    using atomic_type = std::atomic<T>;
    using domain_type = detail::epoch_domain;
    static constexpr bool is_thread_safe = true;
};

/// @brief Threading policy of tidings::single_threaded_bus: no atomics and no locks. The bus
/// and all its handles must be used by one thread at a time (and never concurrently).
struct single_thread {
    using mutex_type = detail::null_mutex;
    template <class T>
    using atomic_type = detail::plain_atomic<T>;
    using domain_type = detail::single_thread_domain;
    static constexpr bool is_thread_safe = false;
};

/// @brief A threading policy: tidings::thread_safe or tidings::single_thread.
template <class Threading>
concept threading_policy =
    std::is_same_v<Threading, thread_safe> || std::is_same_v<Threading, single_thread>;

/// @brief What a bus does when a handler throws. Either way every other subscriber of that
/// publish still runs, and no exception is lost.
enum class error_policy {
    /// After all subscribers ran, the first exception is rethrown to the publisher; any later
    /// ones go to the error handler. The default.
    rethrow_first,
    /// Every exception goes to the error handler and `publish` returns normally.
    report,
};

/// @brief What the error handler learns about a handler that threw.
struct handler_error {
    std::exception_ptr exception;   ///< what was thrown
    std::string_view event_type;    ///< the event type's name, e.g. "order_placed"
    std::uint64_t subscription_id;  ///< subscription::id() of the handler that threw
};

}  // namespace tidings
