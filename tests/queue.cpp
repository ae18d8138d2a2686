// tidings::detail::task_ring, the single-producer single-consumer lane under every executor:
// FIFO order, full and empty, wrap-around, the capacity rules, slot reuse and the batch
// hand-back of consumed slots.

#include <tidings/detail/task_ring.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using tidings::detail::task_action;
using tidings::detail::task_ring;
using tidings::detail::task_slot;

// A task whose payload is a sequence number; the ring itself never runs tasks, but a slot is
// always filled the way an executor fills it.
std::size_t sequence_operation(task_slot&, task_action, void*) noexcept { return 0; }

// Producer side: claims a slot, writes `value` into it and commits. False when full.
bool try_push(task_ring& ring, std::uint64_t value) {
    task_slot* slot = ring.try_claim();
    if (slot == nullptr) return false;
    ::new (slot->storage) std::uint64_t(value);
    slot->operation = &sequence_operation;
    ring.commit();
    return true;
}

// Consumer side: reads the oldest value and pops it (the slot is handed back to the producer
// only by release_consumed()). False when empty.
bool try_pop(task_ring& ring, std::uint64_t& value) {
    task_slot* slot = ring.try_front();
    if (slot == nullptr) return false;
    value = *slot->as<std::uint64_t>();
    ring.pop();
    return true;
}

}  // namespace

TEST_CASE("a new ring is empty and has the capacity it was given", "[queue]") {
    for (const std::size_t capacity : {std::size_t{2}, std::size_t{4}, std::size_t{1024}}) {
        task_ring ring(capacity);
        CHECK(ring.capacity() == capacity);
        CHECK(ring.size() == 0);
        CHECK(ring.try_front() == nullptr);
        CHECK_FALSE(ring.full_for_producer());
        CHECK(ring.head() == 0);
        CHECK(ring.visible_end() == 0);
    }
}

TEST_CASE("a ring rejects a capacity that is not a power of two of at least 2", "[queue]") {
    for (const std::size_t bad : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{6},
                                  std::size_t{1000}, std::size_t{1025}}) {
        INFO("capacity " << bad);
        CHECK_THROWS_AS(task_ring(bad), std::invalid_argument);
    }
    // No rounding: a valid capacity is kept as given.
    for (const std::size_t good : {std::size_t{2}, std::size_t{8}, std::size_t{4096}}) {
        task_ring ring(good);
        CHECK(ring.capacity() == good);
    }
}

TEST_CASE("tasks come out of a ring in the order they went in", "[queue]") {
    task_ring ring(8);
    for (std::uint64_t i = 0; i < 5; ++i) REQUIRE(try_push(ring, 100 + i));
    CHECK(ring.size() == 5);
    for (std::uint64_t i = 0; i < 5; ++i) {
        std::uint64_t value = 0;
        REQUIRE(try_pop(ring, value));
        CHECK(value == 100 + i);
    }
    std::uint64_t value = 0;
    CHECK_FALSE(try_pop(ring, value));
}

TEST_CASE("a claimed slot is not visible to the consumer until it is committed", "[queue]") {
    task_ring ring(4);
    task_slot* slot = ring.try_claim();
    REQUIRE(slot != nullptr);
    ::new (slot->storage) std::uint64_t(7);
    slot->operation = &sequence_operation;
    CHECK(ring.try_front() == nullptr);
    CHECK(ring.size() == 0);
    // Claiming again without a commit returns the same slot.
    CHECK(ring.try_claim() == slot);
    ring.commit();
    CHECK(ring.try_front() == slot);
    CHECK(ring.size() == 1);
}

TEST_CASE("a full ring refuses a claim until the consumer hands its slots back", "[queue]") {
    task_ring ring(4);
    for (std::uint64_t i = 0; i < 4; ++i) REQUIRE(try_push(ring, i));
    CHECK(ring.try_claim() == nullptr);
    CHECK(ring.full_for_producer());
    CHECK(ring.size() == 4);

    // Popped but not yet released: the producer may not reuse the slots.
    std::uint64_t value = 0;
    REQUIRE(try_pop(ring, value));
    REQUIRE(try_pop(ring, value));
    CHECK(value == 1);
    CHECK(ring.try_claim() == nullptr);
    CHECK(ring.size() == 4);

    // One release hands back the whole batch.
    ring.release_consumed();
    CHECK(ring.size() == 2);
    CHECK(try_push(ring, 4));
    CHECK(try_push(ring, 5));
    CHECK_FALSE(try_push(ring, 6));

    for (std::uint64_t expected = 2; expected < 6; ++expected) {
        REQUIRE(try_pop(ring, value));
        CHECK(value == expected);
    }
    CHECK_FALSE(try_pop(ring, value));
    ring.release_consumed();
    CHECK(ring.size() == 0);
    CHECK_FALSE(ring.full_for_producer());
}

