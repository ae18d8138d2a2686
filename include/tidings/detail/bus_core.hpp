#pragma once
/// @file detail/bus_core.hpp
/// @brief The shared state behind a bus: its channel table, writer mutex, reclamation domain
/// and error handling. Subscriptions and publishers hold it by (weak or strong) shared_ptr, so
/// a handle may outlive the bus object itself.
///
/// Thread safety (thread_safe policy): find_channel and the channels' publish are lock-free;
/// everything that changes a snapshot takes `mutex_`, and never waits for readers while
/// holding it (a handler may subscribe from inside a dispatch).

#include <tidings/config.hpp>
#include <tidings/detail/channel.hpp>
#include <tidings/detail/type_index.hpp>
#include <tidings/detail/type_name.hpp>
#include <tidings/executor.hpp>
#include <tidings/policy.hpp>
#include <tidings/subscription.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace tidings::detail {

/// The signature of a bus's error handler.
using error_handler = std::function<void(const handler_error&)>;

/// The handler used until the user sets one: one line on stderr, so nothing is silent.
inline void default_error_handler(const handler_error& error) noexcept {
    const char* what = "an exception not derived from std::exception";
    try {
        std::rethrow_exception(error.exception);
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
    }
    std::fprintf(stderr, "tidings: a handler of %.*s (subscription %llu) threw: %s\n",
                 static_cast<int>(error.event_type.size()), error.event_type.data(),
                 static_cast<unsigned long long>(error.subscription_id), what);
}

