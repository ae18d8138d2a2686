#pragma once
/// @file detail/channel.hpp
/// @brief A channel: everything a bus keeps for one event type. Its subscribers live in an
/// immutable snapshot (an array of node pointers sorted by priority, then subscription order)
/// that `publish` reads without a lock; writers replace the whole snapshot under the bus's
/// mutex and retire the old one to the bus's reclamation domain.
///
/// Thread safety: publish() may run in any number of threads at once (thread_safe policy);
/// the *_locked functions require the bus's writer mutex.

#include <tidings/config.hpp>
#include <tidings/detail/epoch.hpp>
#include <tidings/detail/type_name.hpp>
#include <tidings/options.hpp>
#include <tidings/subscription.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tidings::detail {

/// What a call asks the dispatch loop to do afterwards.
enum class after_call : unsigned char { keep, remove };

/// A subscriber of `Event`, as the dispatch loop sees it. The hot fields (removed, invoke) and
/// the handler sit in one allocation.
template <class Event, class Threading>
struct node : node_base {
    using invoke_fn = after_call (*)(node&, const Event&);

    /// Set once, by whoever disconnects the node; publishers skip removed nodes.
    typename Threading::template atomic_type<bool> removed{false};
    invoke_fn invoke = nullptr;
    int priority = 0;
};

/// The bus-side services a channel needs on its rare paths (errors, self-removal).
template <class Threading>
class channel_host {
public:
    /// Unlinks a node from inside a dispatch (a `once` handler ran, a tracked object died).
    virtual void remove_in_dispatch(node_base& node) noexcept = 0;
    /// Routes one handler's exception by the bus's error_policy.
    virtual void report_error(std::exception_ptr error, std::string_view event_type,
                              std::uint64_t subscription_id,
                              std::optional<std::exception_ptr>& first_error) noexcept = 0;

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
    /// Unlinks every node: marks them removed, appends them to `nodes`, returns the snapshot.
    virtual retired* unlink_all_locked(retired*& nodes) noexcept = 0;
    [[nodiscard]] virtual bool is_removed(const node_base& node) const noexcept = 0;
    [[nodiscard]] virtual std::size_t size() const noexcept = 0;
};

/// An immutable array of node pointers, allocated in one block with its header.
template <class Node>
struct snapshot final : retired {
    std::uint32_t size = 0;

    [[nodiscard]] Node** data() noexcept { return std::launder(reinterpret_cast<Node**>(this + 1)); }
    [[nodiscard]] Node* const* begin() const noexcept {
        return std::launder(reinterpret_cast<Node* const*>(this + 1));
    }
    [[nodiscard]] Node* const* end() const noexcept { return begin() + size; }

    static snapshot* make(std::uint32_t size) {
        static_assert(sizeof(snapshot) % alignof(Node*) == 0, "the array follows the header");
        void* memory = ::operator new(sizeof(snapshot) + size * sizeof(Node*));
        auto* result = ::new (memory) snapshot;
        result->size = size;
        result->reclaim = &destroy;
        return result;
    }
    static void destroy(retired* object) noexcept {
        auto* self = static_cast<snapshot*>(object);
        self->~snapshot();
        ::operator delete(self);
    }
};

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
        // The bus unlinked and retired everything before destroying its channels.
        TIDINGS_ASSERT(subscribers_.load(std::memory_order_relaxed) == nullptr,
                       "a channel destroyed with subscribers still linked");
    }

    /// Calls every subscriber, in priority then subscription order, in this thread.
    /// Exceptions follow the bus's error_policy; with rethrow_first, the first is rethrown here
    /// after every subscriber ran.
    void publish(const Event& event) {
        // relaxed: only a shortcut for "no subscribers". A subscribe that happens-before this
        // publish is seen by coherence; one that races with it may or may not be.
        const snapshot_type* current = subscribers_.load(std::memory_order_relaxed);
        if (current == nullptr) return;
        // An optional, so the common path never runs exception_ptr's out-of-line destructor.
        std::optional<std::exception_ptr> first_error;
        dispatch(event, current, first_error);
        if (first_error.has_value()) [[unlikely]] std::rethrow_exception(std::move(*first_error));
    }

    retired* link_locked(node_type& added) {
        const snapshot_type* old = subscribers_.load(std::memory_order_relaxed);
        const std::uint32_t old_size = old != nullptr ? old->size : 0;
        snapshot_type* next = snapshot_type::make(old_size + 1);
        node_type** out = next->data();
        node_type* const* in = old != nullptr ? old->begin() : nullptr;
        // Equal priorities keep subscription order: the new node goes after all nodes whose
        // priority is greater than or equal to its own.
        node_type* const* split = in == nullptr ? nullptr : in + old_size;
        if (old_size != 0 && in[old_size - 1]->priority < added.priority) {
            split = std::partition_point(in, in + old_size, [&](const node_type* n) {
                return n->priority >= added.priority;
            });
        }
        out = std::copy(in, split, out);
        *out++ = &added;
        std::copy(split, in == nullptr ? nullptr : in + old_size, out);
        added.channel = static_cast<channel_base<Threading>*>(this);
        publish_snapshot(next);
        return const_cast<snapshot_type*>(old);
    }

    retired* unlink_locked(node_base& base) noexcept override {
        auto& removed = static_cast<node_type&>(base);
        // release: a publisher that sees removed=true skips the node; the unlinked snapshot
        // below is what stops new dispatches from reaching it at all.
        removed.removed.store(true, std::memory_order_release);
        const snapshot_type* old = subscribers_.load(std::memory_order_relaxed);
        if (old == nullptr) return nullptr;
        node_type* const* found = std::find(old->begin(), old->end(), &removed);
        if (found == old->end()) return nullptr;  // already unlinked
        snapshot_type* next = nullptr;
        if (old->size > 1) {
            // Allocation failure here would leave a removed node linked (it is skipped anyway),
            // so a failed allocation keeps the old snapshot rather than throwing from noexcept.
            try {
                next = snapshot_type::make(old->size - 1);
            } catch (...) {
                return nullptr;
            }
            node_type** out = std::copy(old->begin(), found, next->data());
            std::copy(found + 1, old->end(), out);
        }
        publish_snapshot(next);
        return const_cast<snapshot_type*>(old);
    }

    retired* unlink_all_locked(retired*& nodes) noexcept override {
        const snapshot_type* old = subscribers_.load(std::memory_order_relaxed);
        if (old == nullptr) return nullptr;
        for (node_type* n : *old) {
            n->removed.store(true, std::memory_order_release);  // see unlink_locked
            n->next_retired = nodes;
            nodes = n;
        }
        publish_snapshot(nullptr);
        return const_cast<snapshot_type*>(old);
    }

    [[nodiscard]] bool is_removed(const node_base& base) const noexcept override {
        // acquire: pairs with the release store of `removed` by the unsubscriber.
        return static_cast<const node_type&>(base).removed.load(std::memory_order_acquire);
    }

    [[nodiscard]] std::size_t size() const noexcept override {
        // acquire: pairs with publish_snapshot, so the header we read is complete.
        const snapshot_type* current = subscribers_.load(std::memory_order_acquire);
        return current != nullptr ? current->size : 0;
    }

