// Replay under concurrency: several threads publish sequence-numbered events on a retaining
// channel while subscribers join with tidings::replay (and leave). Each joiner must receive
// the retained events, oldest first, then the live ones, with no gap and no duplicate.
//
// The reference order: a retaining channel serializes its publishes (docs/replay.md), so an
// inline subscriber linked before any publish sees every event in that one total order; it
// records them in `log`. A joiner's events must then be exactly a contiguous slice of `log`.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using tidings_test::scaled;

struct numbered {
    int producer = 0;
    std::int64_t seq = 0;
    friend bool operator==(const numbered&, const numbered&) = default;
};

/// The channel's total order, recorded by an inline subscriber of the highest priority. Its
/// handler runs under the channel's retention mutex, like a replay does.
struct reference_log {
    std::vector<numbered> events;
    std::atomic<std::int64_t> size{0};  // events.size(), for other threads
};

/// What one inline joiner received.
struct joined {
    std::vector<numbered> received;  // guarded by the channel's mutex while subscribed
    std::thread::id subscriber;      // the subscribing thread: it runs the replay
    std::size_t replayed = 0;        // calls in the subscribing thread
    std::size_t log_at_replay = 0;   // log.events.size() during the replay
};

std::string describe(const numbered& e) {
    return "(" + std::to_string(e.producer) + ", " + std::to_string(e.seq) + ")";
}

/// An inline joiner's events must be: the newest min(retained, L) events of the log before it
/// joined (L events), then the log's events from L on, without a hole. Returns the first
/// violation, or an empty string.
std::string check_inline(const joined& j, const std::vector<numbered>& log, std::size_t retained) {
    std::size_t start = 0;  // where its slice of the log begins
    if (j.replayed == 0) {
        // Nothing replayed: nothing had been published (the channel retains from the start).
        start = 0;
    } else {
        const std::size_t expected = std::min(retained, j.log_at_replay);
        if (j.replayed != expected) {
            return "replayed " + std::to_string(j.replayed) + " events, expected " +
                   std::to_string(expected) + " (log had " + std::to_string(j.log_at_replay) + ")";
        }
        start = j.log_at_replay - j.replayed;
    }
    if (start + j.received.size() > log.size()) return "received more events than published";
    for (std::size_t i = 0; i < j.received.size(); ++i) {
        if (!(j.received[i] == log[start + i])) {
            return "event " + std::to_string(i) + " is " + describe(j.received[i]) + ", expected " +
                   describe(log[start + i]);
        }
    }
    return {};
}

/// Publishers: `producers` threads, each publishing `count` events numbered 0..count-1.
template <class Bus>
std::vector<std::thread> start_publishers(Bus& bus, int producers, std::int64_t count,
                                          std::latch& start, std::atomic<int>& running) {
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&bus, &start, &running, p, count] {
            start.arrive_and_wait();
            for (std::int64_t i = 0; i < count; ++i) bus.publish(numbered{p, i});
            running.fetch_sub(1, std::memory_order_acq_rel);
        });
    }
    return threads;
}

