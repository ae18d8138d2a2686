#pragma once
/// @file detail/channel.hpp
/// @brief A channel: everything a bus keeps for one event type. Its subscribers live in an
/// immutable snapshot that `publish` reads without a lock: the inline subscribers sorted by
/// priority then subscription order, the queued ones likewise, and the distinct executors the
/// queued ones deliver on. Writers rebuild the whole snapshot under the bus's mutex and retire
/// the old one to the bus's reclamation domain.
///
/// Thread safety: publish() and deliver_queued() may run in any number of threads at once
/// (thread_safe policy); the *_locked functions require the bus's writer mutex.

#include <tidings/config.hpp>
#include <tidings/delivery.hpp>
#include <tidings/detail/epoch.hpp>
#include <tidings/detail/executor_core.hpp>
#include <tidings/detail/plain_atomic.hpp>
#include <tidings/detail/record_ring.hpp>
#include <tidings/detail/type_name.hpp>
#include <tidings/options.hpp>
#include <tidings/subscription.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace tidings::detail {

/// What a call asks the dispatch loop to do afterwards.
/// `drain`: a replaying subscriber's gate holds live events to deliver now (replay_gate).
enum class after_call : unsigned char { keep, remove, drain };

/// A subscriber of `Event`, as the dispatch loop sees it. The hot fields (removed, invoke) and
/// the handler sit in one allocation.
template <class Event, class Threading>
struct node : node_base {
    using invoke_fn = after_call (*)(node&, const Event&);

    /// How an inline dispatch calls this subscriber: `call(object, event)`. A plain
    /// subscriber (no filter, once, tracking or replay) calls its handler straight, with
    /// `object` its handler; the others check `removed` first and take the node's full path,
    /// with `object` the node. Snapshots copy it into a contiguous array (snapshot::delegates).
    struct delegate {
        after_call (*call)(void*, const Event&) = nullptr;
        void* object = nullptr;
    };

    /// Set once, by whoever disconnects the node; dispatches skip removed nodes.
    typename Threading::template atomic_type<bool> removed{false};
    invoke_fn invoke = nullptr;
    int priority = 0;
    /// Null for inline delivery; else the executor whose thread calls the handler.
    executor_core* executor = nullptr;
    /// For a subscriber that asked for a replay: delivers one retained event.
    invoke_fn replay = nullptr;
    /// For a subscriber that asked for a replay: delivers its oldest held live event; false
    /// when none is ready (see replay_gate::deliver_held).
    bool (*drain)(node&) = nullptr;
    /// For a subscriber that asked for a replay: a replayed event was discarded (see
    /// replay_gate::discard_replayed); returns how many held live events went with it.
    std::size_t (*discard_replayed)(node&) noexcept = nullptr;
    delegate inline_call;  ///< set by the node's constructor
};

/// The last N events of a channel, kept for late subscribers. Every publish of a retaining
/// channel, and every subscription that replays, holds `mutex` for its whole dispatch: the
/// channel's events then have one total order, which is what makes a replay gap-free and
/// duplicate-free. A handler may publish the same type again (the mutex is recursive).
///
/// The ring has one slot more than it keeps: a new event is copied into the free slot, and
/// only once that copy succeeded is the oldest one destroyed. A copy that throws (a throwing
/// copy constructor, bad_alloc) thus leaves every kept event as it was, and no slot that a
/// replay reads is ever empty or half-built (strong guarantee).
template <class Event, class Threading>
struct retention {
    using mutex_type =
        std::conditional_t<Threading::is_thread_safe, std::recursive_mutex, null_mutex>;
    using ring_type = std::vector<std::optional<Event>>;
    mutex_type mutex;
    ring_type ring;         // guarded by mutex: capacity + 1 slots, or none
    std::size_t first = 0;  // index of the oldest kept event
    std::size_t count = 0;  // kept events, at most capacity()
    /// Inline replays under way (more than one when a replaying handler subscribes with
    /// replay again). While there is one, the channel's snapshot keeps pointing here even if
    /// the ring is freed (a replaying handler calling retain<E>(0)), so every publish still
    /// takes `mutex` and none reaches the replaying subscriber's gate beside its replay.
    /// Written under `mutex` (begin_replay, end_replay); read by channel::build, under the
    /// bus's mutex.
    typename Threading::template atomic_type<std::size_t> replaying{0};

    [[nodiscard]] std::size_t capacity() const noexcept {
        return ring.empty() ? 0 : ring.size() - 1;
    }

    /// Keeps a copy of `event`, dropping the oldest when full. Strong guarantee: if the copy
    /// throws, the kept events are unchanged and the exception propagates.
    void keep(const Event& event) {
        if (ring.empty()) return;
        const std::size_t size = ring.size();
        // The slot after the newest is always free (count < size).
        ring[(first + count) % size].emplace(event);  // may throw: nothing changed yet
        if (count < size - 1) {
            ++count;
        } else {
            ring[first].reset();  // the oldest goes only now; its slot becomes the free one
            first = (first + 1) % size;
        }
    }

    /// A ring holding the newest `capacity` kept events (0: no storage), for adopt(). Strong
    /// guarantee: the kept events are copied, or moved when their move cannot throw, into new
    /// storage allocated first; if that throws, this retention is unchanged. (Once it returns,
    /// the kept events may have been moved out: adopt the result.)
    [[nodiscard]] ring_type resized(std::size_t capacity) {
        ring_type kept;
        if (capacity == 0) return kept;
        if (capacity >= kept.max_size()) {
            throw std::length_error("tidings: retain<E>(n): n is too large");
        }
        kept.reserve(capacity + 1);
        const std::size_t keep_count = std::min(count, capacity);
        for (std::size_t i = count - keep_count; i < count; ++i) {
            kept.emplace_back(std::move_if_noexcept(*ring[(first + i) % ring.size()]));
        }
        kept.resize(capacity + 1);  // within the reserved storage: empty optionals, no throw
        return kept;
    }

    /// Takes a ring made by resized(). Nothrow.
    void adopt(ring_type kept) noexcept {
        count = kept.empty() ? 0 : std::min(count, kept.size() - 1);
        ring = std::move(kept);
        first = 0;
    }

    /// An inline replay begins. Caller holds `mutex`, before it links the subscriber.
    void begin_replay() noexcept {
        // relaxed: the writers hold `mutex`; the link that follows takes the bus's mutex,
        // which carries the new count to every later build (all run under that mutex).
        replaying.store(replaying.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }

    /// An inline replay ended (caller holds `mutex`). True when it was the last one and the
    /// ring was freed meanwhile: the snapshot still points here, so publishes still lock, and
    /// the caller rebuilds it (channel::retain_locked(0)) to make them lock-free again.
    [[nodiscard]] bool end_replay() noexcept {
        const std::size_t left = replaying.load(std::memory_order_relaxed) - 1;
        // release: pairs with the acquire load in channel::build. A build (by any thread)
        // that reads 0 may publish a snapshot without this retention, whose publishers reach
        // the gate, and call the handler, without `mutex`: what the replay did to them (the
        // held events delivered and cleared) must happen before.
        replaying.store(left, std::memory_order_release);
        return left == 0 && ring.empty();
    }

    /// The newest `limit` kept events, oldest first.
    template <class Visit>
    void for_each_newest(std::size_t limit, Visit&& visit) const {
        const std::size_t n = std::min(limit, count);
        for (std::size_t i = count - n; i < count; ++i) visit(*ring[(first + i) % ring.size()]);
    }
};

/// An inline replay under way, from before its subscriber is linked to the end of the
/// replay (see retention::replaying). Lives under the retention's mutex; null: none.
template <class Event, class Threading>
class inline_replay_scope {
public:
    explicit inline_replay_scope(retention<Event, Threading>* kept) noexcept : kept_(kept) {
        if (kept_ != nullptr) kept_->begin_replay();
    }
    /// Without end(): the link or the replay's set-up threw, before any handler ran, so the
    /// ring was not freed and the snapshot needs no rebuild.
    ~inline_replay_scope() {
        if (kept_ != nullptr) (void)kept_->end_replay();
    }
    inline_replay_scope(const inline_replay_scope&) = delete;
    inline_replay_scope& operator=(const inline_replay_scope&) = delete;

