// tidings::observable<T> under concurrency: writers set and update while observers join and
// leave from other threads; every observer must see its first value, then every later change,
// in order, once each. Exact checks at the end; no sleeps.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <latch>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using tidings_test::scaled;

/// What one observer saw, and the bounds of the value it must have started from.
struct observation {
    std::vector<std::int64_t> seen;  // written by the delivering thread, read after unsubscribe
    std::int64_t before = 0;         // get() just before observe()
    std::int64_t after = 0;          // get() just after observe()
};

/// The observer of a counter that only ever goes up by 1: its first value is the one held at
/// observe() time, then every later value follows, one by one. Returns a description of the
/// first violation, or an empty string.
std::string check_contiguous(const observation& o) {
    if (o.seen.empty()) return {};
    if (o.seen.front() < o.before || o.seen.front() > o.after) {
        return "first value " + std::to_string(o.seen.front()) + " outside [" +
               std::to_string(o.before) + ", " + std::to_string(o.after) + "]";
    }
    for (std::size_t i = 1; i < o.seen.size(); ++i) {
        if (o.seen[i] != o.seen[i - 1] + 1) {
            return "after " + std::to_string(o.seen[i - 1]) + " came " + std::to_string(o.seen[i]);
        }
    }
    return {};
}

}  // namespace

TEST_CASE(
    "observers joining and leaving while a writer sets see the current value, then every "
    "change in order, once",
    "[observable][threaded]") {
    const std::int64_t last = scaled(200000, 20);
    tidings::observable<std::int64_t> value{0};
    std::atomic<bool> writing{true};
    constexpr int joiners = 2;
    std::latch start{joiners + 1};

    std::vector<observation> stayers(joiners);  // each joiner's observer that stays to the end
    std::vector<tidings::observer> stayer_handles(joiners);
    std::vector<std::string> failures(joiners);
    std::vector<int> visits(joiners, 0);
    // One observer per joiner that stays until the end.
    auto stay = [&](int j) {
        observation& s = stayers[j];
        s.before = value.get();
        stayer_handles[j] = value.observe([&s](const std::int64_t& v) { s.seen.push_back(v); });
        s.after = value.get();
    };
    std::vector<std::thread> threads;
    for (int j = 0; j < joiners; ++j) {
        threads.emplace_back([&, j] {
            start.arrive_and_wait();
            // Leavers: join, see a few changes (or none), leave; their values are checked at once.
            for (int round = 0; writing.load(std::memory_order_acquire); ++round) {
                observation o;
                o.before = value.get();
                auto handle = value.observe([&o](const std::int64_t& v) { o.seen.push_back(v); });
                o.after = value.get();
                tidings_test::busy_work(round % 200);
                handle.unsubscribe();  // from now on `o` is ours alone
                if (failures[j].empty()) failures[j] = check_contiguous(o);
                ++visits[j];
                if (!stayer_handles[j] && (round == 20 || value.get() >= last / 2)) stay(j);
            }
            if (!stayer_handles[j]) stay(j);  // the writer was quicker: it joins at the end
        });
    }
    threads.emplace_back([&] {
        start.arrive_and_wait();
        for (std::int64_t v = 1; v <= last; ++v) value.set(v);
        writing.store(false, std::memory_order_release);
    });
    for (auto& t : threads) t.join();
    for (auto& h : stayer_handles) h.unsubscribe();

    for (int j = 0; j < joiners; ++j) {
        INFO("joiner " << j << " after " << visits[j] << " visits");
        CHECK(failures[j] == "");
        const observation& s = stayers[j];
        CHECK(check_contiguous(s) == "");
        REQUIRE_FALSE(s.seen.empty());  // every thread returned: its first value was delivered
        CHECK(s.seen.back() == last);   // and every change after it
        CHECK(static_cast<std::int64_t>(s.seen.size()) == last - s.seen.front() + 1);
    }
    CHECK(value.get() == last);
    CHECK(value.observer_count() == 0);
}

