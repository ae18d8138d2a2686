// tidings::detail::record_ring, the single-producer single-consumer lane under every executor:
// records of any size in FIFO order, the two bounds (bytes and records), the end marker that
// keeps a record from straddling the ring's end, claims that are never committed, and the
// batch hand-back of consumed bytes.

#include <tidings/detail/record_ring.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using tidings::detail::max_record_size;
using tidings::detail::record_header;
using tidings::detail::record_ring;
using tidings::detail::task_action;
using tidings::detail::task_outcome;

// A record's payload: its sequence number, its own size, then filler bytes derived from the
// sequence number, all checked by the consumer (a torn or overwritten record is caught).
struct probe {
    std::uint64_t sequence;
    std::size_t size;
};

task_outcome probe_operation(record_header& header, task_action, void*) noexcept {
    return {header.payload<probe>()->size, 0};
}

// The size of record number `sequence` in the mixed-size streams: 24 .. 512 bytes (a probe needs
// 24).
std::size_t mixed_size(std::uint64_t sequence) {
    static constexpr std::size_t sizes[] = {24, 48, 32, 512, 64, 8 * 33, 24, 136, 40, 200};
    return sizes[sequence % std::size(sizes)];
}

std::byte filler(std::uint64_t sequence, std::size_t at) {
    return static_cast<std::byte>((sequence * 31 + at) & 0xff);
}

bool try_push(record_ring& ring, std::uint64_t sequence, std::size_t size) {
    record_header* header = ring.try_claim(size);
    if (header == nullptr) return false;
    ::new (header->storage()) probe{sequence, size};
    auto* bytes = reinterpret_cast<std::byte*>(header);
    for (std::size_t i = sizeof(record_header) + sizeof(probe); i < size; ++i) {
        bytes[i] = filler(sequence, i);
    }
    ring.commit(&probe_operation);
    return true;
}

// Pops one record, checking it is intact; returns its sequence number, or -1 when empty.
std::int64_t try_pop(record_ring& ring) {
    record_header* header = ring.try_front();
    if (header == nullptr) return -1;
    const task_outcome outcome = (*header)(task_action::run, nullptr);
    const probe& p = *header->payload<probe>();
    REQUIRE(outcome.size == p.size);
    auto* bytes = reinterpret_cast<std::byte*>(header);
    for (std::size_t i = sizeof(record_header) + sizeof(probe); i < p.size; ++i) {
        if (bytes[i] != filler(p.sequence, i)) FAIL("record " << p.sequence << " is torn at " << i);
    }
    ring.pop(outcome.size);
    return static_cast<std::int64_t>(p.sequence);
}

}  // namespace

TEST_CASE("a new record ring is empty and has the bounds it was given", "[record_ring]") {
    record_ring ring(1024, 7);
    CHECK(ring.bytes() == 1024);
    CHECK(ring.max_records() == 7);
    CHECK(ring.size() == 0);
    CHECK(ring.try_front() == nullptr);
    CHECK_FALSE(ring.full_for(max_record_size));
    CHECK(ring.visible_end() == 0);
    CHECK(ring.consumed() == 0);
    CHECK(ring.produced() == 0);
}

TEST_CASE("a record ring rejects a size that is not a power of two of at least 1024 bytes",
          "[record_ring]") {
    for (const std::size_t bad : {std::size_t{0}, std::size_t{8}, std::size_t{512},
                                  std::size_t{1000}, std::size_t{1536}, std::size_t{3000}}) {
        INFO("bytes " << bad);
        CHECK_THROWS_AS(record_ring(bad, 16), std::invalid_argument);
    }
    CHECK_THROWS_AS(record_ring(~std::size_t{0} / 2 + 1, 16), std::invalid_argument);
    CHECK_THROWS_AS(record_ring(1024, 0), std::invalid_argument);
    CHECK(record_ring(1024, 1).bytes() == 1024);
    CHECK(record_ring(4096, ~std::size_t{0}).bytes() == 4096);
}

TEST_CASE("records of mixed sizes come out of a ring in the order they went in", "[record_ring]") {
    record_ring ring(4096, ~std::size_t{0});
    std::uint64_t pushed = 0;
    while (try_push(ring, pushed, mixed_size(pushed))) ++pushed;
    // Full by bytes: at least the bytes of all but the refused record minus one max record.
    CHECK(pushed >= 10);
    CHECK(ring.size() == pushed);
    for (std::uint64_t i = 0; i < pushed; ++i) CHECK(try_pop(ring) == static_cast<std::int64_t>(i));
    CHECK(try_pop(ring) == -1);
}

TEST_CASE("a ring full by records refuses a claim until the consumer hands records back",
          "[record_ring]") {
    record_ring ring(4096, 3);
    for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(try_push(ring, i, 24));
    CHECK(ring.full_for(24));
    CHECK(try_pop(ring) == 0);
    // Popped but not handed back: still full for the producer.
    CHECK(ring.full_for(24));
    ring.release_consumed();
    CHECK_FALSE(ring.full_for(24));
    REQUIRE(try_push(ring, 3, 24));
    CHECK(ring.full_for(24));
}

