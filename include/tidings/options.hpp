#pragma once
/// @file options.hpp
/// @brief The options a subscription accepts after its handler, in any order:
/// `bus.subscribe<E>(handler, tidings::priority{10}, tidings::filter(check), tidings::once)`.

#include <tidings/fwd.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace tidings {

/// @brief Runs the handler before those of lower priority; equal priorities run in the order
/// they subscribed. The default is 0.
struct priority {
    int value = 0;
};

/// @brief A check that must hold for the handler to run: the "condition" of a listener rule.
/// The predicate is called with `const E&` just before the handler, in the thread that runs
/// the handler (the publisher's, or the executor's for a queued subscriber).
template <class Predicate>
struct filter {
    Predicate predicate;
    explicit filter(Predicate check) noexcept(std::is_nothrow_move_constructible_v<Predicate>)
        : predicate(std::move(check)) {}
};
template <class Predicate>
filter(Predicate) -> filter<Predicate>;

/// @brief The type of tidings::once.
struct once_t {
    explicit once_t() = default;
};
/// @brief The handler runs for one event at most, then the subscription ends by itself.
/// Under concurrent publishes exactly one call happens.
inline constexpr once_t once{};

/// @brief Ends the subscription when the tracked object is gone. While the handler runs, the
/// object is kept alive (its weak_ptr is locked), so the handler never sees a dead object.
template <class T>
struct track {
    std::weak_ptr<T> object;
    explicit track(std::weak_ptr<T> tracked) noexcept : object(std::move(tracked)) {}
    explicit track(const std::shared_ptr<T>& tracked) noexcept : object(tracked) {}
};
template <class T>
track(std::shared_ptr<T>) -> track<T>;
template <class T>
track(std::weak_ptr<T>) -> track<T>;

/// @brief The type of tidings::replay.
struct replay_t {
    std::size_t count;
    /// @brief Replays at most the newest `n` retained events.
    [[nodiscard]] constexpr replay_t operator()(std::size_t n) const noexcept { return {n}; }
};

/// @brief The new subscriber first receives the events its channel retained
/// (`bus.retain<E>(n)`), oldest first, then the live ones, with no gap and no duplicate.
/// `tidings::replay` replays all that are retained; `tidings::replay(k)` the newest k.
inline constexpr replay_t replay{static_cast<std::size_t>(-1)};

namespace detail {

template <class T>
struct is_filter : std::false_type {};
template <class P>
struct is_filter<filter<P>> : std::true_type {};

template <class T>
struct is_track : std::false_type {};
template <class T>
struct is_track<track<T>> : std::true_type {};

template <class T>
inline constexpr bool is_priority = std::is_same_v<T, priority>;

template <class T>
struct is_deliver_on : std::false_type {};
template <template <class> class Option, class Executor>
requires requires { typename Option<Executor>::is_delivery_option; }
struct is_deliver_on<Option<Executor>> : std::true_type {};
template <class T>
inline constexpr bool is_once = std::is_same_v<T, once_t>;

template <class T>
struct is_replay_trait : std::bool_constant<std::is_same_v<T, replay_t>> {};

/// True for the option types subscribe understands.
template <class T>
inline constexpr bool is_subscribe_option =
    is_priority<T> || is_once<T> || is_filter<T>::value || is_track<T>::value ||
    is_deliver_on<T>::value || std::is_same_v<T, replay_t>;

/// "No option of this kind was given."
struct no_option {};

/// The first option whose decayed type satisfies Trait, or no_option.
template <template <class> class Trait, class... Options>
constexpr decltype(auto) find_option(Options&&... options) {
    if constexpr (sizeof...(Options) == 0) {
        return no_option{};
    } else {
        return [](auto&& first, auto&&... rest) -> decltype(auto) {
            if constexpr (Trait<std::remove_cvref_t<decltype(first)>>::value) {
                return std::forward<decltype(first)>(first);
            } else {
                return find_option<Trait>(std::forward<decltype(rest)>(rest)...);
            }
        }(std::forward<Options>(options)...);
    }
}

template <class T>
struct is_priority_trait : std::bool_constant<is_priority<T>> {};
template <class T>
struct is_once_trait : std::bool_constant<is_once<T>> {};

template <template <class> class Trait, class... Options>
inline constexpr std::size_t count_options = (std::size_t{0} + ... +
                                              (Trait<std::remove_cvref_t<Options>>::value ? 1 : 0));

/// Checks that no kind of option is given twice, with one message per kind (for subscribe,
/// handle and observe alike, whichever kinds each accepts).
template <class... Options>
constexpr bool options_given_once() {
    constexpr bool priorities = count_options<is_priority_trait, Options...> <= 1;
    static_assert(priorities, "tidings: tidings::priority given twice");
    constexpr bool filters = count_options<is_filter, Options...> <= 1;
    static_assert(filters, "tidings: tidings::filter given twice; combine the checks in one");
    constexpr bool tracks = count_options<is_track, Options...> <= 1;
    static_assert(tracks, "tidings: tidings::track given twice");
    constexpr bool executors = count_options<is_deliver_on, Options...> <= 1;
    static_assert(executors, "tidings: tidings::deliver_on given twice");
    constexpr bool replays = count_options<is_replay_trait, Options...> <= 1;
    static_assert(replays, "tidings: tidings::replay given twice");
    return priorities && filters && tracks && executors && replays;
}

}  // namespace detail
}  // namespace tidings
