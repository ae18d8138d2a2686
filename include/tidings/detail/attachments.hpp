#pragma once
/// @file detail/attachments.hpp
/// @brief An executor's attachments to the buses it serves (executor_attachments), and the
/// interface those buses implement for it (executor_client). A queued task points into its
/// bus's channels, so an executor keeps each bus core it serves alive until the bus's tasks
/// have run or been discarded: when the bus shuts down, the executor records each lane's end
/// (a "mark") and releases the bus once its consumer has passed every mark (retirement by lane
/// marks).
///
/// Held by executor_core (detail/executor_core.hpp), which forwards to it and passes what it
/// needs of the executor explicitly (its lane list, its consumer's wake-up, itself for
/// executor_client::detach_executor).
///
/// A detail header: it includes detail headers only, never a public machinery header
/// (executor.hpp, bus.hpp, ...), nor detail/executor_core.hpp.

#include <tidings/config.hpp>
#include <tidings/detail/lanes.hpp>

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace tidings::detail {

class executor_core;

/// What a bus needs from an executor on its rare paths (attaching and detaching).
class executor_client {
public:
    /// The executor is being destroyed: unlink every subscription delivering to it.
    virtual void detach_executor(executor_core& executor) noexcept = 0;

protected:
    ~executor_client() = default;
};

/// @brief The buses an executor keeps alive: live ones, retired ones waiting for their
/// marks, and pinned ones.
///
/// A queued task points into its bus's channels, so the executor keeps every bus that
/// delivers through it alive (a shared_ptr to its core) until no task of it can remain.
/// Live buses are in `attached_`, found through `live_` (sorted by client) in O(log n). A bus
/// that shut down has queued all its tasks (its shutdown waited for running publishes), so
/// what it left lies before each lane's current tail: bus_shut_down records those tails
/// ("marks") for the lanes that still hold tasks, and the bus is released once the consumer
/// has handed back every record up to its marks. With no task left (the common case) it is
/// released at once, so an executor that is not being run does not accumulate dead buses.
///
/// The lists are intrusive (an attachment is in exactly one of them) and `live_` a sorted
/// vector: std::list and std::unordered_map would cost every translation unit that includes
/// the executor core their instantiation, for a path that runs once per bus.
///
/// Thread safety: attach, bus_shut_down, attachment_count and retiring from any thread;
/// release_retired from the executor's consumer, outside any task; detach_all once, when the
/// executor object goes away.
class executor_attachments {
public:
    executor_attachments() = default;
    executor_attachments(const executor_attachments&) = delete;
    executor_attachments& operator=(const executor_attachments&) = delete;

    /// Remembers a bus that delivers through this executor (once per bus; O(log n) to find
    /// it, O(n) to insert it among n buses).
    /// @throws std::bad_alloc, with the strong guarantee (nothing changed).
    void attach(std::shared_ptr<void> bus_core, executor_client& client) {
        // Made before the lock; destroyed after it, if unused.
        auto added = std::make_unique<attachment>(std::move(bus_core), &client);
        std::lock_guard lock{attach_mutex_};
        TIDINGS_SCHEDULE_POINT();
        const auto where = find_live(&client);
        if (where != live_.end() && where->client == &client) return;
        live_.insert(where, live_entry{&client, added.get()});  // may throw: nothing changed
        attached_.push_back(*added.release());                  // nothing below throws
    }

    /// A bus shut down, after its grace period: releases it now if none of its tasks can be
    /// queued any more (at once if it never queued a task, `queued_any` false), else once the
    /// consumer has passed them. The caller keeps the bus alive through this call (the
    /// executor's reference may be dropped inside it). `lanes` is the executor's lane list;
    /// `wake_consumer` wakes its consumer if it sleeps (called when the bus retires).
    template <std::invocable WakeConsumer>
    void bus_shut_down(executor_client& client, bool queued_any, const std::atomic<lane*>& lanes,
                       WakeConsumer&& wake_consumer) noexcept {
        attachment_list released;  // destroyed after the lock
        std::lock_guard lock{attach_mutex_};
        const auto found = find_live(&client);
        if (found == live_.end() || found->client != &client) {
            return;  // detached by the executor's destructor
        }
        attachment& where = *found->entry;
        live_.erase(found);
        attached_.remove(where);
        bool out_of_memory = false;
        try {
            // Lanes created after this load cannot hold a task of this bus: its publishes
            // are over, and each one's lane was linked (release CAS) before it pushed.
            lane* const first = queued_any ? lanes.load(std::memory_order_acquire) : nullptr;
            for (lane* current = first; current != nullptr; current = current->next) {
                const std::uint64_t end = current->ring.produced();
                TIDINGS_SCHEDULE_POINT();  // the consumer may pass the end meanwhile
                if (current->ring.consumed() < end) where.marks.push_back({current, end});
            }
        } catch (const std::bad_alloc&) {
            out_of_memory = true;  // kept until the executor goes: no leak, no early release
        }
        if (out_of_memory) {
            pinned_.push_back(where);
        } else if (where.marks.empty()) {
            released.push_back(where);
        } else {
            retired_.push_back(where);
            // release: the entry is in `retired_` before the flag (pairs with the acquire
            // load in release_retired).
            retiring_.store(true, std::memory_order_release);
            // A sleeping worker re-checks (sleep_until_woken does not sleep while the flag
            // is set), so an idle thread_executor does not hold the bus until its next task.
            wake_consumer();
        }
    }

    /// Consumer, outside any task: releases the retired buses whose tasks have all been run
    /// or discarded. Cheap when there are none (one load).
    void release_retired() noexcept {
        // acquire: pairs with the release store in bus_shut_down.
        if (!retiring_.load(std::memory_order_acquire)) [[likely]]
            return;
        TIDINGS_SCHEDULE_POINT();
        attachment_list released;  // destroyed after the lock: may free bus cores
        std::lock_guard lock{attach_mutex_};
        for (attachment* it = retired_.first(); it != nullptr;) {
            attachment* const next = it->next;
            if (passed(*it)) {
                retired_.remove(*it);
                released.push_back(*it);
            }
            it = next;
        }
        // relaxed: written only under attach_mutex_; a later retirement sets it again.
        retiring_.store(!retired_.empty(), std::memory_order_relaxed);
    }

    /// The executor object is going away, its tasks drained or discarded: every live bus
    /// unlinks the subscriptions that deliver to `executor`, then the executor forgets every
    /// bus.
    void detach_all(executor_core& executor) noexcept {
        attachment_list live;
        attachment_list gone;
        {
            std::lock_guard lock{attach_mutex_};
            live.take_all(attached_);
            live_.clear();
            gone.take_all(retired_);
            gone.take_all(pinned_);
            retiring_.store(false, std::memory_order_relaxed);  // see release_retired
        }
        for (attachment* a = live.first(); a != nullptr; a = a->next) {
            a->client->detach_executor(executor);
        }
        // `live` and `gone` are destroyed here, outside the lock.
    }

    /// For tests: how many buses the executor keeps alive (live ones and retired ones).
    [[nodiscard]] std::size_t attachment_count() noexcept {
        std::lock_guard lock{attach_mutex_};
        return attached_.size() + retired_.size() + pinned_.size();
    }

    /// True while a retired bus may wait for release_retired (`retired_` may be non-empty).
    [[nodiscard]] bool retiring() const noexcept {
        // acquire: pairs with the release store in bus_shut_down.
        return retiring_.load(std::memory_order_acquire);
    }

private:
    /// One lane's end at a bus's retirement: the bus's tasks there lie before `end`.
    struct lane_mark {
        const lane* where;
        std::uint64_t end;
    };

    /// One bus the executor keeps alive, in exactly one of the lists below.
    struct attachment {
        attachment(std::shared_ptr<void> bus_core, executor_client* bus_client) noexcept
            : keep_alive(std::move(bus_core)), client(bus_client) {}

        std::shared_ptr<void> keep_alive;
        executor_client* client = nullptr;
        std::vector<lane_mark> marks;  // set when the bus shuts down
        attachment* prev = nullptr;    // in its list
        attachment* next = nullptr;
    };

    /// An intrusive doubly-linked list of attachments that owns them: destroying the list
    /// destroys what is left in it (and so may free bus cores: destroy it outside the lock).
    class attachment_list {
    public:
        attachment_list() = default;
        attachment_list(const attachment_list&) = delete;
        attachment_list& operator=(const attachment_list&) = delete;
        ~attachment_list() {
            while (attachment* a = first_) {
                remove(*a);
                delete a;
            }
        }

        [[nodiscard]] attachment* first() const noexcept { return first_; }
        [[nodiscard]] bool empty() const noexcept { return first_ == nullptr; }
        [[nodiscard]] std::size_t size() const noexcept { return size_; }

        /// Appends `a`, which is in no list.
        void push_back(attachment& a) noexcept {
            a.prev = last_;
            a.next = nullptr;
            (last_ != nullptr ? last_->next : first_) = &a;
            last_ = &a;
            ++size_;
        }

        /// Unlinks `a`, which is in this list.
        void remove(attachment& a) noexcept {
            (a.prev != nullptr ? a.prev->next : first_) = a.next;
            (a.next != nullptr ? a.next->prev : last_) = a.prev;
            a.prev = a.next = nullptr;
            --size_;
        }

        /// Moves every attachment of `other` to the end of this list.
        void take_all(attachment_list& other) noexcept {
            while (attachment* a = other.first_) {
                other.remove(*a);
                push_back(*a);
            }
        }

    private:
        attachment* first_ = nullptr;
        attachment* last_ = nullptr;
        std::size_t size_ = 0;
    };

    /// A live bus, by its client (`live_` is sorted by client address).
    struct live_entry {
        const executor_client* client;
        attachment* entry;
    };

    /// The first entry of `live_` whose client does not come before `client` (ordered by
    /// address: `<` between unrelated pointers is unspecified, their integer values are not).
    /// A binary search written out: <algorithm> costs every TU more than these lines.
    [[nodiscard]] std::vector<live_entry>::iterator find_live(
        const executor_client* client) noexcept {
        const auto key = [](const executor_client* c) {
            return reinterpret_cast<std::uintptr_t>(c);
        };
        std::size_t low = 0;
        std::size_t high = live_.size();
        while (low < high) {  // invariant: entries before `low` come before, from `high` not
            const std::size_t middle = low + (high - low) / 2;
            if (key(live_[middle].client) < key(client)) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        return live_.begin() + static_cast<std::ptrdiff_t>(low);
    }

    /// True once the consumer has handed back every record before the marks.
    [[nodiscard]] static bool passed(const attachment& a) noexcept {
        for (const lane_mark& mark : a.marks) {
            if (mark.where->ring.consumed() < mark.end) return false;
        }
        return true;
    }

    std::mutex attach_mutex_;
    // Guarded by attach_mutex_: live buses, and `live_` to find them; buses that shut down
    // with tasks queued; buses kept till the end because their marks could not be allocated.
    attachment_list attached_;
    std::vector<live_entry> live_;
    attachment_list retired_;
    attachment_list pinned_;
    std::atomic<bool> retiring_{false};  // `retired_` may be non-empty
};

}  // namespace tidings::detail
