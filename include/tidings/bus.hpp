#pragma once
/// @file bus.hpp
/// @brief tidings::basic_bus, and its two instances tidings::bus (thread-safe) and
/// tidings::single_threaded_bus.

#include <tidings/concepts.hpp>
#include <tidings/config.hpp>
#include <tidings/delivery.hpp>
#include <tidings/detail/bus_core.hpp>
#include <tidings/detail/callable_traits.hpp>
#include <tidings/detail/channel.hpp>
#include <tidings/detail/executor_core.hpp>
#include <tidings/fwd.hpp>
#include <tidings/options.hpp>
#include <tidings/policy.hpp>
#include <tidings/subscription.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace tidings {

namespace detail {

/// Checks an event type where the user names it; one readable message per reason.
template <class Event>
constexpr bool check_event() {
    static_assert(!std::is_reference_v<Event>,
                  "tidings: an event type cannot be a reference; use the plain type, "
                  "e.g. subscribe<order_placed> (handlers receive `const order_placed&`)");
    static_assert(!std::is_void_v<Event>, "tidings: an event type cannot be void");
    static_assert(!std::is_same_v<Event, undeducible_event>,
                  "tidings: cannot deduce the event type from this handler (a generic lambda, "
                  "an overloaded function object, or a callable without exactly one "
                  "parameter); name the event type: bus.subscribe<Event>(handler)");
    static_assert(std::is_reference_v<Event> || std::is_void_v<Event> || std::is_object_v<Event>,
                  "tidings: an event type must be an object type (not a function type)");
    static_assert(!std::is_array_v<Event>,
                  "tidings: an event type cannot be an array; "
                  "wrap it in a struct or use std::array");
    static_assert(std::is_same_v<Event, std::remove_cv_t<Event>>,
                  "tidings: an event type cannot be const or volatile; use the plain type");
    static_assert(!std::is_object_v<Event> || std::is_array_v<Event> ||
                      std::is_copy_constructible_v<Event> || std::is_move_constructible_v<Event>,
                  "tidings: an event type must be copy- or move-constructible "
                  "(queued delivery stores a copy of the event)");
    return event<Event>;
}

/// The command members of basic_bus (handle, send, send_async) are defined in command.hpp, by
/// its specialization of this template (the third argument void), so that bus.hpp needs
/// neither the command channel nor <future>. This primary template is what a translation unit
/// that did not include command.hpp finds; `Dependent` (the command or handler type) makes the
/// check wait for a call.
template <class Threading, class Dependent, class = void>
struct bus_commands {
    static constexpr bool defined = false;
};

/// True when command.hpp defined the command members; otherwise a compile error that names
/// the header.
template <class Commands>
constexpr bool commands_included() {
    static_assert(Commands::defined,
                  "tidings: bus.handle, bus.send and bus.send_async are defined in "
                  "<tidings/command.hpp>: include it (or <tidings/tidings.hpp>)");
    return Commands::defined;
}

}  // namespace detail

/// @brief The event bus: a registry of channels, one per event type, each with its
/// subscribers. `publish(e)` calls every subscriber of `E` in the calling thread, in priority
/// order (higher first), ties in subscription order, and returns when all have run.
///
/// @tparam Threading tidings::thread_safe (see tidings::bus) or tidings::single_thread
/// (see tidings::single_threaded_bus).
///
/// Guarantees:
/// - In steady state, publish allocates nothing and takes no lock, and with
///   tidings::thread_safe writes no memory shared with other publishing threads. The
///   exceptions are rare paths: a thread's first publish registers it (one allocation); a
///   `once` handler firing, a tracked object found dead, or an exception being reported take
///   the bus's mutex; a channel that retains events serializes its publishes (see retain).
/// - A handler may publish, subscribe and unsubscribe (itself or others); a subscription made
///   during a dispatch does not receive the event being dispatched; one removed during a
///   dispatch before its turn is not called.
/// - A throwing handler does not stop the others; see tidings::error_policy.
/// - Destroying the bus disconnects every subscription (their handles stay safe to use).
///
/// Thread safety: with tidings::thread_safe every member function may be called from any
/// thread at once, and handlers of one event may run concurrently in several publishing
/// threads. With tidings::single_thread, the bus and its handles belong to one thread.
template <class Threading>
class basic_bus {
    static_assert(threading_policy<Threading>,
                  "tidings: the threading policy must be tidings::thread_safe or "
                  "tidings::single_thread");

public:
    using threading = Threading;

