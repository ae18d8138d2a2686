// Stress tests of the executors: producers in several threads publish into thread_executors
// and manual_executors while the executors run, stop, lose subscribers and are destroyed.
// Every test ends with exact counts. They run under ThreadSanitizer and ASan in CI, with
// smaller iteration counts (tidings_test::scaled). Catch2's assertions are not thread-safe:
// producers and handlers only count, and the test's own thread checks the counts once the
// threads that wrote them have been joined (thread_executor::stop() joins the worker).

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <latch>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using tidings_test::busy_work;
using tidings_test::counted;
using tidings_test::lifetime_counter;
using tidings_test::scaled;
using tidings_test::spin_until;

/// Stamped with its producer and that producer's sequence number, which the producer shares
/// between every type it publishes. Fits in a queue slot.
struct ping {
    int producer = 0;
    std::int64_t sequence = 0;
};
/// The same stamp, in an event too large for a lane record: it travels on the heap.
struct pong {
    int producer = 0;
    std::int64_t sequence = 0;
    std::int64_t padding[64]{};
};
static_assert(sizeof(pong) > 512, "pong must not fit in a lane record");
/// Holds the consumer until the test lets it go.
struct gate {};

constexpr int max_producers = 4;

/// Checks, in the one thread that consumes, that each producer's events arrive in the order it
/// published them. `gaps_allowed`: events may be missing (overflow::drop), but never reordered
/// or repeated.
class sequence_checker {
public:
    explicit sequence_checker(bool gaps_allowed = false) noexcept : gaps_allowed_(gaps_allowed) {}

    void see(int producer, std::int64_t sequence) noexcept {
        const std::int64_t expected = next_[static_cast<std::size_t>(producer)];
        if (gaps_allowed_ ? sequence < expected : sequence != expected) ++violations_;
        next_[static_cast<std::size_t>(producer)] = sequence + 1;
        ++received_[static_cast<std::size_t>(producer)];
    }

    [[nodiscard]] std::int64_t violations() const noexcept { return violations_; }
    [[nodiscard]] std::int64_t next(int producer) const noexcept {
        return next_[static_cast<std::size_t>(producer)];
    }
    [[nodiscard]] std::int64_t received(int producer) const noexcept {
        return received_[static_cast<std::size_t>(producer)];
    }
    [[nodiscard]] std::int64_t received() const noexcept {
        std::int64_t total = 0;
        for (const std::int64_t count : received_) total += count;
        return total;
    }

private:
    bool gaps_allowed_;
    std::int64_t violations_ = 0;
    std::array<std::int64_t, max_producers> next_{};
    std::array<std::int64_t, max_producers> received_{};
};

/// Publishes until stop(), from `count` threads; `publish(thread, iteration)`.
class publishing_threads {
public:
    template <class Publish>
    publishing_threads(int count, Publish publish) {
        for (int t = 0; t < count; ++t) {
            threads_.emplace_back([this, publish, t] {
                for (std::int64_t i = 0; !stop_.load(std::memory_order_acquire); ++i) {
                    publish(t, i);
                    std::this_thread::yield();
                }
            });
        }
    }
    ~publishing_threads() { stop(); }
    publishing_threads(const publishing_threads&) = delete;
    publishing_threads& operator=(const publishing_threads&) = delete;

    void stop() {
        stop_.store(true, std::memory_order_release);
        threads_.clear();  // joins
    }

private:
    std::atomic<bool> stop_{false};
    std::vector<std::jthread> threads_;
};

/// True once every one of the first `count` counters has reached `at_least`.
bool all_reached(const std::array<std::atomic<std::int64_t>, max_producers>& counters, int count,
                 std::int64_t at_least) {
    for (int p = 0; p < count; ++p) {
        if (counters[static_cast<std::size_t>(p)].load(std::memory_order_acquire) < at_least) {
            return false;
        }
    }
    return true;
}

std::int64_t sum(const std::array<std::atomic<std::int64_t>, max_producers>& counters) {
    std::int64_t total = 0;
    for (const auto& counter : counters) total += counter.load(std::memory_order_acquire);
    return total;
}

/// A lane bounded at `capacity` tasks, with bytes enough for that many small tasks.
tidings::executor_options small_queue(std::size_t capacity,
                                      tidings::overflow on_full = tidings::overflow::block) {
    tidings::executor_options options;
    options.capacity = capacity;
    options.lane_bytes = std::max<std::size_t>(1024, std::bit_ceil(capacity * 64));
    options.on_full = on_full;
    return options;
}

}  // namespace

// ---- ordering ---------------------------------------------------------------------------------

TEST_CASE(
    "through one thread_executor each producer's events arrive in the order it published them, "
    "across event types",
    "[executor][threaded][order]") {
    constexpr int producers = 2;
    const std::int64_t events = scaled(200'000);  // per producer, both types together
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(64)};
    sequence_checker order;  // the worker's
    std::int64_t pings = 0;  // the worker's
    std::int64_t pongs = 0;  // the worker's
    auto on_ping = bus.subscribe(
        [&](const ping& e) {
            order.see(e.producer, e.sequence);
            ++pings;
        },
        tidings::deliver_on(worker));
    auto on_pong = bus.subscribe(
        [&](const pong& e) {
            order.see(e.producer, e.sequence);
            ++pongs;
        },
        tidings::deliver_on(worker));

    std::array<std::int64_t, producers> pings_published{};  // each written by its producer
    {
        std::latch start{producers};
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                std::minstd_rand rng(static_cast<unsigned>(p + 1));
                start.arrive_and_wait();
                for (std::int64_t seq = 0; seq < events; ++seq) {
                    // The types interleave at random: one in a slot, one on the heap.
                    if (rng() % 2 == 0) {
                        bus.publish(ping{p, seq});
                        ++pings_published[static_cast<std::size_t>(p)];
                    } else {
                        bus.publish(pong{p, seq, {}});
                    }
                }
            });
        }
    }
    worker.stop();

    CHECK(order.violations() == 0);
    for (int p = 0; p < producers; ++p) {
        INFO("producer " << p);
        CHECK(order.next(p) == events);
        CHECK(order.received(p) == events);
    }
    CHECK(pings == pings_published[0] + pings_published[1]);
    CHECK(pongs == producers * events - pings);
    const tidings::executor_stats stats = worker.stats();
    CHECK(stats.queued == static_cast<std::uint64_t>(producers * events));
    CHECK(stats.executed == stats.queued);
    CHECK(stats.heap_events == static_cast<std::uint64_t>(pongs));
}