TEST_CASE("concurrent updates lose no increment, and an observer sees every value once, in order",
          "[observable][threaded]") {
    const std::int64_t per_thread = scaled(100000, 20);
    constexpr int writers = 3;
    tidings::observable<std::int64_t> value{0};
    observation o;
    auto handle = value.observe([&o](const std::int64_t& v) { o.seen.push_back(v); });
    std::latch start{writers};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&] {
            start.arrive_and_wait();
            for (std::int64_t i = 0; i < per_thread; ++i) {
                value.update([](std::int64_t& v) { ++v; });
            }
        });
    }
    for (auto& t : threads) t.join();
    handle.unsubscribe();
    const std::int64_t total = writers * per_thread;
    CHECK(value.get() == total);
    CHECK(check_contiguous(o) == "");
    REQUIRE(static_cast<std::int64_t>(o.seen.size()) == total + 1);
    CHECK(o.seen.front() == 0);
    CHECK(o.seen.back() == total);
}

TEST_CASE(
    "observers joining while several threads update see every change from their first, in "
    "order",
    "[observable][threaded]") {
    const std::int64_t per_thread = scaled(60000, 20);
    constexpr int writers = 2;
    constexpr int joiners = 2;
    tidings::observable<std::int64_t> value{0};
    std::latch start{writers + joiners};
    std::atomic<int> writers_left{writers};
    std::vector<observation> observations(joiners);
    std::vector<tidings::observer> handles(joiners);
    std::vector<std::string> leaver_failures(joiners);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&] {
            start.arrive_and_wait();
            for (std::int64_t i = 0; i < per_thread; ++i) {
                value.update([](std::int64_t& v) { ++v; });
            }
            writers_left.fetch_sub(1, std::memory_order_acq_rel);
        });
    }
    for (int j = 0; j < joiners; ++j) {
        threads.emplace_back([&, j] {
            start.arrive_and_wait();
            // Leavers while the writers run, then one observer that stays.
            while (writers_left.load(std::memory_order_acquire) == writers) {
                observation leaver;
                leaver.before = value.get();
                auto h =
                    value.observe([&leaver](const std::int64_t& v) { leaver.seen.push_back(v); });
                leaver.after = value.get();
                h.unsubscribe();
                if (leaver_failures[j].empty()) leaver_failures[j] = check_contiguous(leaver);
                if (value.get() > per_thread / 2) break;
            }
            observation& o = observations[j];
            o.before = value.get();
            handles[j] = value.observe([&o](const std::int64_t& v) { o.seen.push_back(v); });
            o.after = value.get();
        });
    }
    for (auto& t : threads) t.join();
    for (auto& h : handles) h.unsubscribe();
    const std::int64_t total = writers * per_thread;
    CHECK(value.get() == total);
    for (int j = 0; j < joiners; ++j) {
        INFO("joiner " << j);
        CHECK(leaver_failures[j] == "");
        const observation& o = observations[j];
        CHECK(check_contiguous(o) == "");
        REQUIRE_FALSE(o.seen.empty());
        CHECK(o.seen.back() == total);
        CHECK(static_cast<std::int64_t>(o.seen.size()) == total - o.seen.front() + 1);
    }
}

TEST_CASE(
    "a derived observable ends consistent with its source under concurrent writes, "
    "notifying each derived change once, in order",
    "[observable][threaded][map]") {
    const std::int64_t per_thread = scaled(60000, 20);
    constexpr int writers = 3;
    tidings::observable<std::int64_t> source{0};
    auto tens = source.map([](std::int64_t v) { return v / 10; });
    observation o;
    auto handle = tens.observe([&o](const std::int64_t& v) { o.seen.push_back(v); });
    std::latch start{writers};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&] {
            start.arrive_and_wait();
            for (std::int64_t i = 0; i < per_thread; ++i) {
                source.update([](std::int64_t& v) { ++v; });
            }
        });
    }
    for (auto& t : threads) t.join();
    handle.unsubscribe();
    const std::int64_t total = writers * per_thread;
    CHECK(source.get() == total);
    CHECK(tens.get() == total / 10);
    // The source went through every value 0..total in order, so the derived one through every
    // value 0..total/10, each notified exactly once.
    CHECK(check_contiguous(o) == "");
    REQUIRE_FALSE(o.seen.empty());
    CHECK(o.seen.front() == 0);
    CHECK(o.seen.back() == total / 10);
    CHECK(static_cast<std::int64_t>(o.seen.size()) == total / 10 + 1);
}