    /// @brief An empty bus.
    basic_bus() : core_(std::make_shared<core_type>()) {}

    /// @brief Disconnects every subscription; with tidings::thread_safe, waits until no
    /// handler of this bus is still running in another thread.
    /// @warning Destroying a bus while it is publishing in another thread is undefined
    /// behaviour. Destroying it inside one of its own inline handlers ends the process with a
    /// `tidings:` message (a tidings::bus; for a single_threaded_bus it is undefined
    /// behaviour); inside one of its own queued handlers, or another bus's handler, it is
    /// allowed.
    ~basic_bus() {
        if (core_ != nullptr) core_->shutdown();
    }

    /// @brief Moves the bus: subscriptions and publishers stay attached to it.
    basic_bus(basic_bus&&) noexcept = default;
    basic_bus& operator=(basic_bus&& other) noexcept {
        if (this != &other) {
            if (core_ != nullptr) core_->shutdown();
            core_ = std::move(other.core_);
        }
        return *this;
    }
    basic_bus(const basic_bus&) = delete;
    basic_bus& operator=(const basic_bus&) = delete;

    /// @brief Connects `handler` to the events of type `Event`.
    /// @param handler any callable invocable with `const Event&` (lambda, function pointer,
    ///   function object), or a member function pointer followed by the object to call it on
    ///   (a reference or a pointer; a null pointer throws std::invalid_argument).
    /// @param options any of tidings::priority, tidings::filter, tidings::once, tidings::track,
    ///   tidings::deliver_on and tidings::replay (each at most once; replay not with once).
    /// @return the subscription; destroying it disconnects the handler.
    /// @throws std::bad_alloc, or what copying the handler throws. With tidings::replay, also
    ///   what copying a retained event throws, what queuing a replayed event throws
    ///   (tidings::queue_full, executor_stopped, would_deadlock), and, for an inline subscriber
    ///   under error_policy::rethrow_first, the first exception of its filter or handler
    ///   during the replay (after the rest of the replay ran).
    ///   Strong guarantee: when it throws, the subscription is undone (or was never made) and
    ///   the bus and its retained events are as before; replayed events already given to the
    ///   handler stay given, replayed tasks already queued are cancelled, and no live event
    ///   reaches the handler.
    ///   A queued replay that the executor refuses in part without throwing (overflow::drop,
    ///   a full queue or a stopped executor) skips the refused events, which the executor
    ///   counts (executor_stats::dropped or rejected); the handler receives the accepted ones,
    ///   oldest first, then every live event the executor accepts, none held back.
    /// Thread safety: see the class. Takes the bus's mutex. With tidings::replay it also takes
    ///   the channel's retention mutex, so it waits for publishes of `Event` under way, and
    ///   publishes of `Event` wait for it: during an inline replay (even if the handler turns
    ///   retention off), and while an overflow::drop or overflow::fail executor is given the
    ///   replayed events (an overflow::block one may wait for space, so it is given them
    ///   without the mutex). Without tidings::replay it never waits for running handlers.
    template <class Event, class Handler, class... Options>
    [[nodiscard]] subscription subscribe(Handler&& handler, Options&&... options) {
        if constexpr (std::is_member_function_pointer_v<std::remove_cvref_t<Handler>>) {
            return subscribe_member<Event>(std::forward<Handler>(handler),
                                           std::forward<Options>(options)...);
        } else if constexpr (detail::check_event<Event>()) {
            static_assert(std::is_invocable_v<std::decay_t<Handler>&, const Event&>,
                          "tidings: this handler cannot be called with `const Event&` for the "
                          "event type it subscribes to; give it a parameter that accepts "
                          "`const Event&` (for example `const Event&` or `Event`)");
            if constexpr (std::is_invocable_v<std::decay_t<Handler>&, const Event&>) {
                return make_subscription<Event>(std::forward<Handler>(handler),
                                                std::forward<Options>(options)...);
            } else {
                return {};
            }
        } else {
            return {};
        }
    }

