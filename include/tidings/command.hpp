#pragma once
/// @file command.hpp
/// @brief Commands: a value that asks for something to happen and has exactly one handler,
/// which may return a result (`bus.handle<C>(fn)`, `bus.send(C{...})`).
///
/// Events are facts broadcast to every subscriber; a command is a request with one
/// responsible handler. A command type declares its result as `using result_type = R;`
/// (none means void).
///
/// This header defines the bus's command members (basic_bus::handle, send and send_async,
/// declared in bus.hpp) and brings what they need: the command channel
/// (detail/command_channel.hpp, which also defines tidings::duplicate_handler and
/// tidings::no_handler), <future> for send_async. The requirements tidings::command and
/// tidings::command_result_t are in concepts.hpp. A translation unit that calls a command
/// member without including this header gets a compile error that names it.

#include <tidings/bus.hpp>
#include <tidings/concepts.hpp>
#include <tidings/config.hpp>
#include <tidings/detail/callable_traits.hpp>
#include <tidings/detail/command_channel.hpp>
#include <tidings/detail/executor_core.hpp>
#include <tidings/detail/type_index.hpp>
#include <tidings/fwd.hpp>
#include <tidings/options.hpp>
#include <tidings/subscription.hpp>

#include <future>
#include <memory>
#include <type_traits>
#include <utility>

namespace tidings::detail {

/// Checks a command type where the user names it (handle, send, send_async): the checks of
/// an event type, then its result_type; one readable message per reason.
template <class Command>
constexpr bool check_command() {
    if constexpr (check_event<Command>()) {
        static_assert(command<Command>,
                      "tidings: a command's result_type must be void or a move-constructible "
                      "object type (not a reference)");
        return command<Command>;
    } else {
        return false;
    }
}

/// Checks a command handler: callable with `const Command&`, its result converting to the
/// command's result_type.
template <class Command, class Handler>
constexpr bool check_command_handler() {
    constexpr bool callable = std::is_invocable_v<std::decay_t<Handler>&, const Command&>;
    static_assert(callable, "tidings: a command handler must be callable with `const Command&`");
    if constexpr (callable) {
        using result = command_result_t<Command>;
        constexpr bool converts =
            std::is_void_v<result> ||
            std::is_convertible_v<std::invoke_result_t<std::decay_t<Handler>&, const Command&>,
                                  result>;
        static_assert(converts,
                      "tidings: the command handler's return type does not convert to the "
                      "command's result_type");
        return converts;
    } else {
        return false;
    }
}

/// The command members of basic_bus<Threading> (see the primary template in bus.hpp).
template <class Threading, class Dependent>
struct bus_commands<Threading, Dependent, void> {
    static constexpr bool defined = true;
    using bus_type = basic_bus<Threading>;

    template <class Command>
    using channel_type = command_channel<Command, Threading>;

    template <class Command, class Handler, class... Options>
    static subscription handle(bus_type& self, Handler&& handler, Options&&... options) {
        // A well-formed command first: otherwise its message is the one that matters.
        if constexpr (check_command<Command>() && check_command_handler<Command, Handler>()) {
            static_assert((is_deliver_on<std::remove_cvref_t<Options>>::value && ...),
                          "tidings: the only option of a command handler is tidings::deliver_on");
            static_assert(options_given_once<Options...>());
            using node_type = command_node_impl<Command, Threading, std::decay_t<Handler>>;
            TIDINGS_ASSERT(self.core_ != nullptr, "handle on a moved-from bus");
            auto added = std::make_unique<node_type>(std::forward<Handler>(handler));
            if constexpr (sizeof...(Options) == 1) {
                added->executor = bus_type::executor_of(options...);
            }
            auto& target =
                self.core_->template channel_for<command_key<Command>, channel_type<Command>>();
            return self.link(target, std::move(added));
        } else {
            return {};
        }
    }

    /// handle() with the command type deduced from the handler's parameter.
    template <class Handler, class... Options>
    static subscription handle(bus_type& self, Handler&& handler, Options&&... options) {
        using Command = event_of_callable<Handler>;
        static_assert(!std::is_same_v<Command, undeducible_event>,
                      "tidings: cannot deduce the command type from this handler (a generic "
                      "lambda, an overloaded function object, or a callable without exactly one "
                      "parameter); name the command type: bus.handle<Command>(handler)");
        if constexpr (!std::is_same_v<Command, undeducible_event>) {
            return handle<Command>(self, std::forward<Handler>(handler),
                                   std::forward<Options>(options)...);
        } else {
            return {};
        }
    }

    /// Returns a command_result_t<Command>; nothing (void) when the command is ill-formed, so
    /// that its message is the only one.
    template <class Arg>
    static decltype(auto) send(bus_type& self, Arg&& command) {
        using Command = std::remove_cvref_t<Arg>;
        if constexpr (check_command<Command>()) {
            return find<Command>(self).send(std::forward<Arg>(command));
        }
    }

    /// Returns a std::future<command_result_t<Command>> (nothing when ill-formed, as send).
    template <class Arg>
    static decltype(auto) send_async(bus_type& self, Arg&& command) {
        using Command = std::remove_cvref_t<Arg>;
        if constexpr (check_command<Command>()) {
            return find<Command>(self).send_async(std::forward<Arg>(command));
        }
    }

private:
    /// The channel of `Command`. @throws no_handler if nothing ever registered a handler.
    template <class Command>
    static channel_type<Command>& find(bus_type& self) {
        TIDINGS_ASSERT(self.core_ != nullptr, "send on a moved-from bus");
        auto* target =
            self.core_->template find_channel<command_key<Command>, channel_type<Command>>();
        if (target == nullptr) throw_no_handler<Command>();
        return *target;
    }
};

}  // namespace tidings::detail