    /// Ends it now; true when the caller must rebuild the snapshot (retention::end_replay).
    [[nodiscard]] bool end() noexcept {
        return kept_ != nullptr && std::exchange(kept_, nullptr)->end_replay();
    }

private:
    retention<Event, Threading>* kept_;
};

/// The bus-side services a channel needs on its rare paths (errors, self-removal).
template <class Threading>
class channel_host {
public:
    /// Unlinks a node from inside a dispatch (a `once` handler ran, a tracked object died).
    virtual void remove_in_dispatch(node_base& node) noexcept = 0;
    /// Routes one handler's exception by the bus's error_policy. `first_error` is null when
    /// there is no publisher to rethrow to (a queued delivery): then it goes to the handler.
    virtual void report_error(std::exception_ptr error, std::string_view event_type,
                              std::uint64_t subscription_id,
                              std::optional<std::exception_ptr>* first_error) noexcept = 0;

protected:
    ~channel_host() = default;
};

/// The type-independent face of a channel, for the bus's table and its writers.
template <class Threading>
class channel_base {
public:
    virtual ~channel_base() = default;
    /// Unlinks `node` if it is still linked; returns the replaced snapshot (to retire) or null.
    virtual retired* unlink_locked(node_base& node) noexcept = 0;
    /// Unlinks every node delivering on `executor` (every node if null): marks them removed,
    /// appends them to `nodes`, and returns the replaced snapshot (or null if none matched).
    virtual retired* unlink_matching_locked(const executor_core* executor, bool all,
                                            retired*& nodes) noexcept = 0;
    [[nodiscard]] virtual bool is_removed(const node_base& node) const noexcept = 0;
    [[nodiscard]] virtual std::size_t size() const noexcept = 0;

    /// What this channel's read sections and retired objects name as their scope
    /// (detail/epoch.hpp): an unsubscribe waits only for the dispatches of its channel.
    [[nodiscard]] const void* scope_id() const noexcept { return this; }

    /// Whether a task of this channel was ever queued to an executor. Read by the bus's
    /// shutdown after its grace period (every publish has ended, and happens before it): a
    /// bus that never queued anything leaves no task behind and is released at once.
    [[nodiscard]] bool queued_any() const noexcept {
        return queued_any_.load(std::memory_order_relaxed);
    }

protected:
    /// Before queuing a task. Stores only once, so the line stays shared between publishers.
    void note_queued() noexcept {
        // relaxed: read after the bus's grace period, which orders it (see queued_any).
        if (!queued_any_.load(std::memory_order_relaxed)) {
            queued_any_.store(true, std::memory_order_relaxed);
        }
    }

private:
    std::atomic<bool> queued_any_{false};
};

/// An executor that some queued subscribers of a channel deliver on.
struct queue_target {
    /// Null once its executor is gone while no snapshot without it could be built (out of
    /// memory; see channel::forget_executor). Atomic only for that rare store: publishers load
    /// it relaxed, a plain load on every platform we know.
    std::atomic<executor_core*> executor;
    std::uint32_t recipients;  ///< how many of the channel's subscribers deliver on it
};

/// An immutable snapshot: a header, then the inline subscribers' delegates (what a publish
/// walks), then the node pointers (inline ones first), then the queue targets, in one
/// allocation.
template <class Node>
struct snapshot final : retired {
    using delegate = typename Node::delegate;

    std::uint32_t inline_count = 0;
    std::uint32_t target_count = 0;
    void* retention = nullptr;  ///< the channel's retention while it keeps events, else null
    /// The channel's unlink count when this snapshot was built: while the count is the same,
    /// no node of this snapshot has been unlinked, so a dispatch calls the delegates without
    /// checking each node's `removed` flag (channel::unlinks_).
    std::uint64_t built_at_unlinks = 0;
    std::uint32_t queued_count = 0;
    std::uint64_t max_id = 0;  ///< the newest subscription in it (queued tasks carry it)
    /// Nodes unlinked while no new snapshot could be built (out of memory): still in this
    /// snapshot, flagged removed. Reclaimed with it, when no reader can hold it any more.
    retired* riders = nullptr;

    [[nodiscard]] delegate* delegates() noexcept {
        return std::launder(reinterpret_cast<delegate*>(this + 1));
    }
    [[nodiscard]] const delegate* delegates() const noexcept {
        return std::launder(reinterpret_cast<const delegate*>(this + 1));
    }
    [[nodiscard]] Node** nodes() noexcept {
        return std::launder(reinterpret_cast<Node**>(delegates() + inline_count));
    }
    [[nodiscard]] Node* const* nodes() const noexcept {
        return std::launder(reinterpret_cast<Node* const*>(delegates() + inline_count));
    }
    [[nodiscard]] queue_target* targets() noexcept {
        return std::launder(reinterpret_cast<queue_target*>(nodes() + inline_count + queued_count));
    }
    [[nodiscard]] const queue_target* targets() const noexcept {
        return std::launder(
            reinterpret_cast<const queue_target*>(nodes() + inline_count + queued_count));
    }

    static snapshot* make(std::uint32_t inline_count, std::uint32_t queued_count,
                          std::uint32_t max_targets) {
        static_assert(sizeof(snapshot) % alignof(delegate) == 0, "delegates follow the header");
        static_assert(sizeof(delegate) % alignof(Node*) == 0, "the nodes follow the delegates");
        static_assert(alignof(queue_target) <= alignof(Node*), "targets follow the nodes");
        void* memory = ::operator new(sizeof(snapshot) + inline_count * sizeof(delegate) +
                                      (inline_count + queued_count) * sizeof(Node*) +
                                      max_targets * sizeof(queue_target));
        auto* result = ::new (memory) snapshot;
        result->inline_count = inline_count;
        result->queued_count = queued_count;
        result->reclaim = &destroy;
        return result;
    }
    static void destroy(retired* object) noexcept {
        auto* self = static_cast<snapshot*>(object);
        retired* const riders = self->riders;
        self->~snapshot();
        ::operator delete(self);
        reclaim_list(riders);
    }
};

template <class Event, class Threading>
class channel;

/// A queued delivery of one event to one executor, stored in a lane record: the event inline
/// when it fits, else on the heap.
template <class Event, class Threading, bool Inline>
struct delivery_task {
    static constexpr bool on_heap = !Inline;