    /// @brief Connects `handler`, deducing the event type from its parameter
    /// (`bus.subscribe([](const order_placed& e) {...})`), or a member function with its
    /// object, by reference or by pointer (`bus.subscribe(&audit::on_placed, audit_object)` or
    /// `bus.subscribe(&audit::on_placed, &audit_object)`). A generic lambda cannot be deduced
    /// from: name the type with subscribe<Event>.
    /// @throws as subscribe<Event>; std::invalid_argument for a null object pointer (nothing
    ///   subscribed).
    template <class Handler, class... Options>
    [[nodiscard]] subscription subscribe(Handler&& handler, Options&&... options) {
        if constexpr (std::is_member_function_pointer_v<std::remove_cvref_t<Handler>>) {
            using Event = detail::event_of_member<Handler>;
            if constexpr (detail::check_event<Event>()) {
                return subscribe_member<Event>(std::forward<Handler>(handler),
                                               std::forward<Options>(options)...);
            } else {
                return {};
            }
        } else {
            using Event = detail::event_of_callable<Handler>;
            if constexpr (detail::check_event<Event>()) {
                return subscribe<Event>(std::forward<Handler>(handler),
                                        std::forward<Options>(options)...);
            } else {
                return {};
            }
        }
    }

    /// @brief Calls every inline subscriber of the event's type, in this thread, then queues
    /// the event once to each executor that has subscribers of that type (see
    /// tidings::deliver_on), and returns without waiting for those.
    /// @param event the event; its type (without cv and reference) is the channel. An rvalue
    ///   is moved into the last executor's queue; a move-only event can be queued to one
    ///   executor only.
    /// @return how many executors accepted or dropped the event (overflow::drop).
    /// @throws whatever the first throwing inline handler threw, after all handlers ran, when
    ///   the error policy is error_policy::rethrow_first (the default); tidings::queue_full,
    ///   tidings::executor_stopped or tidings::would_deadlock from a queue, after every other
    ///   executor was offered the event (would_deadlock also when a full overflow::block queue
    ///   was waited for by its own consumer thread, which canceled this publish's wait).
    ///   std::bad_alloc from a thread's first publish if its per-thread record cannot be
    ///   allocated: before any delivery (strong guarantee). std::bad_alloc from a queue when a
    ///   thread's first queued publish to an executor cannot allocate its lane: as for the
    ///   other queue errors, after the inline subscribers ran and the other executors were
    ///   offered the event.
    ///   tidings::type_mismatch, before any delivery, when a type of another module with the
    ///   same name and another layout is on the bus (every lookup of a type checks this).
    ///   On a retaining channel (see retain), what copying the event into the retained ring
    ///   throws (a throwing copy, std::bad_alloc), whatever the error policy; then with the
    ///   strong guarantee: no subscriber was called, nothing was queued or kept.
    ///   What copying or moving the event into a queue throws, or std::bad_alloc for the heap
    ///   copy of an event larger than a slot: as for the other queue errors.
    ///   Exception guarantee: basic. The inline subscribers ran; each executor has the event
    ///   queued once or not at all (the one that threw: not at all); nothing leaks, and the
    ///   bus keeps working (tests/allocation_failure.cpp, tests/throwing_events.cpp).
    /// Thread safety: see the class. Lock-free; allocation-free for events that fit a queue
    /// slot (a block-policy queue waits, by its wait strategy, while it is full).
    template <class Arg>
    publish_result publish(Arg&& event) {
        using Event = std::remove_cvref_t<Arg>;
        static_assert(detail::check_event<Event>());
        TIDINGS_ASSERT(core_ != nullptr, "publish on a moved-from bus");
        if (auto* target = core_->template find_channel<Event>()) {
            return target->publish(std::forward<Arg>(event));
        }
        return {};
    }