private:
    void publish_snapshot(snapshot_type* next) noexcept {
        // seq_cst: release for publishers (the array is complete before they see it), and the
        // writer's half of the store-load race with readers entering a dispatch (epoch.hpp).
        subscribers_.store(next, std::memory_order_seq_cst);
    }

    TIDINGS_ALWAYS_INLINE void dispatch(const Event& event, const snapshot_type* current,
                                        std::optional<std::exception_ptr>& first_error) {
        typename domain_type::read_section section{domain_};
        if constexpr (Threading::is_thread_safe) {
            // The snapshot must be loaded after entering the read section, or a writer could
            // free it between the two. seq_cst: pairs with publish_snapshot (release suffices
            // for the array's contents; seq_cst closes the store-load race on the fallback
            // barrier; it is a plain load on x86).
            current = subscribers_.load(std::memory_order_seq_cst);
            if (current == nullptr) return;
        }
        for (node_type* subscriber : *current) {
            // acquire: pairs with the release store in unlink_locked.
            if (subscriber->removed.load(std::memory_order_acquire)) continue;
            try {
                if (subscriber->invoke(*subscriber, event) == after_call::remove) [[unlikely]] {
                    host_.remove_in_dispatch(*subscriber);
                }
            } catch (...) {
                if (subscriber->removed.load(std::memory_order_acquire)) {
                    host_.remove_in_dispatch(*subscriber);  // a `once` handler threw
                }
                host_.report_error(std::current_exception(), type_name<Event>, subscriber->id,
                                   first_error);
            }
        }
    }

    channel_host<Threading>& host_;
    domain_type& domain_;
    typename Threading::template atomic_type<snapshot_type*> subscribers_{nullptr};
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

    template <class H, class F, class T>
    node_impl(H&& handler, F&& filter, T&& tracked)
        : payload_(std::in_place, payload{std::forward<H>(handler), std::forward<F>(filter),
                                          std::forward<T>(tracked)}) {
        this->invoke = &call;
        this->reclaim = &reclaim_node;
        this->deallocate = &deallocate_node;
    }

    static after_call call(base_type& base, const Event& event) {
        auto& self = static_cast<node_impl&>(base);
        payload& p = *self.payload_;
        if constexpr (!std::is_same_v<Filter, no_option>) {
            if (!static_cast<bool>(std::invoke(p.filter.predicate, event))) return after_call::keep;
        }
        if constexpr (!std::is_same_v<Tracked, no_option>) {
            const auto alive = p.tracked.object.lock();
            if (alive == nullptr) {
                bool expected = false;
                // acq_rel: exactly one caller schedules the removal.
                return self.removed.compare_exchange_strong(expected, true,
                                                            std::memory_order_acq_rel)
                           ? after_call::remove
                           : after_call::keep;
            }
            return call_handler(self, p, event);
        } else {
            return call_handler(self, p, event);
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
        } else {
            (void)self;
            std::invoke(p.handler, event);
            return after_call::keep;
        }
    }

    static void reclaim_node(retired* object) noexcept {
        auto* self = static_cast<node_impl*>(object);
        self->payload_.reset();
        self->release();
    }

    static void deallocate_node(node_base* object) noexcept { delete static_cast<node_impl*>(object); }

    std::optional<payload> payload_;
};

}  // namespace tidings::detail