    channel<Event, Threading>* target;
    std::uint64_t max_id;
    std::uint32_t recipients;
    std::conditional_t<Inline, Event, std::unique_ptr<Event>> event;

    [[nodiscard]] const Event& get() const noexcept {
        if constexpr (Inline) {
            return event;
        } else {
            return *event;
        }
    }

    static task_outcome operation(record_header& record, task_action action,
                                  void* context) noexcept {
        auto* self = record.payload<delivery_task>();
        std::size_t cancelled = 0;
        if (action == task_action::run) {
            cancelled = self->target->deliver_queued(self->get(), self->max_id, self->recipients,
                                                     *static_cast<executor_core*>(context));
        }
        self->~delivery_task();
        return {record_size_of<delivery_task>, cancelled};
    }
};

/// A replayed event on its way to one queued subscriber (by id): the event inline when it
/// fits, else on the heap.
template <class Event, class Threading, bool Inline>
struct replay_task {
    static constexpr bool on_heap = !Inline;

    channel<Event, Threading>* target;
    std::uint64_t node_id;
    std::conditional_t<Inline, Event, std::unique_ptr<Event>> event;

    [[nodiscard]] const Event& get() const noexcept {
        if constexpr (Inline) {
            return event;
        } else {
            return *event;
        }
    }

    /// Run: returns 1 if the subscriber had left (cancelled). Discard: returns how many held
    /// live events were thrown away with it (the executor counts them as discarded).
    static task_outcome operation(record_header& record, task_action action,
                                  void* context) noexcept {
        auto* self = record.payload<replay_task>();
        std::size_t count = 0;
        auto& executor = *static_cast<executor_core*>(context);
        if (action == task_action::run) {
            count = self->target->deliver_replay(self->get(), self->node_id, executor);
        } else {
            count = self->target->discard_replay(self->node_id, executor);
        }
        self->~replay_task();
        return {record_size_of<replay_task>, count};
    }
};

/// The handler of a subscriber that asked for a replay. It is linked before its replay runs,
/// so live events can reach it first: from other producers' lanes (queued), or from the
/// replaying handler itself publishing the same type (inline). Those wait in `held` until the
/// last replayed event ran, then follow in order.
///
/// `held` is touched only by the thread that delivers to this subscriber: its executor's
/// consumer, or, while an inline replay runs, a thread holding the retention's mutex (the
/// channel keeps every publish locked until the replay ends: retention::replaying).
/// `remaining` is also lowered by the subscribing thread, for replayed events its executor
/// refused; it does so before any live event can reach the gate (see cancel()), so whichever
/// replayed event brings `remaining` to 0 runs on the consumer, after every held event
/// arrived, and delivers them: no held event waits for a next live event.
///
/// Every replayed event is counted off before its filter and handler run, so one that throws
/// cannot keep the gate shut. The held events are delivered one per deliver_held() call, so the
/// channel reports each one's exception and goes on with the next (channel::drain_held).
template <class Event, class Handler>
struct replay_gate {
    replay_gate(Handler h, std::uint64_t expected) : handler(std::move(h)), remaining(expected) {}
    /// Only before the node is published (no other thread sees it yet). A vector's move
    /// neither allocates nor throws (a deque's may, and this constructor is noexcept).
    replay_gate(replay_gate&& other) noexcept(std::is_nothrow_move_constructible_v<Handler>)
        : handler(std::move(other.handler)),
          remaining(other.remaining.load(std::memory_order_relaxed)),  // before publication
          held(std::move(other.held)),
          held_next(other.held_next) {}

    Handler handler;
    std::atomic<std::uint64_t> remaining;  ///< replayed events still to come
    std::vector<Event> held;               ///< live events waiting, from held_next on
    std::size_t held_next = 0;

    /// A live event that passed the filter: calls the handler, or holds the event while the
    /// replay is not over (or older held events still wait, which deliver_held() then
    /// delivers first: returns after_call::drain).
    after_call live(const Event& event) {
        TIDINGS_SCHEDULE_POINT();  // a cancel() still under way here would be a bug: see there
        // acquire: pairs with the acq_rel decrement in cancel(), the subscribing thread's
        // (which also happens before us through the retention's mutex); count_off() runs in
        // this thread, or under that mutex.
        if (remaining.load(std::memory_order_acquire) != 0) {
            held.push_back(event);  // bad_alloc: reported as this event's failure
            return after_call::keep;
        }
        if (held_next != held.size()) [[unlikely]] {
            held.push_back(event);  // behind the older ones
            return after_call::drain;
        }
        std::invoke(handler, event);
        return after_call::keep;
    }

    /// Counts one replayed event off, before its filter and handler run.
    void count_off() noexcept { finish(1); }

    /// Replayed events that will never come (refused by the executor without throwing:
    /// overflow::drop). The caller holds the retention's mutex, taken before the subscriber
    /// was linked, so no live event has reached the gate yet: the accepted replayed events
    /// alone can bring `remaining` to 0, and the last of them then delivers what the gate
    /// holds by then. (A cancel after a live event was held, with the accepted replayed
    /// events already run, would leave it waiting for a next live event that may never come.)
    void cancel(std::uint64_t count) noexcept { finish(count); }

    /// A replayed event thrown away by a discarding stop, on the consumer (or the thread that
    /// destroys a manual_executor, which no other thread runs then): counted off as if it had
    /// run. Once the last one is, the held live events can never be delivered (the executor
    /// runs nothing more): they are thrown away too, and their number returned, for the
    /// executor's `discarded` count: nothing is lost silently.
    std::size_t discard_replayed() noexcept {
        finish(1);
        // acquire: see live().
        if (remaining.load(std::memory_order_acquire) != 0) return 0;
        const std::size_t dropped = held.size() - held_next;
        held.clear();
        held_next = 0;
        return dropped;
    }

    /// Delivers the oldest held event, once the replay is over. Returns false when there is
    /// none to deliver. If the handler (or the event's copy) throws, that event is gone and
    /// the exception propagates; the next call goes on with the next event.
    bool deliver_held() {
        // acquire: see live().
        if (held_next == held.size() || remaining.load(std::memory_order_acquire) != 0) {
            return false;
        }
        const std::size_t index = held_next++;
        // Out of the vector first: the handler may publish again and so grow `held`.
        Event next = std::move_if_noexcept(held[index]);
        if (held_next == held.size()) {
            held.clear();
            held_next = 0;
        }
        std::invoke(handler, next);
        return true;
    }

private:
    void finish(std::uint64_t count) noexcept {
        // acq_rel: release for the thread that delivers the live events (its acquire loads in
        // live()/deliver_held()); acquire for the other counters' decrements.
        remaining.fetch_sub(count, std::memory_order_acq_rel);
    }
};

template <class Handler>
struct is_replay_gate : std::false_type {};
template <class Event, class Handler>
struct is_replay_gate<replay_gate<Event, Handler>> : std::true_type {};

/// True when a delivery of `Event` travels inline in a lane record (events up to 256 bytes,
/// and larger ones up to the record limit, aligned to at most 8 bytes).
template <class Event, class Threading>
inline constexpr bool fits_in_record_inline =
    fits_in_record<delivery_task<Event, Threading, true>>&& std::is_nothrow_destructible_v<Event>;

/// The channel of one event type.
template <class Event, class Threading>
class channel final : public channel_base<Threading> {
public:
    using node_type = node<Event, Threading>;
    using snapshot_type = snapshot<node_type>;
    using domain_type = typename Threading::domain_type;