TEST_CASE("a ring full by bytes refuses a claim until the consumer hands bytes back",
          "[record_ring]") {
    record_ring ring(1024, ~std::size_t{0});
    // Each record also needs 8 bytes after it, for the terminator the consumer stops at.
    REQUIRE(try_push(ring, 0, 512));
    CHECK(ring.full_for(512));
    REQUIRE(try_push(ring, 1, 496));  // up to 1008: 8 bytes left, and the terminator
    CHECK(ring.full_for(16));
    CHECK_FALSE(ring.full_for(8));
    CHECK(try_pop(ring) == 0);
    CHECK(ring.full_for(16));  // popped, not handed back
    ring.release_consumed();
    // 512 bytes free at the start, 16 at the end (skipped): a 504-byte record and its
    // terminator fit, a 512-byte one does not.
    CHECK(ring.full_for(512));
    CHECK_FALSE(ring.full_for(504));
    REQUIRE(try_push(ring, 2, 504));
    CHECK(ring.full_for(16));
    CHECK(try_pop(ring) == 1);
    CHECK(try_pop(ring) == 2);
    CHECK(try_pop(ring) == -1);
}

TEST_CASE("a record that would straddle the ring's end starts at its beginning", "[record_ring]") {
    record_ring ring(1024, ~std::size_t{0});
    for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(try_push(ring, i, 304));  // up to 912
    for (std::int64_t i = 0; i < 3; ++i) REQUIRE(try_pop(ring) == i);
    ring.release_consumed();
    // 112 bytes are left before the end: a 200-byte record skips them.
    REQUIRE(try_push(ring, 3, 200));
    CHECK(ring.produced() == 912 + 112 + 200);
    CHECK(try_pop(ring) == 3);
    CHECK(try_pop(ring) == -1);
    ring.release_consumed();
    CHECK(ring.consumed() == 912 + 112 + 200);
}

TEST_CASE("a record needs contiguous room: free bytes split by the ring's end are not enough",
          "[record_ring]") {
    record_ring ring(1024, ~std::size_t{0});
    REQUIRE(try_push(ring, 0, 256));
    REQUIRE(try_push(ring, 1, 512));  // 256 .. 768
    REQUIRE(try_pop(ring) == 0);
    ring.release_consumed();
    // 512 bytes free, but 256 at the end and 256 at the start.
    CHECK(ring.full_for(512));
    CHECK(ring.full_for(264));
    CHECK_FALSE(ring.full_for(256));  // exactly the end's room
    REQUIRE(try_push(ring, 2, 256));
    REQUIRE(try_push(ring, 3, 200));  // at the start
    for (std::int64_t i = 1; i < 4; ++i) CHECK(try_pop(ring) == i);
    CHECK(try_pop(ring) == -1);
}

TEST_CASE("a claim that is never committed is invisible and its room is reused", "[record_ring]") {
    record_ring ring(1024, ~std::size_t{0});
    for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(try_push(ring, i, 304));  // up to 912
    for (std::int64_t i = 0; i < 3; ++i) REQUIRE(try_pop(ring) == i);
    ring.release_consumed();
    // A claim that needs the end marker, abandoned (its construction threw, say): the marker
    // it wrote is not published, and a smaller record that fits before the end overwrites it.
    record_header* abandoned = ring.try_claim(200);
    REQUIRE(abandoned != nullptr);
    std::memset(abandoned->storage(), 0xee, 192);
    CHECK(ring.try_front() == nullptr);
    REQUIRE(try_push(ring, 3, 112));  // at 912, where the marker was
    CHECK(ring.produced() == 1024);
    REQUIRE(try_push(ring, 4, 200));
    CHECK(try_pop(ring) == 3);
    CHECK(try_pop(ring) == 4);
    CHECK(try_pop(ring) == -1);
}

TEST_CASE("visible_end marks the records committed before the call", "[record_ring]") {
    record_ring ring(1024, ~std::size_t{0});
    REQUIRE(try_push(ring, 0, 24));
    REQUIRE(try_push(ring, 1, 40));
    const std::uint64_t end = ring.visible_end();
    REQUIRE(try_push(ring, 2, 24));
    std::vector<std::int64_t> seen;
    while (ring.head() < end) seen.push_back(try_pop(ring));
    CHECK(seen == std::vector<std::int64_t>{0, 1});
    CHECK(try_pop(ring) == 2);
}

TEST_CASE(
    "a record ring carries a stream of mixed-size records from one thread to another "
    "in order, intact",
    "[record_ring][threaded]") {
    // Enough for ~1500 laps of the 2 KiB ring. Both threads yield when they cannot go on: on a
    // loaded machine each yield may cost a time slice, so the count stays modest (the CI's
    // under-load run took 297 s with 200000).
    const auto count = static_cast<std::uint64_t>(tidings_test::scaled(20000));
    for (const std::size_t max_records : {std::size_t{5}, ~std::size_t{0}}) {
        INFO("max_records " << max_records);
        record_ring ring(2048, max_records);
        std::thread producer([&] {
            for (std::uint64_t i = 0; i < count; ++i) {
                while (!try_push(ring, i, mixed_size(i))) std::this_thread::yield();
            }
        });
        std::uint64_t next = 0;
        bool in_order = true;
        while (next < count) {
            // A batch of up to 7 records per hand-back, as an executor's consumer does.
            int batch = 0;
            for (; batch < 7; ++batch) {
                const std::int64_t got = try_pop(ring);
                if (got < 0) break;
                in_order = in_order && got == static_cast<std::int64_t>(next);
                ++next;
            }
            ring.release_consumed();
            if (batch == 0) std::this_thread::yield();
        }
        producer.join();
        CHECK(in_order);
        CHECK(next == count);
        CHECK(try_pop(ring) == -1);
        ring.release_consumed();
        CHECK(ring.size() == 0);
        CHECK(ring.consumed() == ring.produced());
    }
}
