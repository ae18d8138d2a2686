// Reclamation and the per-thread read-side records (detail/epoch.hpp): a thread's first
// publish under allocation failure, publishes from thread_local destructors at thread exit.
// The scoped waiting of unsubscribe and the self-deadlock detection are in
// reclamation_threaded.cpp.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <new>
#include <optional>
#include <thread>
#include <vector>

namespace {

using tidings_test::spin_until;

struct line {
    int value = 0;
};
struct ping {
    int value = 0;
    using result_type = int;
};

/// How many reader records are in use (threads registered now).
std::uint32_t records_in_use() {
    return tidings::detail::registry.records_in_use.load(std::memory_order_seq_cst);
}

/// How many reader records are free for a new thread to reuse.
std::uint32_t free_records() {
    std::uint32_t count = 0;
    for (auto* r = tidings::detail::registry.head.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        if (!r->in_use.load(std::memory_order_acquire)) ++count;
    }
    return count;
}

/// Makes the calling thread take its reader record (a dispatch on a bus of its own).
void enter_a_dispatch() {
    tidings::bus own;
    auto sub = own.subscribe<line>([](const line&) {});
    own.publish(line{});
}

/// Keeps every free reader record busy (a thread each, inside no dispatch) until destroyed, so
/// that the next thread to register must allocate a new record.
class record_hogs {
public:
    record_hogs() {
        const std::uint32_t count = free_records();
        std::latch registered{static_cast<std::ptrdiff_t>(count)};
        for (std::uint32_t i = 0; i < count; ++i) {
            threads_.emplace_back([&registered, this] {
                enter_a_dispatch();  // claims a record
                registered.count_down();
                release_.wait();
            });
        }
        registered.wait();
    }
    ~record_hogs() {
        release_.count_down();
        threads_.clear();
    }
    record_hogs(const record_hogs&) = delete;
    record_hogs& operator=(const record_hogs&) = delete;

private:
    std::latch release_{1};
    std::vector<std::jthread> threads_;
};

/// A per-thread logger: constructed when the thread starts (before its first publish), it
/// flushes to a bus from its destructor at thread exit.
struct exit_flusher {
    tidings::bus* target = nullptr;
    int flushes = 0;
    exit_flusher() = default;
    exit_flusher(const exit_flusher&) = delete;
    exit_flusher& operator=(const exit_flusher&) = delete;
    ~exit_flusher() {
        if (target == nullptr) return;
        for (int i = 0; i < flushes; ++i) target->publish(line{i});
    }
};

/// This thread's flusher, constructed (and its destructor registered) on the first call.
exit_flusher& flusher() {
    thread_local exit_flusher instance;
    return instance;
}

}  // namespace

TEST_CASE("a publish from a thread_local destructor at thread exit is delivered inline",
          "[reclamation]") {
    tidings::bus target;
    std::atomic<int> seen{0};
    auto sub = target.subscribe<line>([&](const line&) { seen.fetch_add(1); });
    enter_a_dispatch();  // this thread's record, first
    const std::uint32_t before = records_in_use();
    std::thread([&] {
        flusher().target = &target;  // constructed now, before this thread's first publish
        flusher().flushes = 2;
        target.publish(line{});  // registers this thread's record after the flusher
    }).join();
    CHECK(seen.load() == 3);
    // The record taken again by the destructor's publishes was given back, not leaked.
    CHECK(records_in_use() == before);
}

TEST_CASE("a queued publish from a thread_local destructor at thread exit is delivered",
          "[reclamation]") {
    tidings::bus target;
    tidings::manual_executor loop;
    std::atomic<int> seen{0};
    auto sub =
        target.subscribe<line>([&](const line&) { seen.fetch_add(1); }, tidings::deliver_on(loop));
    enter_a_dispatch();  // this thread's record, first
    const std::uint32_t before = records_in_use();
    std::thread([&] {
        flusher().target = &target;
        flusher().flushes = 3;
        target.publish(line{});  // the thread's lane is created after the flusher
    }).join();
    CHECK(loop.run_pending() == 4);
    CHECK(seen.load() == 4);
    CHECK(records_in_use() == before);
    // The lane the exiting thread used was abandoned: a new thread takes it over and its
    // events still arrive in order.
    std::thread([&] {
        target.publish(line{});
        target.publish(line{});
    }).join();
    CHECK(loop.run_pending() == 2);
    CHECK(loop.stats().queued == 6);
}

