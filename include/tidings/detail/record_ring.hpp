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
    std::size_t size;   ///< the record's bytes, header included: where the next one starts
    std::size_t count;  ///< run: deliveries cancelled; discard: held events thrown away
};

/// @brief The start of every record: one word that says what the record is. The task's payload
/// follows at offset 8.
///
/// The word is accessed atomically (std::atomic_ref): it is how the consumer learns that a
/// record is there, without reading the producer's position (see record_ring). Its values:
/// `empty` (no record yet: the consumer waits here), `end_of_ring` (the rest of the ring is
/// unused: the next record starts at its beginning, so that no record straddles the end), or
/// the record's operation, a function pointer, which runs or discards the task and destroys it.
struct record_header {
    using operation_type = task_outcome (*)(record_header&, task_action, void* context) noexcept;

    static constexpr std::uintptr_t empty = 0;
    static constexpr std::uintptr_t end_of_ring = 1;  // never a function's address

    std::uintptr_t word;

    /// The operation of a record whose word is neither empty nor end_of_ring.
    [[nodiscard]] static operation_type operation_of(std::uintptr_t word) noexcept {
        return reinterpret_cast<operation_type>(word);
    }
    [[nodiscard]] static std::uintptr_t word_of(operation_type operation) noexcept {
        return reinterpret_cast<std::uintptr_t>(operation);
    }

    /// Runs or discards the record (consumer; after try_front returned it).
    task_outcome operator()(task_action action, void* context) noexcept {
        return operation_of(std::atomic_ref<std::uintptr_t>(word).load(std::memory_order_relaxed))(
            *this, action, context);  // acquired by try_front
    }

    /// Where the task is constructed, after the header.
    [[nodiscard]] void* storage() noexcept { return reinterpret_cast<std::byte*>(this) + 8; }

    /// The task stored after the header.
    template <class Task>
    [[nodiscard]] Task* payload() noexcept {
        return std::launder(reinterpret_cast<Task*>(reinterpret_cast<std::byte*>(this) + 8));
    }
};
static_assert(sizeof(record_header) == 8, "a record's header is one word");
static_assert(std::atomic_ref<std::uintptr_t>::required_alignment <= 8,
              "a record's header word can be accessed atomically at an 8-byte boundary");

/// Records start on 8-byte boundaries and take multiples of 8 bytes.
inline constexpr std::size_t record_granularity = 8;

/// The largest record a ring accepts: half of the smallest ring, so that any record fits in an
/// empty ring wherever its producer stands. Tasks larger than this keep their event on the heap.
inline constexpr std::size_t max_record_size = 512;

/// The bytes a record of `Task` takes: header and payload, rounded up to the granularity.
template <class Task>
inline constexpr std::size_t record_size_of = (sizeof(record_header) + sizeof(Task) +
                                               record_granularity - 1) &
                                              ~(record_granularity - 1);

/// True when a `Task` can be stored in a record (else its event goes to the heap).
template <class Task>
inline constexpr bool fits_in_record = (alignof(Task) <= record_granularity) &&
                                       (record_size_of<Task> <= max_record_size);

