#pragma once
/// @file record_ring.hpp
/// @brief The lock-free queue under every executor lane: a single-producer single-consumer
/// ring of bytes holding variable-size, type-erased task records, bounded in bytes and in
/// records.
///
/// Why bytes and not slots: each event crosses from the producer's core to the consumer's as
/// cache lines, so the bytes an event takes in the ring are what a queued delivery costs. A
/// delivery of a 16-byte event is a 48-byte record here (a 64-byte slot before), and a lane of
/// 16 KiB stays in the L1 cache of both cores; events of up to 256 bytes travel inline.

#include <tidings/config.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>

namespace tidings::detail {

/// What a task's operation is asked to do.
enum class task_action : unsigned char {
    run,      ///< deliver, then destroy the payload
    discard,  ///< destroy the payload without delivering (a discarding stop)
};

/// What running or discarding a record tells the consumer.
struct task_outcome {
    std::uint32_t size;   ///< the record's bytes, header included: where the next one starts
    std::uint32_t count;  ///< run: deliveries cancelled; discard: held events thrown away
};

/// @brief The start of every record: the operation that runs or discards it. The task's
/// payload follows at offset 8; a null operation marks the unused end of the ring (the next
/// record starts at the ring's beginning), so that no record straddles the end.
struct record_header {
    using operation_type = task_outcome (*)(record_header&, task_action, void* context) noexcept;
    operation_type operation;

    /// The task stored after the header.
    template <class Task>
    [[nodiscard]] Task* payload() noexcept {
        return std::launder(reinterpret_cast<Task*>(reinterpret_cast<std::byte*>(this) + 8));
    }
};
static_assert(sizeof(record_header) == 8, "a record's header is one pointer");

/// Records start on 8-byte boundaries and take multiples of 8 bytes.
inline constexpr std::size_t record_granularity = 8;

/// The largest record a ring accepts: half of the smallest ring, so that any record fits in an
/// empty ring wherever its producer stands. Tasks larger than this keep their event on the heap.
inline constexpr std::size_t max_record_size = 512;

/// The bytes a record of `Task` takes: header and payload, rounded up to the granularity.
template <class Task>
inline constexpr std::uint32_t record_size_of = static_cast<std::uint32_t>(
    (sizeof(record_header) + sizeof(Task) + record_granularity - 1) & ~(record_granularity - 1));

/// True when a `Task` can be stored in a record (else its event goes to the heap).
template <class Task>
inline constexpr bool fits_in_record =
    alignof(Task) <= record_granularity && record_size_of<Task> <= max_record_size;

/// @brief A bounded single-producer single-consumer ring of variable-size records.
///
/// Positions are byte offsets that grow without wrapping (64 bits) and are masked into the
/// power-of-two buffer. The producer owns `tail` and cached copies of the consumer's position
/// and record count; the consumer owns `head` and a cached copy of `tail`, and publishes its
/// position once per batch (release_consumed). Each side re-reads the other's line only when
/// its cached copy says full (producer) or empty (consumer), so in a busy stream the index
/// lines rarely travel: the records do, several per cache line.
///
/// Thread safety: one producer thread and one consumer thread at a time; size(), produced()
/// and consumed() from any thread.
class record_ring {
public:
    static constexpr std::size_t min_bytes = 2 * max_record_size;
    /// The largest ring: a power of two of at most PTRDIFF_MAX / 2 bytes, so that positions and
    /// sizes computed in bytes never wrap.
    static constexpr std::size_t max_bytes =
        std::bit_floor(static_cast<std::size_t>(PTRDIFF_MAX / 2));

    /// @throws std::invalid_argument unless `bytes` is a power of two in [min_bytes, max_bytes].
    static void check_bytes(std::size_t bytes) {
        if (bytes < min_bytes || bytes > max_bytes || !std::has_single_bit(bytes)) {
            throw std::invalid_argument(
                "tidings: executor_options::lane_bytes must be a power of two of at least 1024 "
                "bytes (and at most PTRDIFF_MAX / 2)");
        }
    }

