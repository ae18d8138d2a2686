#pragma once
/// @file concepts.hpp
/// @brief The named requirements of tidings' public templates.

#include <concepts>
#include <type_traits>

namespace tidings {

/// @brief A type that can be an event (or a command): a complete object type that is not an
/// array, not cv-qualified, and can be copied or moved (queued delivery stores a copy).
///
/// The type *is* the channel: `publish(order_placed{...})` reaches the subscribers of
/// `order_placed` and of nothing else.
template <class Event>
concept event = std::is_object_v<Event> && !std::is_array_v<Event> &&
                std::is_same_v<Event, std::remove_cv_t<Event>> && std::is_destructible_v<Event> &&
                (std::is_copy_constructible_v<Event> || std::is_move_constructible_v<Event>);

/// @brief A callable that can handle `Event`: invocable with `const Event&` (its result, if
/// any, is ignored).
template <class Handler, class Event>
concept handler_for = event<Event> && std::is_invocable_v<Handler&, const Event&>;

/// @brief A predicate over `Event`, as used by tidings::filter: a check that returns something
/// convertible to bool.
template <class Predicate, class Event>
concept predicate_for = std::is_invocable_v<Predicate&, const Event&> &&
                        std::convertible_to < std::invoke_result_t<Predicate&, const Event&>,
bool > ;

}  // namespace tidings