TEST_CASE("a ring reuses its slots in a cycle of its capacity", "[queue]") {
    task_ring ring(4);
    std::vector<task_slot*> first_round;
    for (std::uint64_t i = 0; i < 4; ++i) {
        first_round.push_back(ring.try_claim());
        REQUIRE(first_round.back() != nullptr);
        REQUIRE(try_push(ring, i));
    }
    // Four distinct, cache-line aligned slots.
    for (std::size_t i = 0; i < first_round.size(); ++i) {
        CHECK(reinterpret_cast<std::uintptr_t>(first_round[i]) % tidings::cache_line_size == 0);
        for (std::size_t j = i + 1; j < first_round.size(); ++j) {
            CHECK(first_round[i] != first_round[j]);
        }
    }
    std::uint64_t value = 0;
    for (int i = 0; i < 4; ++i) REQUIRE(try_pop(ring, value));
    ring.release_consumed();
    for (std::uint64_t i = 0; i < 4; ++i) {
        CHECK(ring.try_claim() == first_round[i]);
        REQUIRE(try_push(ring, 4 + i));
    }
}

TEST_CASE("a tiny ring wraps around many times without losing or reordering a task", "[queue]") {
    task_ring ring(2);
    std::uint64_t pushed = 0;
    std::uint64_t popped = 0;
    // Fill levels vary from round to round, so every slot boundary is crossed in every state.
    for (int round = 0; round < 5000; ++round) {
        const int to_push = 1 + round % 2;
        for (int i = 0; i < to_push; ++i) {
            if (try_push(ring, pushed)) ++pushed;
        }
        const int to_pop = 1 + (round / 2) % 2;
        for (int i = 0; i < to_pop; ++i) {
            std::uint64_t value = 0;
            if (!try_pop(ring, value)) break;
            REQUIRE(value == popped);
            ++popped;
        }
        if (round % 3 != 0) ring.release_consumed();
        REQUIRE(pushed - popped <= ring.capacity());
    }
    std::uint64_t value = 0;
    while (try_pop(ring, value)) {
        REQUIRE(value == popped);
        ++popped;
    }
    ring.release_consumed();
    CHECK(popped == pushed);
    CHECK(pushed > 5000);  // the ring went round its 2 slots thousands of times
    CHECK(ring.size() == 0);
    CHECK(ring.head() == popped);
}

TEST_CASE("visible_end marks the tasks committed before the call", "[queue]") {
    task_ring ring(8);
    for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(try_push(ring, i));
    const std::uint64_t end = ring.visible_end();
    CHECK(end == 3);
    // Committed after the call: beyond `end`.
    REQUIRE(try_push(ring, 3));
    REQUIRE(try_push(ring, 4));
    std::uint64_t ran = 0;
    std::uint64_t value = 0;
    while (ring.head() < end && try_pop(ring, value)) ++ran;
    CHECK(ran == 3);
    CHECK(value == 2);
    CHECK(ring.visible_end() == 5);
    REQUIRE(try_pop(ring, value));
    CHECK(value == 3);
}

TEST_CASE("an empty ring sees the producer's next commit", "[queue]") {
    task_ring ring(2);
    std::uint64_t value = 0;
    for (std::uint64_t i = 0; i < 10; ++i) {
        // The consumer's cached tail says empty; a new commit must still be found.
        CHECK_FALSE(try_pop(ring, value));
        REQUIRE(try_push(ring, i));
        REQUIRE(try_pop(ring, value));
        CHECK(value == i);
        ring.release_consumed();
    }
}

TEST_CASE("a ring carries a stream from one producer thread to one consumer thread in order",
          "[queue][threads]") {
    // The ring's acquire/release pairs on its own (TSan checks them): a tiny ring forces the
    // producer to find it full, and the consumer empty, again and again.
    const std::uint64_t count = static_cast<std::uint64_t>(tidings_test::scaled(200000));
    task_ring ring(8);
    std::thread producer([&] {
        for (std::uint64_t i = 0; i < count;) {
            if (try_push(ring, i)) {
                ++i;
            } else {
                std::this_thread::yield();
            }
        }
    });
    std::uint64_t expected = 0;
    bool in_order = true;
    while (expected < count) {
        std::uint64_t value = 0;
        int batch = 0;
        while (batch < 3 && try_pop(ring, value)) {
            in_order = in_order && value == expected;
            ++expected;
            ++batch;
        }
        if (batch != 0) {
            ring.release_consumed();
        } else {
            std::this_thread::yield();
        }
    }
    producer.join();
    CHECK(in_order);
    CHECK(expected == count);
    std::uint64_t value = 0;
    CHECK_FALSE(try_pop(ring, value));
}

// Issue 9, item 9: capacity * 64 bytes wrapped to a tiny allocation for capacity >= 2^58, and
// the power-of-two check alone let it through (a heap overflow on the first pushes).
TEST_CASE("a ring rejects a capacity whose slots would not fit in memory, checked in bytes",
          "[queue]") {
    constexpr std::size_t slot = sizeof(task_slot);
    for (const std::size_t huge : {std::size_t{1} << 58U, std::size_t{1} << 60U,
                                   std::size_t{1} << 63U, task_ring::max_capacity * 2}) {
        INFO("capacity 2^" << std::countr_zero(huge) << " (" << huge << " slots)");
        CHECK_THROWS_AS(task_ring{huge}, std::invalid_argument);
        CHECK_THROWS_AS(task_ring::check_capacity(huge), std::invalid_argument);
    }
    // The limit itself is a valid capacity whose size in bytes does not wrap.
    CHECK_NOTHROW(task_ring::check_capacity(task_ring::max_capacity));
    CHECK(std::has_single_bit(task_ring::max_capacity));
    CHECK(task_ring::max_capacity <= static_cast<std::size_t>(PTRDIFF_MAX) / slot);
    CHECK(task_ring::max_capacity * slot / slot == task_ring::max_capacity);
}
