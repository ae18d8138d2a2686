#pragma once
/// @file subscription.hpp
/// @brief tidings::subscription, the RAII handle of one connected handler.

#include <tidings/detail/epoch.hpp>
#include <tidings/fwd.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

namespace tidings {

namespace detail {

/// The part of a subscriber node that a subscription handle needs. Two owners keep the node's
/// memory: its channel (until the node is reclaimed) and its handle. The handler itself is
/// destroyed at reclamation, so a handle kept after unsubscribing holds no user resources.
struct node_base : retired {
    std::atomic<std::uint32_t> owners{2};
    std::uint64_t id = 0;
    void* channel = nullptr;  ///< the channel_base<Threading> the node was linked into
    void (*deallocate)(node_base*) noexcept = nullptr;
    /// For a tracked subscription: true once the tracked object is gone.
    bool (*owner_gone)(const node_base&) noexcept = nullptr;

    /// Drops one owner; the last one frees the memory.
    void release() noexcept {
        // acq_rel: the other owner's last accesses happen before the deallocation.
        if (owners.fetch_sub(1, std::memory_order_acq_rel) == 1) deallocate(this);
    }
};

/// What a subscription asks of the bus it came from, independent of the threading policy.
class bus_core_base {
public:
    virtual ~bus_core_base() = default;
    virtual void unsubscribe(node_base& node) noexcept = 0;
    [[nodiscard]] virtual bool connected(const node_base& node) const noexcept = 0;
};

}  // namespace detail

/// @brief A connected handler. Move-only; destroying it disconnects the handler.
///
/// Guarantees: when unsubscribe() (or the destructor) returns, the handler is not running in
/// any other thread and is never called again. To give that, it waits for every dispatch of
/// the handler's channel (its event type on its bus, or its command) that began before it, in
/// any thread, queued deliveries of that type on executors included; never for handlers of
/// another event type or another bus: do not unsubscribe while holding a lock that a running
/// handler of that channel waits for. A loop thread whose own full queue blocks such a
/// dispatch (overflow::block) cancels that publish, which throws tidings::would_deadlock.
/// Called inside a dispatch (from a handler, including
/// the handler itself), it returns at once without waiting (waiting there could deadlock two
/// handlers that unsubscribe each other): the handler is not called again by this thread, nor
/// by any dispatch that begins afterwards, but a dispatch already running in another thread
/// that has just checked the subscription may still make one last call. A subscription may
/// outlive its bus.
///
/// Thread safety: one subscription object must not be used by two threads at once, like any
/// object; different subscriptions, and the bus, may be used from any thread (for a
/// tidings::single_threaded_bus, from its one thread).
class subscription {
public:
    /// @brief An empty subscription, connected to nothing.
    subscription() noexcept = default;

    subscription(subscription&& other) noexcept
        : core_(std::move(other.core_)), node_(std::exchange(other.node_, nullptr)) {}

    /// @brief Disconnects the current handler, then takes over `other`'s.
    subscription& operator=(subscription&& other) noexcept {
        if (this != &other) {
            unsubscribe();
            core_ = std::move(other.core_);
            node_ = std::exchange(other.node_, nullptr);
        }
        return *this;
    }

    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;

    ~subscription() { unsubscribe(); }

    /// @brief Disconnects the handler. Idempotent; safe after the bus is gone.
    void unsubscribe() noexcept {
        detail::node_base* node = std::exchange(node_, nullptr);
        if (node == nullptr) return;
        if (std::shared_ptr<detail::bus_core_base> core = core_.lock()) core->unsubscribe(*node);
        core_.reset();
        node->release();
    }

    /// @brief True while the handler is connected: false after unsubscribe(), after a `once`
    /// handler ran, after a tracked object died, or after the bus was destroyed.
    [[nodiscard]] bool connected() const noexcept {
        if (node_ == nullptr) return false;
        const std::shared_ptr<detail::bus_core_base> core = core_.lock();
        return core != nullptr && core->connected(*node_);
    }

    /// @brief Same as connected().
    [[nodiscard]] explicit operator bool() const noexcept { return connected(); }

    /// @brief A number identifying this subscription in its bus (as reported in
    /// tidings::handler_error); 0 for an empty subscription.
    [[nodiscard]] std::uint64_t id() const noexcept { return node_ != nullptr ? node_->id : 0; }

private:
    template <class>
    friend class basic_bus;
    template <class>
    friend class observable;

    subscription(std::weak_ptr<detail::bus_core_base> core, detail::node_base* node) noexcept
        : core_(std::move(core)), node_(node) {}

    std::weak_ptr<detail::bus_core_base> core_;
    detail::node_base* node_ = nullptr;
};

}  // namespace tidings