    channel(channel_host<Threading>& host, domain_type& domain) noexcept
        : host_(host), domain_(domain) {}

    ~channel() override {
        // The bus unlinked and retired every subscriber before destroying its channels; a
        // retaining channel still has its (empty) snapshot, which no reader can hold now.
        snapshot_type* last = subscribers_.load(std::memory_order_relaxed);
        if (last != nullptr) {
            TIDINGS_ASSERT(last->inline_count + last->queued_count == 0,
                           "a channel destroyed with subscribers still linked");
            snapshot_type::destroy(last);
        }
        reclaim_list(pending_);  // none: shutdown's unlink_matching_locked took them
    }

    /// Calls every inline subscriber, in priority then subscription order, in this thread,
    /// then queues one task per executor that has subscribers of this type. Exceptions follow
    /// the bus's error_policy; with rethrow_first, the first is rethrown here after every
    /// subscriber ran and every executor was offered the event.
    template <class Arg>
    TIDINGS_ALWAYS_INLINE publish_result publish(Arg&& event) {
        // relaxed: only a shortcut for "no subscribers". A subscribe that happens-before this
        // publish is seen by coherence; one that races with it may or may not be.
        const snapshot_type* current = subscribers_.load(std::memory_order_relaxed);
        if (current == nullptr) return {};
        // An optional, so the common path never runs exception_ptr's out-of-line destructor.
        std::optional<std::exception_ptr> first_error;
        const publish_result result = dispatch(std::forward<Arg>(event), current, first_error);
        if (first_error.has_value()) [[unlikely]]
            std::rethrow_exception(std::move(*first_error));
        return result;
    }

    /// Runs a queued delivery on `executor`'s consumer thread: calls the subscribers of this
    /// type on that executor that were connected at publish time and still are. Returns how
    /// many of the `recipients` counted at publish time were gone.
    std::size_t deliver_queued(const Event& event, std::uint64_t max_id, std::uint32_t recipients,
                               executor_core& executor) noexcept {
        std::uint32_t reached = 0;
        typename domain_type::read_section section{domain_, this->scope_id()};
        // seq_cst: see dispatch().
        const snapshot_type* current = subscribers_.load(std::memory_order_seq_cst);
        if (current != nullptr) {
            node_type* const* first = current->nodes() + current->inline_count;
            for (node_type* subscriber : std::span(first, current->queued_count)) {
                if (subscriber->executor != &executor || subscriber->id > max_id) continue;
                // acquire: pairs with the release store in unlink_locked.
                if (subscriber->removed.load(std::memory_order_acquire)) continue;
                ++reached;
                call(*subscriber, event, nullptr);
            }
        }
        return recipients > reached ? recipients - reached : 0;
    }

    /// Runs a replayed event for the queued subscriber `node_id` on `executor`'s thread.
    /// Returns 1 if that subscriber is gone (the delivery is cancelled), else 0.
    std::size_t deliver_replay(const Event& event, std::uint64_t node_id,
                               executor_core& executor) noexcept {
        typename domain_type::read_section section{domain_, this->scope_id()};
        // seq_cst: see dispatch().
        const snapshot_type* current = subscribers_.load(std::memory_order_seq_cst);
        if (current == nullptr) return 1;
        node_type* const* first = current->nodes() + current->inline_count;
        for (node_type* subscriber : std::span(first, current->queued_count)) {
            if (subscriber->id != node_id || subscriber->executor != &executor) continue;
            // acquire: pairs with the release store in unlink_locked.
            if (subscriber->removed.load(std::memory_order_acquire)) return 1;
            replay_one(*subscriber, event, nullptr);
            return 0;
        }
        return 1;
    }

    /// A replayed event for subscriber `node_id` on `executor` was discarded by a discarding
    /// stop: counts it off its gate; returns how many held live events went with it.
    std::size_t discard_replay(std::uint64_t node_id, executor_core& executor) noexcept {
        std::optional<typename domain_type::read_section> section;
        try {
            section.emplace(domain_, this->scope_id());
        } catch (...) {
            return 0;  // this thread's first section, out of memory: the gate stays shut
        }
        // seq_cst: see dispatch().
        const snapshot_type* current = subscribers_.load(std::memory_order_seq_cst);
        if (current == nullptr) return 0;
        node_type* const* first = current->nodes() + current->inline_count;
        for (node_type* subscriber : std::span(first, current->queued_count)) {
            if (subscriber->id != node_id || subscriber->executor != &executor) continue;
            if (subscriber->discard_replayed == nullptr) return 0;
            return subscriber->discard_replayed(*subscriber);
        }
        return 0;
    }

    /// The channel's retention, created on first use (caller holds the bus's mutex).
    retention<Event, Threading>& retention_locked() {
        if (retention_ == nullptr) retention_ = std::make_unique<retention<Event, Threading>>();
        return *retention_;
    }

    /// The retention if this channel ever retained, else null (caller holds the bus's mutex).
    [[nodiscard]] retention<Event, Threading>* retention_if_any() const noexcept {
        return retention_.get();
    }

    /// Makes the retention keep the newest `count` events (0: none, and frees them), and
    /// rebuilds the snapshot, whose header tells publishes whether to take the retention's
    /// mutex (also while an inline replay runs, whatever `count`). Returns the replaced
    /// snapshot. Strong guarantee: the new ring and the new snapshot are both made
    /// before either is installed, so a bad_alloc or a throwing copy changes nothing. Caller
    /// holds the retention's mutex and the bus's mutex.
    retired* retain_locked(std::size_t count) {
        auto& kept = *retention_;
        // The snapshot first: resized() may move the kept events out of the old ring (when
        // their move cannot throw), after which nothing may fail.
        snapshot_type* next = build(count != 0);
        typename retention<Event, Threading>::ring_type ring;
        try {
            ring = kept.resized(count);
        } catch (...) {
            if (next != nullptr) snapshot_type::destroy(next);
            throw;
        }
        kept.adopt(std::move(ring));  // nothrow from here on
        return replace(next);
    }

    /// The newest `limit` retained events, oldest first (a copy: the ring may change while
    /// they are replayed). Caller holds the retention's mutex.
    [[nodiscard]] std::vector<Event> retained_copy(std::size_t limit) const {
        std::vector<Event> events;
        if (retention_ == nullptr) return events;
        events.reserve(std::min(limit, retention_->count));
        retention_->for_each_newest(limit, [&](const Event& event) { events.push_back(event); });
        return events;
    }

    /// Replays `events` to a just-linked inline subscriber, in this thread. Caller holds the
    /// retention's mutex and an inline_replay_scope, so no other thread's publish interleaves,
    /// even if a handler turns retention off. Exceptions go to the bus's error handler (the
    /// subscription stays).
    /// With error_policy::rethrow_first the first exception lands in `first_error` (for
    /// subscribe to rethrow after undoing the subscription); the others are reported.
    void replay_inline(node_type& subscriber, const std::vector<Event>& events,
                       std::optional<std::exception_ptr>& first_error) {
        typename domain_type::read_section section{domain_, this->scope_id()};
        for (const Event& event : events) {
            // acquire: pairs with the release store in unlink_locked (it unsubscribed).
            if (subscriber.removed.load(std::memory_order_acquire)) return;
            replay_one(subscriber, event, &first_error);
        }
    }

