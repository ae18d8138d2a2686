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
///
/// Failures: everything that can throw while making a change (comparing, copying or moving T,
/// allocating) happens under the mutex before the change is accepted; accepting it cannot
/// throw. The deliverer copies and moves nothing (it publishes each queued change by
/// reference, then pops it), keeps the first exception for its caller and reports the others,
/// and always gives up its role. See docs/architecture.md, "Observables".

#include <tidings/bus.hpp>
#include <tidings/delivery.hpp>
#include <tidings/fwd.hpp>
#include <tidings/options.hpp>
#include <tidings/policy.hpp>
#include <tidings/subscription.hpp>

#include <concepts>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace tidings {

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

/// A change as it travels over the observable's private bus. `value` is empty only in the
/// record that starts a queued observer: its first value is already in its inbox.
template <class T>
struct change {
    change(std::uint64_t number, std::uint64_t target, const T& new_value)
        : version(number), only_for(target), value(std::in_place, new_value) {}
    change(std::uint64_t number, std::uint64_t target) noexcept
        : version(number), only_for(target) {}

    std::uint64_t version;
    std::uint64_t only_for;  ///< 0: every observer; else the one observer that just joined
    std::optional<T> value;
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
/// requests travel through). A list, so that a value enters and leaves by splicing its node:
/// the only copy of T is made before the value enters, and nothing that can throw happens
/// under the mutex or when a value is handed to the observer.
template <class T>
struct inbox {
    std::mutex mutex;
    std::list<T> values;
};

/// Where an observable's unreported exceptions go: the user's error handler, or stderr. Shared
/// with the buses of the queued observers, whose tasks may run (and report) after the
/// observable is gone: destroyed from inside one of its queued observers, for one.
class error_sink {
public:
    using function = std::function<void(const handler_error&)>;

    /// Strong guarantee: if allocating throws, the previous handler stays.
    void replace(function handler) {
        auto replacement = std::make_shared<const function>(std::move(handler));
        {
            std::lock_guard lock{mutex_};
            handler_.swap(replacement);
        }
        // The old handler is destroyed here, outside the lock.
    }

    void report(const handler_error& error) noexcept {
        std::shared_ptr<const function> handler;
        {
            std::lock_guard lock{mutex_};
            handler = handler_;
        }
        // A handler that throws terminates (this function is noexcept), as on a bus.
        if (handler != nullptr && *handler) {
            (*handler)(error);
        } else {
            default_error_handler(error);
        }
    }

private:
    std::mutex mutex_;
    std::shared_ptr<const function> handler_;  // guarded by mutex_
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
/// Exceptions: a change is either refused or accepted. Everything that can throw while making
/// a change (copying, moving or comparing T, the `modify` function of update(), allocating)
/// happens before it is accepted: if one throws, the call throws it and the value and the
/// observers are as if it had not been made (strong guarantee). An accepted change is
/// delivered to every observer, in order, exactly once, with one exception: a queued
/// observer whose copy of it cannot be made (T's copy constructor throws, or memory runs out)
/// or whose executor refuses it (overflow::drop or fail, a stopped executor) misses that one
/// change; that failure is reported like an observer's exception, and the observer receives
/// the later changes. Whatever an observer or a delivery throws, the observable keeps
/// working: later changes are delivered and new observers receive their first value.
///
/// Thread safety: every member may be called from any thread, and from observers. The
/// observable must outlive nothing: observers, and observables derived with map(), detach when
/// it is destroyed. Not movable (observers refer to it).
template <class T>
class observable {
    static_assert(std::is_object_v<T> && std::is_copy_constructible_v<T>,
                  "tidings::observable<T>: T must be a copyable object type");

    // The value is held in place when T's move assignment cannot throw; otherwise on the
    // heap, so that a new value is installed by moving a pointer. Either way installing an
    // accepted change cannot fail.
    static constexpr bool held_in_place = std::is_nothrow_move_assignable_v<T>;
    using storage_type = std::conditional_t<held_in_place, T, std::unique_ptr<T>>;

public:
    using value_type = T;

    /// @brief An observable holding `initial`.
    /// @throws what moving `initial` or allocating throws.
    explicit observable(T initial = T{}) : value_(make_storage(std::move(initial))) {
        configure_bus();
    }