TEST_CASE(
    "a manual_executor run by one thread while three others publish delivers every event in "
    "per-producer order",
    "[executor][threaded][order]") {
    constexpr int producers = 3;
    const std::int64_t events = scaled(100'000);
    const std::int64_t total = producers * events;
    tidings::bus bus;
    // A small lane: the producers keep waiting for the loop to make room.
    tidings::manual_executor frame{small_queue(16)};
    sequence_checker order;  // this thread's: it runs the frame
    auto on_ping = bus.subscribe([&](const ping& e) { order.see(e.producer, e.sequence); },
                                 tidings::deliver_on(frame));
    auto on_pong = bus.subscribe([&](const pong& e) { order.see(e.producer, e.sequence); },
                                 tidings::deliver_on(frame));
    std::atomic<std::int64_t> not_queued{0};
    std::int64_t ran = 0;
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (std::int64_t seq = 0; seq < events; ++seq) {
                    const tidings::publish_result r =
                        seq % 3 == 0 ? bus.publish(pong{p, seq, {}}) : bus.publish(ping{p, seq});
                    if (r.queued != 1) not_queued.fetch_add(1, std::memory_order_relaxed);
                }
            });
        }
        // The loop: every way of running, in turn, until everything arrived.
        for (int turn = 0; ran < total; ++turn) {
            switch (turn % 3) {
                case 0:
                    ran += static_cast<std::int64_t>(frame.run_pending());
                    break;
                case 1:
                    ran += static_cast<std::int64_t>(frame.run_one());
                    break;
                default:
                    ran += static_cast<std::int64_t>(frame.run_for_at_most(7));
                    break;
            }
            std::this_thread::yield();
        }
    }
    CHECK(ran == total);
    CHECK(frame.run_pending() == 0);
    CHECK(not_queued.load() == 0);
    CHECK(order.violations() == 0);
    for (int p = 0; p < producers; ++p) {
        INFO("producer " << p);
        CHECK(order.next(p) == events);
        CHECK(order.received(p) == events);
    }
    const tidings::executor_stats stats = frame.stats();
    CHECK(stats.queued == static_cast<std::uint64_t>(total));
    CHECK(stats.executed == stats.queued);
    CHECK(stats.pending == 0);
}

TEST_CASE("several buses sharing one thread_executor keep each producer's order across the buses",
          "[executor][threaded][order]") {
    constexpr int producers = 2;
    constexpr int bus_count = 3;
    const std::int64_t events = scaled(60'000);
    std::array<tidings::bus, bus_count> buses;
    tidings::thread_executor worker{small_queue(32)};
    sequence_checker order;                         // the worker's
    std::array<std::int64_t, bus_count> per_bus{};  // the worker's
    std::vector<tidings::subscription> subs;
    for (int b = 0; b < bus_count; ++b) {
        subs.push_back(buses[static_cast<std::size_t>(b)].subscribe(
            [&, b](const ping& e) {
                order.see(e.producer, e.sequence);
                ++per_bus[static_cast<std::size_t>(b)];
            },
            tidings::deliver_on(worker)));
    }
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (std::int64_t seq = 0; seq < events; ++seq) {
                    buses[static_cast<std::size_t>(seq % bus_count)].publish(ping{p, seq});
                }
            });
        }
    }
    worker.stop();
    CHECK(order.violations() == 0);
    for (int p = 0; p < producers; ++p) CHECK(order.next(p) == events);
    for (int b = 0; b < bus_count; ++b) {
        INFO("bus " << b);
        // seq % 3 == b: events / 3 each (events is a multiple of 3).
        CHECK(per_bus[static_cast<std::size_t>(b)] == producers * events / bus_count);
    }
    CHECK(worker.stats().queued == static_cast<std::uint64_t>(producers * events));
    CHECK(worker.stats().executed == worker.stats().queued);
}

// ---- nothing silently lost ----------------------------------------------------------------------

TEST_CASE(
    "with overflow::block four producers through a tiny queue deliver every event exactly once",
    "[executor][threaded][overflow]") {
    constexpr int producers = 4;
    constexpr std::size_t capacity = 16;
    const std::int64_t events = scaled(250'000);  // 10^6 in all outside TSan
    const std::int64_t total = producers * events;
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(capacity)};
    std::array<std::atomic<std::int64_t>, max_producers> attempts{};
    sequence_checker order;  // the worker's
    bool gated = false;      // the worker's
    auto hold_first = [&] {
        // The first delivery holds the worker until every producer has started more publishes
        // than its lane holds: each of them is then waiting for space.
        if (gated) return;
        gated = true;
        spin_until([&] {
            return all_reached(attempts, producers, static_cast<std::int64_t>(capacity) + 1);
        });
    };
    auto on_ping = bus.subscribe(
        [&](const ping& e) {
            hold_first();
            order.see(e.producer, e.sequence);
        },
        tidings::deliver_on(worker));
    auto on_pong = bus.subscribe(
        [&](const pong& e) {
            hold_first();
            order.see(e.producer, e.sequence);
        },
        tidings::deliver_on(worker));

    std::atomic<std::int64_t> not_queued{0};
    {
        std::latch start{producers};
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                auto& attempted = attempts[static_cast<std::size_t>(p)];
                start.arrive_and_wait();
                for (std::int64_t seq = 0; seq < events; ++seq) {
                    attempted.fetch_add(1, std::memory_order_release);
                    const tidings::publish_result r =
                        seq % 8 == 0 ? bus.publish(pong{p, seq, {}}) : bus.publish(ping{p, seq});
                    if (r.queued != 1 || r.dropped != 0) {
                        not_queued.fetch_add(1, std::memory_order_relaxed);
                    }
                }
            });
        }
    }
    worker.stop();

    CHECK(not_queued.load() == 0);
    CHECK(order.violations() == 0);
    CHECK(order.received() == total);
    for (int p = 0; p < producers; ++p) {
        INFO("producer " << p);
        CHECK(order.received(p) == events);
        CHECK(order.next(p) == events);
    }
    const tidings::executor_stats stats = worker.stats();
    CHECK(stats.queued == static_cast<std::uint64_t>(total));
    CHECK(stats.executed == stats.queued);
    CHECK(stats.dropped == 0);
    CHECK(stats.pending == 0);
    if (!tidings_test::under_tsan) CHECK(total >= 1'000'000);
}