    /// Queues `events` for the just-linked queued subscriber `node_id` on `executor`,
    /// counting in `accepted` those the executor took (also when a push throws). Each one
    /// refused by overflow::drop is counted by the executor (dropped, or rejected once it has
    /// stopped) and skipped; the caller counts them off the gate (replay_gate::cancel).
    void replay_queued(std::uint64_t node_id, executor_core& executor,
                       const std::vector<Event>& events, std::uint64_t& accepted) {
        // stop() waits for pushes in one
        typename domain_type::read_section section{domain_, this->scope_id()};
        this->note_queued();
        for (const Event& event : events) {
            constexpr bool in_record = fits_in_record<replay_task<Event, Threading, true>> &&
                                       std::is_nothrow_destructible_v<Event>;
            using task = replay_task<Event, Threading, in_record>;
            const bool queued = executor.push<task>([&](void* where) {
                if constexpr (in_record) {
                    ::new (where) task{this, node_id, event};
                } else {
                    ::new (where) task{this, node_id, std::make_unique<Event>(event)};
                }
            });
            if (queued) ++accepted;
        }
    }

    retired* link_locked(node_type& added) {
        // Equal priorities keep subscription order: the new node goes after all nodes whose
        // priority is greater than or equal to its own (a plain append in the common case).
        auto position = meta_.end();
        if (!meta_.empty() && meta_.back().priority < added.priority) {
            position = std::partition_point(meta_.begin(), meta_.end(), [&](const linked_meta& m) {
                return m.priority >= added.priority;
            });
        }
        const auto index = position - meta_.begin();
        nodes_.insert(nodes_.begin() + index, &added);
        try {
            meta_.insert(position, linked_meta{added.executor, added.priority});
        } catch (...) {
            nodes_.erase(nodes_.begin() + index);
            throw;
        }
        if (added.executor != nullptr) ++queued_count_;
        snapshot_type* next = nullptr;
        try {
            next = build();
        } catch (...) {
            erase(&added);
            throw;
        }
        max_id_ = std::max(max_id_, added.id);
        next->max_id = max_id_;
        added.channel = static_cast<channel_base<Threading>*>(this);
        return replace(next);
    }

    retired* unlink_locked(node_base& base) noexcept override {
        auto& removed = static_cast<node_type&>(base);
        // release: a dispatch that sees removed=true skips the node; the new snapshot below
        // is what stops new dispatches from reaching it at all.
        removed.removed.store(true, std::memory_order_release);
        TIDINGS_SCHEDULE_POINT();              // a dispatch between the flag and the new snapshot
        if (!erase(&removed)) return nullptr;  // already unlinked, and counted then
        count_unlink();  // only a node still linked can be in a snapshot built at this count
        snapshot_type* next = nullptr;
        try {
            next = build();
        } catch (...) {
            keep_pending(&removed);
            return nullptr;
        }
        return replace(next);
    }

    retired* unlink_matching_locked(const executor_core* executor, bool all,
                                    retired*& nodes) noexcept override {
        // Compacts both arrays in place, keeping order; unlinked nodes go to a local list.
        retired* unlinked = nullptr;
        std::size_t kept = 0;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (all || meta_[i].executor == executor) {
                nodes_[i]->removed.store(true, std::memory_order_release);  // see unlink_locked
                nodes_[i]->next_retired = unlinked;
                unlinked = nodes_[i];
                if (meta_[i].executor != nullptr) --queued_count_;
            } else {
                nodes_[kept] = nodes_[i];
                meta_[kept] = meta_[i];
                ++kept;
            }
        }
        if (unlinked == nullptr) return nullptr;
        count_unlink();
        nodes_.resize(kept);
        meta_.resize(kept);
        snapshot_type* next = nullptr;
        try {
            next = build();
        } catch (...) {
            if (!all) {
                keep_pending(unlinked);
                forget_executor(executor);
                return nullptr;
            }
            // Every node goes (the bus shuts down): no snapshot at all needs no memory. The
            // channel then stops keeping copies too, which no one could replay any more.
            next = nullptr;
        }
        while (unlinked != nullptr) {
            retired* following = unlinked->next_retired;
            unlinked->next_retired = nodes;
            nodes = unlinked;
            unlinked = following;
        }
        return replace(next);
    }

    [[nodiscard]] bool is_removed(const node_base& base) const noexcept override {
        // acquire: pairs with the release store of `removed` by the unsubscriber.
        return static_cast<const node_type&>(base).removed.load(std::memory_order_acquire);
    }

    [[nodiscard]] std::size_t size() const noexcept override {
        // Not the snapshot's header: outside a read section, a concurrent unsubscribe may free
        // the snapshot under us. relaxed: a count that may be stale when used.
        return linked_count_.load(std::memory_order_relaxed);
    }

private:
    /// What a rebuild needs of each linked node, kept beside nodes_ so that rebuilding reads
    /// two contiguous arrays rather than every node's cache line.
    struct linked_meta {
        executor_core* executor;
        int priority;
    };

