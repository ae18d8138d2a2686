#pragma once
/// @file detail/command_channel.hpp
/// @brief The channel of one command type (command_channel): its one handler, read without a
/// lock, sends run inline or queued to the handler's executor (command_task, a lane record
/// holding the command and the promise of its result). Also the two exceptions a command
/// channel throws, tidings::duplicate_handler and tidings::no_handler, part of the public API
/// of commands (command.hpp).
///
/// A detail header: it names the vocabulary (concepts.hpp's tidings::command_result_t,
/// delivery.hpp's exceptions) and other detail headers, never a public machinery header;
/// the bus's command members (handle, send, send_async) are in command.hpp.

#include <tidings/concepts.hpp>
#include <tidings/config.hpp>
#include <tidings/delivery.hpp>
#include <tidings/detail/channel.hpp>
#include <tidings/detail/epoch.hpp>
#include <tidings/detail/executor_core.hpp>
#include <tidings/detail/record_ring.hpp>
#include <tidings/detail/type_name.hpp>
#include <tidings/fwd.hpp>
#include <tidings/subscription.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace tidings {

/// @brief Thrown by `handle` when the command type already has a handler on this bus.
class duplicate_handler : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// @brief Thrown by `send`/`send_async` when the command type has no handler (or its handler
/// was removed before a queued command ran).
class no_handler : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

namespace detail {

/// Throws tidings::no_handler for a command of type `Command` that has no handler.
template <class Command>
[[noreturn]] void throw_no_handler() {
    throw no_handler("tidings: no handler for the command " + std::string(type_name<Command>));
}

template <class Command, class Threading>
struct command_node : node_base {
    using result_type = command_result_t<Command>;
    using invoke_fn = result_type (*)(command_node&, const Command&);

    typename Threading::template atomic_type<bool> removed{false};
    invoke_fn invoke = nullptr;
    executor_core* executor = nullptr;
};

template <class Command, class Threading, class Handler>
struct command_node_impl final : command_node<Command, Threading> {
    using base_type = command_node<Command, Threading>;
    using result_type = command_result_t<Command>;

    template <class H>
    explicit command_node_impl(H&& handler) : handler_(std::in_place, std::forward<H>(handler)) {
        this->invoke = &call;
        this->reclaim = &reclaim_node;
        this->deallocate = &deallocate_node;
    }

    static result_type call(base_type& base, const Command& command) {
        auto& self = static_cast<command_node_impl&>(base);
        if constexpr (std::is_void_v<result_type>) {
            std::invoke(*self.handler_, command);
        } else {
            return static_cast<result_type>(std::invoke(*self.handler_, command));
        }
    }

    static void reclaim_node(retired* object) noexcept {
        auto* self = static_cast<command_node_impl*>(object);
        self->handler_.reset();
        self->release();
    }

    static void deallocate_node(node_base* object) noexcept {
        delete static_cast<command_node_impl*>(object);
    }

    std::optional<Handler> handler_;
};

template <class Command, class Threading>
class command_channel;

/// A queued command in a lane record: the command (inline when it fits, else on the heap),
/// the promise of its result.
template <class Command, class Threading, bool Inline>
struct command_task {
    using result_type = command_result_t<Command>;
    static constexpr bool on_heap = !Inline;

    command_channel<Command, Threading>* target;
    /// The id of the handler the command was sent to: a handler registered after it (even on
    /// the same executor) must not receive it.
    std::uint64_t handler_id;
    std::promise<result_type> promise;
    std::conditional_t<Inline, Command, std::unique_ptr<Command>> command;

    [[nodiscard]] const Command& get() const noexcept {
        if constexpr (Inline) {
            return command;
        } else {
            return *command;
        }
    }

    static task_outcome operation(record_header& record, task_action action,
                                  void* context) noexcept {
        auto* self = record.payload<command_task>();
        if (action == task_action::run) {
            self->target->run_queued(self->get(), self->handler_id, self->promise,
                                     *static_cast<executor_core*>(context));
        } else {
            self->promise.set_exception(std::make_exception_ptr(executor_stopped(
                "tidings: the executor discarded a queued command before it ran")));
        }
        self->~command_task();
        return {record_size_of<command_task>, 0};
    }
};

/// The channel of one command type: at most one handler, read without a lock.
template <class Command, class Threading>
class command_channel final : public channel_base<Threading> {
public:
    using node_type = command_node<Command, Threading>;
    using result_type = command_result_t<Command>;
    using domain_type = typename Threading::domain_type;

    command_channel(channel_host<Threading>& /*host*/, domain_type& domain) noexcept
        : domain_(domain) {}

    ~command_channel() override {
        TIDINGS_ASSERT(handler_.load(std::memory_order_relaxed) == nullptr,
                       "a command channel destroyed with its handler still linked");
    }

    /// Links the handler. @throws duplicate_handler if one is linked already.
    retired* link_locked(node_type& added) {
        if (handler_.load(std::memory_order_relaxed) != nullptr) {
            throw duplicate_handler("tidings: the command " + std::string(type_name<Command>) +
                                    " already has a handler on this bus");
        }
        added.channel = static_cast<channel_base<Threading>*>(this);
        // seq_cst: release for senders (the node is complete), and the writer's half of the
        // store-load race with readers entering a dispatch (detail/epoch.hpp).
        handler_.store(&added, std::memory_order_seq_cst);
        return nullptr;
    }

