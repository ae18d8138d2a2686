// tidings::detail::wait_policy, the wait strategies of both waiters of an executor: the
// phases each strategy goes through, and the one difference between the waiters (a producer
// blocked on a full lane never spins for ever, even with wait_strategy::spin).

#include <tidings/detail/wait.hpp>

#include <catch2/catch.hpp>

#include <chrono>

namespace {

using tidings::wait_strategy;
using tidings::detail::wait_phase;
using tidings::detail::wait_policy;
using tidings::detail::waiter;

tidings::executor_options with(wait_strategy wait, std::chrono::microseconds phases) {
    tidings::executor_options options;
    options.wait = wait;
    options.spin_duration = phases;
    options.yield_duration = phases;
    return options;
}

/// A wait that began now: with phases of 0 it is already past both, with phases of "for
/// ever" it is still spinning.
wait_phase phase_now(const wait_policy& policy) {
    return policy.phase(std::chrono::steady_clock::now());
}

}  // namespace

TEST_CASE("spin, yield and block are one phase for ever for the consumer", "[wait]") {
    const std::chrono::microseconds none{0};
    CHECK(phase_now(wait_policy{with(wait_strategy::spin, none), waiter::consumer}) ==
          wait_phase::spin);
    CHECK(phase_now(wait_policy{with(wait_strategy::yield, none), waiter::consumer}) ==
          wait_phase::yield);
    CHECK(phase_now(wait_policy{with(wait_strategy::block, none), waiter::consumer}) ==
          wait_phase::block);
}

TEST_CASE("adaptive spins, then blocks once its phases are over", "[wait]") {
    const auto forever = std::chrono::microseconds::max();  // saturates: no overflow
    for (const waiter who : {waiter::consumer, waiter::producer}) {
        CHECK(phase_now(wait_policy{with(wait_strategy::adaptive, forever), who}) ==
              wait_phase::spin);
        CHECK(phase_now(wait_policy{with(wait_strategy::adaptive, std::chrono::microseconds{0}),
                                    who}) == wait_phase::block);
    }
}

TEST_CASE("a producer waits with spin as with adaptive: it ends up blocking", "[wait]") {
    const wait_policy producer{with(wait_strategy::spin, std::chrono::microseconds{0}),
                               waiter::producer};
    CHECK(producer.strategy() == wait_strategy::adaptive);
    CHECK(phase_now(producer) == wait_phase::block);
    const wait_policy patient{with(wait_strategy::spin, std::chrono::microseconds::max()),
                              waiter::producer};
    CHECK(phase_now(patient) == wait_phase::spin);
    // The other strategies are the same for both waiters.
    for (const wait_strategy other :
         {wait_strategy::yield, wait_strategy::block, wait_strategy::adaptive}) {
        CHECK(wait_policy{with(other, std::chrono::microseconds{0}), waiter::producer}.strategy() ==
              other);
    }
}