    /// @brief Registers the one handler of the command type `Command`.
    /// @param handler a callable invocable with `const Command&` whose result converts to
    ///   `Command::result_type` (or anything, when the command declares no result).
    /// @param options tidings::deliver_on(executor) to run the handler on an executor.
    /// @return the registration; destroying it removes the handler, with the guarantees of
    ///   tidings::subscription.
    /// @throws tidings::duplicate_handler if the command already has a handler on this bus;
    ///   std::bad_alloc, or what copying or moving the handler throws. Strong guarantee:
    ///   nothing is registered, and the handler's copy is destroyed.
    /// Thread safety: see the class; concurrent registrations of one command type: exactly
    /// one succeeds.
    /// Defined in command.hpp (include it, or tidings.hpp), as are the other command members.
    template <class Command, class Handler, class... Options>
    [[nodiscard]] subscription handle(Handler&& handler, Options&&... options) {
        using commands = detail::bus_commands<Threading, Command>;
        if constexpr (detail::commands_included<commands>()) {
            return commands::template handle<Command>(*this, std::forward<Handler>(handler),
                                                      std::forward<Options>(options)...);
        } else {
            return {};
        }
    }

    /// @brief Registers `handler`, deducing the command type from its parameter
    /// (`bus.handle([](const charge_payment& c) { return receipt{...}; })`). A generic lambda
    /// cannot be deduced from: name the type with handle<Command>.
    template <class Handler, class... Options>
    [[nodiscard]] subscription handle(Handler&& handler, Options&&... options) {
        using commands = detail::bus_commands<Threading, Handler>;
        if constexpr (detail::commands_included<commands>()) {
            return commands::handle(*this, std::forward<Handler>(handler),
                                    std::forward<Options>(options)...);
        } else {
            return {};
        }
    }

    /// @brief Runs the command on its one handler and returns the handler's result. With an
    /// inline handler it runs in this thread; with a queued one this thread waits for it.
    /// @return the handler's result, a `tidings::command_result_t<Command>` (`Command` being
    ///   the argument's type without cv and reference).
    /// @throws tidings::no_handler if the command has no handler; whatever the handler threw;
    ///   tidings::would_deadlock when called from the thread of the executor that runs the
    ///   handler; tidings::executor_stopped / queue_full from that executor's queue.
    ///   std::bad_alloc from a thread's first send (or publish) if its per-thread record
    ///   cannot be allocated, before the handler runs or anything is queued (strong).
    ///   For a queued handler, std::bad_alloc or what copying the command into the queue
    ///   throws, before anything is queued (strong); what moving the result throws, after the
    ///   handler ran. Either way the handler runs at most once.
    /// Thread safety: see the class.
    template <class Arg>
    decltype(auto) send(Arg&& command) {
        using commands = detail::bus_commands<Threading, std::remove_cvref_t<Arg>>;
        if constexpr (detail::commands_included<commands>()) {
            return commands::send(*this, std::forward<Arg>(command));
        }
    }

    /// @brief Like send, but returns a std::future of the result (or of the exception): ready
    /// at once for an inline handler, fulfilled by the executor for a queued one.
    /// @return a `std::future<tidings::command_result_t<Command>>`.
    /// @throws tidings::no_handler if the command has no handler now; for a queued handler,
    ///   what its executor's queue throws (executor_stopped, would_deadlock from a blocking
    ///   push on the executor's own thread) or queue_full when overflow::drop refused it;
    ///   std::bad_alloc as for send, with the strong guarantee; for an inline handler,
    ///   std::bad_alloc when the future's state cannot be made, before the handler runs
    ///   (strong). What the handler, or moving its result, throws is in the future.
    template <class Arg>
    decltype(auto) send_async(Arg&& command) {
        using commands = detail::bus_commands<Threading, std::remove_cvref_t<Arg>>;
        if constexpr (detail::commands_included<commands>()) {
            return commands::send_async(*this, std::forward<Arg>(command));
        }
    }

    /// @brief Keeps the newest `count` events of type `Event` for late subscribers that ask
    /// for them with tidings::replay; 0 (the default) keeps none and frees what was kept.
    /// While a channel retains events, its publishes are serialized (one total order): keep
    /// handlers of retained types short, and do not block in them on a thread that publishes
    /// the same type.
    /// @throws std::bad_alloc, what copying a kept event throws (when its move may throw),
    ///   or std::length_error for an impossible `count`. Strong guarantee: the kept events
    ///   and the count in force are then as before.
    /// Thread safety: see the class. Called by a handler during its inline replay (any
    ///   count, 0 too), it takes effect at once, but the publishes of `Event` stay serialized
    ///   until that replay ends, so that none reaches the handler beside it.
    template <class Event>
    void retain(std::size_t count) {
        static_assert(detail::check_event<Event>());
        static_assert(std::is_copy_constructible_v<Event>,
                      "tidings: retained events are copies: the event type must be copyable");
        TIDINGS_ASSERT(core_ != nullptr, "retain on a moved-from bus");
        core_->retain(core_->template channel_for<Event>(), count);
    }