    /// Tells dispatches under way that a node of their snapshot may now be flagged removed:
    /// from here on they check every node's flag (see deliver). Called after the flag's store.
    void count_unlink() noexcept {
        // release: a dispatch that reads the new count (acquire) also sees the `removed` flags
        // stored before it. Only writers holding the bus's mutex store the count.
        unlinks_.store(unlinks_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }

    /// Removes `target`; false if it was not linked. Searches from the newest, the usual one
    /// to leave first.
    bool erase(const node_type* target) noexcept {
        const auto found = std::find(nodes_.rbegin(), nodes_.rend(), target);
        if (found == nodes_.rend()) return false;
        const auto index = nodes_.rend() - found - 1;
        if (meta_[static_cast<std::size_t>(index)].executor != nullptr) --queued_count_;
        nodes_.erase(nodes_.begin() + index);
        meta_.erase(meta_.begin() + index);
        return true;
    }

    /// Builds a snapshot of nodes_ (null when empty and not retaining).
    snapshot_type* build() { return build(retention_ != nullptr && !retention_->ring.empty()); }

    /// `retaining`: whether the ring keeps events. The snapshot points to the retention also
    /// while an inline replay runs (retention::replaying), so that publishes keep taking its
    /// mutex even if the replaying handler turned retention off.
    snapshot_type* build(bool retaining) {
        if (nodes_.empty() && !retaining) return nullptr;
        const auto total = static_cast<std::uint32_t>(nodes_.size());
        const std::uint32_t queued = queued_count_;
        snapshot_type* next = snapshot_type::make(total - queued, queued, queued);
        next->max_id = max_id_;
        // relaxed: writers hold the bus's mutex; readers see it through the snapshot's release.
        next->built_at_unlinks = unlinks_.load(std::memory_order_relaxed);
        node_type** inline_out = next->nodes();
        if (queued == 0) {
            std::copy(nodes_.begin(), nodes_.end(), inline_out);
        } else {
            node_type** queued_out = inline_out + (total - queued);
            queue_target* targets = next->targets();
            std::uint32_t target_count = 0;
            for (std::size_t i = 0; i < nodes_.size(); ++i) {
                executor_core* const executor = meta_[i].executor;
                if (executor == nullptr) {
                    *inline_out++ = nodes_[i];
                    continue;
                }
                *queued_out++ = nodes_[i];
                queue_target* end = targets + target_count;
                queue_target* found = std::find_if(targets, end, [&](const queue_target& t) {
                    // relaxed: the snapshot being built is not published yet.
                    return t.executor.load(std::memory_order_relaxed) == executor;
                });
                if (found == end) {
                    ::new (found) queue_target{executor, 1};
                    ++target_count;
                } else {
                    ++found->recipients;
                }
            }
            next->target_count = target_count;
        }
        typename snapshot_type::delegate* delegates = next->delegates();
        for (std::uint32_t i = 0; i < next->inline_count; ++i) {
            delegates[i] = next->nodes()[i]->inline_call;
        }
        // acquire: pairs with the release store in retention::end_replay. Reading 0 here,
        // this snapshot may let publishers reach a gate without the mutex: the replay's work
        // on it must happen before. (A replay that began is seen through the bus's mutex.)
        const bool replaying =
            retention_ != nullptr && retention_->replaying.load(std::memory_order_acquire) != 0;
        next->retention = retaining || replaying ? retention_.get() : nullptr;
        return next;
    }

    /// A removal whose new snapshot could not be built (out of memory): the removed nodes (a
    /// list through next_retired) stay in the current snapshot, flagged removed, so never
    /// called, and cannot be retired yet, since readers may reach them through it. They wait
    /// in pending_ and ride with that snapshot when the next change of this channel replaces
    /// it (replace()); shutdown always replaces it (unlink_matching_locked needs no memory
    /// when every node goes). The caller sees null: nothing to retire now.
    void keep_pending(retired* nodes) noexcept {
        // relaxed: read by size() only; the nodes are no longer linked (nodes_ lost them).
        linked_count_.store(static_cast<std::uint32_t>(nodes_.size()), std::memory_order_relaxed);
        while (nodes != nullptr) {
            retired* following = nodes->next_retired;
            nodes->next_retired = pending_;
            pending_ = nodes;
            nodes = following;
        }
    }

    /// An executor is going away and the snapshot that still names it as a queue target could
    /// not be replaced (out of memory): the target is cleared in place, so that no later
    /// publish pushes to the executor once it is freed. Publishes that loaded the pointer
    /// before the store are inside read sections the detaching executor waits for, and its
    /// stop already made it refuse their pushes.
    void forget_executor(const executor_core* executor) noexcept {
        snapshot_type* current = subscribers_.load(std::memory_order_relaxed);
        if (current == nullptr || executor == nullptr) return;
        queue_target* targets = current->targets();
        for (std::uint32_t i = 0; i < current->target_count; ++i) {
            // relaxed: see queue_target::executor.
            if (targets[i].executor.load(std::memory_order_relaxed) == executor) {
                targets[i].executor.store(nullptr, std::memory_order_relaxed);
            }
        }
    }

    /// Publishes `next` and returns the snapshot it replaces, which takes the pending nodes
    /// with it (they are in it, and in no newer one).
    retired* replace(snapshot_type* next) noexcept {
        snapshot_type* old = subscribers_.load(std::memory_order_relaxed);
        if (old != nullptr && pending_ != nullptr) {
            TIDINGS_ASSERT(old->riders == nullptr, "a snapshot takes the pending nodes once");
            old->riders = std::exchange(pending_, nullptr);
        }
        // relaxed: read by size() only, as a statistic.
        linked_count_.store(next != nullptr ? next->inline_count + next->queued_count : 0,
                            std::memory_order_relaxed);
        // seq_cst: release for dispatches (the snapshot is complete before they see it), and
        // the writer's half of the store-load race with readers entering a dispatch
        // (detail/epoch.hpp).
        subscribers_.store(next, std::memory_order_seq_cst);
        return old;
    }

    template <class Arg>
    TIDINGS_ALWAYS_INLINE publish_result dispatch(Arg&& event, const snapshot_type* current,
                                                  std::optional<std::exception_ptr>& first_error) {
        typename domain_type::read_section section{domain_, this->scope_id()};
        if constexpr (Threading::is_thread_safe) {
            // The snapshot must be loaded after entering the read section, or a writer could
            // free it between the two. seq_cst: pairs with replace() (release suffices for the
            // contents; seq_cst closes the store-load race on the fallback barrier; it is a
            // plain load on x86).
            current = subscribers_.load(std::memory_order_seq_cst);
            if (current == nullptr) return {};
        }
        if constexpr (std::is_copy_constructible_v<Event>) {
            // Only copyable events can be retained (basic_bus::retain checks it).
            if (current->retention != nullptr) [[unlikely]] {
                return dispatch_retained(std::forward<Arg>(event), first_error);
            }
        }
        return deliver(std::forward<Arg>(event), *current, first_error);
    }

    /// Calls the inline subscribers of `current`, then queues to its executors.
    ///
    /// The fast loop calls each delegate with no per-node check: while the channel's unlink
    /// count is the one the snapshot was built at, none of its nodes is flagged removed. A
    /// call that asks for more (a `once` handler ran, a replay gate holds events), throws, or
    /// after which the count moved (a handler unsubscribed someone, in this thread or
    /// another) hands the rest of the walk to the checked loop.
    template <class Arg>
    TIDINGS_ALWAYS_INLINE publish_result deliver(Arg&& event, const snapshot_type& current,
                                                 std::optional<std::exception_ptr>& first_error) {
        const typename snapshot_type::delegate* const delegates = current.delegates();
        const std::uint32_t count = current.inline_count;
        const std::uint64_t built_at = current.built_at_unlinks;
        // acquire, here and below: pairs with the release store in count_unlink, so that a
        // dispatch that sees the new count also sees the flags. A count this thread stored
        // (a handler unsubscribed) is seen by program order; one stored by another thread's
        // unsubscribe is seen in time for its guarantee, which waits for this dispatch
        // (tidings::subscription), or, once it has returned, through the read section's entry
        // (as for the snapshot itself).
        if (unlinks_.load(std::memory_order_acquire) != built_at) [[unlikely]] {
            deliver_checked(current, 0, event, first_error);
        } else {
            for (std::uint32_t i = 0; i < count; ++i) {
                after_call next = after_call::keep;
                try {
                    next = delegates[i].call(delegates[i].object, event);
                } catch (...) {
                    next = handler_threw(*current.nodes()[i], first_error);
                }
                if (next != after_call::keep ||
                    unlinks_.load(std::memory_order_acquire) != built_at) [[unlikely]] {
                    finish_call(*current.nodes()[i], next, &first_error);
                    deliver_checked(current, i + 1, event, first_error);
                    break;
                }
            }
        }
        if (current.target_count == 0) [[likely]]
            return {};
        return enqueue(std::forward<Arg>(event), current, first_error);
    }

    /// The inline subscribers of `current` from `first` on, each checked for removal first.
    [[gnu::noinline]] void deliver_checked(const snapshot_type& current, std::uint32_t first,
                                           const Event& event,
                                           std::optional<std::exception_ptr>& first_error) {
        for (node_type* subscriber :
             std::span(current.nodes() + first, current.inline_count - first)) {
            // acquire: pairs with the release store in unlink_locked.
            if (subscriber->removed.load(std::memory_order_acquire)) continue;
            call(*subscriber, event, &first_error);
        }
    }

    /// A delegate threw: a `once` handler that threw is removed all the same, and the
    /// exception goes by the error policy. Returns what the loop does next.
    [[gnu::noinline]] after_call handler_threw(node_type& subscriber,
                                               std::optional<std::exception_ptr>& first_error) {
        if (subscriber.removed.load(std::memory_order_acquire)) {
            host_.remove_in_dispatch(subscriber);  // a `once` handler threw
        }
        host_.report_error(std::current_exception(), type_name<Event>, subscriber.id, &first_error);
        return after_call::keep;
    }

    /// A publish on a retaining channel: keeps a copy, then delivers, all under the
    /// retention's mutex (see retention). Called inside the read section.
    template <class Arg>
    [[gnu::noinline]] publish_result dispatch_retained(
        Arg&& event, std::optional<std::exception_ptr>& first_error) {
        auto& kept = *retention_;
        std::lock_guard lock{kept.mutex};
        // Reloaded under the mutex: a replaying subscriber linked itself while holding it.
        // seq_cst: see dispatch().
        const snapshot_type* current = subscribers_.load(std::memory_order_seq_cst);
        kept.keep(event);
        if (current == nullptr) return {};
        return deliver(std::forward<Arg>(event), *current, first_error);
    }

    /// Delivers one replayed event through the subscriber's replay path. `first_error` is
    /// null on an executor's thread, where there is no caller to rethrow to.
    /// The replayed event counts off the subscriber's replay gate before anything else runs,
    /// so whatever throws, the gate opens after the last one, and the live events it held
    /// are delivered right after it (also when the last replayed event threw).
    void replay_one(node_type& subscriber, const Event& event,
                    std::optional<std::exception_ptr>* first_error) noexcept {
        try {
            if (subscriber.replay(subscriber, event) == after_call::remove) {
                host_.remove_in_dispatch(subscriber);
            }
        } catch (...) {
            host_.report_error(std::current_exception(), type_name<Event>, subscriber.id,
                               first_error);
        }
        drain_held(subscriber, first_error);
    }

    /// Delivers the live events a replaying subscriber's gate holds, oldest first, one call
    /// each: each exception is reported and the next event still delivered. Stops once the
    /// subscriber is removed (its handler may unsubscribe itself).
    [[gnu::noinline]] void drain_held(node_type& subscriber,
                                      std::optional<std::exception_ptr>* first_error) noexcept {
        for (;;) {
            // acquire: pairs with the release store in unlink_locked.
            if (subscriber.removed.load(std::memory_order_acquire)) return;
            try {
                if (!subscriber.drain(subscriber)) return;
            } catch (...) {
                host_.report_error(std::current_exception(), type_name<Event>, subscriber.id,
                                   first_error);
            }
        }
    }

    /// Calls one subscriber, routing its exception and any self-removal it asks for.
    TIDINGS_ALWAYS_INLINE void call(node_type& subscriber, const Event& event,
                                    std::optional<std::exception_ptr>* first_error) noexcept {
        after_call next = after_call::keep;
        try {
            next = subscriber.invoke(subscriber, event);
        } catch (...) {
            if (subscriber.removed.load(std::memory_order_acquire)) {
                host_.remove_in_dispatch(subscriber);  // a `once` handler threw
            }
            host_.report_error(std::current_exception(), type_name<Event>, subscriber.id,
                               first_error);
        }
        if (next != after_call::keep) [[unlikely]]
            finish_call(subscriber, next, first_error);
    }

    /// What a call asked for: the subscriber's removal, or the delivery of its held events.
    void finish_call(node_type& subscriber, after_call next,
                     std::optional<std::exception_ptr>* first_error) noexcept {
        if (next == after_call::remove) {
            host_.remove_in_dispatch(subscriber);
        } else if (next == after_call::drain) {
            drain_held(subscriber, first_error);
        }
    }

    /// Offers the event to every executor of the snapshot: copies for all but the last,
    /// which takes the event by move when the publisher gave an rvalue.
    template <class Arg>
    [[gnu::noinline]] publish_result enqueue(Arg&& event, const snapshot_type& current,
                                             std::optional<std::exception_ptr>& first_error) {
        publish_result result;
        constexpr bool can_copy = std::is_copy_constructible_v<Event>;
        if (!can_copy && (current.target_count > 1 || std::is_lvalue_reference_v<Arg>)) {
            if (!first_error.has_value()) {
                first_error.emplace(std::make_exception_ptr(std::logic_error(
                    "tidings: a move-only event can be queued to one executor only, and only "
                    "when published as an rvalue")));
            }
            result.dropped = current.target_count;
            return result;
        }
        const queue_target* targets = current.targets();
        for (std::uint32_t i = 0; i < current.target_count; ++i) {
            const bool last = i + 1 == current.target_count;
            // relaxed: see queue_target::executor; null: an executor gone under out-of-memory.
            executor_core* const target = targets[i].executor.load(std::memory_order_relaxed);
            if (target == nullptr) [[unlikely]]
                continue;
            try {
                bool queued = false;
                if constexpr (!std::is_lvalue_reference_v<Arg>) {
                    if (last) {
                        queued =
                            push(*target, std::move(event), current.max_id, targets[i].recipients);
                    }
                }
                if constexpr (can_copy) {
                    if (!last || std::is_lvalue_reference_v<Arg>) {
                        queued = push(*target, static_cast<const Event&>(event), current.max_id,
                                      targets[i].recipients);
                    }
                }
                ++(queued ? result.queued : result.dropped);
            } catch (...) {
                ++result.dropped;
                if (!first_error.has_value()) first_error.emplace(std::current_exception());
            }
        }
        return result;
    }

    template <class Arg>
    bool push(executor_core& executor, Arg&& event, std::uint64_t max_id,
              std::uint32_t recipients) {
        this->note_queued();
        constexpr bool in_record = fits_in_record_inline<Event, Threading>;
        using task = delivery_task<Event, Threading, in_record>;
        return executor.push<task>([&](void* where) {
            if constexpr (in_record) {
                ::new (where) task{this, max_id, recipients, std::forward<Arg>(event)};
            } else {
                ::new (where) task{this, max_id, recipients,
                                   std::make_unique<Event>(std::forward<Arg>(event))};
            }
        });
    }

    channel_host<Threading>& host_;
    domain_type& domain_;
    typename Threading::template atomic_type<snapshot_type*> subscribers_{nullptr};
    /// How many unlinks this channel has seen (stored under the bus's mutex). A dispatch whose
    /// snapshot was built at another count checks each node's `removed` flag (see deliver).
    typename Threading::template atomic_type<std::uint64_t> unlinks_{0};
    /// The current snapshot's subscriber count, for size() (stored by replace()).
    typename Threading::template atomic_type<std::uint32_t> linked_count_{0};
    // Guarded by the bus's mutex: every linked node, in priority order, and counts.
    std::vector<node_type*> nodes_;
    std::vector<linked_meta> meta_;
    std::uint32_t queued_count_ = 0;
    std::uint64_t max_id_ = 0;
    std::unique_ptr<retention<Event, Threading>> retention_;  // created under the bus's mutex,
                                                              // kept until the channel dies
    retired* pending_ = nullptr;  // by the bus's mutex: see keep_pending()
};

/// A subscriber node holding its handler and options. The handler is destroyed when the node
/// is reclaimed; the node's memory lives on while its subscription handle does.
template <class Event, class Threading, class Handler, class Filter, class Tracked, bool Once>
struct node_impl final : node<Event, Threading> {
    using base_type = node<Event, Threading>;