    observable(const observable&) = delete;
    observable& operator=(const observable&) = delete;

    /// @brief The current value (a copy).
    /// @throws what copying T throws (nothing changes).
    /// Thread safety: any thread, and observers (not update's `modify`).
    [[nodiscard]] T get() const {
        std::lock_guard lock{state_mutex_};
        return current();
    }

    /// @brief Replaces the value and, if it changed, notifies the observers.
    /// @return true if the value changed (the change was accepted).
    /// @throws
    ///   - before the change is accepted: what comparing (operator==) or copying T throws, or
    ///     std::bad_alloc. Strong guarantee: the value is unchanged and no observer hears of
    ///     it.
    ///   - after, when this call delivers (no other thread was delivering): the first
    ///     exception thrown by an inline observer or by a queued observer's delivery (its
    ///     copy of the value, its executor's tidings::queue_full or
    ///     tidings::executor_stopped), rethrown once every observer ran and every change
    ///     waiting behind it was delivered; the later ones go to the error handler. The
    ///     change was made (get() returns it), and reached every observer but that queued one.
    ///   A set that finds another thread delivering returns once its change is accepted: that
    ///   thread delivers it and receives its exceptions.
    /// Thread safety: any thread, and observers.
    bool set(T value) {
        std::unique_lock lock{state_mutex_};
        return change_locked(lock, value);
    }

    /// @brief Read-modify-write: calls `modify(T&)` on a copy of the value under the
    /// observable's lock (atomic with respect to other writers); if the result differs, it
    /// becomes the value and the observers are notified.
    /// @return true if the value changed.
    /// @throws what `modify` throws, or copying or comparing T, or std::bad_alloc: strong
    ///   guarantee, the value is unchanged and no observer hears of it; after the change is
    ///   accepted, as set().
    /// @warning `modify` must not call this observable (it runs under its lock).
    /// Thread safety: any thread, and observers.
    template <class Modify>
    bool update(Modify&& modify) {
        // A readable message instead of std::invoke's.
        static_assert(std::is_invocable_v<Modify&&, T&>,
                      "tidings::observable<T>::update: the function must be callable with `T&` "
                      "(it modifies the value in place)");
        if constexpr (std::is_invocable_v<Modify&&, T&>) {
            std::unique_lock lock{state_mutex_};
            T next = current();
            std::invoke(std::forward<Modify>(modify), next);
            return change_locked(lock, next);
        } else {
            return false;
        }
    }