    /// @brief How many handlers are connected to `Event` now.
    /// @throws tidings::type_mismatch when another module's type of the same name has another
    ///   layout (see docs/guide.md, "Plugins and shared libraries").
    /// Thread safety: any thread; the answer may be stale by the time it is used.
    template <class Event>
    [[nodiscard]] std::size_t subscriber_count() const {
        static_assert(detail::check_event<Event>());
        TIDINGS_ASSERT(core_ != nullptr, "subscriber_count on a moved-from bus");
        const auto* target = core_->template find_channel<Event>();
        return target != nullptr ? target->size() : 0;
    }

    /// @brief Chooses what happens when a handler throws (default: error_policy::rethrow_first).
    /// Thread safety: any thread; publishes already running may still use the old policy.
    void set_error_policy(error_policy policy) noexcept {
        TIDINGS_ASSERT(core_ != nullptr, "set_error_policy on a moved-from bus");
        core_->set_error_policy(policy);
    }

    /// @brief Sets the function that receives handler exceptions not rethrown to a publisher.
    /// Without one, they are printed to stderr. It runs in the publishing thread and must not
    /// throw (if it does, std::terminate is called).
    /// Thread safety: any thread.
    void set_error_handler(std::function<void(const handler_error&)> handler) {
        TIDINGS_ASSERT(core_ != nullptr, "set_error_handler on a moved-from bus");
        core_->set_error_handler(std::move(handler));
    }

private:
    template <class, class>
    friend class publisher;
    template <class, class, class>
    friend struct detail::bus_commands;

    using core_type = detail::bus_core<Threading>;

    /// A member function and its object, by reference (`t`) or by pointer (`&t`, as Qt,
    /// sigslot and EnTT accept); the handler calls `(object.*member)(event)`.
    template <class Event, class Member, class Object, class... Options>
    subscription subscribe_member(Member member, Object&& object, Options&&... options) {
        static_assert(detail::check_event<Event>());
        using member_object =
            typename detail::member_parameter<std::remove_cvref_t<Member>>::object;
        constexpr bool by_pointer = std::is_pointer_v<std::remove_cvref_t<Object>>;
        using target_type = std::remove_reference_t<std::conditional_t<
            by_pointer, std::remove_pointer_t<std::remove_cvref_t<Object>>, Object>>;
        // (member_object is void for a member function that takes no single event: the
        // invocability check below names that.)
        constexpr bool object_fits =
            std::is_void_v<member_object> ||
            std::is_base_of_v<member_object, std::remove_cv_t<target_type>>;
        static_assert(object_fits,
                      "tidings: pass the object the member function belongs to, by reference "
                      "or by pointer: bus.subscribe(&T::on_event, t) or "
                      "bus.subscribe(&T::on_event, &t)");
        constexpr bool lasts = by_pointer || std::is_lvalue_reference_v<Object>;
        static_assert(!object_fits || lasts,
                      "tidings: the object of a member function handler is a temporary, gone "
                      "before the handler runs; pass a named object or a pointer: "
                      "bus.subscribe(&T::on_event, t) or bus.subscribe(&T::on_event, &t)");
        constexpr bool callable = std::is_invocable_v<Member, target_type&, const Event&>;
        static_assert(!object_fits || !lasts || callable,
                      "tidings: this member function cannot be called with `const Event&` on "
                      "this object (a const object needs a const member function)");
        if constexpr (object_fits && lasts && callable) {
            target_type* target = nullptr;
            if constexpr (by_pointer) {
                target = object;
                if (target == nullptr) {
                    throw std::invalid_argument(
                        "tidings: subscribe(&T::member, object): the object pointer is null");
                }
            } else {
                target = std::addressof(object);
            }
            return make_subscription<Event>(
                [member, target](const Event& event) { std::invoke(member, *target, event); },
                std::forward<Options>(options)...);
        } else {
            return {};
        }
    }