    retired* unlink_locked(node_base& base) noexcept override {
        auto& removed = static_cast<node_type&>(base);
        removed.removed.store(true, std::memory_order_release);  // pairs with the senders' acquire
        if (handler_.load(std::memory_order_relaxed) != &removed) return nullptr;
        handler_.store(nullptr, std::memory_order_seq_cst);  // seq_cst: see link_locked
        return &removed;  // the node itself is all there is to retire
    }

    retired* unlink_matching_locked(const executor_core* executor, bool all,
                                    retired*& nodes) noexcept override {
        node_type* current = handler_.load(std::memory_order_relaxed);
        if (current == nullptr || !(all || current->executor == executor)) return nullptr;
        current->removed.store(true, std::memory_order_release);
        handler_.store(nullptr, std::memory_order_seq_cst);  // seq_cst: see link_locked
        current->next_retired = nodes;
        nodes = current;
        return nullptr;
    }

    [[nodiscard]] bool is_removed(const node_base& base) const noexcept override {
        return static_cast<const node_type&>(base).removed.load(std::memory_order_acquire);
    }

    [[nodiscard]] std::size_t size() const noexcept override {
        return handler_.load(std::memory_order_acquire) != nullptr ? 1 : 0;
    }

    /// Runs the command on its handler: inline in this thread, or queued to the handler's
    /// executor while this thread waits for the result.
    template <class Arg>
    result_type send(Arg&& command) {
        std::future<result_type> queued;
        {
            typename domain_type::read_section section{domain_, this->scope_id()};
            node_type* handler = current_handler();
            if (handler->executor == nullptr) return handler->invoke(*handler, command);
            if (handler->executor->is_consumer_thread()) {
                throw would_deadlock("tidings: send of " + std::string(type_name<Command>) +
                                     " from the thread of the executor that runs its handler "
                                     "would wait for itself; use send_async");
            }
            queued = enqueue(*handler, std::forward<Arg>(command));
        }
        // Outside the read section: waiting inside it would hold up every unsubscribe.
        return queued.get();
    }

    /// Like send, but returns a future: ready at once for an inline handler (holding its
    /// result or exception), fulfilled by the executor for a queued one.
    template <class Arg>
    std::future<result_type> send_async(Arg&& command) {
        typename domain_type::read_section section{domain_, this->scope_id()};
        node_type* handler = current_handler();
        if (handler->executor != nullptr) return enqueue(*handler, std::forward<Arg>(command));
        std::promise<result_type> promise;
        try {
            if constexpr (std::is_void_v<result_type>) {
                handler->invoke(*handler, command);
                promise.set_value();
            } else {
                promise.set_value(handler->invoke(*handler, command));
            }
        } catch (...) {
            promise.set_exception(std::current_exception());
        }
        return promise.get_future();
    }

    /// Runs a queued command on `executor`'s consumer thread.
    void run_queued(const Command& command, std::uint64_t handler_id,
                    std::promise<result_type>& promise, executor_core& executor) noexcept {
        try {
            typename domain_type::read_section section{domain_, this->scope_id()};
            // seq_cst: see link_locked.
            node_type* handler = handler_.load(std::memory_order_seq_cst);
            if (handler == nullptr || handler->id != handler_id || handler->executor != &executor ||
                handler->removed.load(std::memory_order_acquire)) {
                throw no_handler("tidings: the handler of " + std::string(type_name<Command>) +
                                 " was removed before the queued command ran");
            }
            if constexpr (std::is_void_v<result_type>) {
                handler->invoke(*handler, command);
                promise.set_value();
            } else {
                promise.set_value(handler->invoke(*handler, command));
            }
        } catch (...) {
            try {
                promise.set_exception(std::current_exception());
            } catch (...) {  // promise_already_satisfied cannot happen; nothing to do
            }
        }
    }

private:
    node_type* current_handler() const {
        // seq_cst: see link_locked.
        node_type* handler = handler_.load(std::memory_order_seq_cst);
        // acquire: pairs with the release store in unlink_locked.
        if (handler == nullptr || handler->removed.load(std::memory_order_acquire)) {
            throw_no_handler<Command>();
        }
        return handler;
    }

    template <class Arg>
    std::future<result_type> enqueue(node_type& handler, Arg&& command) {
        std::future<result_type> result;
        this->note_queued();
        constexpr bool in_record = fits_in_record<command_task<Command, Threading, true>>;
        using task = command_task<Command, Threading, in_record>;
        const bool queued = handler.executor->template push<task>([&](void* where) {
            std::promise<result_type> promise;
            result = promise.get_future();
            if constexpr (in_record) {
                ::new (where)
                    task{this, handler.id, std::move(promise), std::forward<Arg>(command)};
            } else {
                ::new (where) task{this, handler.id, std::move(promise),
                                   std::make_unique<Command>(std::forward<Arg>(command))};
            }
        });
        if (!queued) {
            // overflow::drop refused it (its queue is full, or it has stopped).
            throw queue_full("tidings: the executor of the handler of " +
                             std::string(type_name<Command>) +
                             " refused the command (overflow::drop: full or stopped)");
        }
        return result;
    }

    domain_type& domain_;
    typename Threading::template atomic_type<node_type*> handler_{nullptr};
};

}  // namespace detail
}  // namespace tidings
