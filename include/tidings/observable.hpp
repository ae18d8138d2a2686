#pragma once
/// @file observable.hpp
/// @brief tidings::observable<T>: the observer pattern for state. An observable holds a
/// current value; an observer first receives that value, then every later change, in order,
/// exactly once each.
///
/// Design: an observable carries its changes over a private tidings::bus, so observers get
/// the bus's guarantees as they are (RAII handles, unsubscribe-means-stop, reentrancy,
/// executors, error handling). Changes are numbered under a mutex and published by one
/// "deliverer" thread at a time, in number order: a set() that finds another thread
/// delivering queues its change for that thread and returns, so an observer may call set()
/// without deadlock, and no observer sees changes out of order. A queued observer receives
/// its values through its own inbox, drained on its executor, because an executor keeps only
/// per-producer order and the deliverer may be a different thread from one change to the next.

#include <tidings/bus.hpp>
#include <tidings/executor.hpp>
#include <tidings/subscription.hpp>

#include <concepts>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace tidings {

template <class T>
class observable;

/// @brief An observer's RAII handle: destroying it (or unsubscribe()) stops the observer, with
/// the guarantees of tidings::subscription.
///
/// Thread safety: like tidings::subscription.
class observer {
public:
    observer() noexcept = default;

    /// @brief Stops the observer. Idempotent; safe after the observable is gone.
    void unsubscribe() noexcept {
        drain_.unsubscribe();  // first the queued half, so no drain runs after the feed stops
        feed_.unsubscribe();
    }

    /// @brief True while the observer is attached to a live observable.
    [[nodiscard]] bool connected() const noexcept { return feed_.connected(); }
    [[nodiscard]] explicit operator bool() const noexcept { return connected(); }

private:
    template <class>
    friend class observable;

    observer(subscription feed, subscription drain) noexcept
        : feed_(std::move(feed)), drain_(std::move(drain)) {}

    subscription feed_;   // the change stream (inline)
    subscription drain_;  // queued observers: drains the inbox on the executor
};

namespace detail {

/// A change as it travels over the observable's private bus.
template <class T>
struct change {
    std::uint64_t version;
    std::uint64_t only_for;  ///< 0: every observer; else the one observer that just joined
    T value;
};

struct derived_tag {};
template <class Event>
struct latest_tag {};

/// Asks one queued observer to drain its inbox on its executor.
struct drain_request {
    std::uint64_t observer_id;
};

/// A queued observer's values, waiting for its executor: one drain_request is queued per
/// value, and each takes the oldest value (so values keep their order whichever lanes the
/// requests travel through).
template <class T>
struct inbox {
    std::mutex mutex;
    std::deque<T> values;
};

}  // namespace detail

/// @brief A value that notifies its observers when it changes.
///
/// ```
/// tidings::observable<double> temperature{20.0};
/// auto o = temperature.observe([](double t) { /* now with 20.0, then on every change */ });
/// temperature.set(21.5);
/// ```
///
/// Guarantees: a new observer first receives the current value, then every later change, in
/// order, never one twice, even while other threads set the value. set() notifies only when
/// the value changed (operator==; types without it notify on every set). Observers run in the
/// thread that delivers the change (the setter, or a setter already delivering), or on their
/// executor (tidings::deliver_on).
///
/// Thread safety: every member may be called from any thread, and from observers. The
/// observable must outlive nothing: observers, and observables derived with map(), detach when
/// it is destroyed. Not movable (observers refer to it).
template <class T>
class observable {
    static_assert(std::is_object_v<T> && std::is_copy_constructible_v<T>,
                  "tidings::observable<T>: T must be a copyable object type");

public:
    using value_type = T;

    /// @brief An observable holding `initial`.
    explicit observable(T initial = T{}) : value_(std::move(initial)) {}

    observable(const observable&) = delete;
    observable& operator=(const observable&) = delete;