    struct payload {
        Handler handler;
        [[no_unique_address]] Filter filter;
        [[no_unique_address]] Tracked tracked;
    };

    /// True for a subscriber that asked for a replay: its handler is a replay_gate.
    static constexpr bool gated = is_replay_gate<Handler>::value;
    /// True for a subscriber whose inline delivery is a call of its handler and nothing else.
    static constexpr bool plain =
        !gated && !Once && std::is_same_v<Filter, no_option> && std::is_same_v<Tracked, no_option>;

    template <class H, class F, class T>
    node_impl(H&& handler, F&& filter, T&& tracked)
        : payload_(std::in_place, payload{std::forward<H>(handler), std::forward<F>(filter),
                                          std::forward<T>(tracked)}) {
        this->invoke = &call;
        if constexpr (plain) {
            this->inline_call = {&call_plain, &payload_->handler};
        } else {
            this->inline_call = {&call_checked, static_cast<base_type*>(this)};
        }
        if constexpr (gated) {
            this->replay = &call_replay;
            this->drain = &drain_one;
            this->discard_replayed = &discard_one;
        }
        if constexpr (!std::is_same_v<Tracked, no_option>) {
            this->owner_gone = &tracked_owner_gone;
        }
        this->reclaim = &reclaim_node;
        this->deallocate = &deallocate_node;
    }