namespace {

/// Runs `body` in a new thread with an exit_flusher constructed first and, between the
/// destruction of the thread's lanes and the flusher's publishes, a pause: `lanes_gone` is
/// counted down when the thread has let go of its lanes, and the flusher publishes only once
/// `go_on` is. So another thread can act in that window.
void exit_with_pause(tidings::bus& target, int flushes, const std::function<void()>& body,
                     std::latch& lanes_gone, std::latch& go_on) {
    struct pause {
        std::latch* gone = nullptr;
        std::latch* resume = nullptr;
        ~pause() {
            if (gone == nullptr) return;
            gone->count_down();
            resume->wait();
        }
    };
    std::thread([&] {
        flusher().target = &target;  // destroyed last
        flusher().flushes = flushes;
        thread_local pause paused;  // destroyed second
        paused.gone = &lanes_gone;
        paused.resume = &go_on;
        body();  // the thread's lanes are made here: destroyed first
    }).join();
}

}  // namespace

TEST_CASE(
    "publishes from thread_local destructors at thread exit follow the thread's earlier "
    "events, even when other threads start or exit meanwhile",
    "[reclamation]") {
    tidings::bus target;
    tidings::manual_executor loop;
    std::vector<int> seen;  // the loop (this thread) runs the handler
    auto sub = target.subscribe<line>([&](const line& l) { seen.push_back(l.value); },
                                      tidings::deliver_on(loop));
    std::latch lanes_gone{1};
    std::latch go_on{1};
    std::latch other_may_exit{1};
    std::jthread other;
    // The flusher publishes 0, 1, 2 after the thread's own 100..149.
    std::jthread exiting([&] {
        exit_with_pause(
            target, 3,
            [&] {
                for (int i = 100; i < 150; ++i) target.publish(line{i});
            },
            lanes_gone, go_on);
    });
    lanes_gone.wait();
    // In the window: a thread that exited (its lane, newer than the exiting thread's, is
    // abandoned with events in it), and a thread that starts and publishes (it must not take
    // the exiting thread's lane, which still holds events, and queue in it).
    std::thread([&] { target.publish(line{200}); }).join();
    other = std::jthread([&] {
        target.publish(line{300});
        other_may_exit.wait();
    });
    spin_until([&] { return loop.pending() == 52; });
    go_on.count_down();
    exiting.join();
    other_may_exit.count_down();
    other.join();

    CHECK(loop.run_pending() == 55);
    // The exiting thread's events in the order it published them; the others anywhere.
    std::vector<int> exiting_thread;
    for (int value : seen) {
        if (value < 200) exiting_thread.push_back(value);
    }
    std::vector<int> expected;
    for (int i = 100; i < 150; ++i) expected.push_back(i);
    for (int i = 0; i < 3; ++i) expected.push_back(i);
    CHECK(exiting_thread == expected);
}

TEST_CASE(
    "a thread_local destructor at thread exit may publish to any number of executors in one "
    "publish",
    "[reclamation]") {
    // The exit path once kept at most 8 lanes per dispatch and threw std::length_error (from a
    // destructor: std::terminate) for the ninth executor.
    tidings::bus target;
    constexpr int executors = 12;
    std::vector<std::unique_ptr<tidings::manual_executor>> loops;
    std::vector<tidings::subscription> subs;
    std::atomic<int> seen{0};
    for (int i = 0; i < executors; ++i) {
        loops.push_back(std::make_unique<tidings::manual_executor>());
        subs.push_back(target.subscribe<line>([&](const line&) { seen.fetch_add(1); },
                                              tidings::deliver_on(*loops.back())));
    }
    std::thread([&] {
        flusher().target = &target;
        flusher().flushes = 2;
        target.publish(line{});
    }).join();
    std::size_t ran = 0;
    for (auto& loop : loops) ran += loop->run_pending();
    CHECK(ran == 3U * executors);
    CHECK(seen.load() == 3 * executors);
}

TEST_CASE(
    "a thread_executor destroyed at thread exit after the thread's record was given back "
    "leaks no record",
    "[reclamation]") {
    // Its stop once claimed a record for the exiting thread outside any dispatch, which was
    // then never given back: one record per such thread, and writers paid for them for ever.
    tidings::bus target;
    enter_a_dispatch();
    const std::uint32_t before = records_in_use();
    std::size_t ran = 0;
    for (int i = 0; i < 10; ++i) {
        std::thread([&] {
            thread_local tidings::thread_executor worker;  // destroyed after the record owner
            tidings::manual_executor loop;                 // this thread consumes: a token
            auto s = target.subscribe<line>([](const line&) {}, tidings::deliver_on(loop));
            target.publish(line{});  // the thread's record is made now, after the worker
            ran += loop.run_pending();
        }).join();
    }
    CHECK(ran == 10);
    CHECK(records_in_use() == before);
}