    /// @brief The current value (a copy).
    [[nodiscard]] T get() const {
        std::lock_guard lock{state_mutex_};
        return value_;
    }

    /// @brief Replaces the value and, if it changed, notifies the observers.
    /// @return true if the value changed.
    /// @throws the first exception an observer threw (every observer still ran), as
    ///   tidings::bus does with error_policy::rethrow_first.
    bool set(T value) {
        return update([&](T& current) { current = std::move(value); });
    }

    /// @brief Read-modify-write: calls `modify(T&)` under the observable's lock (atomic with
    /// respect to other writers), then notifies if the value changed.
    /// @warning `modify` must not call this observable (it runs under its lock).
    template <class Modify>
    bool update(Modify&& modify) {
        // A readable message instead of std::invoke's.
        static_assert(std::is_invocable_v<Modify&&, T&>,
                      "tidings::observable<T>::update: the function must be callable with `T&` "
                      "(it modifies the value in place)");
        std::optional<detail::change<T>> own;
        if constexpr (std::is_invocable_v<Modify&&, T&>) {
            std::lock_guard lock{state_mutex_};
            if constexpr (std::equality_comparable<T>) {
                T before = value_;
                std::invoke(std::forward<Modify>(modify), value_);
                if (before == value_) return false;
            } else {
                std::invoke(std::forward<Modify>(modify), value_);
            }
            ++version_;
            if (delivering_) {
                // Another thread is delivering: it publishes this change after the ones
                // before it, in order.
                pending_.push_back({version_, 0, value_});
                return true;
            }
            delivering_ = true;
            // Nothing is pending (the last deliverer emptied the queue before it cleared
            // delivering_): this change goes out first, without a trip through the queue.
            own.emplace(detail::change<T>{version_, 0, value_});
        } else {
            return false;
        }
        deliver_pending(own);
        return true;
    }

