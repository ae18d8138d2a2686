#pragma once
/// @file subscriber.hpp
/// @brief tidings::subscriber<E...>, one object's handlers for several event types.

#include <tidings/bus.hpp>
#include <tidings/concepts.hpp>
#include <tidings/fwd.hpp>
#include <tidings/subscription.hpp>

#include <array>
#include <cstddef>

namespace tidings {

namespace detail {
template <class Object, class Event>
concept has_on_for = requires(Object& object, const Event& event) {
    object.on(event);
};
}  // namespace detail

/// @brief Connects `object.on(const E&)` for every `E` in `Events`, as one RAII group.
///
/// ```
/// struct audit { void on(const order_placed&); void on(const order_cancelled&); };
/// audit a;
/// tidings::subscriber<order_placed, order_cancelled> sub{bus, a};
/// ```
/// Destroying the subscriber (or unsubscribe()) disconnects all of them, with the guarantees
/// of tidings::subscription. The object must outlive the subscriber.
///
/// Thread safety: like tidings::subscription.
template <class... Events>
class subscriber {
    static_assert(sizeof...(Events) != 0, "tidings: name at least one event type");
    static_assert((detail::check_event<Events>() && ...));

public:
    /// @brief Subscribes `object.on` to each event type on `source`; the options (for example
    /// a tidings::priority) apply to every one of them.
    template <class Threading, class Object, class... Options>
    subscriber(basic_bus<Threading>& source, Object& object, const Options&... options)
        : subscriptions_{subscribe_one<Events>(source, object, options...)...} {}

    /// @brief Disconnects every handler. Idempotent.
    void unsubscribe() noexcept {
        for (subscription& s : subscriptions_) s.unsubscribe();
    }

    /// @brief True while every handler is connected.
    [[nodiscard]] bool connected() const noexcept {
        for (const subscription& s : subscriptions_) {
            if (!s.connected()) return false;
        }
        return true;
    }

private:
    template <class Event, class Threading, class Object, class... Options>
    static subscription subscribe_one(basic_bus<Threading>& source, Object& object,
                                      const Options&... options) {
        static_assert(detail::has_on_for<Object, Event>,
                      "tidings::subscriber: the object has no member `on(const Event&)` that "
                      "accepts one of the listed event types; add an `on` overload for it");
        if constexpr (detail::has_on_for<Object, Event>) {
            return source.template subscribe<Event>(
                [target = &object](const Event& event) { target->on(event); }, options...);
        } else {
            return {};
        }
    }

    std::array<subscription, sizeof...(Events)> subscriptions_;
};

}  // namespace tidings
