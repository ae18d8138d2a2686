#pragma once
/// @file detail/wait.hpp
/// @brief The wait strategies of tidings::wait_strategy, in one place: where a wait stands
/// (spinning, yielding or blocking) after how long, and the spin step. Both waiters of an
/// executor use it: the consumer waiting for work (executor_core::wait_for_work) and a
/// producer blocked on a full lane waiting for space (executor_core::claim_when_full). Each
/// blocks on its own futex; this header only says when.

#include <tidings/delivery.hpp>
#include <tidings/detail/barrier.hpp>

#include <chrono>

namespace tidings::detail {

/// Where a wait stands in its strategy.
enum class wait_phase { spin, yield, block };

/// Who waits.
enum class waiter {
    consumer,  ///< an executor's consumer, for work in its lanes
    producer,  ///< a producer blocked on a full lane (overflow::block), for space in it
};

/// @brief One waiter's wait strategy: its phase after a given time waited, and the spin step.
///
/// Built from the executor's options for one waiter. The strategies mean the same for both,
/// but for one: wait_strategy::spin spins for ever only for the consumer (the lowest latency
/// for the next event is what it asks for, and one core is its price). A producer blocked on
/// a full lane waits as with wait_strategy::adaptive instead: it spins for spin_duration,
/// yields for yield_duration, then sleeps on its lane's futex, so that a slow consumer does
/// not cost a core per blocked producer.
///
/// Thread safety: immutable once constructed; any thread.
class wait_policy {
public:
    /// @pre The options' durations are not negative (executor_core checks them first).
    wait_policy(const executor_options& options, waiter who) noexcept
        : strategy_(who == waiter::producer && options.wait == wait_strategy::spin
                        ? wait_strategy::adaptive
                        : options.wait),
          spin_until_(saturated(options.spin_duration)),
          yield_until_(spin_until_ + saturated(options.yield_duration)) {}

    /// The strategy this waiter follows (adaptive for a producer configured with spin).
    [[nodiscard]] wait_strategy strategy() const noexcept { return strategy_; }

    /// Where a wait that started at `since` stands.
    [[nodiscard]] wait_phase phase(std::chrono::steady_clock::time_point since) const noexcept {
        switch (strategy_) {
            case wait_strategy::spin:
                return wait_phase::spin;
            case wait_strategy::yield:
                return wait_phase::yield;
            case wait_strategy::block:
                return wait_phase::block;
            case wait_strategy::adaptive:
                break;
        }
        const auto waited = std::chrono::steady_clock::now() - since;
        if (waited < spin_until_) return wait_phase::spin;
        if (waited < yield_until_) return wait_phase::yield;
        return wait_phase::block;
    }

    /// One step of the spin phase, between two polls: 32 pauses (0.3 to 0.5 µs on the Xeons we
    /// measured), not as fast as possible: polling right behind the other side makes every
    /// line the producer writes cross cores twice, which measured 2.5x slower for the consumer
    /// (7.8 vs 19.9 M events/s, with the earlier slot rings); waiting longer adds latency for
    /// sparse streams. A blocked producer's poll (its re-read of the consumer's position) is
    /// the same race seen from the other side.
    static void pause() noexcept {
        for (int i = 0; i < spin_pauses; ++i) cpu_relax();
    }

private:
    static constexpr int spin_pauses = 32;

    /// The longest wait phase: a century, "for ever" in practice. Two of them still fit in a
    /// steady_clock::duration (nanoseconds, 292 years).
    static constexpr std::chrono::hours longest_phase{24 * 365 * 100};

    /// `phase` converted to the clock's unit, saturated at longest_phase: compared in
    /// microseconds first, so that microseconds::max() overflows nothing.
    static std::chrono::steady_clock::duration saturated(std::chrono::microseconds phase) noexcept {
        if (phase > std::chrono::microseconds{longest_phase}) return longest_phase;
        return phase;
    }

    wait_strategy strategy_;
    std::chrono::steady_clock::duration spin_until_;   // adaptive: end of spinning
    std::chrono::steady_clock::duration yield_until_;  // adaptive: end of yielding
};

}  // namespace tidings::detail