    /// @throws std::invalid_argument (see check_bytes) or if `max_records` is 0; std::bad_alloc.
    record_ring(std::size_t bytes, std::size_t max_records)
        : mask_(bytes - 1), max_records_(max_records), buffer_(allocate(bytes, max_records)) {}

    record_ring(const record_ring&) = delete;
    record_ring& operator=(const record_ring&) = delete;
    ~record_ring() {
        // The owner drains or discards every record before destroying the ring.
        ::operator delete[](buffer_, std::align_val_t{cache_line_size});
    }

    [[nodiscard]] std::size_t bytes() const noexcept { return mask_ + 1; }
    [[nodiscard]] std::size_t max_records() const noexcept { return max_records_; }

    // ---- producer ------------------------------------------------------------------------

    /// Room for a record of `size` bytes (a multiple of record_granularity, at most
    /// max_record_size), or null when the ring is full by bytes or by records. Construct the
    /// record there (operation last is not required: nothing is visible before commit()), then
    /// commit(); a claim not committed is simply reused by the next one.
    [[nodiscard]] void* try_claim(std::size_t size) noexcept {
        const std::uint64_t tail = producer_.tail.load(std::memory_order_relaxed);  // our own
        const std::size_t offset = static_cast<std::size_t>(tail) & mask_;
        // A record that would straddle the end starts at the beginning; the gap is skipped.
        const std::size_t gap = offset + size > mask_ + 1 ? mask_ + 1 - offset : 0;
        if (!room_cached(tail, gap + size)) {
            // acquire: the consumer finished with the bytes before publishing its position
            // (pairs with the release store in release_consumed), and its record count was
            // stored before that position, so the count read after it is at least as new.
            producer_.cached_head = consumer_.head.load(std::memory_order_acquire);
            producer_.cached_consumed = consumer_.count.load(std::memory_order_relaxed);
            if (!room_cached(tail, gap + size)) return nullptr;
        }
        std::byte* at = buffer_ + offset;
        if (gap != 0) {
            // The end marker: written in bytes the consumer has released, published by commit.
            ::new (at) record_header{nullptr};
            at = buffer_;
        }
        producer_.claimed = gap + size;
        return at;
    }

    /// Publishes the record claimed last.
    void commit() noexcept {
        const std::uint64_t tail = producer_.tail.load(std::memory_order_relaxed);
        // relaxed: a statistic for size(); the tail's release below publishes the record.
        producer_.count.store(producer_.count.load(std::memory_order_relaxed) + 1,
                              std::memory_order_relaxed);
        // release: the record's construction happens before the consumer reads it (pairs with
        // the acquire loads in try_front and visible_end).
        producer_.tail.store(tail + producer_.claimed, std::memory_order_release);
    }

    /// True when a record of `size` bytes would not fit now (producer thread; refreshes the
    /// cached view of the consumer).
    [[nodiscard]] bool full_for(std::size_t size) noexcept { return try_claim(size) == nullptr; }

    // ---- consumer ------------------------------------------------------------------------

    /// The oldest record, or null when the ring is empty.
    [[nodiscard]] record_header* try_front() noexcept {
        for (;;) {
            const std::uint64_t head = consumer_.local_head;
            if (head == consumer_.cached_tail) {
                // acquire: pairs with the release store in commit().
                consumer_.cached_tail = producer_.tail.load(std::memory_order_acquire);
                if (head == consumer_.cached_tail) return nullptr;
            }
            const std::size_t offset = static_cast<std::size_t>(head) & mask_;
            auto* record = std::launder(reinterpret_cast<record_header*>(buffer_ + offset));
            if (record->operation != nullptr) return record;
            consumer_.local_head = head + (mask_ + 1 - offset);  // the end marker: wrap
        }
    }

    /// Moves past the record returned by try_front() (after it was run or discarded); the
    /// producer may reuse its bytes only after release_consumed().
    void pop(std::uint32_t size) noexcept {
        consumer_.local_head += size;
        ++consumer_.local_count;
    }