TEST_CASE("every wait strategy wakes blocked producers and an idle consumer without losing events",
          "[executor][threaded][overflow]") {
    struct strategy_case {
        tidings::wait_strategy wait;
        std::chrono::microseconds phase;  // spin and yield durations (adaptive)
        const char* name;
    };
    const strategy_case which = GENERATE(
        strategy_case{tidings::wait_strategy::spin, std::chrono::microseconds{50}, "spin"},
        strategy_case{tidings::wait_strategy::yield, std::chrono::microseconds{50}, "yield"},
        strategy_case{tidings::wait_strategy::block, std::chrono::microseconds{50}, "block"},
        // No spinning and no yielding: every wait goes straight to the futex.
        strategy_case{tidings::wait_strategy::adaptive, std::chrono::microseconds{0},
                      "adaptive, no spin"});
    INFO("wait strategy: " << which.name);
    constexpr int producers = 2;
    constexpr std::size_t capacity = 8;
    const std::int64_t burst = scaled(10'000);  // per producer, into a full queue
    const std::int64_t sparse = scaled(1'000);  // per producer, one at a time
    tidings::bus bus;
    tidings::executor_options options = small_queue(capacity);
    options.wait = which.wait;
    options.spin_duration = which.phase;
    options.yield_duration = which.phase;
    tidings::thread_executor worker{options};

    std::array<std::atomic<std::int64_t>, max_producers> attempts{};
    std::array<std::atomic<std::int64_t>, max_producers> delivered{};
    sequence_checker order;  // the worker's
    bool gated = false;      // the worker's
    auto s = bus.subscribe(
        [&](const ping& e) {
            if (!gated) {
                gated = true;
                spin_until([&] {
                    return all_reached(attempts, producers,
                                       static_cast<std::int64_t>(capacity) + 1);
                });
            }
            order.see(e.producer, e.sequence);
            delivered[static_cast<std::size_t>(e.producer)].fetch_add(1, std::memory_order_release);
        },
        tidings::deliver_on(worker));
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                auto& attempted = attempts[static_cast<std::size_t>(p)];
                auto& arrived = delivered[static_cast<std::size_t>(p)];
                std::int64_t seq = 0;
                // A burst: the producer waits for space again and again.
                for (; seq < burst; ++seq) {
                    attempted.fetch_add(1, std::memory_order_release);
                    bus.publish(ping{p, seq});
                }
                // Then one event at a time, waiting for each: the consumer idles in between
                // (and sleeps, with block), so every event must wake it.
                for (; seq < burst + sparse; ++seq) {
                    bus.publish(ping{p, seq});
                    spin_until([&] { return arrived.load(std::memory_order_acquire) > seq; });
                }
            });
        }
    }
    worker.stop();
    CHECK(order.violations() == 0);
    for (int p = 0; p < producers; ++p) {
        INFO("producer " << p);
        CHECK(order.next(p) == burst + sparse);
        CHECK(delivered[static_cast<std::size_t>(p)].load() == burst + sparse);
    }
    CHECK(worker.stats().executed == static_cast<std::uint64_t>(producers * (burst + sparse)));
}

TEST_CASE("a producer blocked on a full lane of a wait_strategy::spin executor ends up asleep",
          "[executor][threaded][overflow]") {
    // wait_strategy::spin spins for ever only for the consumer: a producer blocked on a full
    // lane spins for spin_duration, yields for yield_duration, then sleeps on its lane's futex,
    // as with adaptive. With both durations 0 it goes straight to the futex. A producer that
    // spun for ever would never announce that it sleeps, and this test would never end.
    tidings::bus bus;
    tidings::executor_options options = small_queue(2);
    options.wait = tidings::wait_strategy::spin;
    options.spin_duration = std::chrono::microseconds{0};
    options.yield_duration = std::chrono::microseconds{0};
    tidings::manual_executor loop{options};  // this thread is its loop, and runs it below
    int received = 0;                        // this thread's (run_pending runs the handler)
    auto s = bus.subscribe([&](const ping&) { ++received; }, tidings::deliver_on(loop));
    std::atomic<int> published{0};
    std::jthread producer{[&] {
        for (int i = 0; i < 3; ++i) {  // the lane holds two: the third publish waits
            bus.publish(ping{0, i});
            published.fetch_add(1, std::memory_order_release);
        }
    }};
    spin_until([&] { return loop.core().sleeping_producers() == 1; });
    // Asleep inside its third publish: only this thread's run can make room.
    CHECK(published.load(std::memory_order_acquire) == 2);
    CHECK(loop.run_pending() == 2);  // frees the lane and wakes the producer
    producer.join();
    CHECK(published.load() == 3);
    CHECK(loop.core().sleeping_producers() == 0);
    CHECK(loop.run_pending() == 1);
    CHECK(received == 3);
    CHECK(loop.stats().dropped == 0);
}

TEST_CASE("with overflow::drop the events received plus the drops counted equal those published",
          "[executor][threaded][overflow]") {
    constexpr int producers = 3;
    const std::int64_t events = scaled(100'000);
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(16, tidings::overflow::drop)};
    std::array<std::atomic<std::int64_t>, max_producers> queued{};
    std::array<std::atomic<std::int64_t>, max_producers> dropped{};
    sequence_checker order{true};  // the worker's: gaps allowed, reordering not
    bool gated = false;            // the worker's
    auto s = bus.subscribe(
        [&](const ping& e) {
            // The first delivery holds the worker until every producer has had a drop.
            if (!gated) {
                gated = true;
                spin_until([&] { return all_reached(dropped, producers, 1); });
            }
            order.see(e.producer, e.sequence);
            busy_work(10);  // a slow consumer: more drops
        },
        tidings::deliver_on(worker));
    std::atomic<std::int64_t> anomalies{0};  // results that are neither queued nor dropped
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (std::int64_t seq = 0; seq < events; ++seq) {
                    const tidings::publish_result r = bus.publish(ping{p, seq});
                    if (r.queued + r.dropped != 1) {
                        anomalies.fetch_add(1, std::memory_order_relaxed);
                    }
                    queued[static_cast<std::size_t>(p)].fetch_add(r.queued,
                                                                  std::memory_order_release);
                    dropped[static_cast<std::size_t>(p)].fetch_add(r.dropped,
                                                                   std::memory_order_release);
                }
            });
        }
    }
    worker.stop();

    CHECK(anomalies.load() == 0);
    CHECK(order.violations() == 0);
    for (int p = 0; p < producers; ++p) {
        INFO("producer " << p);
        const auto index = static_cast<std::size_t>(p);
        CHECK(order.received(p) == queued[index].load());
        CHECK(queued[index].load() + dropped[index].load() == events);
        CHECK(dropped[index].load() >= 1);
    }
    const tidings::executor_stats stats = worker.stats();
    CHECK(stats.dropped == static_cast<std::uint64_t>(sum(dropped)));
    CHECK(stats.queued == static_cast<std::uint64_t>(sum(queued)));
    CHECK(stats.executed == stats.queued);
    CHECK(stats.rejected == 0);
    CHECK(order.received() + static_cast<std::int64_t>(stats.dropped) == producers * events);
}