    /// A replayed event: counted off first (a throwing filter or handler must not keep the
    /// gate shut), then the same checks as a live event (the tracked object first, as in
    /// call()), then the handler. The held live events follow (channel::replay_one drains).
    static after_call call_replay(base_type& base, const Event& event) {
        if constexpr (gated) {
            auto& self = static_cast<node_impl&>(base);
            payload& p = *self.payload_;
            p.handler.count_off();
            if constexpr (!std::is_same_v<Tracked, no_option>) {
                // Held while the filter and the handler run, as for a live event.
                const auto alive = p.tracked.object.lock();
                if (alive == nullptr) return owner_died(self);
                if (!passes_filter(self, p, event)) return after_call::keep;
                std::invoke(p.handler.handler, event);
            } else {
                if (!passes_filter(self, p, event)) return after_call::keep;
                std::invoke(p.handler.handler, event);
            }
        } else {
            (void)base;
            (void)event;
        }
        return after_call::keep;
    }

    /// A replayed event was discarded (see replay_gate::discard_replayed).
    static std::size_t discard_one(base_type& base) noexcept {
        if constexpr (gated) {
            return static_cast<node_impl&>(base).payload_->handler.discard_replayed();
        } else {
            (void)base;
            return 0;
        }
    }

    /// Delivers the gate's oldest held live event (see replay_gate::deliver_held).
    static bool drain_one(base_type& base) {
        if constexpr (gated) {
            auto& self = static_cast<node_impl&>(base);
            payload& p = *self.payload_;
            if constexpr (!std::is_same_v<Tracked, no_option>) {
                const auto alive = p.tracked.object.lock();
                if (alive == nullptr) return false;  // the next event unlinks it
                return p.handler.deliver_held();
            } else {
                return p.handler.deliver_held();
            }
        } else {
            (void)base;
            return false;
        }
    }

    /// node::delegate of a plain subscriber: `object` is the handler.
    static after_call call_plain(void* object, const Event& event) {
        std::invoke(*static_cast<Handler*>(object), event);
        return after_call::keep;
    }

    /// node::delegate of any other subscriber: `object` is the node.
    static after_call call_checked(void* object, const Event& event) {
        auto& self = *static_cast<base_type*>(object);
        // acquire: pairs with the release store in unlink_locked (or the compare-exchange of
        // a `once` call or a dead tracked object's removal).
        if (self.removed.load(std::memory_order_acquire)) return after_call::keep;
        return call(self, event);
    }

    static after_call call(base_type& base, const Event& event) {
        auto& self = static_cast<node_impl&>(base);
        payload& p = *self.payload_;
        if constexpr (!std::is_same_v<Tracked, no_option>) {
            // Locked first: neither the filter nor the handler may run on a dead object, and
            // the object stays alive while they run.
            const auto alive = p.tracked.object.lock();
            if (alive == nullptr) return owner_died(self);
            if (!passes_filter(self, p, event)) return after_call::keep;
            return call_handler(self, p, event);
        } else {
            if (!passes_filter(self, p, event)) return after_call::keep;
            return call_handler(self, p, event);
        }
    }

    /// The tracked object is gone: exactly one caller schedules the removal.
    static after_call owner_died(node_impl& self) noexcept {
        bool expected = false;
        // acq_rel: exactly one caller wins; pairs with the other callers' compare-exchange
        // and with the acquire loads of `removed` in the dispatch loops.
        return self.removed.compare_exchange_strong(expected, true, std::memory_order_acq_rel)
                   ? after_call::remove
                   : after_call::keep;
    }

    /// Runs the filter, if any. A filter may unsubscribe its own subscription (from this
    /// thread, or another thread may while it runs): `removed` is read again after it, so the
    /// handler is not called once unsubscribe() has taken effect. (A `once` node's
    /// compare-exchange in call_handler makes the same check.)
    static bool passes_filter(node_impl& self, payload& p, const Event& event) {
        if constexpr (!std::is_same_v<Filter, no_option>) {
            if (!static_cast<bool>(std::invoke(p.filter.predicate, event))) return false;
            TIDINGS_SCHEDULE_POINT();
            if constexpr (!Once) {
                // acquire: pairs with the release store of `removed` in unlink_locked (or the
                // compare-exchange of a dead tracked object's removal).
                if (self.removed.load(std::memory_order_acquire)) return false;
            }
            return true;
        } else {
            (void)self;
            (void)p;
            (void)event;
            return true;
        }
    }

    static after_call call_handler(node_impl& self, payload& p, const Event& event) {
        if constexpr (Once) {
            bool expected = false;
            // acq_rel: under concurrent publishes exactly one thread wins the only call.
            if (!self.removed.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
                return after_call::keep;
            }
            std::invoke(p.handler, event);
            return after_call::remove;
        } else if constexpr (gated) {
            (void)self;
            return p.handler.live(event);
        } else {
            (void)self;
            std::invoke(p.handler, event);
            return after_call::keep;
        }
    }

    static bool tracked_owner_gone(const node_base& base) noexcept {
        if constexpr (!std::is_same_v<Tracked, no_option>) {
            const auto& self = static_cast<const node_impl&>(base);
            return !self.payload_.has_value() || self.payload_->tracked.object.expired();
        } else {
            (void)base;
            return false;
        }
    }

    static void reclaim_node(retired* object) noexcept {
        auto* self = static_cast<node_impl*>(object);
        self->payload_.reset();
        self->release();
    }

    static void deallocate_node(node_base* object) noexcept {
        delete static_cast<node_impl*>(object);
    }

    std::optional<payload> payload_;
};

}  // namespace tidings::detail