    /// @brief Attaches `on_value(const T&)`: called at once (or on its executor) with the
    /// current value, then with every later change.
    /// @param options tidings::deliver_on(executor) to run it on an executor; tidings::priority
    ///   to order it among inline observers.
    /// @return the observer's handle.
    /// @throws
    ///   - what copying T or copying or moving `on_value` throws, or std::bad_alloc: strong
    ///     guarantee, nothing is attached and nothing is called.
    ///   - when this call delivers (no other thread was delivering) and the new observer's
    ///     first call throws (or, for a queued observer, its executor refuses the first
    ///     value): that exception, once every change waiting was delivered; the observer is
    ///     then detached. Exceptions of the other observers during these deliveries, and the
    ///     new observer's own on the later changes (a queued observer's copy of a change
    ///     into its inbox: it misses that change), go to the error handler: the call still
    ///     returns its observer.
    ///   When another thread is delivering, observe() returns at once and that thread
    ///   delivers the first value (and receives its exception, as for a change).
    /// Thread safety: any thread, and observers.
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
        static_assert(detail::options_given_once<Options...>());
        constexpr bool queued = (detail::is_deliver_on<std::remove_cvref_t<Options>>::value || ...);
        // Declared before the lock: if attaching fails, they are destroyed (unsubscribed,
        // which may wait for running deliveries) after the lock is released.
        subscription feed;
        subscription drain;
        std::uint64_t id = 0;
        {
            std::lock_guard lock{state_mutex_};
            id = ++last_observer_id_;
            const std::uint64_t since = version_;
            auto accepts = [id, since](const detail::change<T>& c) {
                return c.only_for != 0 ? c.only_for == id : c.version > since;
            };
            // The current value goes through the same ordered delivery as changes, in a
            // record addressed to this observer only: it arrives before any later change.
            // The record is queued before the observer is attached (copying the value may
            // throw), and taken back if attaching fails: the deliverer takes records only
            // under the lock, so it is still the last one.
            if constexpr (queued) {
                auto box = std::make_shared<detail::inbox<T>>();
                box->values.push_back(current());  // the first value waits in the inbox
                bus& drains = drain_bus_locked(
                    detail::find_option<detail::is_deliver_on>(options...).executor);
                pending_.emplace_back(since, id);
                try {
                    // One value per drain task, not a batch: an observer that throws then
                    // loses nothing and stays scheduled, and one that unsubscribes itself is
                    // not called for the rest of a batch. Each task is a delivery of the
                    // private bus: its exception goes to the error handler, and a removed
                    // observer's tasks are skipped.
                    feed = bus_.template subscribe<detail::change<T>>(
                        [&drains, id, box](const detail::change<T>& c) {
                            if (c.value.has_value()) {
                                // The copy is made into a node of its own, outside the
                                // inbox's lock. If it throws, this observer misses this change
                                // and the exception is reported as this observer's.
                                std::list<T> node;
                                node.push_back(*c.value);
                                std::lock_guard inbox_lock{box->mutex};
                                box->values.splice(box->values.end(), node);
                            }  // else: the first value, put in the inbox by observe()
                            // Feeds run in the delivering thread, one change at a time, and
                            // every queued task takes one value: a value whose task was
                            // refused is still the newest one, taken back so the next task
                            // does not deliver it late. `drains` serves one executor only, so
                            // its publish_result is about this observer's executor.
                            auto take_back = [&box]() noexcept {
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
                    drain = drains.template subscribe<detail::drain_request>(
                        [box, handler = std::decay_t<Handler>(std::forward<Handler>(on_value))](
                            const detail::drain_request&) mutable {
                            // The oldest value's node is spliced out: T is neither copied nor
                            // moved, so nothing can fail between the inbox and the observer.
                            std::list<T> taken;
                            {
                                std::lock_guard inbox_lock{box->mutex};
                                if (box->values.empty()) return;
                                taken.splice(taken.end(), box->values, box->values.begin());
                            }
                            std::invoke(handler, std::as_const(taken.front()));
                        },
                        tidings::filter(
                            [id](const detail::drain_request& r) { return r.observer_id == id; }),
                        std::forward<Options>(options)...);
                } catch (...) {
                    pending_.pop_back();
                    throw;
                }
            } else {
                pending_.emplace_back(since, id, current());
                try {
                    feed = bus_.template subscribe<detail::change<T>>(
                        [handler = std::decay_t<Handler>(std::forward<Handler>(on_value))](
                            const detail::change<T>& c) mutable {
                            std::invoke(handler, std::as_const(*c.value));
                        },
                        tidings::filter(accepts), std::forward<Options>(options)...);
                } catch (...) {
                    pending_.pop_back();
                    throw;
                }
            }
            if (delivering_) return observer{std::move(feed), std::move(drain)};
            delivering_ = true;
        }
        observer result{std::move(feed), std::move(drain)};
        // If this throws (the new observer's own exception), `result` detaches it.
        deliver(nullptr, id, result.feed_.id());
        return result;
    }

    /// @brief A derived observable holding `f(current value)`, recomputed on every change of
    /// this one; it notifies its own observers only when the derived value changes.
    /// The derived observable detaches when either side is destroyed. If recomputing or
    /// storing a derived value throws, the exception reaches the call that delivered the
    /// source's change (see set()), and the derived observable keeps its previous value until
    /// the source's next change.
    /// @return an `observable<R>`, R being the decayed result of `f`.
    /// @throws what `f`, copying the values or allocating throws: nothing is attached.
    /// Thread safety: any thread, and observers.
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
    /// Thread safety: any thread.
    [[nodiscard]] std::size_t observer_count() const noexcept {
        return bus_.template subscriber_count<detail::change<T>>();
    }

    /// @brief Sets the function that receives the exceptions no call can be told of: those
    /// of queued observers (in their executor's thread), and those of inline observers that
    /// the delivering call does not rethrow (all but the first; see set() and observe()).
    /// Without one, each is printed as one line on stderr. The function must not throw.
    /// @throws std::bad_alloc (strong guarantee: the previous handler stays).
    /// Thread safety: any thread; a report already under way may still use the old one.
    void set_error_handler(std::function<void(const handler_error&)> handler) {
        errors_->replace(std::move(handler));
    }

private:
    template <class>
    friend class observable;
    template <class>
    friend class basic_bus;

    template <class Event, class Threading>
    observable(detail::latest_tag<Event>, basic_bus<Threading>& source) : value_(make_storage()) {
        configure_bus();
        source_ = source.template subscribe<Event>([this](const Event& event) {
            set(T{std::in_place, event});
        });
    }

    template <class Source, class Function>
    observable(detail::derived_tag, observable<Source>& source, Function f)
        : value_(make_storage(std::invoke(f, source.get()))) {
        configure_bus();
        upstream_ = source.observe(
            [this, f = std::move(f)](const Source& s) mutable { set(std::invoke(f, s)); });
    }

    template <class... Args>
    static storage_type make_storage(Args&&... args) {
        if constexpr (held_in_place) {
            return T(std::forward<Args>(args)...);
        } else {
            return std::make_unique<T>(std::forward<Args>(args)...);
        }
    }

    const T& current() const noexcept {
        if constexpr (held_in_place) {
            return value_;
        } else {
            return *value_;
        }
    }

    /// The private bus reports its observers' exceptions instead of rethrowing them, so that
    /// the deliverer can tell whose exception it is (see note_error).
    void configure_bus() {
        bus_.set_error_policy(error_policy::report);
        bus_.set_error_handler([this](const handler_error& error) {
            // Runs in the delivering thread, inside deliver().
            // Only the joining observer's first value is the caller's: an exception of its
            // feed on a later change (a queued observer's copy into its inbox) is reported,
            // as for any change, since its first value may already have reached it.
            note_error(error.exception,
                       joining_first_value_ && joining_feed_ != 0 &&
                           error.subscription_id == joining_feed_,
                       error.event_type, error.subscription_id);
        });
    }

    /// Makes `next` the value if it differs, and delivers the change (or leaves it to the
    /// thread delivering). Everything that can throw happens before the change is accepted;
    /// accepting it cannot throw. `lock` holds state_mutex_; it is released before delivering.
    bool change_locked(std::unique_lock<std::mutex>& lock, T& next) {
        if constexpr (std::equality_comparable<T>) {
            if (next == current()) return false;
        }
        if constexpr (held_in_place) {
            return accept_locked(lock, next, [&]() noexcept { value_ = std::move(next); });
        } else {
            auto fresh = std::make_unique<T>(std::move(next));
            return accept_locked(lock, *fresh, [&]() noexcept { value_ = std::move(fresh); });
        }
    }

    template <class Install>
    bool accept_locked(std::unique_lock<std::mutex>& lock, const T& next, Install install) {
        const std::uint64_t number = version_ + 1;
        std::optional<detail::change<T>> own;
        if (delivering_) {
            // Another thread is delivering: it publishes this change after the ones before
            // it, in order. (emplace_back leaves the queue as it was if it throws.)
            pending_.emplace_back(number, std::uint64_t{0}, next);
        } else {
            // Nothing is pending (the last deliverer emptied the queue before it cleared
            // delivering_): this change goes out first, without a trip through the queue.
            own.emplace(number, std::uint64_t{0}, next);
        }
        // Accepted: nothing below throws before the deliverer role is given up again.
        install();
        version_ = number;
        if (!own.has_value()) return true;
        delivering_ = true;
        lock.unlock();
        deliver(&*own, 0, 0);
        return true;
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
        // Runs in the executor's thread, after a queued observer threw, possibly once the
        // observable is gone: it holds the sink, not the observable.
        added->set_error_handler(
            [sink = errors_](const handler_error& error) { sink->report(error); });
        drain_buses_.emplace_back(key, std::move(added));
        return *drain_buses_.back().second;
    }

    /// Publishes `own` (when given), then every queued change, in order, until none is left;
    /// then gives up the deliverer role and rethrows the exception kept for the caller, if
    /// any. Called only by the thread that set delivering_; never leaves it set. For
    /// observe(), `joining_observer` and `joining_feed` name the new observer: only its
    /// exception is rethrown (see note_error).
    void deliver(const detail::change<T>* own, std::uint64_t joining_observer,
                 std::uint64_t joining_feed) {
        // The deliverer's own fields: the role passes between threads under state_mutex_.
        delivery_error_ = nullptr;
        joining_observer_ = joining_observer;
        joining_feed_ = joining_feed;
        if (own != nullptr) publish_change(*own);
        std::unique_lock lock{state_mutex_};
        while (!pending_.empty()) {
            // Published by reference, outside the lock: other threads only append to
            // pending_ (a deque: appending moves no element), and only the deliverer removes
            // elements, so this one stays where it is. Nothing is copied or moved here.
            const detail::change<T>& next = pending_.front();
            lock.unlock();
            TIDINGS_SCHEDULE_POINT();
            publish_change(next);
            lock.lock();
            pending_.pop_front();
        }
        std::exception_ptr error = std::move(delivery_error_);
        delivering_ = false;
        lock.unlock();
        if (error) std::rethrow_exception(std::move(error));
    }

    /// Publishes one change. The observers' exceptions reach note_error through the private
    /// bus's error handler; an exception out of publish itself means the bus could not deliver
    /// the change at all (out of memory).
    void publish_change(const detail::change<T>& next) noexcept {
        joining_first_value_ = next.only_for != 0 && next.only_for == joining_observer_;
        try {
            bus_.publish(next);
        } catch (...) {
            note_error(std::current_exception(),
                       next.only_for != 0 && next.only_for == joining_observer_,
                       "tidings::observable", 0);
        }
    }

    /// Keeps the exception for the delivering call to rethrow (the first one; in observe(),
    /// the first one of the new observer), or reports it. Runs in the delivering thread.
    void note_error(std::exception_ptr error, bool of_joining_observer, std::string_view event_type,
                    std::uint64_t subscription_id) noexcept {
        const bool for_caller = joining_observer_ == 0 || of_joining_observer;
        if (for_caller && !delivery_error_) {
            delivery_error_ = std::move(error);
            return;
        }
        errors_->report(handler_error{std::move(error), event_type, subscription_id});
    }

    mutable std::mutex state_mutex_;
    storage_type value_;                  // guarded by state_mutex_
    std::uint64_t version_ = 0;           // guarded by state_mutex_
    std::uint64_t last_observer_id_ = 0;  // guarded by state_mutex_
    // Changes waiting for the deliverer; guarded by state_mutex_. Others append; only the
    // deliverer removes (the front, once published).
    std::deque<detail::change<T>> pending_;
    bool delivering_ = false;  // guarded by state_mutex_: one thread delivers at a time
    // The deliverer's: used only by the thread holding the deliverer role (and by bus_'s
    // error handler, which runs in that thread, inside deliver()).
    std::exception_ptr delivery_error_;
    std::uint64_t joining_observer_ = 0;
    std::uint64_t joining_feed_ = 0;
    bool joining_first_value_ = false;  // publishing the joining observer's first value
    // The error handler; never null. Declared before the buses whose error handlers use it.
    std::shared_ptr<detail::error_sink> errors_ = std::make_shared<detail::error_sink>();
    // Queued observers' drain requests, one bus per executor; guarded by state_mutex_ (the
    // buses themselves are thread-safe and live as long as the observable). Declared before
    // bus_, so that the feeds that publish to them are gone first.
    std::vector<std::pair<const void*, std::unique_ptr<bus>>> drain_buses_;
    bus bus_;              // carries the changes
    observer upstream_;    // a derived observable's link to its source
    subscription source_;  // latest(): the link to the bus

    template <class Event, class Threading>
    friend observable<std::optional<Event>> latest(basic_bus<Threading>& source);
};

/// @brief The latest event of type `Event` published on `source`, as an observable (empty
/// until the first one): GUI-style state over an event stream. Detaches when the bus or the
/// observable is destroyed. An event that cannot be copied into the observable (its copy
/// throws) leaves the previous one; the exception reaches `source`'s publish, by its error
/// policy.
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
