#pragma once
/// @file publisher.hpp
/// @brief tidings::publisher<E>, a handle bound to one channel of a bus.

#include <tidings/bus.hpp>
#include <tidings/config.hpp>
#include <tidings/policy.hpp>

#include <memory>
#include <utility>

namespace tidings {

/// @brief Publishes events of one type on one bus, skipping the per-publish channel lookup.
///
/// `tidings::publisher<order_placed> orders{bus}; orders.publish({1, 9.5});` behaves exactly
/// like `bus.publish(order_placed{1, 9.5})`. The publisher keeps the bus's channels alive, so
/// publishing after the bus was destroyed is safe and reaches no one.
///
/// @tparam Event the event type.
/// @tparam Threading the bus's threading policy (tidings::thread_safe for tidings::bus,
///   tidings::single_thread for tidings::single_threaded_bus: a publisher of the wrong one is
///   a compile error that says so).
///
/// Thread safety: like its bus. For tidings::bus, one publisher may be used by many threads at
/// once; publish is lock-free and allocation-free.
template <class Event, class Threading = thread_safe>
class publisher {
    static_assert(detail::check_event<Event>());

public:
    /// @brief Binds to the channel of `Event` on `source`, creating it if needed.
    /// @throws std::bad_alloc when the channel cannot be made; strong guarantee (the bus is as
    ///   before, or holds an empty channel of `Event`, which changes nothing it does).
    /// Thread safety: like the bus's subscribe.
    explicit publisher(basic_bus<Threading>& source)
        : core_(source.core_), channel_(&core_->template channel_for<Event>()) {}

    /// @brief A bus of the other threading policy: a compile error that names the fix.
    template <class OtherThreading>
    explicit publisher(basic_bus<OtherThreading>& /*source*/) : channel_(nullptr) {
        static_assert(OtherThreading::is_thread_safe,
                      "tidings: publisher<Event> publishes on a tidings::bus, for a "
                      "tidings::single_threaded_bus name its threading policy: "
                      "tidings::publisher<Event, tidings::single_thread> p{bus}");
        static_assert(!OtherThreading::is_thread_safe,
                      "tidings: publisher<Event, tidings::single_thread> publishes on a "
                      "tidings::single_threaded_bus; for a tidings::bus use "
                      "tidings::publisher<Event> p{bus}");
    }

    /// @brief Publishes `event`; see basic_bus::publish.
    publish_result publish(const Event& event) const { return channel_->publish(event); }

    /// @brief Publishes `event`, moving it into the last executor's queue; see
    /// basic_bus::publish.
    publish_result publish(Event&& event) const { return channel_->publish(std::move(event)); }

    /// @brief Same as publish().
    publish_result operator()(const Event& event) const { return channel_->publish(event); }

private:
    std::shared_ptr<detail::bus_core<Threading>> core_;
    detail::channel<Event, Threading>* channel_;
};

}  // namespace tidings
