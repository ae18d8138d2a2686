#pragma once
/// @file concepts.hpp
/// @brief The named requirements of tidings' public templates: tidings::event,
/// tidings::handler_for, tidings::predicate_for, tidings::command (and the result a command
/// produces, tidings::command_result_t). Standard type traits only: every layer can name them.

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

namespace detail {

/// The declared `Command::result_type`, or void when there is none.
template <class Command, class = void>
struct declared_result {
    using type = void;
};
template <class Command>
struct declared_result<Command, std::void_t<typename Command::result_type>> {
    using type = typename Command::result_type;
};

/// Stands in for a declared result_type that no function can return (an array or a function
/// type). `send`'s return type is `command_result_t<C>`: with the declared type itself, its
/// signature would be ill-formed and the user would read "no matching function for call to
/// send" instead of the static_assert that names the problem (the command concept rejects it).
template <class Result>
struct unreturnable_result {};

template <class Result>
using returnable_t = std::conditional_t<std::is_array_v<Result> || std::is_function_v<Result>,
                                        unreturnable_result<Result>, Result>;

/// True when `result_type` is a data member rather than a type: without this check it would
/// silently mean "no result" (void).
template <class Command>
concept result_type_not_a_type = requires {
    Command::result_type;
};

}  // namespace detail

/// @brief The result a command of type `Command` produces: `Command::result_type`, or void.
template <class Command>
using command_result_t = detail::returnable_t<typename detail::declared_result<Command>::type>;

/// @brief A type that can be a command: an event type whose result_type, if declared, is void
/// or a move-constructible object type (not a reference, an array or a function type), and is
/// a type (not a data member).
template <class Command>
concept command = event<Command> && !detail::result_type_not_a_type<Command> &&
                  (std::is_void_v<typename detail::declared_result<Command>::type> ||
                   (std::is_object_v<typename detail::declared_result<Command>::type> &&
                    !std::is_array_v<typename detail::declared_result<Command>::type> &&
                    std::is_move_constructible_v<typename detail::declared_result<Command>::type>));

}  // namespace tidings
