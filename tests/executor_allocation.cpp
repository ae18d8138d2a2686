// A queued delivery allocates nothing in steady state when its event fits in a lane record
// (up to 256 bytes), and an event too large for a record is stored on the heap and counted. The
// counting comes from tests/allocation.cpp (tidings_test::allocation_window): each thread counts
// its own allocations, so the producer's and the consumer's are measured separately.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstdint>
#include <thread>

namespace {

using tidings_test::allocation_window;
using tidings_test::spin_until;

/// The largest event promised to travel inside a lane record (docs/async.md: 256 bytes).
struct fits {
    std::int64_t sequence = 0;
    std::int64_t padding[31]{};
};
static_assert(sizeof(fits) == 256);

/// Over the 512-byte record limit: stored on the heap.
struct too_large {
    std::int64_t sequence = 0;
    std::int64_t padding[64]{};
};
static_assert(sizeof(too_large) == 520);

constexpr std::int64_t rounds = 100;
constexpr std::int64_t per_round = 48;  // more than a lane holds below, so the ring wraps
constexpr std::int64_t publishes = rounds * per_round;

}  // namespace

TEST_CASE("publishing and running record-sized events on a manual_executor allocates nothing",
          "[executor][allocation]") {
    tidings::bus bus;
    tidings::manual_executor frame{tidings::executor_options{.capacity = 64}};
    tidings::manual_executor other{tidings::executor_options{.capacity = 64}};
    std::int64_t first_calls = 0;
    std::int64_t second_calls = 0;
    std::int64_t other_calls = 0;
    std::int64_t sum = 0;
    // Two subscribers on one executor (one task calls both) and one on another executor (the
    // event is copied to the first executor and moved into the last one).
    auto first = bus.subscribe<fits>(
        [&](const fits& e) {
            ++first_calls;
            sum += e.sequence;
        },
        tidings::deliver_on(frame));
    auto second = bus.subscribe<fits>([&](const fits&) { ++second_calls; },
                                      tidings::deliver_on(frame), tidings::priority{1});
    auto third =
        bus.subscribe<fits>([&](const fits&) { ++other_calls; }, tidings::deliver_on(other));
    // Warm-up: this thread's first publish creates its lane in each executor.
    bus.publish(fits{});
    REQUIRE(frame.run_pending() == 1);
    REQUIRE(other.run_pending() == 1);
    first_calls = second_calls = other_calls = 0;

    allocation_window window;
    std::int64_t ran = 0;
    for (std::int64_t r = 0; r < rounds; ++r) {
        for (std::int64_t i = 0; i < per_round; ++i) {
            const fits lvalue{r * per_round + i, {}};
            if (i % 2 == 0) {
                bus.publish(lvalue);
            } else {
                bus.publish(fits{lvalue});
            }
        }
        ran += static_cast<std::int64_t>(frame.run_pending());
        ran += static_cast<std::int64_t>(other.run_for_at_most(per_round));
    }
    const std::int64_t counted = window.stop();

    CHECK(counted == 0);
    CHECK(ran == 2 * publishes);
    CHECK(first_calls == publishes);
    CHECK(second_calls == publishes);
    CHECK(other_calls == publishes);
    CHECK(sum == publishes * (publishes - 1) / 2);
    CHECK(frame.stats().heap_events == 0);
    CHECK(other.stats().heap_events == 0);
}

TEST_CASE("publishing record-sized events to a thread_executor allocates nothing in either thread",
          "[executor][allocation][threaded]") {
    tidings::bus bus;
    // A small lane, so that the producer also waits for space (overflow::block) now and then.
    tidings::thread_executor worker{tidings::executor_options{.capacity = 16}};
    // The worker counts its own allocations from the first measured event to the last one,
    // which covers its loop, its waiting and the deliveries between them.
    std::atomic<std::int64_t> worker_count{-1};
    std::atomic<std::int64_t> delivered{0};
    auto s = bus.subscribe<fits>(
        [&](const fits& e) {
            if (e.sequence == 1) tidings_test::start_counting_allocations();
            if (e.sequence == publishes) {
                worker_count.store(tidings_test::stop_counting_allocations(),
                                   std::memory_order_release);
            }
            delivered.fetch_add(1, std::memory_order_release);
        },
        tidings::deliver_on(worker));
    bus.publish(fits{});  // warm-up: creates this thread's lane
    spin_until([&] { return delivered.load(std::memory_order_acquire) == 1; });

    allocation_window window;
    for (std::int64_t i = 1; i <= publishes; ++i) bus.publish(fits{i, {}});
    const std::int64_t counted = window.stop();

    spin_until([&] { return delivered.load(std::memory_order_acquire) == publishes + 1; });
    CHECK(counted == 0);
    CHECK(worker_count.load(std::memory_order_acquire) == 0);
    worker.stop();
    CHECK(worker.stats().executed == publishes + 1);
    CHECK(worker.stats().heap_events == 0);
}

TEST_CASE("an event larger than a record is allocated once per queued publish and counted",
          "[executor][allocation]") {
    tidings::bus bus;
    tidings::manual_executor frame{tidings::executor_options{.capacity = 64}};
    std::int64_t calls = 0;
    std::int64_t sum = 0;
    auto large = bus.subscribe<too_large>(
        [&](const too_large& e) {
            ++calls;
            sum += e.sequence;
        },
        tidings::deliver_on(frame));
    auto small = bus.subscribe<fits>([&](const fits&) { ++calls; }, tidings::deliver_on(frame));
    bus.publish(too_large{});
    REQUIRE(frame.run_pending() == 1);
    REQUIRE(frame.stats().heap_events == 1);
    calls = 0;

    std::int64_t large_allocations = 0;
    std::int64_t small_allocations = 0;
    for (std::int64_t r = 0; r < rounds; ++r) {
        {
            allocation_window window;
            for (std::int64_t i = 0; i < per_round / 2; ++i) {
                bus.publish(too_large{r * per_round + i, {}});
            }
            large_allocations += window.stop();
        }
        {
            allocation_window window;
            for (std::int64_t i = 0; i < per_round / 2; ++i) bus.publish(fits{});
            small_allocations += window.stop();
        }
        {
            // Running frees the heap copies; it allocates nothing either.
            allocation_window window;
            frame.run_pending();
            small_allocations += window.stop();
        }
    }

    const std::int64_t large_publishes = rounds * per_round / 2;
    // One heap copy per publish of the large event, no more; none for the one that fits.
    CHECK(large_allocations == large_publishes);
    CHECK(small_allocations == 0);
    CHECK(calls == 2 * large_publishes);
    CHECK(sum == rounds * (per_round / 2) * (per_round / 2 - 1) / 2 +
                     per_round * (per_round / 2) * rounds * (rounds - 1) / 2);
    const tidings::executor_stats stats = frame.stats();
    CHECK(stats.heap_events == static_cast<std::uint64_t>(large_publishes + 1));
    CHECK(stats.queued == static_cast<std::uint64_t>(2 * large_publishes + 1));
    CHECK(stats.executed == stats.queued);
}