TEST_CASE(
    "a thread's first publish that cannot allocate its record throws bad_alloc and "
    "delivers nothing",
    "[reclamation]") {
    if (!tidings_test::can_fail_allocations) return;
    tidings::bus target;
    std::atomic<int> seen{0};
    auto sub = target.subscribe<line>([&](const line&) { seen.fetch_add(1); });
    auto handler = target.handle([](const ping& p) { return p.value + 1; });
    std::optional<record_hogs> hogs{std::in_place};
    std::atomic<int> outcomes{0};
    std::thread([&] {
        {
            tidings_test::allocation_failure fail{1};
            try {
                target.publish(line{});
            } catch (const std::bad_alloc&) {
                outcomes.fetch_add(1);
            }
            if (fail.failed()) outcomes.fetch_add(10);
        }
        if (seen.load() == 0) outcomes.fetch_add(100);  // strong: nothing delivered
        target.publish(line{});                         // the next publish works
        if (seen.load() == 1) outcomes.fetch_add(1000);
    }).join();
    CHECK(outcomes.load() == 1111);

    outcomes.store(0);
    hogs.reset();
    hogs.emplace();  // again: the first thread's record is free once more
    std::thread([&] {
        {
            tidings_test::allocation_failure fail{1};
            try {
                (void)target.send(ping{1});
            } catch (const std::bad_alloc&) {
                outcomes.fetch_add(1);
            }
            if (fail.failed()) outcomes.fetch_add(10);
        }
        if (target.send(ping{1}) == 2) outcomes.fetch_add(100);
    }).join();
    CHECK(outcomes.load() == 111);
}

TEST_CASE(
    "a subscribe with replay that cannot allocate its thread's record throws bad_alloc and "
    "undoes itself without deadlocking the type's publishers",
    "[reclamation]") {
    // The failed subscribe unsubscribed while still holding the retention's mutex: its wait
    // for running publishes never ended, as they waited for that mutex.
    if (!tidings_test::can_fail_allocations) return;
    tidings::bus target;
    target.retain<line>(3);
    for (int i = 0; i < 3; ++i) target.publish(line{i});
    std::atomic<bool> stop{false};
    std::atomic<std::int64_t> published{0};
    std::jthread publisher([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            target.publish(line{});
            published.fetch_add(1, std::memory_order_relaxed);
        }
    });
    int failures = 0;
    bool completed = false;
    std::atomic<int> calls_after_failure{0};
    // Fail each allocation of the subscribing thread in turn; the thread always needs a new
    // record (hogs keep the free ones), so one of them is its record's.
    for (std::int64_t n = 1; n < 200 && !completed; ++n) {
        const record_hogs hogs;
        std::thread([&] {
            std::atomic<bool> failed{false};
            {
                tidings_test::allocation_failure fail{n};
                try {
                    auto s = target.subscribe<line>(
                        [&](const line&) {
                            if (failed.load()) calls_after_failure.fetch_add(1);
                        },
                        tidings::replay);
                    completed = !fail.failed();
                } catch (const std::bad_alloc&) {
                    failed.store(true);
                    ++failures;
                }
            }
        }).join();
        CHECK(target.subscriber_count<line>() == 0);
    }
    const std::int64_t before = published.load();
    tidings_test::spin_until([&] { return published.load() > before; });  // not stuck
    stop.store(true, std::memory_order_relaxed);
    publisher.join();
    CHECK(completed);
    CHECK(failures > 0);
    CHECK(calls_after_failure.load() == 0);
}

TEST_CASE("a loop thread whose first run cannot allocate its record runs nothing and retries",
          "[reclamation]") {
    if (!tidings_test::can_fail_allocations) return;
    tidings::bus target;
    tidings::manual_executor loop;
    std::atomic<int> seen{0};
    auto sub =
        target.subscribe<line>([&](const line&) { seen.fetch_add(1); }, tidings::deliver_on(loop));
    target.publish(line{});
    const record_hogs hogs;
    std::atomic<int> outcomes{0};
    std::thread([&] {
        {
            tidings_test::allocation_failure fail{1};
            if (loop.run_pending() == 0) outcomes.fetch_add(1);
            if (fail.failed()) outcomes.fetch_add(10);
        }
        if (loop.run_pending() == 1) outcomes.fetch_add(100);
    }).join();
    CHECK(outcomes.load() == 111);
    CHECK(seen.load() == 1);
}