    /// @brief Attaches `on_value(const T&)`: called at once (or on its executor) with the
    /// current value, then with every later change.
    /// @param options tidings::deliver_on(executor) to run it on an executor; tidings::priority
    ///   to order it among inline observers.
    template <class Handler, class... Options>
    [[nodiscard]] observer observe(Handler&& on_value, Options&&... options) {
        static_assert(std::is_invocable_v<std::decay_t<Handler>&, const T&>,
                      "tidings::observable<T>::observe: the observer must be callable with "
                      "`const T&`");
        // The other subscribe options either clash with the observable's own filter
        // (tidings::filter, with a message about the private change type) or mean nothing
        // for an observer (tidings::replay): name the mistake instead.
        static_assert(((detail::is_deliver_on<std::remove_cvref_t<Options>>::value ||
                        detail::is_priority<std::remove_cvref_t<Options>>)&&...),
                      "tidings::observable<T>::observe: the options of an observer are "
                      "tidings::priority and tidings::deliver_on");
        static_assert(detail::count_options<detail::is_priority_trait, Options...> <= 1,
                      "tidings: tidings::priority given twice");
        static_assert(detail::count_options<detail::is_deliver_on, Options...> <= 1,
                      "tidings: tidings::deliver_on given twice");
        constexpr bool queued = (detail::is_deliver_on<std::remove_cvref_t<Options>>::value || ...);
        observer result;
        {
            std::lock_guard lock{state_mutex_};
            const std::uint64_t id = ++last_observer_id_;
            const std::uint64_t since = version_;
            auto accepts = [id, since](const detail::change<T>& c) {
                return c.only_for != 0 ? c.only_for == id : c.version > since;
            };
            if constexpr (queued) {
                auto box = std::make_shared<detail::inbox<T>>();
                bus& drains = drain_bus_locked(
                    detail::find_option<detail::is_deliver_on>(options...).executor);
                // One value per drain task, not a batch: an observer that throws then loses
                // nothing and stays scheduled, and one that unsubscribes itself is not called
                // for the rest of a batch. Each task is a delivery of the private bus: its
                // exception goes to the error handler, and a removed observer's tasks are
                // skipped.
                auto feed = bus_.template subscribe<detail::change<T>>(
                    [&drains, id, box](const detail::change<T>& c) {
                        {
                            std::lock_guard inbox_lock{box->mutex};
                            box->values.push_back(c.value);
                        }
                        // Feeds run in the delivering thread, one change at a time, and
                        // every queued task takes one value: a value whose task was refused
                        // is still the newest one, taken back so the next task does not
                        // deliver it late. `drains` serves one executor only, so its
                        // publish_result is about this observer's executor.
                        auto take_back = [&box] {
                            std::lock_guard inbox_lock{box->mutex};
                            box->values.pop_back();
                        };
                        publish_result sent;
                        try {
                            sent = drains.publish(detail::drain_request{id});
                        } catch (...) {
                            take_back();
                            throw;
                        }
                        if (sent.queued == 0) take_back();
                    },
                    tidings::filter(accepts));
                auto drain = drains.template subscribe<detail::drain_request>(
                    [box, handler = std::decay_t<Handler>(std::forward<Handler>(on_value))](
                        const detail::drain_request&) mutable {
                        std::optional<T> value;
                        {
                            std::lock_guard inbox_lock{box->mutex};
                            if (box->values.empty()) return;
                            value.emplace(std::move(box->values.front()));
                            box->values.pop_front();
                        }
                        std::invoke(handler, *value);
                    },
                    tidings::filter(
                        [id](const detail::drain_request& r) { return r.observer_id == id; }),
                    std::forward<Options>(options)...);
                result = observer{std::move(feed), std::move(drain)};
            } else {
                auto feed = bus_.template subscribe<detail::change<T>>(
                    [handler = std::decay_t<Handler>(std::forward<Handler>(on_value))](
                        const detail::change<T>& c) mutable { std::invoke(handler, c.value); },
                    tidings::filter(accepts), std::forward<Options>(options)...);
                result = observer{std::move(feed), subscription{}};
            }
            // The current value goes through the same ordered delivery as changes, addressed
            // to this observer only: it arrives before any later change.
            pending_.push_back({version_, id, value_});
            if (delivering_) return result;
            delivering_ = true;
        }
        deliver_pending();
        return result;
    }

    /// @brief A derived observable holding `f(current value)`, recomputed on every change of
    /// this one; it notifies its own observers only when the derived value changes.
    /// The derived observable detaches when either side is destroyed.
    /// @return an `observable<R>`, R being the decayed result of `f`.
    template <class Function>
    [[nodiscard]] auto map(Function f) {
        // Readable messages; a return type naming invoke_result_t would fail first, with
        // "no type named 'type'", for a function of the wrong shape.
        static_assert(std::is_invocable_v<Function&, const T&>,
                      "tidings::observable<T>::map: the function must be callable with "
                      "`const T&` and return the derived value");
        if constexpr (std::is_invocable_v<Function&, const T&>) {
            using result_type = std::decay_t<std::invoke_result_t<Function&, const T&>>;
            static_assert(!std::is_void_v<result_type>,
                          "tidings::observable<T>::map: the function must return the derived "
                          "value (it returns void)");
            if constexpr (!std::is_void_v<result_type>) {
                return observable<result_type>(detail::derived_tag{}, *this, std::move(f));
            }
        }
    }

    /// @brief How many observers are attached.
    [[nodiscard]] std::size_t observer_count() const noexcept {
        return bus_.template subscriber_count<detail::change<T>>();
    }

    /// @brief Sets the function that receives exceptions thrown by queued observers (inline
    /// observers' exceptions reach the setter). See basic_bus::set_error_handler.
    void set_error_handler(std::function<void(const handler_error&)> handler) {
        std::lock_guard lock{state_mutex_};
        // Queued observers run on the drain buses; the main bus only sees inline ones, whose
        // exceptions reach the setter, but gets it too (for completeness).
        for (auto& entry : drain_buses_) entry.second->set_error_handler(handler);
        bus_.set_error_handler(handler);
        error_handler_ = std::move(handler);
    }

private:
    template <class>
    friend class observable;
    template <class>
    friend class basic_bus;