TEST_CASE(
    "queued observers joining while a writer sets receive every change from their first, in "
    "order, on their executor",
    "[observable][threaded][executor]") {
    const std::int64_t last = scaled(100000, 20);
    constexpr int joiners = 2;
    tidings::observable<std::int64_t> value{0};
    std::vector<observation> observations(joiners);
    std::vector<tidings::observer> handles(joiners);
    {
        tidings::thread_executor worker;  // observations are touched only on its thread
        std::latch start{joiners + 1};
        std::vector<std::thread> threads;
        threads.emplace_back([&] {
            start.arrive_and_wait();
            for (std::int64_t v = 1; v <= last; ++v) value.set(v);
        });
        for (int j = 0; j < joiners; ++j) {
            threads.emplace_back([&, j] {
                start.arrive_and_wait();
                tidings_test::spin_until([&] { return value.get() >= last / 4 * (j + 1); });
                observation& o = observations[j];
                o.before = value.get();
                handles[j] = value.observe([&o](const std::int64_t& v) { o.seen.push_back(v); },
                                           tidings::deliver_on(worker));
                o.after = value.get();
            });
        }
        for (auto& t : threads) t.join();
        worker.stop();  // drains: every accepted value has been delivered
    }
    for (int j = 0; j < joiners; ++j) {
        INFO("joiner " << j);
        const observation& o = observations[j];
        CHECK(check_contiguous(o) == "");
        REQUIRE_FALSE(o.seen.empty());
        CHECK(o.seen.back() == last);
        CHECK(static_cast<std::int64_t>(o.seen.size()) == last - o.seen.front() + 1);
    }
}

namespace {

/// A counter whose copies, moves and comparisons fail now and then: each thread fails its own
/// every `period`-th one (0: never), at a phase of its own, so that failures land at every
/// step of set, update, observe and delivery, in whichever thread happens to run it.
struct flaky_counter {
    static inline thread_local int period = 0;
    static inline thread_local int countdown = 0;
    static void step() {
        if (period == 0) return;
        if (--countdown <= 0) {
            countdown = period;
            throw std::runtime_error("flaky copy");
        }
    }

    std::int64_t v = 0;
    flaky_counter() = default;
    explicit flaky_counter(std::int64_t value) noexcept : v(value) {}
    flaky_counter(const flaky_counter& other) : v(other.v) { step(); }
    flaky_counter(flaky_counter&& other) : v(other.v) { step(); }
    flaky_counter& operator=(const flaky_counter& other) {
        step();
        v = other.v;
        return *this;
    }
    flaky_counter& operator=(flaky_counter&& other) {
        step();
        v = other.v;
        return *this;
    }
    ~flaky_counter() = default;
    friend bool operator==(const flaky_counter& a, const flaky_counter& b) {
        step();
        return a.v == b.v;
    }
};

}  // namespace