/// @brief A bounded single-producer single-consumer ring of variable-size records.
///
/// Positions are byte offsets that grow without wrapping (64 bits) and are masked into the
/// power-of-two buffer.
///
/// Hand-off: the consumer finds records by their header words, never by the producer's
/// position. Before publishing a record, the producer writes an `empty` word where the next
/// record will start (the terminator), then stores the record's operation with release; the
/// consumer loads the word at its position with acquire: an operation is a complete record,
/// `empty` is the end of the queue. So a spinning consumer polls the line the next record is
/// written to, and sees it with that one line's transfer; the producer's position (`tail`),
/// which it still publishes for run_pending's "what was queued before the call" and for the
/// executor's bookkeeping, stays on the producer's core.
///
/// Room: the producer owns `tail` and cached copies of the consumer's position and record
/// count; the consumer publishes them once per batch (release_consumed), and the producer
/// re-reads them only when its cached copy says full. A record needs its bytes, the skipped
/// end of the ring if it would straddle it, and 8 bytes for the terminator after it.
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
        : mask_(bytes - 1), max_records_(max_records), buffer_(allocate(bytes, max_records)) {
        // The first record's place holds the first terminator.
        store_word(0, record_header::empty, std::memory_order_relaxed);  // before any thread
    }

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
    /// task at the header's storage() (not the header itself: commit() writes it), then
    /// commit(); a claim that is not committed is invisible and reused by the next one.
    [[nodiscard]] record_header* try_claim(std::size_t size) noexcept {
        const std::uint64_t tail = producer_.tail.load(std::memory_order_relaxed);  // our own
        const std::size_t offset = tail & mask_;
        // A record that would straddle the end starts at the beginning; the gap is skipped.
        const std::size_t gap = offset + size > mask_ + 1 ? mask_ + 1 - offset : 0;
        const std::size_t needed = gap + size + sizeof(record_header);  // + the terminator
        if (!room_cached(tail, needed)) {
            // acquire: the consumer finished with the bytes before publishing its position
            // (pairs with the release store in release_consumed), and its record count was
            // stored before that position, so the count read after it is at least as new.
            producer_.cached_head = consumer_.head.load(std::memory_order_acquire);
            producer_.cached_consumed = consumer_.count.load(std::memory_order_relaxed);
            if (!room_cached(tail, needed)) return nullptr;
        }
        producer_.claimed_gap = gap;
        producer_.claimed_size = size;
        if (gap != 0) {
            // The beginning held some earlier record's bytes, not necessarily a header: begin a
            // header's lifetime there (it writes nothing) before handing it out.
            return ::new (buffer_) record_header;
        }
        return header_at(offset);  // the terminator's header, made by store_word
    }

    /// Publishes the record claimed last, whose task is constructed: `operation` runs it.
    void commit(record_header::operation_type operation) noexcept {
        const std::uint64_t tail = producer_.tail.load(std::memory_order_relaxed);
        const std::size_t gap = producer_.claimed_gap;
        const std::size_t at = gap != 0 ? 0 : tail & mask_;
        const std::size_t next = (at + producer_.claimed_size) & mask_;
        // relaxed: published by the release store of the record's word below, which the
        // consumer acquires before it looks at the next place.
        store_word(next, record_header::empty, std::memory_order_relaxed);
        // release: the task's construction and the terminator happen before the consumer
        // reads the task (pairs with the acquire load in try_front).
        store_word(at, record_header::word_of(operation), std::memory_order_release);
        if (gap != 0) {
            // Only now, after the record at the beginning is complete: a consumer that follows
            // the marker finds it there. (Published earlier, a claim that is never committed
            // would have sent the consumer past a place where a later record is put.)
            // release: pairs with the acquire load in try_front.
            store_word(tail & mask_, record_header::end_of_ring, std::memory_order_release);
        }
        // relaxed: a statistic for size().
        producer_.count.store(producer_.count.load(std::memory_order_relaxed) + 1,
                              std::memory_order_relaxed);
        // release: the record is complete before a thread that reads this position runs up to
        // it (pairs with the acquire loads in visible_end and produced).
        producer_.tail.store(tail + gap + producer_.claimed_size, std::memory_order_release);
    }

    /// True when a record of `size` bytes would not fit now (producer thread; refreshes the
    /// cached view of the consumer).
    [[nodiscard]] bool full_for(std::size_t size) noexcept { return try_claim(size) == nullptr; }

    // ---- consumer ------------------------------------------------------------------------

    /// The oldest record, or null when the ring is empty.
    [[nodiscard]] record_header* try_front() noexcept {
        for (;;) {
            const std::size_t offset = consumer_.local_head & mask_;
            // acquire: pairs with the release stores in commit().
            const std::uintptr_t word = std::atomic_ref<std::uintptr_t>(header_at(offset)->word)
                                            .load(std::memory_order_acquire);
            if (word == record_header::empty) return nullptr;
            if (word != record_header::end_of_ring) return header_at(offset);
            consumer_.local_head += mask_ + 1 - offset;  // the record is at the beginning
        }
    }

    /// Moves past the record returned by try_front() (after it was run or discarded); the
    /// producer may reuse its bytes only after release_consumed().
    void pop(std::size_t size) noexcept {
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

    /// The position one past the newest record committed now: records before it can be run
    /// without running later ones (run_pending's "what was queued before the call").
    [[nodiscard]] std::uint64_t visible_end() const noexcept {
        // acquire: pairs with the release store in commit().
        return producer_.tail.load(std::memory_order_acquire);
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
        // No cast: std::uint64_t is std::size_t on LP64 (a cast would be useless there).
        return produced >= consumed ? produced - consumed : 0;
    }

    /// How many records were committed since the ring was built (any thread; relaxed).
    [[nodiscard]] std::uint64_t committed() const noexcept {
        return producer_.count.load(std::memory_order_relaxed);  // a statistic
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
    [[nodiscard]] record_header* header_at(std::size_t offset) const noexcept {
        return std::launder(reinterpret_cast<record_header*>(buffer_ + offset));
    }

    void store_word(std::size_t offset, std::uintptr_t word, std::memory_order order) noexcept {
        // The bytes are the producer's now (room_cached): begin a header's lifetime there.
        auto* header = ::new (buffer_ + offset) record_header;
        std::atomic_ref<std::uintptr_t>(header->word).store(word, order);
    }

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
        return static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{cache_line_size}));
    }

    // Written by the producer; `tail` is read by the consumer only for run_pending's end and by
    // other threads for bookkeeping, `count` only by size().
    struct alignas(cache_line_size) producer_side {
        std::atomic<std::uint64_t> tail{0};
        std::atomic<std::uint64_t> count{0};
        std::uint64_t cached_head = 0;
        std::uint64_t cached_consumed = 0;
        std::size_t claimed_gap = 0;   // the last claim: bytes skipped at the end
        std::size_t claimed_size = 0;  // the last claim: the record's bytes
    };
    // Written by the consumer, published once per batch; `local_*` run ahead within a batch.
    struct alignas(cache_line_size) consumer_side {
        std::atomic<std::uint64_t> head{0};
        std::atomic<std::uint64_t> count{0};
        std::uint64_t local_head = 0;
        std::uint64_t local_count = 0;
    };

    producer_side producer_;
    consumer_side consumer_;
    // Read by both sides, written never: a line of its own, away from both indices.
    alignas(cache_line_size) const std::size_t mask_;
    const std::size_t max_records_;
    std::byte* const buffer_;
};

}  // namespace tidings::detail