    /// A member function without its object: no handler can be made.
    template <class Event, class Member>
    subscription subscribe_member(Member) {
        static_assert(detail::check_event<Event>());
        static_assert(sizeof(Member) == 0,
                      "tidings: a member function handler needs the object to call it on: "
                      "bus.subscribe(&T::on_event, t) or bus.subscribe(&T::on_event, &t)");
        return {};
    }

    template <class Executor>
    static detail::executor_core* executor_of(const deliver_on<Executor>& option) noexcept {
        static_assert(Threading::is_thread_safe || !std::is_same_v<Executor, thread_executor>,
                      "tidings: a single_threaded_bus cannot deliver on a thread_executor (its "
                      "handlers would run on another thread); use a manual_executor that the "
                      "bus's thread runs, or tidings::bus");
        return &option.executor->core();
    }

    /// After an inline replay whose handler turned retention off: the snapshot still sends
    /// every publish of Event through the retention's mutex (detail::retention::replaying).
    /// Rebuilds it without (retain<E>(0) once more: nothing is kept, nothing to free). Caller
    /// holds the retention's mutex, so the count cannot change in between.
    template <class Event>
    void rebuild_after_retention_off(detail::channel<Event, Threading>& target) noexcept {
        try {
            core_->retain(target, 0);
        } catch (const std::bad_alloc&) {
            // No memory for the new snapshot: publishes keep taking the mutex (and keep
            // nothing) until the channel's next change rebuilds it. Correct, only slower.
        }
    }

