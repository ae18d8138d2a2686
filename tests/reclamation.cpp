// Reclamation and the per-thread read-side records (detail/epoch.hpp): publishes from
// thread_local destructors at thread exit.
// The scoped waiting of unsubscribe and the self-deadlock detection are in
// reclamation_threaded.cpp.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

namespace {

struct line {
    int value = 0;
};

/// How many reader records are in use (threads registered now).
std::uint32_t records_in_use() {
    return tidings::detail::registry.records_in_use.load(std::memory_order_seq_cst);
}

/// Makes the calling thread take its reader record (a dispatch on a bus of its own).
void enter_a_dispatch() {
    tidings::bus own;
    auto sub = own.subscribe<line>([](const line&) {});
    own.publish(line{});
}

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
