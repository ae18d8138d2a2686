#pragma once
/// @file fwd.hpp
/// @brief Forward declarations of tidings' public types, for headers that only name them
/// (a member `tidings::bus&`, a function taking a `tidings::subscription`): it includes no
/// other header, standard or tidings, so it costs nothing to include.
///
/// Each type is defined in the header named beside it; include that one to use it. Default
/// template arguments are written once, where the type is defined; the defining headers
/// include this one, so a declaration here that drifts from its definition fails to compile.
///
/// The aliases tidings::bus and tidings::single_threaded_bus are defined here (an alias
/// cannot be forward-declared).

namespace tidings {

// ---- the bus (bus.hpp, subscription.hpp, publisher.hpp, subscriber.hpp) --------------------

template <class Threading>
class basic_bus;
class subscription;
/// publisher.hpp gives `Threading` its default, tidings::thread_safe.
template <class Event, class Threading>
class publisher;
template <class... Events>
class subscriber;

// ---- policies (policy.hpp) ----------------------------------------------------------------

struct thread_safe;
struct single_thread;
enum class error_policy;
struct handler_error;

/// @brief The thread-safe bus: any member may be called from any thread; publish is lock-free.
using bus = basic_bus<thread_safe>;

/// @brief The same bus without atomics or locks, for state that one thread owns (a game loop,
/// a GUI thread). Using it from two threads is undefined behaviour.
using single_threaded_bus = basic_bus<single_thread>;

// ---- subscribe options (options.hpp; deliver_on: executor.hpp) ---------------------------

struct priority;
template <class Predicate>
struct filter;
struct once_t;
template <class T>
struct track;
struct replay_t;

// ---- executors (executor.hpp) and the vocabulary of queued delivery (delivery.hpp) --------

class manual_executor;
class thread_executor;
template <class Executor>
struct deliver_on;
enum class overflow;
enum class wait_strategy;
enum class stop_mode;
struct executor_options;
struct executor_stats;
struct publish_result;
class queue_full;
class executor_stopped;
class would_deadlock;

// ---- commands (command.hpp) and observables (observable.hpp) ------------------------------

class duplicate_handler;
class no_handler;
template <class T>
class observable;
class observer;

// ---- type identity across modules (bus.hpp) -----------------------------------------------

class type_mismatch;

}  // namespace tidings