    template <class Event, class Threading>
    observable(detail::latest_tag<Event>, basic_bus<Threading>& source) {
        source_ = source.template subscribe<Event>([this](const Event& event) {
            set(T{std::in_place, event});
        });
    }

    template <class Source, class Function>
    observable(detail::derived_tag, observable<Source>& source, Function f)
        : value_(std::invoke(f, source.get())) {
        upstream_ = source.observe(
            [this, f = std::move(f)](const Source& s) mutable { set(std::invoke(f, s)); });
    }

    /// The private bus that carries the drain requests of the queued observers on `executor`
    /// (one bus per executor, so that a refused request is known to be this executor's).
    template <class Executor>
    bus& drain_bus_locked(Executor* executor) {
        const void* key = executor;
        for (auto& entry : drain_buses_) {
            if (entry.first == key) return *entry.second;
        }
        auto added = std::make_unique<bus>();
        if (error_handler_) added->set_error_handler(error_handler_);
        drain_buses_.emplace_back(key, std::move(added));
        return *drain_buses_.back().second;
    }

    /// Publishes queued changes in order until none is left. Only the delivering thread runs
    /// it; exceptions from observers are kept and the first is rethrown at the end.
    /// Publishes `next` (when it holds a change), then every pending change, in order, until
    /// none is left. Called by the one thread that set delivering_.
    void deliver_pending(std::optional<detail::change<T>>& next) {
        std::exception_ptr first_error;
        for (;;) {
            if (next.has_value()) {
                try {
                    bus_.publish(*next);
                } catch (...) {
                    if (!first_error) first_error = std::current_exception();
                }
            }
            std::lock_guard lock{state_mutex_};
            if (pending_.empty()) {
                delivering_ = false;
                break;
            }
            next.emplace(std::move(pending_.front()));
            pending_.pop_front();
        }
        if (first_error) std::rethrow_exception(first_error);
    }

    void deliver_pending() {
        std::optional<detail::change<T>> none;
        deliver_pending(none);
    }

    mutable std::mutex state_mutex_;
    T value_;                                // guarded by state_mutex_
    std::uint64_t version_ = 0;              // guarded by state_mutex_
    std::uint64_t last_observer_id_ = 0;     // guarded by state_mutex_
    std::deque<detail::change<T>> pending_;  // guarded by state_mutex_
    bool delivering_ = false;                // guarded by state_mutex_
    // Queued observers' drain requests, one bus per executor; guarded by state_mutex_ (the
    // buses themselves are thread-safe and live as long as the observable). Declared before
    // bus_, so that the feeds that publish to them are gone first.
    std::vector<std::pair<const void*, std::unique_ptr<bus>>> drain_buses_;
    std::function<void(const handler_error&)> error_handler_;  // guarded by state_mutex_
    bus bus_;                                                  // carries the changes
    observer upstream_;    // a derived observable's link to its source
    subscription source_;  // latest(): the link to the bus

    template <class Event, class Threading>
    friend observable<std::optional<Event>> latest(basic_bus<Threading>& source);
};

/// @brief The latest event of type `Event` published on `source`, as an observable (empty
/// until the first one): GUI-style state over an event stream. Detaches when the bus or the
/// observable is destroyed.
/// Thread safety: like the bus and tidings::observable.
template <class Event, class Threading>
[[nodiscard]] observable<std::optional<Event>> latest(basic_bus<Threading>& source) {
    static_assert(detail::check_event<Event>());
    static_assert(std::is_copy_constructible_v<Event>,
                  "tidings::latest<Event>: the observable holds a copy of the latest event: "
                  "the event type must be copyable");
    using result = observable<std::optional<Event>>;
    return result(detail::latest_tag<Event>{}, source);
}

}  // namespace tidings