// ---- stopping while producers publish ---------------------------------------------------------

TEST_CASE(
    "stop() while producers publish runs every accepted event, and each producer's next publish "
    "throws executor_stopped",
    "[executor][threaded][stop]") {
    constexpr int producers = 3;
    const int rounds = static_cast<int>(scaled(20, 4));
    for (int round = 0; round < rounds; ++round) {
        tidings::bus bus;
        tidings::thread_executor worker{small_queue(16)};
        sequence_checker order;  // the worker's
        auto s = bus.subscribe(
            [&](const ping& e) {
                order.see(e.producer, e.sequence);
                busy_work(20);
            },
            tidings::deliver_on(worker));
        std::array<std::atomic<std::int64_t>, max_producers> accepted{};
        std::array<std::atomic<int>, max_producers> refusals{};
        std::atomic<int> other_errors{0};
        {
            std::vector<std::jthread> threads;
            for (int p = 0; p < producers; ++p) {
                threads.emplace_back([&, p] {
                    const auto index = static_cast<std::size_t>(p);
                    // Until the executor refuses; a hang here is the bug this test is about.
                    for (std::int64_t seq = 0;; ++seq) {
                        try {
                            if (bus.publish(ping{p, seq}).queued != 1) other_errors.fetch_add(1);
                        } catch (const tidings::executor_stopped&) {
                            refusals[index].fetch_add(1, std::memory_order_release);
                            return;
                        } catch (...) {
                            other_errors.fetch_add(1);
                            return;
                        }
                        accepted[index].fetch_add(1, std::memory_order_release);
                    }
                });
            }
            // Stop while every producer is well under way (and some wait for space).
            spin_until([&] { return all_reached(accepted, producers, 64); });
            CHECK(worker.stop() == 0);
        }
        INFO("round " << round);
        CHECK(other_errors.load() == 0);
        CHECK(order.violations() == 0);
        for (int p = 0; p < producers; ++p) {
            INFO("producer " << p);
            const auto index = static_cast<std::size_t>(p);
            CHECK(refusals[index].load() == 1);
            // Every accepted event ran: exactly the sequence numbers 0 .. accepted - 1.
            CHECK(order.received(p) == accepted[index].load());
            CHECK(order.next(p) == accepted[index].load());
        }
        const tidings::executor_stats stats = worker.stats();
        CHECK(stats.queued == static_cast<std::uint64_t>(sum(accepted)));
        CHECK(stats.executed == stats.queued);
        CHECK(stats.discarded == 0);
        CHECK(stats.pending == 0);
        // After the stop: a clear error, at once, from any thread; stop() is idempotent.
        CHECK_THROWS_AS(bus.publish(ping{0, -1}), tidings::executor_stopped);
        CHECK(worker.stop() == 0);
    }
}

TEST_CASE(
    "with overflow::drop, publishes racing with stop() are queued, dropped or rejected, and "
    "every one is accounted for",
    "[executor][threaded][stop]") {
    constexpr int producers = 3;
    const std::int64_t events = scaled(40'000);
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(16, tidings::overflow::drop)};
    sequence_checker order{true};  // the worker's
    auto s = bus.subscribe(
        [&](const ping& e) {
            order.see(e.producer, e.sequence);
            busy_work(5);
        },
        tidings::deliver_on(worker));
    std::array<std::atomic<std::int64_t>, max_producers> queued{};
    std::array<std::atomic<std::int64_t>, max_producers> dropped{};
    std::atomic<int> half_way{0};
    std::atomic<bool> stop_begun{false};
    std::atomic<bool> stop_returned{false};
    std::atomic<int> errors{0};
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                const auto index = static_cast<std::size_t>(p);
                for (std::int64_t seq = 0; seq < events; ++seq) {
                    // The second quarter races with stop(); the last one follows it.
                    if (seq == events / 2) {
                        half_way.fetch_add(1, std::memory_order_release);
                        spin_until([&] { return stop_begun.load(std::memory_order_acquire); });
                    }
                    if (seq == events / 4 * 3) {
                        spin_until([&] { return stop_returned.load(std::memory_order_acquire); });
                    }
                    try {
                        const tidings::publish_result r = bus.publish(ping{p, seq});
                        queued[index].fetch_add(r.queued, std::memory_order_relaxed);
                        dropped[index].fetch_add(r.dropped, std::memory_order_relaxed);
                    } catch (...) {
                        errors.fetch_add(1);  // drop never throws, stopped or not
                    }
                }
            });
        }
        spin_until([&] { return half_way.load(std::memory_order_acquire) == producers; });
        stop_begun.store(true, std::memory_order_release);
        worker.stop();
        stop_returned.store(true, std::memory_order_release);
    }
    CHECK(errors.load() == 0);
    CHECK(order.violations() == 0);
    const tidings::executor_stats stats = worker.stats();
    CHECK(order.received() == sum(queued));
    CHECK(stats.queued == static_cast<std::uint64_t>(sum(queued)));
    CHECK(stats.executed == stats.queued);
    CHECK(stats.dropped + stats.rejected == static_cast<std::uint64_t>(sum(dropped)));
    CHECK(sum(queued) + sum(dropped) == producers * events);
    // At least the last quarter of every producer came after the stop.
    CHECK(stats.rejected >= static_cast<std::uint64_t>(producers * (events - events / 4 * 3)));
}

