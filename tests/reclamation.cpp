// Reclamation and the per-thread read-side records (detail/epoch.hpp): a thread's first
// publish under allocation failure, publishes from thread_local destructors at thread exit.
// The scoped waiting of unsubscribe and the self-deadlock detection are in
// reclamation_threaded.cpp.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstdint>
#include <future>
#include <latch>
#include <memory>
#include <new>
#include <optional>
#include <thread>
#include <vector>

namespace {

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