    /// Hands every popped record's bytes back to the producer. Called once per batch, so that
    /// a producer waiting on a full ring sees a batch of room per cache-line transfer.
    void release_consumed() noexcept {
        // relaxed: ordered before the head's release store, which the producer reads first.
        consumer_.count.store(consumer_.local_count, std::memory_order_relaxed);
        // release: our use of the bytes happens before the producer reuses them (pairs with the
        // acquire load in try_claim).
        consumer_.head.store(consumer_.local_head, std::memory_order_release);
    }

    /// The position one past the newest record visible now: records before it can be run
    /// without running later ones (run_pending's "what was queued before the call").
    [[nodiscard]] std::uint64_t visible_end() noexcept {
        // acquire: pairs with the release store in commit().
        consumer_.cached_tail = producer_.tail.load(std::memory_order_acquire);
        return consumer_.cached_tail;
    }

    /// The position of the next record to run (consumer thread).
    [[nodiscard]] std::uint64_t head() const noexcept { return consumer_.local_head; }

    // ---- any thread ----------------------------------------------------------------------

    /// How many records are queued (may be stale by the time it is used).
    [[nodiscard]] std::size_t size() const noexcept {
        // relaxed: two monotonic counters read one after the other, so the pair may be
        // inconsistent by a few records (hence the clamp): an estimate, as documented.
        const std::uint64_t consumed = consumer_.count.load(std::memory_order_relaxed);
        const std::uint64_t produced = producer_.count.load(std::memory_order_relaxed);
        return produced >= consumed ? static_cast<std::size_t>(produced - consumed) : 0;
    }

    /// The position one past the newest committed record.
    [[nodiscard]] std::uint64_t produced() const noexcept {
        // acquire: pairs with the release store in commit().
        return producer_.tail.load(std::memory_order_acquire);
    }

    /// The position of the oldest byte not yet handed back by the consumer; every record
    /// before it has finished running (or was discarded).
    [[nodiscard]] std::uint64_t consumed() const noexcept {
        // acquire: pairs with the release store in release_consumed(), so the consumer's use
        // of the records before it happens before our caller's next steps.
        return consumer_.head.load(std::memory_order_acquire);
    }

private:
    [[nodiscard]] bool room_cached(std::uint64_t tail, std::size_t needed) const noexcept {
        const std::uint64_t records =
            producer_.count.load(std::memory_order_relaxed) - producer_.cached_consumed;
        return tail + needed - producer_.cached_head <= mask_ + 1 && records < max_records_;
    }

    static std::byte* allocate(std::size_t bytes, std::size_t max_records) {
        check_bytes(bytes);
        if (max_records == 0) {
            throw std::invalid_argument("tidings: executor_options::capacity must not be 0");
        }
        return static_cast<std::byte*>(
            ::operator new[](bytes, std::align_val_t{cache_line_size}));
    }

    // Written by the producer; `tail` is read by the consumer only when its cached tail runs
    // out, `count` only by size().
    struct alignas(cache_line_size) producer_side {
        std::atomic<std::uint64_t> tail{0};
        std::atomic<std::uint64_t> count{0};
        std::uint64_t cached_head = 0;
        std::uint64_t cached_consumed = 0;
        std::size_t claimed = 0;  // bytes of the last claim, end gap included
    };
    // Written by the consumer, published once per batch; `local_*` run ahead within a batch.
    struct alignas(cache_line_size) consumer_side {
        std::atomic<std::uint64_t> head{0};
        std::atomic<std::uint64_t> count{0};
        std::uint64_t local_head = 0;
        std::uint64_t local_count = 0;
        std::uint64_t cached_tail = 0;
    };

    producer_side producer_;
    consumer_side consumer_;
    // Read by both sides, written never: a line of its own, away from both indices.
    alignas(cache_line_size) const std::size_t mask_;
    const std::size_t max_records_;
    std::byte* const buffer_;
};

}  // namespace tidings::detail