TEST_CASE(
    "a discarding stop() while producers publish accounts for every accepted event: handled "
    "plus discarded",
    "[executor][threaded][stop]") {
    constexpr int producers = 2;
    const int rounds = static_cast<int>(scaled(10, 2));
    for (int round = 0; round < rounds; ++round) {
        tidings::bus bus;
        tidings::thread_executor worker{small_queue(256)};
        sequence_checker order;  // the worker's
        auto s = bus.subscribe(
            [&](const ping& e) {
                order.see(e.producer, e.sequence);
                busy_work(200);  // slower than the producers: a backlog builds up
            },
            tidings::deliver_on(worker));
        std::array<std::atomic<std::int64_t>, max_producers> accepted{};
        std::size_t discarded = 0;
        {
            std::vector<std::jthread> threads;
            for (int p = 0; p < producers; ++p) {
                threads.emplace_back([&, p] {
                    const auto index = static_cast<std::size_t>(p);
                    for (std::int64_t seq = 0;; ++seq) {
                        try {
                            bus.publish(ping{p, seq});
                        } catch (const tidings::executor_stopped&) {
                            return;
                        }
                        accepted[index].fetch_add(1, std::memory_order_release);
                    }
                });
            }
            spin_until([&] { return worker.pending() >= 256; });
            discarded = worker.stop(tidings::stop_mode::discard);
        }
        INFO("round " << round);
        CHECK(order.violations() == 0);
        const tidings::executor_stats stats = worker.stats();
        // What ran is a prefix of each producer's events; the rest was discarded and counted.
        CHECK(order.received() + static_cast<std::int64_t>(discarded) == sum(accepted));
        CHECK(stats.discarded == discarded);
        CHECK(stats.queued == static_cast<std::uint64_t>(sum(accepted)));
        CHECK(stats.executed + stats.discarded == stats.queued);
        CHECK(stats.pending == 0);
        for (int p = 0; p < producers; ++p) {
            CHECK(order.next(p) == order.received(p));
        }
    }
}

// A lost wake-up: the worker read "not stopping", stop() set the flag and woke it, and only
// then did the worker read the wake-up counter and go to sleep on it, for good. The window is
// a few instructions wide, so this test hits it only now and then (about once in 50 000 stops
// before the fix); a regression shows up as a ctest timeout.
TEST_CASE("stop() wakes a blocking worker even as it is falling asleep",
          "[executor][threaded][stop]") {
    tidings::executor_options options;
    options.wait = tidings::wait_strategy::block;
    std::minstd_rand random{7};
    const std::int64_t stops = scaled(20'000);
    std::int64_t stopped = 0;
    for (std::int64_t i = 0; i < stops; ++i) {
        tidings::thread_executor worker{options};
        busy_work(static_cast<int>(random() % 4'000));  // lands the stop anywhere in the idle path
        CHECK(worker.stop() == 0);
        ++stopped;
    }
    CHECK(stopped == stops);
}

// The worker checks for a stop between batches, not only when its lanes are empty: a
// discarding stop does not run the whole backlog first.
TEST_CASE("a discarding stop() discards a backlog instead of running it",
          "[executor][threaded][stop]") {
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(1024)};
    std::atomic<bool> release{false};
    std::atomic<bool> entered{false};
    std::atomic<std::int64_t> handled{0};
    auto hold = bus.subscribe(
        [&](const gate&) {
            entered.store(true, std::memory_order_release);
            spin_until([&] { return release.load(std::memory_order_acquire); });
        },
        tidings::deliver_on(worker));
    auto count = bus.subscribe(
        [&](const ping&) {
            handled.fetch_add(1, std::memory_order_relaxed);
            busy_work(2'000);
        },
        tidings::deliver_on(worker));
    constexpr std::int64_t backlog = 1000;
    bus.publish(gate{});
    spin_until([&] { return entered.load(std::memory_order_acquire); });
    for (std::int64_t i = 0; i < backlog; ++i) bus.publish(ping{0, i});
    std::size_t discarded = 0;
    {
        // The stop waits for the held delivery's batch; let it go once the stop has begun
        // (a publish is refused from then on).
        std::jthread stopper([&] { discarded = worker.stop(tidings::stop_mode::discard); });
        spin_until([&] {
            try {
                bus.publish(gate{});  // queued behind the backlog while still accepted
                return false;
            } catch (const tidings::executor_stopped&) {
                return true;
            }
        });
        release.store(true, std::memory_order_release);
    }
    const tidings::executor_stats stats = worker.stats();
    CHECK(stats.executed + stats.discarded == stats.queued);
    CHECK(stats.discarded == discarded);
    // Only the held delivery had started: every ping is discarded, none runs (issue 9 item 16:
    // the worker used to finish its batch, up to 1,024 tasks, first).
    CHECK(handled.load() == 0);
    CHECK(discarded >= backlog);
}

// ---- unsubscribe means stop ---------------------------------------------------------------------

TEST_CASE(
    "after unsubscribe() returns a queued handler is not running and never runs again, while "
    "producers publish",
    "[executor][threaded][unsubscribe]") {
    constexpr int producers = 2;
    const int cycles = static_cast<int>(scaled(300, 8));
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(64)};
    std::atomic<std::int64_t> permanent_calls{0};
    auto permanent =
        bus.subscribe([&](const ping&) { permanent_calls.fetch_add(1, std::memory_order_relaxed); },
                      tidings::deliver_on(worker));
    std::atomic<std::int64_t> published{0};
    std::atomic<std::int64_t> violations{0};
    std::atomic<std::int64_t> churned_calls{0};

    struct record {
        std::atomic<bool> gone{false};
        std::atomic<bool> running{false};
        std::atomic<std::int64_t> calls{0};
    };
    // Every record stays alive until the worker has stopped: a (buggy) late call would still
    // touch it.
    std::vector<std::unique_ptr<record>> graveyard;
    {
        publishing_threads threads(producers, [&](int p, std::int64_t seq) {
            bus.publish(ping{p, seq});
            published.fetch_add(1, std::memory_order_relaxed);
        });
        for (int cycle = 0; cycle < cycles; ++cycle) {
            auto state = std::make_unique<record>();
            record* r = state.get();
            auto handle = bus.subscribe(
                [&violations, &churned_calls, r](const ping&) {
                    if (r->gone.load(std::memory_order_acquire)) violations.fetch_add(1);
                    r->running.store(true, std::memory_order_release);
                    r->calls.fetch_add(1, std::memory_order_relaxed);
                    churned_calls.fetch_add(1, std::memory_order_relaxed);
                    busy_work(50);
                    r->running.store(false, std::memory_order_release);
                },
                tidings::deliver_on(worker));
            // Let deliveries to it flow (and more be queued), then leave, in one of three ways.
            spin_until([&] { return r->calls.load(std::memory_order_acquire) >= 2; });
            switch (cycle % 3) {
                case 0:
                    handle.unsubscribe();
                    break;
                case 1:
                    handle = tidings::subscription{};
                    break;
                default: {
                    const tidings::subscription destroyed{std::move(handle)};
                } break;
            }
            if (r->running.load(std::memory_order_acquire)) violations.fetch_add(1);
            r->gone.store(true, std::memory_order_release);
            graveyard.push_back(std::move(state));
        }
    }  // the producers join
    worker.stop();
    CHECK(violations.load() == 0);
    CHECK(churned_calls.load() >= 2 * cycles);
    // The permanent subscriber, alone at the end, saw every publish: nothing was lost around
    // the churn, and each task was accounted for.
    CHECK(permanent_calls.load() == published.load());
    const tidings::executor_stats stats = worker.stats();
    CHECK(stats.queued == static_cast<std::uint64_t>(published.load()));
    CHECK(stats.executed == stats.queued);
}

TEST_CASE(
    "deliveries queued for a subscriber that unsubscribes are skipped and counted as cancelled",
    "[executor][threaded][unsubscribe]") {
    constexpr std::int64_t queued_pings = 40;
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(64)};
    std::atomic<bool> entered{false};
    std::atomic<bool> release{false};
    std::atomic<std::int64_t> kept_calls{0};
    std::atomic<std::int64_t> leaving_calls{0};
    auto hold = bus.subscribe(
        [&](const gate&) {
            entered.store(true, std::memory_order_release);
            spin_until([&] { return release.load(std::memory_order_acquire); });
        },
        tidings::deliver_on(worker));
    auto kept =
        bus.subscribe([&](const ping&) { kept_calls.fetch_add(1); }, tidings::deliver_on(worker));
    auto leaving = bus.subscribe([&](const ping&) { leaving_calls.fetch_add(1); },
                                 tidings::deliver_on(worker));
    // The worker is held inside a delivery while pings for both subscribers queue up.
    bus.publish(gate{});
    spin_until([&] { return entered.load(std::memory_order_acquire); });
    for (std::int64_t i = 0; i < queued_pings; ++i) bus.publish(ping{0, i});
    REQUIRE(bus.subscriber_count<ping>() == 2);
    {
        // The unsubscribe unlinks at once, then waits for the held delivery to finish.
        std::jthread leaver([&] { leaving.unsubscribe(); });
        spin_until([&] { return bus.subscriber_count<ping>() == 1; });
        release.store(true, std::memory_order_release);
    }
    worker.stop();
    CHECK(leaving_calls.load() == 0);
    CHECK(kept_calls.load() == queued_pings);
    const tidings::executor_stats stats = worker.stats();
    CHECK(stats.cancelled == static_cast<std::uint64_t>(queued_pings));
    CHECK(stats.executed == static_cast<std::uint64_t>(queued_pings + 1));
}

TEST_CASE(
    "a queued handler that unsubscribes itself while producers publish returns and is never "
    "called again",
    "[executor][threaded][unsubscribe]") {
    constexpr int producers = 2;
    const int cycles = static_cast<int>(scaled(100, 4));
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(32)};
    // Keeps the tasks coming to the worker between the cycles.
    std::atomic<std::int64_t> permanent_calls{0};
    auto permanent =
        bus.subscribe([&](const ping&) { permanent_calls.fetch_add(1, std::memory_order_relaxed); },
                      tidings::deliver_on(worker));
    std::atomic<std::int64_t> published{0};
    publishing_threads threads(producers, [&](int p, std::int64_t seq) {
        bus.publish(ping{p, seq});
        published.fetch_add(1, std::memory_order_relaxed);
    });
    constexpr std::int64_t calls_before_leaving = 3;
    std::int64_t wrong_counts = 0;
    for (int cycle = 0; cycle < cycles; ++cycle) {
        std::atomic<tidings::subscription*> self{nullptr};
        std::atomic<std::int64_t> calls{0};
        std::atomic<bool> left{false};
        tidings::subscription handle = bus.subscribe(
            [&](const ping&) {
                tidings::subscription* own = self.load(std::memory_order_acquire);
                if (own == nullptr) return;  // not handed over yet
                if (calls.fetch_add(1, std::memory_order_relaxed) + 1 == calls_before_leaving) {
                    own->unsubscribe();  // on the worker: must return at once
                    left.store(true, std::memory_order_release);
                }
            },
            tidings::deliver_on(worker));
        self.store(&handle, std::memory_order_release);
        spin_until([&] { return left.load(std::memory_order_acquire); });
        // More publishes reach the worker after it left; none may call it.
        const std::int64_t mark = static_cast<std::int64_t>(worker.stats().executed);
        spin_until([&] { return static_cast<std::int64_t>(worker.stats().executed) >= mark + 16; });
        if (calls.load() != calls_before_leaving || handle.connected()) ++wrong_counts;
    }
    threads.stop();
    worker.stop();
    CHECK(wrong_counts == 0);
    CHECK(permanent_calls.load() == published.load());
    CHECK(worker.stats().executed == static_cast<std::uint64_t>(published.load()));
}