void run_inline_joiners(std::size_t retained, std::int64_t per_producer) {
    constexpr int producers = 2;
    constexpr int joiners = 2;
    constexpr int max_leavers = 300;
    tidings::bus bus;
    bus.retain<numbered>(retained);  // before any publish: every event is in the total order
    reference_log log;
    auto reference = bus.subscribe(
        [&log](const numbered& e) {
            log.events.push_back(e);
            // release: pairs with the joiners' acquire load (a lower bound of the log).
            log.size.store(static_cast<std::int64_t>(log.events.size()), std::memory_order_release);
        },
        tidings::priority{100});

    std::latch start{producers + joiners};
    std::atomic<int> running{producers};
    // Each joiner's leavers (joined, then left while publishing went on) and its stayer.
    std::vector<std::vector<std::unique_ptr<joined>>> leavers(joiners);
    std::vector<std::unique_ptr<joined>> stayers(joiners);
    std::vector<tidings::subscription> stayer_handles(joiners);

    auto join = [&bus, &log](joined& j) {
        j.subscriber = std::this_thread::get_id();
        return bus.subscribe(
            [&j, &log](const numbered& e) {
                if (std::this_thread::get_id() == j.subscriber) {
                    // The replay, inside subscribe, under the channel's mutex: the log does
                    // not move while it runs.
                    if (j.replayed++ == 0) j.log_at_replay = log.events.size();
                }
                j.received.push_back(e);
            },
            tidings::replay);
    };

    std::vector<std::thread> threads =
        start_publishers(bus, producers, per_producer, start, running);
    for (int k = 0; k < joiners; ++k) {
        threads.emplace_back([&, k] {
            start.arrive_and_wait();
            const std::int64_t total = producers * per_producer;
            int round = 0;
            while (running.load(std::memory_order_acquire) != 0 && round < max_leavers) {
                auto& j = leavers[k].emplace_back(std::make_unique<joined>());
                auto handle = join(*j);
                tidings_test::busy_work(50 * (round % 20));
                handle.unsubscribe();
                ++round;
                if (!stayers[k] &&
                    log.size.load(std::memory_order_acquire) >= total / 3 * (k + 1)) {
                    stayers[k] = std::make_unique<joined>();
                    stayer_handles[k] = join(*stayers[k]);
                }
            }
            if (!stayers[k]) {  // the publishers were quicker: it joins at the end
                stayers[k] = std::make_unique<joined>();
                stayer_handles[k] = join(*stayers[k]);
            }
        });
    }
    for (auto& t : threads) t.join();
    for (auto& h : stayer_handles) h.unsubscribe();

    const std::size_t total = producers * static_cast<std::size_t>(per_producer);
    REQUIRE(log.events.size() == total);
    for (int k = 0; k < joiners; ++k) {
        INFO("joiner " << k << ", retaining " << retained);
        std::string first_failure;
        for (const auto& j : leavers[k]) {
            first_failure = check_inline(*j, log.events, retained);
            if (!first_failure.empty()) break;
        }
        CHECK(first_failure == "");
        const joined& stayer = *stayers[k];
        CHECK(check_inline(stayer, log.events, retained) == "");
        // It stayed to the end: its slice ends with the last event published.
        REQUIRE_FALSE(stayer.received.empty());
        CHECK(stayer.received.back() == log.events.back());
        if (retained >= total) {
            CHECK(stayer.received.size() == total);  // it began with the very first event
        }
    }
}

}  // namespace

TEST_CASE(
    "inline subscribers joining with replay while threads publish get the retained "
    "events, then the live ones, with no gap and no duplicate",
    "[retention][threaded]") {
    const std::int64_t per_producer = scaled(100000, 10);
    SECTION("a few events retained") { run_inline_joiners(16, per_producer); }
    SECTION("every event retained: a joiner's slice starts at the first event") {
        run_inline_joiners(static_cast<std::size_t>(2 * per_producer), per_producer);
    }
}

TEST_CASE(
    "queued subscribers joining with replay while threads publish get the retained "
    "events first, then every live one, once each, in each producer's order",
    "[retention][threaded][executor]") {
    constexpr int producers = 2;
    constexpr int joiners = 2;
    const std::int64_t per_producer = scaled(100000, 10);
    const auto total = static_cast<std::size_t>(producers * per_producer);
    tidings::bus bus;
    bus.retain<numbered>(total);  // everything: each joiner must receive every event
    reference_log log;
    auto reference = bus.subscribe(
        [&log](const numbered& e) {
            log.events.push_back(e);
            // release: pairs with the joiners' acquire load.
            log.size.store(static_cast<std::int64_t>(log.events.size()), std::memory_order_release);
        },
        tidings::priority{100});

    std::vector<std::vector<numbered>> received(joiners);  // touched on the worker thread only
    std::vector<std::int64_t> published_before(joiners, 0);
    std::vector<tidings::subscription> handles(joiners);
    {
        tidings::thread_executor worker;
        std::latch start{producers + joiners};
        std::atomic<int> running{producers};
        std::vector<std::thread> threads =
            start_publishers(bus, producers, per_producer, start, running);
        for (int k = 0; k < joiners; ++k) {
            threads.emplace_back([&, k] {
                start.arrive_and_wait();
                tidings_test::spin_until([&] {
                    return log.size.load(std::memory_order_acquire) >=
                               static_cast<std::int64_t>(total / 3 * (k + 1)) ||
                           running.load(std::memory_order_acquire) == 0;
                });
                published_before[k] = log.size.load(std::memory_order_acquire);
                handles[k] =
                    bus.subscribe([&received, k](const numbered& e) { received[k].push_back(e); },
                                  tidings::replay, tidings::deliver_on(worker));
            });
        }
        for (auto& t : threads) t.join();
        worker.stop();  // drains: every accepted delivery has run
    }

    REQUIRE(log.events.size() == total);
    for (int k = 0; k < joiners; ++k) {
        INFO("joiner " << k << " joined after " << published_before[k] << " events");
        const std::vector<numbered>& got = received[k];
        REQUIRE(got.size() == total);  // every event once: replayed or live, never both
        // The events published before it joined were all replayed, first, in the log's order.
        const auto before = static_cast<std::size_t>(published_before[k]);
        std::string prefix_failure;
        for (std::size_t i = 0; i < before && prefix_failure.empty(); ++i) {
            if (!(got[i] == log.events[i])) {
                prefix_failure = "event " + std::to_string(i) + " is " + describe(got[i]) +
                                 ", expected " + describe(log.events[i]);
            }
        }
        CHECK(prefix_failure == "");
        // Every producer's events arrive in its order, from 0 to the last, none twice.
        std::vector<std::int64_t> next(producers, 0);
        std::string order_failure;
        for (const numbered& e : got) {
            if (e.seq != next[e.producer]) {
                order_failure = "producer " + std::to_string(e.producer) + ": got " +
                                std::to_string(e.seq) + ", expected " +
                                std::to_string(next[e.producer]);
                break;
            }
            ++next[e.producer];
        }
        CHECK(order_failure == "");
    }
}