    template <class Event, class Handler, class... Options>
    subscription make_subscription(Handler&& handler, Options&&... options) {
        static_assert((detail::is_subscribe_option<std::remove_cvref_t<Options>> && ...),
                      "tidings: unknown subscribe option; the options are tidings::priority, "
                      "tidings::filter, tidings::once, tidings::track, tidings::deliver_on and "
                      "tidings::replay");
        static_assert(detail::options_given_once<Options...>());

        decltype(auto) filter = detail::find_option<detail::is_filter>(options...);
        decltype(auto) tracked = detail::find_option<detail::is_track>(options...);
        using filter_type = std::remove_cvref_t<decltype(filter)>;
        using tracked_type = std::remove_cvref_t<decltype(tracked)>;
        if constexpr (!std::is_same_v<filter_type, detail::no_option>) {
            static_assert(predicate_for<decltype(filter_type::predicate), Event>,
                          "tidings: a filter must be callable with `const Event&` and return "
                          "something convertible to bool");
        }
        constexpr bool is_once = detail::count_options<detail::is_once_trait, Options...> != 0;
        detail::executor_core* executor = nullptr;
        if constexpr (detail::count_options<detail::is_deliver_on, Options...> != 0) {
            executor = executor_of(detail::find_option<detail::is_deliver_on>(options...));
        }

        int rank = 0;
        if constexpr (detail::count_options<detail::is_priority_trait, Options...> != 0) {
            rank = detail::find_option<detail::is_priority_trait>(options...).value;
        }

        TIDINGS_ASSERT(core_ != nullptr, "subscribe on a moved-from bus");
        constexpr bool replays = detail::count_options<detail::is_replay_trait, Options...> != 0;
        auto& target = core_->template channel_for<Event>();
        if constexpr (replays) {
            static_assert(!is_once,
                          "tidings: tidings::replay cannot be combined with "
                          "tidings::once");
            const std::size_t limit =
                detail::find_option<detail::is_replay_trait>(options...).count;
            static_assert(std::is_copy_constructible_v<Event>,
                          "tidings: tidings::replay delivers copies of retained events: the "
                          "event type must be copyable");
            if (auto* kept = core_->retention_of(target)) {
                using gate = detail::replay_gate<Event, std::decay_t<Handler>>;
                using node_type =
                    detail::node_impl<Event, Threading, gate, filter_type, tracked_type, false>;
                std::unique_lock replay_lock{kept->mutex};
                // Holding the retention's mutex, no other thread publishes Event: the copy of
                // the retained events and the link happen between two publishes, so the
                // replay ends exactly where the live events begin (see detail::retention).
                const std::vector<Event> events = target.retained_copy(limit);
                auto added = std::make_unique<node_type>(
                    gate{std::decay_t<Handler>(std::forward<Handler>(handler)), events.size()},
                    filter, tracked);
                added->priority = rank;
                added->executor = executor;
                // Inline, from before the link: publishes keep taking the mutex until the
                // replay ends, even if the handler turns retention off meanwhile.
                detail::inline_replay_scope<Event, Threading> replaying{
                    executor == nullptr && !events.empty() ? kept : nullptr};
                node_type& linked = *added;
                subscription result = link(target, std::move(added));
                // A subscribe that fails gives its handler no live event: the node is marked
                // removed while the mutex still keeps every publisher of Event out (dispatches
                // skip removed nodes), and only then is the mutex released, before `result`
                // unsubscribes (which waits for running publishes, that may wait for it).
                // release: pairs with the dispatches' acquire loads of `removed` (those that
                // take the mutex after us also see it through the mutex).
                const auto refuse_live = [&]() noexcept {
                    linked.removed.store(true, std::memory_order_release);
                    if (replay_lock.owns_lock()) replay_lock.unlock();
                };
                if (executor == nullptr) {
                    // Inline: replayed here, still under the mutex, so that no live event from
                    // another thread reaches the gate while it replays.
                    std::optional<std::exception_ptr> first_error;
                    try {
                        target.replay_inline(linked, events, first_error);
                    } catch (...) {
                        // Out of memory for this thread's first read section: nothing replayed.
                        if (replaying.end()) rebuild_after_retention_off(target);
                        refuse_live();
                        throw;  // `result` unsubscribes
                    }
                    if (replaying.end()) rebuild_after_retention_off(target);
                    if (first_error.has_value()) [[unlikely]] {
                        // rethrow_first: undo the subscription, then rethrow.
                        refuse_live();
                        result.unsubscribe();
                        std::rethrow_exception(std::move(*first_error));
                    }
                    return result;
                }
                // Queued: the replayed events go through this thread's lane, live events
                // through the publishers' lanes, which the executor may run first: the gate
                // holds those until the last replayed event ran. That one must also run after
                // every refused replayed event was counted off the gate, or what it holds
                // waits for a next live event that may never come (a stopped executor). So
                // with drop and fail, whose pushes never wait, the mutex stays held until
                // the count is final: no live event can reach the gate before. With block a
                // push may wait for space: holding the mutex then would stall every publisher
                // of Event, and deadlock with a handler on that executor that publishes one;
                // but block refuses a push only by throwing, which undoes the subscription.
                const bool may_wait = executor->options().on_full == overflow::block;
                if (may_wait) replay_lock.unlock();
                std::uint64_t accepted = 0;
                try {
                    target.replay_queued(linked.id, *executor, events, accepted);
                } catch (...) {
                    // The gate is also left waiting for the refused events: a live event
                    // reaching it before `result` unsubscribes would be held, never given.
                    refuse_live();
                    throw;  // `result` unsubscribes
                }
                if (accepted != events.size()) {
                    TIDINGS_ASSERT(!may_wait, "overflow::block refuses a push only by throwing");
                    linked.payload_->handler.cancel(events.size() - accepted);
                }
                return result;
            }
        }
        using node_type = detail::node_impl<Event, Threading, std::decay_t<Handler>, filter_type,
                                            tracked_type, is_once>;
        auto added = std::make_unique<node_type>(std::forward<Handler>(handler), filter, tracked);
        added->priority = rank;
        added->executor = executor;
        return link(target, std::move(added));
    }

    /// Links a new node into its channel and returns its handle: on success the bus co-owns
    /// the node. @throws what bus_core::link throws; the node is then destroyed.
    template <class Channel, class Node>
    subscription link(Channel& target, std::unique_ptr<Node> added) {
        core_->link(target, *added);
        return subscription{std::weak_ptr<detail::bus_core_base>(core_), added.release()};
    }

    std::shared_ptr<core_type> core_;
};

// tidings::bus (basic_bus<thread_safe>) and tidings::single_threaded_bus
// (basic_bus<single_thread>) are aliases declared in fwd.hpp.

}  // namespace tidings