// ---- failures contained -------------------------------------------------------------------------

TEST_CASE(
    "queued handlers that throw reach the bus's error handler while the worker keeps delivering",
    "[executor][threaded][errors]") {
    constexpr int producers = 2;
    const std::int64_t events = scaled(50'000);
    tidings::bus bus;
    tidings::thread_executor worker{small_queue(32)};
    std::atomic<std::int64_t> reported{0};
    std::atomic<std::int64_t> wrong_reports{0};
    std::atomic<std::uint64_t> thrower_id{0};
    bus.set_error_handler([&](const tidings::handler_error& error) {
        // Runs on the worker.
        bool expected = error.subscription_id == thrower_id.load(std::memory_order_acquire) &&
                        error.event_type.find("ping") != std::string_view::npos;
        try {
            std::rethrow_exception(error.exception);
        } catch (const std::runtime_error& e) {
            expected = expected && std::string(e.what()) == "every third";
        } catch (...) {
            expected = false;
        }
        if (!expected) wrong_reports.fetch_add(1);
        reported.fetch_add(1, std::memory_order_relaxed);
    });
    std::int64_t thrower_calls = 0;  // the worker's
    std::int64_t after_calls = 0;    // the worker's
    sequence_checker order;          // the worker's
    auto thrower = bus.subscribe(
        [&](const ping& e) {
            ++thrower_calls;
            if (e.sequence % 3 == 0) throw std::runtime_error("every third");
        },
        tidings::deliver_on(worker), tidings::priority{1});
    thrower_id.store(thrower.id(), std::memory_order_release);
    // Runs after the thrower in the same task: the exception must not skip it.
    auto after = bus.subscribe(
        [&](const ping& e) {
            ++after_calls;
            order.see(e.producer, e.sequence);
        },
        tidings::deliver_on(worker));
    std::atomic<int> publisher_exceptions{0};
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (std::int64_t seq = 0; seq < events; ++seq) {
                    try {
                        bus.publish(ping{p, seq});
                    } catch (...) {
                        publisher_exceptions.fetch_add(1);
                    }
                }
            });
        }
    }
    worker.stop();
    CHECK(publisher_exceptions.load() == 0);  // a queued handler's exception never goes back
    CHECK(wrong_reports.load() == 0);
    CHECK(reported.load() == producers * ((events + 2) / 3));
    CHECK(thrower_calls == producers * events);
    CHECK(after_calls == producers * events);
    CHECK(order.violations() == 0);
    CHECK(worker.stats().executed == static_cast<std::uint64_t>(producers * events));
}