TEST_CASE(
    "writers whose copies fail at random while observers join never stop the observable: "
    "inline observers see every accepted change once, in order",
    "[observable][threaded][failures]") {
    const int per_writer = static_cast<int>(scaled(20000, 20));
    constexpr int writers = 3;
    tidings::observable<flaky_counter> value{flaky_counter{0}};
    std::atomic<int> reported{0};
    value.set_error_handler(
        [&](const tidings::handler_error&) { reported.fetch_add(1, std::memory_order_relaxed); });
    observation inline_seen;  // touched only by the delivering thread, read after the join
    auto inline_handle =
        value.observe([&](const flaky_counter& c) { inline_seen.seen.push_back(c.v); });
    std::vector<observation> joined(writers);
    std::vector<tidings::observer> joined_handles(writers);
    std::vector<std::vector<std::int64_t>> queued_seen(writers);  // on the worker only
    std::vector<tidings::observer> queued_handles(writers);
    std::atomic<std::int64_t> caught{0};
    {
        tidings::thread_executor worker;
        std::latch start{writers};
        std::vector<std::thread> threads;
        for (int w = 0; w < writers; ++w) {
            threads.emplace_back([&, w] {
                flaky_counter::period = 7 + 2 * w;
                flaky_counter::countdown = 1 + w;
                start.arrive_and_wait();
                for (int i = 0; i < per_writer; ++i) {
                    try {
                        if (i == per_writer / 2) {
                            // Join halfway, inline and queued (a failure here attaches
                            // nothing: try again).
                            observation& o = joined[w];
                            o.after = std::numeric_limits<std::int64_t>::max();  // any first
                            while (!joined_handles[w].connected()) {
                                try {
                                    joined_handles[w] = value.observe(
                                        [&o](const flaky_counter& c) { o.seen.push_back(c.v); });
                                } catch (const std::runtime_error&) {
                                    caught.fetch_add(1, std::memory_order_relaxed);
                                }
                            }
                            auto& q = queued_seen[w];
                            while (!queued_handles[w].connected()) {
                                try {
                                    queued_handles[w] = value.observe(
                                        [&q](const flaky_counter& c) { q.push_back(c.v); },
                                        tidings::deliver_on(worker));
                                } catch (const std::runtime_error&) {
                                    caught.fetch_add(1, std::memory_order_relaxed);
                                }
                            }
                        }
                        TIDINGS_SCHEDULE_POINT();
                        value.update([](flaky_counter& c) { ++c.v; });
                    } catch (const std::runtime_error&) {
                        caught.fetch_add(1, std::memory_order_relaxed);
                    }
                }
                flaky_counter::period = 0;
            });
        }
        for (auto& t : threads) t.join();
        // Still working: one more change reaches everyone.
        const std::int64_t last = value.get().v + 1;
        REQUIRE(value.set(flaky_counter{last}));
        worker.stop();  // drains the queued observers
        inline_handle.unsubscribe();
        for (auto& h : joined_handles) h.unsubscribe();
        for (auto& h : queued_handles) h.unsubscribe();
        INFO("caught " << caught.load() << ", reported " << reported.load());
        CHECK(caught.load() > 0);
        // Updates add 1 and values only go up by accepted changes: inline observers saw
        // every one of 0..last, exactly once, in order.
        CHECK(check_contiguous(inline_seen) == "");
        REQUIRE_FALSE(inline_seen.seen.empty());
        CHECK(inline_seen.seen.front() == 0);
        CHECK(inline_seen.seen.back() == last);
        for (int w = 0; w < writers; ++w) {
            INFO("joiner " << w);
            const observation& o = joined[w];
            CHECK(check_contiguous(o) == "");  // from its first value on, every change
            REQUIRE_FALSE(o.seen.empty());
            CHECK(o.seen.back() == last);
            // A queued observer may miss a change whose copy into its inbox failed (that was
            // reported), never sees one twice or out of order, and ends with the last one.
            const auto& q = queued_seen[w];
            REQUIRE_FALSE(q.empty());
            CHECK(std::adjacent_find(q.begin(), q.end(), [](std::int64_t a, std::int64_t b) {
                      return a >= b;
                  }) == q.end());
            CHECK(q.back() == last);
        }
        // A new observer starts from the current value.
        std::vector<std::int64_t> late;
        auto late_handle = value.observe([&](const flaky_counter& c) { late.push_back(c.v); });
        CHECK(late == std::vector<std::int64_t>{last});
    }
}