TEST_CASE(
    "retain changing while threads publish and subscribers replay keeps every replay a "
    "contiguous slice of the channel's order",
    "[retention][threaded]") {
    constexpr int producers = 2;
    const std::int64_t per_producer = scaled(30000, 10);
    tidings::bus bus;
    bus.retain<numbered>(8);
    reference_log log;
    auto reference = bus.subscribe(
        [&log](const numbered& e) {
            log.events.push_back(e);
            log.size.store(static_cast<std::int64_t>(log.events.size()), std::memory_order_release);
        },
        tidings::priority{100});
    std::latch start{producers + 1};
    std::atomic<int> running{producers};
    std::vector<std::unique_ptr<joined>> joins;
    std::vector<std::thread> threads =
        start_publishers(bus, producers, per_producer, start, running);
    threads.emplace_back([&] {
        start.arrive_and_wait();
        for (int round = 0; running.load(std::memory_order_acquire) != 0 && round < 400; ++round) {
            bus.retain<numbered>(static_cast<std::size_t>(1 + round % 16));
            auto& j = joins.emplace_back(std::make_unique<joined>());
            j->subscriber = std::this_thread::get_id();
            auto handle = bus.subscribe(
                [&j = *j, &log](const numbered& e) {
                    if (std::this_thread::get_id() == j.subscriber) {
                        if (j.replayed++ == 0) j.log_at_replay = log.events.size();
                    }
                    j.received.push_back(e);
                },
                tidings::replay);
            tidings_test::busy_work(100);
            handle.unsubscribe();
        }
    });
    for (auto& t : threads) t.join();
    // The retained count changed between joins, so only the slice is checked: the replayed
    // events are the newest before the join, then the live ones follow without a hole.
    std::string failure;
    for (const auto& j : joins) {
        if (j->replayed == 0) continue;  // joined before the first publish: nothing to place
        const std::size_t start_at = j->log_at_replay - j->replayed;
        for (std::size_t i = 0; i < j->received.size(); ++i) {
            if (start_at + i >= log.events.size() ||
                !(j->received[i] == log.events[start_at + i])) {
                failure =
                    "a join received " + describe(j->received[i]) + " at " + std::to_string(i);
                break;
            }
        }
        if (!failure.empty()) break;
    }
    CHECK(failure == "");
    CHECK(log.events.size() == producers * static_cast<std::size_t>(per_producer));
}

TEST_CASE(
    "an inline replay whose handler throws gives the handler no live event once subscribe "
    "has thrown, while other threads publish",
    "[retention][replay][threaded]") {
    // subscribe released the retention's mutex before it unsubscribed: a publisher waiting for
    // the mutex got in between and delivered a live event to the failed subscription.
    tidings::bus bus;
    bus.retain<numbered>(1);
    bus.publish(numbered{});
    std::atomic<bool> stop{false};
    std::jthread publisher([&] {
        while (!stop.load(std::memory_order_relaxed)) bus.publish(numbered{});
    });
    // Keeps the bus's mutex busy, so the failed subscribe's unsubscribe often waits for it:
    // the window in which a publisher could reach the node widens.
    std::jthread churn([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            auto s = bus.subscribe<joined>([](const joined&) {});
        }
    });
    int threw = 0;
    std::atomic<int> live_after_throw{0};
    const auto rounds = scaled(3000);
    for (std::int64_t round = 0; round < rounds; ++round) {
        std::atomic<bool> replayed{false};
        try {
            auto s = bus.subscribe<numbered>(
                [&](const numbered&) {
                    if (!replayed.exchange(true)) throw std::runtime_error("replayed");
                    live_after_throw.fetch_add(1);
                },
                tidings::replay);
        } catch (const std::runtime_error&) {
            ++threw;
        }
    }
    stop.store(true, std::memory_order_relaxed);
    publisher.join();
    churn.join();
    CHECK(threw == rounds);
    CHECK(live_after_throw.load() == 0);
    CHECK(bus.subscriber_count<numbered>() == 0);
}