// ---- lifetimes ----------------------------------------------------------------------------------

TEST_CASE(
    "destroying the subscriptions, the executor and the bus in any order while events are in "
    "flight is safe and accounts for every task",
    "[executor][threaded][lifetime]") {
    enum class part { subscriptions, executor, bus };
    std::array<part, 3> order{part::subscriptions, part::executor, part::bus};
    const int rounds = static_cast<int>(scaled(6, 3));
    int permutations = 0;
    do {
        ++permutations;
        for (int round = 0; round < rounds; ++round) {
            const bool threaded = round % 2 == 0;
            INFO("permutation " << permutations << ", round " << round
                                << (threaded ? ", thread_executor" : ", manual_executor"));
            lifetime_counter captured;
            std::atomic<std::int64_t> handled{0};
            std::atomic<std::int64_t> accepted{0};
            auto bus = std::make_unique<tidings::bus>();
            auto worker =
                threaded ? std::make_unique<tidings::thread_executor>(small_queue(32)) : nullptr;
            auto frame =
                threaded ? nullptr : std::make_unique<tidings::manual_executor>(small_queue(32));
            std::optional<std::jthread> runner;  // runs the frame
            if (frame != nullptr) {
                runner.emplace([&frame](const std::stop_token& stop) {
                    while (!stop.stop_requested()) {
                        frame->run_pending();
                        std::this_thread::yield();
                    }
                });
            }
            auto subscribe = [&](auto handler) {
                return threaded ? bus->subscribe(handler, tidings::deliver_on(*worker))
                                : bus->subscribe(handler, tidings::deliver_on(*frame));
            };
            std::vector<tidings::subscription> subs;
            subs.push_back(subscribe([&handled, state = counted{captured}](const ping&) {
                handled.fetch_add(1, std::memory_order_relaxed);
                busy_work(20);
            }));
            subs.push_back(subscribe([&handled, state = counted{captured}](const pong&) {
                handled.fetch_add(1, std::memory_order_relaxed);
                busy_work(20);
            }));
            auto producers =
                std::make_unique<publishing_threads>(2, [&bus, &accepted](int p, std::int64_t seq) {
                    for (int k = 0; k < 2; ++k) {
                        try {
                            const tidings::publish_result r = k == 0
                                                                  ? bus->publish(ping{p, seq})
                                                                  : bus->publish(pong{p, seq, {}});
                            accepted.fetch_add(r.queued, std::memory_order_relaxed);
                        } catch (const tidings::executor_stopped&) {
                            // The executor stopped under us: refused, not lost.
                        }
                    }
                });
            spin_until([&] { return handled.load(std::memory_order_acquire) >= 64; });

            tidings::executor_stats stats;
            for (const part next : order) {
                switch (next) {
                    case part::subscriptions:
                        subs.clear();
                        break;
                    case part::executor:
                        if (worker != nullptr) {
                            worker->stop();
                            stats = worker->stats();
                            worker.reset();
                        } else {
                            runner.reset();  // stops and joins the loop
                            frame->run_pending();
                            frame.reset();  // may discard what producers queued since
                        }
                        break;
                    case part::bus:
                        producers.reset();  // a bus must not die while it publishes
                        bus.reset();
                        break;
                }
            }
            producers.reset();
            subs.clear();
            CHECK(captured.live() == 0);
            if (threaded) {
                // Drained: every accepted task ran, calling its subscriber or finding it gone.
                CHECK(stats.queued == static_cast<std::uint64_t>(accepted.load()));
                CHECK(stats.executed == stats.queued);
                CHECK(stats.pending == 0);
                CHECK(static_cast<std::uint64_t>(handled.load()) + stats.cancelled ==
                      stats.executed);
            } else {
                CHECK(handled.load() <= accepted.load());
            }
        }
    } while (std::next_permutation(order.begin(), order.end()));
    CHECK(permutations == 6);
}

TEST_CASE("a subscription that outlives its executor can still be unsubscribed",
          "[executor][threaded][lifetime]") {
    tidings::bus bus;
    std::atomic<std::int64_t> calls{0};
    tidings::subscription survivor;
    {
        tidings::thread_executor worker;
        survivor =
            bus.subscribe([&](const ping&) { calls.fetch_add(1); }, tidings::deliver_on(worker));
        std::jthread producer([&] {
            for (std::int64_t i = 0; i < 1000; ++i) bus.publish(ping{0, i});
        });
    }  // the producer joins, then the worker drains and disconnects
    CHECK(calls.load() == 1000);
    CHECK_FALSE(survivor.connected());
    CHECK(bus.publish(ping{}).queued == 0);  // no executor left to offer it to
    survivor.unsubscribe();
    CHECK(calls.load() == 1000);
}

// ---- issue 9: buses released by a shared executor -------------------------------------------