template <class Threading>
class bus_core final : public bus_core_base,
                       public channel_host<Threading>,
                       public executor_client,
                       public std::enable_shared_from_this<bus_core<Threading>> {
public:
    using mutex_type = typename Threading::mutex_type;
    using domain_type = typename Threading::domain_type;
    template <class T>
    using atomic_type = typename Threading::template atomic_type<T>;

    bus_core() = default;
    bus_core(const bus_core&) = delete;
    bus_core& operator=(const bus_core&) = delete;

    ~bus_core() override {
        shutdown();
        for (auto& chunk_slot : chunks_) {
            channel_chunk* chunk = chunk_slot.load(std::memory_order_relaxed);
            if (chunk == nullptr) continue;
            for (auto& slot : chunk->slots) delete slot.load(std::memory_order_relaxed);
            delete chunk;
        }
    }

    /// The channel of `Key` (an event type, or a command_key), or null if nothing ever
    /// subscribed to or bound a publisher to it. Lock-free.
    template <class Key, class Channel = channel<Key, Threading>>
    [[nodiscard]] Channel* find_channel() const noexcept {
        const std::uint32_t index = type_index<Key>();
        // acquire: pairs with the release stores in channel_for, so the chunk and the channel
        // are fully constructed when we see their pointers.
        const channel_chunk* chunk = chunks_[index / chunk_size].load(std::memory_order_acquire);
        if (chunk == nullptr) return nullptr;
        return static_cast<Channel*>(
            chunk->slots[index % chunk_size].load(std::memory_order_acquire));
    }

    /// The channel of `Key`, created on first use.
    template <class Key, class Channel = channel<Key, Threading>>
    [[nodiscard]] Channel& channel_for() {
        if (auto* found = find_channel<Key, Channel>()) return *found;
        const std::uint32_t index = type_index<Key>();
        std::lock_guard lock{mutex_};
        channel_chunk* chunk = chunks_[index / chunk_size].load(std::memory_order_relaxed);
        if (chunk == nullptr) {
            chunk = new channel_chunk{};
            chunks_[index / chunk_size].store(chunk, std::memory_order_release);  // see find
        }
        auto& slot = chunk->slots[index % chunk_size];
        if (channel_base<Threading>* existing = slot.load(std::memory_order_relaxed)) {
            return *static_cast<Channel*>(existing);
        }
        auto* created = new Channel(*this, domain_);
        slot.store(created, std::memory_order_release);  // see find_channel
        return *created;
    }

    /// Links a new node into its channel. @throws what the channel's link_locked throws
    /// (bad_alloc; duplicate_handler for a command), leaving the node unlinked.
    template <class Channel, class Node>
    void link(Channel& target, Node& added) {
        if (added.executor != nullptr) {
            // Before linking: from the first queued task on, the executor keeps us alive.
            added.executor->attach(std::shared_ptr<void>(this->shared_from_this()), *this);
        }
        bool reclaim = false;
        {
            std::lock_guard lock{mutex_};
            if (added.executor != nullptr && std::find(executors_.begin(), executors_.end(),
                                                       added.executor) == executors_.end()) {
                executors_.push_back(added.executor);
            }
            if (added.id == 0) added.id = ++last_id_;
            if (shut_down_) {
                added.removed.store(true, std::memory_order_relaxed);
                domain_.retire(&added, scope_of(target));
                return;
            }
            if (retired* old = target.link_locked(added)) domain_.retire(old, scope_of(target));
            reclaim = domain_.pending() >= reclaim_threshold;
        }
        if (reclaim) reclaim_some();
    }

    /// The channel's retention, or null if it never retained.
    template <class Event>
    [[nodiscard]] retention<Event, Threading>* retention_of(channel<Event, Threading>& target) {
        std::lock_guard lock{mutex_};
        return target.retention_if_any();
    }

    /// Sets how many events the channel keeps. Lock order: the retention's mutex, then ours
    /// (as in a replaying subscribe).
    template <class Event>
    void retain(channel<Event, Threading>& target, std::size_t count) {
        retention<Event, Threading>* kept = nullptr;
        {
            std::lock_guard lock{mutex_};
            kept = &target.retention_locked();
        }
        std::lock_guard retention_lock{kept->mutex};
        std::lock_guard lock{mutex_};
        // Strong guarantee: the channel makes the new ring and snapshot before installing them.
        if (retired* old = target.retain_locked(count)) domain_.retire(old, scope_of(target));
    }

    void unsubscribe(node_base& removed) noexcept override {
        std::uint64_t tag = 0;
        retired* garbage = nullptr;
        {
            std::lock_guard lock{mutex_};
            tag = unlink_locked(removed);
            // Even when this call unlinked nothing (a `once` handler that already fired), a
            // dispatch may still be running that handler: wait for the readers of now.
            if (tag == 0) tag = current_tag();
            if (!domain_.in_dispatch() && domain_.no_other_readers()) {
                // Nothing to wait for: reclaim in this critical section.
                garbage = domain_.take_reclaimable(tag + 1);
                tag = 0;
            }
        }
        reclaim_list(garbage);  // outside the lock: a handler's destructor may use the bus
        // Waits only for the dispatches of this channel (see finish_removal).
        if (tag != 0) finish_removal(tag, removed.channel);
    }

    [[nodiscard]] bool connected(const node_base& node) const noexcept override {
        if (node.channel == nullptr) return false;
        if constexpr (Threading::is_thread_safe) {
            // Out of memory for this thread's first read section: answer from the node alone
            // (its memory is the handle's), without the tracked object's check.
            if (!try_register_this_thread()) {
                return !static_cast<const channel_base<Threading>*>(node.channel)->is_removed(node);
            }
        }
        // A read section: a tracked node's owner check reads its handler's state, which a
        // concurrent unsubscribe may reclaim only after we leave.
        typename domain_type::read_section section{domain_, node.channel};
        if (static_cast<const channel_base<Threading>*>(node.channel)->is_removed(node)) {
            return false;
        }
        return node.owner_gone == nullptr || !node.owner_gone(node);
    }

    void remove_in_dispatch(node_base& removed) noexcept override {
        bool reclaim = false;
        {
            std::lock_guard lock{mutex_};
            unlink_locked(removed);
            reclaim = domain_.pending() >= reclaim_threshold;
        }
        if (reclaim) reclaim_some();
    }

    void report_error(std::exception_ptr error, std::string_view event_type,
                      std::uint64_t subscription_id,
                      std::optional<std::exception_ptr>* first_error) noexcept override {
        // relaxed: the policy is a setting, not a synchronization point.
        if (first_error != nullptr &&
            policy_.load(std::memory_order_relaxed) == error_policy::rethrow_first &&
            !first_error->has_value()) {
            first_error->emplace(std::move(error));
            return;
        }
        std::shared_ptr<const error_handler> handler;
        {
            std::lock_guard lock{mutex_};
            handler = error_handler_;
        }
        const handler_error info{std::move(error), event_type, subscription_id};
        // An error handler that throws terminates (this function is noexcept): there is no
        // one left to report its failure to.
        if (handler != nullptr && *handler) {
            (*handler)(info);
        } else {
            default_error_handler(info);
        }
    }

    void set_error_policy(error_policy policy) noexcept {
        policy_.store(policy, std::memory_order_relaxed);  // relaxed: see report_error
    }

    void set_error_handler(error_handler handler) {
        auto shared = std::make_shared<const error_handler>(std::move(handler));
        std::lock_guard lock{mutex_};
        error_handler_ = std::move(shared);
    }

    /// Detaches every subscription (they report connected() == false from now on) and waits
    /// until no dispatch can still call them, unless called inside a dispatch. Executors that
    /// still hold tasks of this bus release it once those are gone (the tasks find no
    /// subscriber and count as cancelled).
    void shutdown() noexcept {
        {
            std::lock_guard lock{mutex_};
            if (shut_down_) return;
            shut_down_ = true;
        }
        finish_removal(unlink_matching(nullptr, true), nullptr);  // every channel of this bus
        // An executor may drop its reference to us in bus_shut_down: keep this core alive
        // until after the unlock (null when called from our own destructor, which no
        // executor's reference can outlive).
        const std::shared_ptr<bus_core> self = this->weak_from_this().lock();
        std::lock_guard lock{mutex_};
        // Under our mutex, so that an executor being destroyed (which must take it in
        // detach_executor) is still alive while we call it.
        for (executor_core* executor : executors_) executor->bus_shut_down(*this);
        executors_.clear();
    }

    /// An executor is going away: unlinks the subscriptions that deliver on it.
    void detach_executor(executor_core& executor) noexcept override {
        finish_removal(unlink_matching(&executor, false), nullptr);
        std::lock_guard lock{mutex_};
        std::erase(executors_, &executor);
    }

private:
    static constexpr std::uint32_t chunk_size = 64;
    static constexpr std::uint32_t chunk_count = max_event_types / chunk_size;
    static_assert(max_event_types % chunk_size == 0);
    /// Past this many retired objects, a writer tries a non-blocking reclamation.
    static constexpr std::size_t reclaim_threshold = 32;

    struct channel_chunk {
        atomic_type<channel_base<Threading>*> slots[chunk_size]{};
    };

    /// Unlinks the nodes on `executor` (every node if `all`) from every channel and retires
    /// them; returns the last tag (0 if nothing was retired).
    std::uint64_t unlink_matching(const executor_core* executor, bool all) noexcept {
        std::uint64_t tag = 0;
        std::lock_guard lock{mutex_};
        for (auto& chunk_slot : chunks_) {
            channel_chunk* chunk = chunk_slot.load(std::memory_order_relaxed);
            if (chunk == nullptr) continue;
            for (auto& slot : chunk->slots) {
                channel_base<Threading>* target = slot.load(std::memory_order_relaxed);
                if (target == nullptr) continue;
                retired* nodes = nullptr;
                if (retired* old = target->unlink_matching_locked(executor, all, nodes)) {
                    tag = domain_.retire(old, target);
                }
                while (nodes != nullptr) {
                    retired* next = nodes->next_retired;
                    tag = domain_.retire(nodes, target);
                    nodes = next;
                }
            }
        }
        return tag;
    }

    /// Unlinks `removed` and retires it with the snapshot it left; returns the last tag.
    std::uint64_t unlink_locked(node_base& removed) noexcept {
        auto* target = static_cast<channel_base<Threading>*>(removed.channel);
        if (target == nullptr) return 0;
        retired* old = target->unlink_locked(removed);
        if (old == nullptr) return 0;  // unlinked before (once, tracking, shutdown)
        if (old == &removed) return domain_.retire(old, target);  // a command: no snapshot
        return domain_.retire(old, &removed, target);
    }

    /// After an unsubscribe: outside a dispatch, wait until no reader can be running the
    /// removed handlers and reclaim; inside one, leave that to a later writer. `scope` is the
    /// channel the objects tagged `tag` came from (null: any channel of this bus): the wait is
    /// only for this bus's dispatches of that channel, never for another bus's or channel's.
    void finish_removal(std::uint64_t tag, const void* scope) noexcept {
        bool reclaim = false;
        if (!domain_.in_dispatch()) {
            if (tag == 0) tag = current_tag();
            domain_.wait(tag, scope);
            retired* garbage = nullptr;
            {
                std::lock_guard lock{mutex_};
                // Only what the wait covered: objects of other channels may still be read.
                garbage = domain_.take_waited(tag, scope);
                reclaim = domain_.pending() >= reclaim_threshold;
            }
            // Outside the lock: a handler's destructor may unsubscribe or subscribe.
            reclaim_list(garbage);
        } else {
            std::lock_guard lock{mutex_};
            reclaim = domain_.pending() >= reclaim_threshold;
        }
        if (reclaim) reclaim_some();
    }

    /// A non-blocking reclamation, once enough garbage has gathered.
    void reclaim_some() noexcept {
        const std::uint64_t oldest = domain_.oldest_epoch();
        retired* garbage = nullptr;
        {
            std::lock_guard lock{mutex_};
            garbage = domain_.take_reclaimable(oldest);
        }
        reclaim_list(garbage);
    }

    /// What a channel's readers and its retired objects name as their scope (detail/epoch.hpp):
    /// its channel_base address, as in node_base::channel.
    template <class Channel>
    [[nodiscard]] static const void* scope_of(Channel& target) noexcept {
        return static_cast<channel_base<Threading>*>(&target);
    }

    [[nodiscard]] static std::uint64_t current_tag() noexcept {
        if constexpr (Threading::is_thread_safe) {
            // seq_cst: like a retire, so that readers of the current epoch are waited for.
            return registry.epoch.fetch_add(1, std::memory_order_seq_cst);
        } else {
            return 0;
        }
    }

    mutable mutex_type mutex_;
    mutable domain_type domain_;
    atomic_type<channel_chunk*> chunks_[chunk_count]{};
    std::uint64_t last_id_ = 0;  // guarded by mutex_
    bool shut_down_ = false;     // guarded by mutex_
    atomic_type<error_policy> policy_{error_policy::rethrow_first};
    std::shared_ptr<const error_handler> error_handler_;  // guarded by mutex_
    std::vector<executor_core*> executors_;  // executors some node delivers on; by mutex_
};

}  // namespace tidings::detail