// Item 1: two threads loop { bus b; keep = b.subscribe(h, deliver_on(w)); publish; publish; }
// on one long-lived worker. The worker released retired buses after checking for pending work
// *before* taking its lock, so a bus that published in between (or whose lane appeared after
// the check) was freed under its queued deliveries: heap-use-after-free under ASan and TSan
// within a second. Run it under ASan, TSan and -DTIDINGS_PERTURB_SCHEDULE=1.
TEST_CASE(
    "buses that come and go on a shared thread_executor are released only after their queued "
    "tasks ran",
    "[executor][threaded][lifetime][issue9]") {
    const std::int64_t rounds = scaled(20'000, 20);
    for (const tidings::wait_strategy wait :
         {tidings::wait_strategy::adaptive, tidings::wait_strategy::block}) {
        tidings::executor_options options = small_queue(64);
        options.wait = wait;
        tidings::thread_executor worker{options};
        std::atomic<std::int64_t> handled{0};
        auto churn = [&](int producer) {
            tidings::subscription keep;
            for (std::int64_t i = 0; i < rounds; ++i) {
                tidings::bus bus;
                if (i % 4 == 0) bus.retain<pong>(1);
                keep = bus.subscribe(
                    [&handled](const ping&) { handled.fetch_add(1, std::memory_order_relaxed); },
                    tidings::deliver_on(worker));
                bus.publish(ping{producer, i});
                bus.publish(ping{producer, i});
                if (i % 4 == 0) bus.publish(pong{producer, i, {}});
            }
        };
        {
            std::jthread first(churn, 0);
            std::jthread second(churn, 1);
        }
        CHECK(worker.stop() == 0);
        const tidings::executor_stats stats = worker.stats();
        CHECK(stats.queued == static_cast<std::uint64_t>(4 * rounds));
        CHECK(stats.executed == stats.queued);
        CHECK(static_cast<std::uint64_t>(handled.load()) + stats.cancelled == stats.queued);
    }
}

// Item 15's other half, with a worker: once idle, it holds no dead bus, whether a bus died
// before its tasks ran (retired, then released by the worker, which is woken for it if it
// sleeps) or after (released at once). Blocking wait strategy: the worker sleeps in between.
TEST_CASE("an idle thread_executor keeps no bus that died with tasks queued on it",
          "[executor][threaded][lifetime][issue9]") {
    tidings::executor_options options;
    options.wait = tidings::wait_strategy::block;
    tidings::thread_executor worker{options};
    std::atomic<int> handled{0};
    for (int i = 0; i < 200; ++i) {
        tidings::bus bus;
        bus.retain<pong>(1);
        auto s =
            bus.subscribe([&](const ping&) { handled.fetch_add(1); }, tidings::deliver_on(worker));
        bus.publish(pong{0, i, {}});
        bus.publish(ping{0, i});
        bus.publish(ping{0, i});
    }
    // Each dead bus is freed by the worker once its two tasks have run, with no new task to
    // wake the worker.
    spin_until([&] { return worker.core().attachment_count() == 0; });
    CHECK(worker.stop() == 0);
    const tidings::executor_stats stats = worker.stats();
    CHECK(stats.executed == 400);
    CHECK(static_cast<std::uint64_t>(handled.load()) + stats.cancelled == 400);
}

// Issue 10: max_pending is one bound shared by every producer's lane. Producers blocked on it
// sleep (their lanes are far from full) and must be woken by the consumer's batches, whichever
// lane those came from; the worker checks the bound from inside every handler.
TEST_CASE("producers blocked on an executor's max_pending are all woken, and the bound holds",
          "[executor][threaded][issue10]") {
    constexpr int producers = 3;
    constexpr std::size_t bound = 4;
    const std::int64_t events = scaled(40'000);  // per producer
    for (const auto wait : {tidings::wait_strategy::block, tidings::wait_strategy::adaptive}) {
        INFO("wait strategy " << static_cast<int>(wait));
        tidings::bus bus;
        tidings::executor_options options;
        options.max_pending = bound;
        options.wait = wait;
        options.spin_duration = std::chrono::microseconds{0};
        options.yield_duration = std::chrono::microseconds{0};
        tidings::thread_executor worker{options};
        sequence_checker order;      // the worker's
        std::size_t over_bound = 0;  // the worker's
        auto s = bus.subscribe(
            [&](const ping& e) {
                order.see(e.producer, e.sequence);
                if (worker.pending() > bound) ++over_bound;
            },
            tidings::deliver_on(worker));
        {
            std::latch start{producers};
            std::vector<std::jthread> threads;
            for (int p = 0; p < producers; ++p) {
                threads.emplace_back([&, p] {
                    start.arrive_and_wait();
                    for (std::int64_t seq = 0; seq < events; ++seq) bus.publish(ping{p, seq});
                });
            }
        }
        CHECK(worker.stop() == 0);
        const tidings::executor_stats stats = worker.stats();
        CHECK(stats.queued == static_cast<std::uint64_t>(producers * events));
        CHECK(stats.executed == stats.queued);
        CHECK(stats.dropped == 0);
        CHECK(over_bound == 0);
        CHECK(order.violations() == 0);
        CHECK(order.received() == producers * events);
    }
}

namespace {

/// An event whose copy waits for the test's go-ahead, then throws: the publisher holds its
/// max_pending place for as long as the test wants.
struct stalled_copy {
    static inline std::atomic<bool> copying{false};
    static inline std::atomic<bool> go{false};
    int value = 0;
    stalled_copy() = default;
    stalled_copy(const stalled_copy& other) : value(other.value) {
        copying.store(true, std::memory_order_release);
        spin_until([] { return go.load(std::memory_order_acquire); });
        throw std::runtime_error("copy refused");
    }
    stalled_copy& operator=(const stalled_copy&) = default;
    ~stalled_copy() = default;
};

}  // namespace

// Found by issue 10's review: a publish whose event copy threw gave its max_pending place back
// but woke nobody, so a producer asleep on the bound stayed asleep while nothing was queued
// (the consumer, with nothing to run, never woke it either).
TEST_CASE("a producer asleep on max_pending is woken when another publish's copy throws",
          "[executor][threaded][issue10]") {
    tidings::bus bus;
    tidings::executor_options options;
    options.max_pending = 1;
    options.spin_duration = std::chrono::microseconds{0};
    options.yield_duration = std::chrono::microseconds{0};
    tidings::manual_executor loop{options};
    int stalled_seen = 0;
    int pings_seen = 0;
    auto a = bus.subscribe([&](const stalled_copy&) { ++stalled_seen; }, tidings::deliver_on(loop));
    auto b = bus.subscribe([&](const ping&) { ++pings_seen; }, tidings::deliver_on(loop));
    stalled_copy::copying = false;
    stalled_copy::go = false;
    std::atomic<bool> thrown{false};
    std::jthread holder{[&] {
        const stalled_copy event;
        try {
            bus.publish(event);  // takes the only place, then its copy throws
        } catch (const std::runtime_error&) {
            thrown.store(true, std::memory_order_release);
        }
    }};
    spin_until([] { return stalled_copy::copying.load(std::memory_order_acquire); });
    std::atomic<bool> published{false};
    std::jthread waiter{[&] {
        bus.publish(ping{0, 1});  // another lane: sleeps on the bound
        published.store(true, std::memory_order_release);
    }};
    spin_until([&] { return loop.core().sleeping_producers() == 1; });
    stalled_copy::go.store(true, std::memory_order_release);
    holder.join();
    CHECK(thrown.load());
    waiter.join();  // before the fix: asleep for ever
    CHECK(published.load());
    CHECK(loop.run_pending() == 1);
    CHECK(pings_seen == 1);
    CHECK(stalled_seen == 0);
}
