#pragma once
/// @file detail/epoch.hpp
/// @brief Epoch-based reclamation for the thread-safe bus: publishers read subscriber snapshots
/// without a lock and without writing any shared cache line; writers retire old snapshots and
/// removed subscribers, and free them (or wait) once no publisher can still be reading them.
///
/// Design:
/// - One process-wide registry of reader records, one record per thread that has published.
///   A record's `state` is 0 while its thread is outside every dispatch ("quiescent"), or the
///   global epoch the thread read when it entered its outermost dispatch. Only the owning
///   thread writes `state`, `nesting` and `scopes`; writers only read them.
/// - A writer unlinks an object (a new snapshot is stored), then retires it with the tag
///   `t = epoch++`. A reader that entered with an epoch greater than `t` loaded the epoch after
///   the increment, so it cannot see the unlinked object. So a retired object is free to
///   reclaim once every reader record is quiescent or holds an epoch greater than `t`.
/// - Scopes: each record also says what its dispatches read, one (bus, channel) pair per
///   nesting level (`scopes`, the first scope_depth levels; deeper ones count as "anything"),
///   stored before the snapshot load under the same barrier as `state`. A writer that retired
///   objects of one channel waits only for readers whose state is at most its tag AND that
///   hold that channel (or its bus, for a bus-wide removal) at some level: an unsubscribe
///   never waits for a dispatch of another bus or another event type. A level's scope stays
///   valid until the level is left; a writer reads only the levels below `nesting`.
/// - Blocked producers: a reader that waits inside its dispatch for space in a full executor
///   lane (overflow::block) says so in its record, with the executor's consumer thread. A
///   writer waiting for that reader from the consumer thread itself would wait for ever (the
///   producer waits for the consumer, which waits for the producer): it cancels the producer's
///   wait instead, and the producer's publish throws tidings::would_deadlock.
/// - The store-then-load race (a reader publishes its state, then loads the snapshot; a writer
///   stores the snapshot, then reads states) needs a full barrier on both sides. To keep it off
///   the publish path, the writer issues a process-wide barrier with Linux `membarrier`
///   (expedited, private), as liburcu and folly do; the reader needs only a compiler barrier.
///   Where `membarrier` is not available (or under ThreadSanitizer, which cannot see it), the
///   reader uses a sequentially consistent exchange instead.
/// - A thread inside a dispatch never waits for readers (it could be waiting for itself, or for
///   another thread's handler that waits for it); its retired objects are reclaimed later.
///
/// Not thread-safe: `epoch_domain`'s retire list is guarded by the bus's writer mutex, which
/// every caller of `retire` and `take_reclaimable`/`take_waited` holds.

#include <tidings/config.hpp>
#include <tidings/detail/barrier.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <thread>
#include <utility>

#if TIDINGS_USE_MEMBARRIER
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace tidings::detail {

/// An object a writer unlinked, waiting until no reader can still see it.
struct retired {
    retired* next_retired = nullptr;
    std::uint64_t retire_epoch = 0;
    void (*reclaim)(retired*) noexcept = nullptr;
    /// The channel whose readers may hold it (set by retire()); see take_waited().
    const void* retire_scope = nullptr;
};

/// Destroys every object of a list built by take_reclaimable().
inline void reclaim_list(retired* list) noexcept {
    while (list != nullptr) {
        retired* next = list->next_retired;
        list->reclaim(list);
        list = next;
    }
}

/// What a read section may read: the bus (its domain) and the channel of one dispatch.
/// A null `bus` means "anything" (a writer must assume it reads everything).
struct read_scope {
    const void* bus = nullptr;
    const void* channel = nullptr;
};

/// How many nesting levels a record describes; a reader deeper than this counts as reading
/// anything. An executor's batch is level 0, its queued delivery level 1, so a queued handler
/// may publish 5 levels deep (a chain of handlers that publish) before writers of other
/// channels wait for it. 7 fills the record's first two cache lines.
inline constexpr std::uint32_t scope_depth = 7;

/// A blocked producer's state (reader_record::blocked).
enum class block_state : std::uint32_t {
    none = 0,       ///< not waiting for space
    blocked = 1,    ///< waiting for space in a lane whose consumer is `blocked_consumer`
    canceling = 2,  ///< a writer on the consumer thread is canceling the wait
    canceled = 3,   ///< canceled: the producer must give up with would_deadlock
};

/// One thread's read-side state. The first two cache lines hold what the owner writes on every
/// dispatch and what writers scan (a dispatch less than 3 deep writes only the first); the
/// third, what changes rarely. Aligned so that a
/// thread's writes to its own record never share a cache line with another thread's.
struct alignas(cache_line_size) reader_record {
    // ---- written by the owner at every dispatch, read by writers ----------------------------
    std::atomic<std::uint64_t> state{0};    ///< 0 = quiescent, else the epoch at entry
    std::atomic<std::uint32_t> nesting{0};  ///< dispatch depth (owner stores, release)
    /// Owner-only: leaving the outermost section has work to do (thread exit, see
    /// reader_record_owner): checked there, so the common exit tests one byte of this line.
    bool exit_pending = false;
    /// Owner-only: the record was claimed after the thread's record owner was destroyed (a
    /// publish from a thread_local destructor); it is given back when the section ends.
    bool temporary = false;
    /// The scope of each of the first scope_depth levels; level i is valid while nesting > i.
    std::atomic<const void*> scope_bus[scope_depth]{};
    std::atomic<const void*> scope_channel[scope_depth]{};

    // ---- rare ----------------------------------------------------------------------------------
    alignas(cache_line_size) std::atomic<bool> in_use{false};  ///< owned by a live thread
    /// A producer blocked on a full lane (see block_state), the consumer it waits for, and the
    /// futex word it may sleep on (the lane's `space`), for a writer that cancels the wait.
    std::atomic<block_state> blocked{block_state::none};
    std::atomic<std::uint64_t> blocked_consumer{0};
    std::atomic<std::atomic<std::uint32_t>*> blocked_wake{nullptr};
    /// The blocked thread's this_thread_joined_as: a thread that joins it finds it by this.
    std::atomic<const struct join_point*> blocked_joined_as{nullptr};
    /// While this thread waits for a thread whose this_thread_joined_as is `joining` to end
    /// (a thread_executor's stop), with `joining_token` its own consumer token (joining_mark).
    std::atomic<const struct join_point*> joining{nullptr};
    std::atomic<std::uint64_t> joining_token{0};
    reader_record* next = nullptr;  ///< immutable once the record is in the registry
};
static_assert(offsetof(reader_record, in_use) == 2 * cache_line_size,
              "the per-dispatch fields fill exactly the first two cache lines");
static_assert(sizeof(reader_record) == 3 * cache_line_size, "three cache lines per record");

/// The process-wide part: the epoch and the list of reader records. Constant-initialized, so
/// it is usable from any static initializer.
struct epoch_registry {
    alignas(cache_line_size) std::atomic<std::uint64_t> epoch{1};
    alignas(cache_line_size) std::atomic<reader_record*> head{nullptr};
    std::atomic<std::uint32_t> records_in_use{0};
    /// How many joining_marks are held now: a blocked worker scans for them only when some are.
    std::atomic<std::uint32_t> joining{0};
};

inline constinit epoch_registry registry{};

/// The scope of a section that reads no snapshot itself (the executors' batch section, in
/// which each delivery opens a scoped section of its own): no writer waits for it.
inline constexpr read_scope reads_nothing{&registry, &registry};

/// This thread's record, or null before its first dispatch.
inline constinit thread_local reader_record* this_thread_record = nullptr;

/// The calling thread's identity as an executor's consumer (the executor's never-reused
/// thread token, set when the thread becomes one), or 0. A waiting writer compares it with
/// the consumer a blocked producer waits for.
inline constinit thread_local std::uint64_t this_thread_consumer_token = 0;

/// For a thread that other threads join (a thread_executor's worker): what they name when they
/// wait for it to end (its executor), or null. A producer on this thread blocked on a lane that
/// such a waiting thread consumes would otherwise wait for ever: it gives up with
/// would_deadlock instead (joined_by_consumer, joining_mark).
inline constinit thread_local const struct join_point* this_thread_joined_as = nullptr;

/// What a thread that others join is joined as (a thread_executor owns one for its worker).
/// It also holds the mark of one stopping thread that has no reader record.
struct join_point {
    std::atomic<std::uint64_t> recordless_joiner{0};
};

/// True once this thread's reader_record_owner has been destroyed: the thread is exiting, and
/// thread_local destructors that run after it (objects constructed before the thread's first
/// publish) may still publish. Trivially destructible, so readable at any point of the exit.
inline constinit thread_local bool this_thread_exiting = false;

/// Work to run when the calling thread next leaves its outermost read section, set by
/// request_exit_cleanup (the executors' lanes taken during thread exit). Null when none.
using exit_cleanup_fn = void (*)() noexcept;
inline constinit thread_local exit_cleanup_fn this_thread_exit_cleanup = nullptr;

/// Gives a record back to the registry (its thread no longer reads).
inline void give_back(reader_record* record) noexcept {
    record->exit_pending = false;
    record->temporary = false;
    // release: our last dispatch's reads happen before a writer that sees us quiescent
    // (pairs with the acquire loads in wait_for_readers/oldest_reader_epoch).
    record->state.store(0, std::memory_order_release);
    registry.records_in_use.fetch_sub(1, std::memory_order_seq_cst);
    // release: pairs with the acquire CAS of the next thread that claims this record.
    record->in_use.store(false, std::memory_order_release);
}

/// Gives the record back when its thread exits, so a later thread can reuse it. A
/// thread_local destructor that runs after this one and publishes claims a record again, only
/// for the duration of that dispatch (reader_record::temporary).
struct reader_record_owner {
    reader_record* record = nullptr;
    reader_record_owner() = default;
    reader_record_owner(const reader_record_owner&) = delete;
    reader_record_owner& operator=(const reader_record_owner&) = delete;
    ~reader_record_owner() {
        this_thread_exiting = true;
        if (record == nullptr) return;
        if (record->nesting.load(std::memory_order_relaxed) != 0) {
            // The thread exits from inside a dispatch (std::exit from a handler): the section
            // still running gives the record back if it ever ends.
            record->temporary = true;
            record->exit_pending = true;
            return;
        }
        this_thread_record = nullptr;
        give_back(record);
    }
};

inline thread_local reader_record_owner this_thread_record_owner;

/// Registers the calling thread (reusing a record a finished thread gave back).
/// @throws std::bad_alloc when no record is free and a new one cannot be allocated; nothing
/// changed then (strong guarantee).
[[gnu::noinline]] inline reader_record* register_this_thread() {
    reader_record* record = nullptr;
    // acquire: pairs with the release in the head CAS below, so `next` links are complete.
    for (reader_record* r = registry.head.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        bool free = false;
        // acquire: pairs with the release store of in_use=false by the record's last owner.
        if (!r->in_use.load(std::memory_order_relaxed) &&
            r->in_use.compare_exchange_strong(free, true, std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
            record = r;
            break;
        }
    }
    if (record == nullptr) {
        record = new reader_record;  // may throw; never freed: later threads reuse records
        record->in_use.store(true, std::memory_order_relaxed);
        reader_record* head = registry.head.load(std::memory_order_relaxed);
        do {
            record->next = head;
            // release: a writer that reaches the record through head sees it initialized.
        } while (!registry.head.compare_exchange_weak(head, record, std::memory_order_release,
                                                      std::memory_order_relaxed));
    }
    // seq_cst: a full barrier between "this thread may read snapshots" and its first snapshot
    // load, paired with the seq_cst epoch increment a writer makes before reading this count
    // (Dekker): either the writer counts us, or our first load sees its new snapshot.
    registry.records_in_use.fetch_add(1, std::memory_order_seq_cst);
    TIDINGS_SCHEDULE_POINT();
    if (this_thread_exiting) {
        // The owner is destroyed (thread exit): keep the record for this dispatch only.
        record->temporary = true;
        record->exit_pending = true;
    } else {
        this_thread_record_owner.record = record;
    }
    this_thread_record = record;
    return record;
}

/// Leaving the outermost section with exit work pending: runs the cleanup requested by
/// request_exit_cleanup, and gives a temporary record back.
[[gnu::noinline]] inline void leave_exiting(reader_record* record) noexcept {
    if (const exit_cleanup_fn cleanup = std::exchange(this_thread_exit_cleanup, nullptr)) {
        cleanup();
    }
    record->exit_pending = false;
    if (record->temporary) {
        this_thread_record = nullptr;
        give_back(record);
    }
}

/// Asks for `cleanup` to run when the calling thread leaves its outermost read section (it
/// must be inside one). For per-thread resources taken during thread exit, after their owner
/// was destroyed. A second request before the first ran replaces it.
inline void request_exit_cleanup(exit_cleanup_fn cleanup) noexcept {
    reader_record* record = this_thread_record;
    if (record == nullptr || record->nesting.load(std::memory_order_relaxed) == 0) {
        cleanup();  // not in a section: nothing can use the resource after the caller
        return;
    }
    this_thread_exit_cleanup = cleanup;
    record->exit_pending = true;
}

/// @brief RAII read-side critical section: while one is alive on a thread, nothing that thread
/// could have loaded from a snapshot of its scope is freed. Nestable; costs no shared write.
///
/// The calling thread's first section allocates its reader record (unless a finished thread
/// left one to reuse): @throws std::bad_alloc then, before anything was read (strong).
class epoch_read_section {
public:
    /// A section that may read anything (writers of every bus wait for it).
    epoch_read_section() : epoch_read_section(read_scope{}) {}

    /// A section that reads only `scope`: the snapshots of one channel of one bus, or nothing
    /// at all (a scope whose bus no writer waits for, like the executors' batch section).
    explicit epoch_read_section(read_scope scope) {
        reader_record* record = this_thread_record;
        if (record == nullptr) [[unlikely]] {
            record = register_this_thread();
        }
        record_ = record;
        // Only this thread writes `nesting` and the scopes. release: a writer that reads one
        // of these stores (in reader_holds) also sees that everything this thread read at a
        // level it has left is done. They must also precede the snapshot load that follows
        // for a writer that reads them (store-load, as for `state`): the writer's membarrier
        // orders them, or, without it, a seq_cst exchange after them (of `state` for the
        // first level, of `nesting` for the others) against the writer's seq_cst loads, which
        // read `state`, then `nesting`, then the scopes.
        const std::uint32_t level = record->nesting.load(std::memory_order_relaxed);
        const bool membarrier =
            process_barrier.load(std::memory_order_relaxed) == barrier_kind::membarrier;
        if (membarrier) [[likely]] {
            record->nesting.store(level + 1, std::memory_order_release);
            if (level < scope_depth) [[likely]] {
                record->scope_bus[level].store(scope.bus, std::memory_order_release);
                record->scope_channel[level].store(scope.channel, std::memory_order_release);
            }
            std::atomic_signal_fence(std::memory_order_seq_cst);  // the compiler's order
        } else {
            if (level < scope_depth) {
                record->scope_bus[level].store(scope.bus, std::memory_order_release);
                record->scope_channel[level].store(scope.channel, std::memory_order_release);
            }
            if (level != 0) {
                // seq_cst exchange: our full barrier, and a writer that reads this depth (or
                // a later one) also sees the scopes stored before it.
                record->nesting.exchange(level + 1, std::memory_order_seq_cst);
            } else {
                // The seq_cst exchange of `state` below is the barrier for the first level.
                record->nesting.store(level + 1, std::memory_order_release);
            }
        }
        if (level != 0) {
            // Nested: the state already holds our outermost epoch.
            TIDINGS_SCHEDULE_POINT();
            return;
        }
        // acquire: if we read an epoch past a writer's increment, we also see the snapshot it
        // stored before the increment (pairs with the seq_cst fetch_add in retire()).
        const std::uint64_t epoch = registry.epoch.load(std::memory_order_acquire);
        if (membarrier) {
            // release: our earlier dispatch's reads happen before a writer that reads this
            // state, and the scope stores above before a writer that reads the state. The
            // store-load order against the snapshot load that follows is made by the writer's
            // membarrier; here only the compiler must keep the order.
            record->state.store(epoch, std::memory_order_release);
            std::atomic_signal_fence(std::memory_order_seq_cst);
        } else {
            // seq_cst exchange: the full barrier on our side of the store-load race.
            record->state.exchange(epoch, std::memory_order_seq_cst);
        }
        TIDINGS_SCHEDULE_POINT();
    }
    ~epoch_read_section() {
        const std::uint32_t level = record_->nesting.load(std::memory_order_relaxed) - 1;
        // release: every read made at the level we leave happens before a writer that reads
        // the lower depth (acquire, in reader_holds) and stops looking at that level.
        record_->nesting.store(level, std::memory_order_release);
        if (level == 0) {
            // release: every read of this dispatch happens before a writer that sees 0
            // (pairs with the acquire loads in wait_for_readers/oldest_reader_epoch).
            record_->state.store(0, std::memory_order_release);
            if (record_->exit_pending) [[unlikely]]
                leave_exiting(record_);
        }
    }
    epoch_read_section(const epoch_read_section&) = delete;
    epoch_read_section& operator=(const epoch_read_section&) = delete;

private:
    reader_record* record_;
};

/// Registers the calling thread if it has no record yet; false if that failed (out of memory).
/// For noexcept callers that then skip their work rather than terminate.
[[nodiscard]] inline bool try_register_this_thread() noexcept {
    if (this_thread_record != nullptr) return true;
    try {
        register_this_thread();
        return true;
    } catch (...) {
        return false;
    }
}

/// True while the calling thread is inside a dispatch of any thread-safe bus.
[[nodiscard]] inline bool in_read_section() noexcept {
    const reader_record* record = this_thread_record;
    return record != nullptr && record->nesting.load(std::memory_order_relaxed) != 0;
}

/// Makes every reader's earlier state store visible before we read states. Returns false
/// when no other thread has a record, in which case no barrier is needed at all.
inline bool writer_barrier() noexcept {
    const std::uint32_t own = this_thread_record != nullptr ? 1U : 0U;
    // seq_cst: pairs with the seq_cst fetch_add in register_this_thread (see there).
    if (registry.records_in_use.load(std::memory_order_seq_cst) <= own) return false;
#if TIDINGS_USE_MEMBARRIER
    if (process_barrier.load(std::memory_order_relaxed) == barrier_kind::membarrier) {
        syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    }
#endif
    // Otherwise readers use a seq_cst exchange, and our seq_cst epoch increment (made before
    // this call) and the seq_cst state loads below complete the store-load pairing.
    return true;
}

/// The smallest epoch a reader may still be using: every retired object tagged below it can
/// be reclaimed. Ignores scopes (it serves every retired object at once). Never blocks.
[[nodiscard]] inline std::uint64_t oldest_reader_epoch() noexcept {
    // Objects retired after this load carry a tag at least this epoch, and a reader of them
    // may have entered after our scan: the result never exceeds it. seq_cst: read before the
    // barrier and the scan (pairs with the seq_cst increment in retire()).
    std::uint64_t oldest = registry.epoch.load(std::memory_order_seq_cst);
    reader_record* const self = this_thread_record;
    const bool others = writer_barrier();
    for (reader_record* r = registry.head.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        if (!others && r != self) continue;
        // seq_cst (acquire suffices with membarrier): pairs with the reader's entry store and
        // its release store of 0 on exit.
        const std::uint64_t state = r->state.load(std::memory_order_seq_cst);
        if (state != 0 && state < oldest) oldest = state;
    }
    return oldest;
}

/// True if the reader of `record` may hold something of `scope` (see read_scope) at one of
/// its current levels. Called by a writer after its barrier, for a record whose state showed
/// a dispatch older than the writer's tag.
[[nodiscard]] inline bool reader_holds(const reader_record& record, read_scope scope) noexcept {
    if (scope.bus == nullptr) return true;  // the writer waits for every dispatch
    // seq_cst (acquire suffices with membarrier): pairs with the reader's release stores of
    // `nesting` and the scopes, so that what it read at a level it has left happens before
    // our reclamation; without membarrier, the seq_cst pairing of the store-load race (our
    // snapshot store came first).
    const std::uint32_t depth = record.nesting.load(std::memory_order_seq_cst);
    if (depth > scope_depth) return true;  // deeper levels are not described: anything
    for (std::uint32_t level = 0; level < depth; ++level) {
        const void* bus = record.scope_bus[level].load(std::memory_order_seq_cst);
        if (bus == nullptr) return true;  // a section that may read anything
        if (bus != scope.bus) continue;
        if (scope.channel == nullptr) return true;  // a bus-wide writer
        const void* channel = record.scope_channel[level].load(std::memory_order_seq_cst);
        if (channel == nullptr || channel == scope.channel) return true;
    }
    return false;
}

/// Producer side of a blocked wait: from now until leave_blocked(), this thread (inside a
/// dispatch) waits for space in a lane that the thread whose this_thread_consumer_token is
/// `consumer` drains, and sleeps, if at all, on `wake`. Returns the record to pass to the other
/// calls, or null outside a dispatch.
[[nodiscard]] inline reader_record* enter_blocked(std::uint64_t consumer,
                                                  std::atomic<std::uint32_t>* wake) noexcept {
    reader_record* record = this_thread_record;
    if (record == nullptr || record->nesting.load(std::memory_order_relaxed) == 0) {
        return nullptr;
    }
    record->blocked_consumer.store(consumer, std::memory_order_relaxed);
    record->blocked_wake.store(wake, std::memory_order_relaxed);
    record->blocked_joined_as.store(this_thread_joined_as, std::memory_order_relaxed);
    // release: the consumer, the wake word and what joins us are visible to a writer that
    // sees `blocked` (pairs with the acquire CAS in cancel_blocked). seq_cst as well: ordered
    // with a joining thread's mark (see joined_by_consumer).
    record->blocked.store(block_state::blocked, std::memory_order_seq_cst);
    TIDINGS_SCHEDULE_POINT();
    return record;
}

/// The lane's consumer thread changed while we wait (a manual_executor run by a new thread).
inline void update_blocked_consumer(reader_record* record, std::uint64_t consumer) noexcept {
    if (record == nullptr) return;
    // relaxed: read by a writer that spins on this record, which sees it eventually.
    if (record->blocked_consumer.load(std::memory_order_relaxed) != consumer) {
        record->blocked_consumer.store(consumer, std::memory_order_relaxed);
    }
}

/// True once a writer has canceled the wait (the producer must give up).
[[nodiscard]] inline bool block_canceled(const reader_record* record) noexcept {
    // acquire: pairs with the acq CAS in cancel_blocked; a producer that read the wake word's
    // new value (acquire) also sees the CAS that preceded its increment.
    return record != nullptr &&
           record->blocked.load(std::memory_order_acquire) != block_state::blocked;
}

/// Ends the blocked wait. Returns true if a writer canceled it: the caller must then fail its
/// push with would_deadlock. Waits for a canceling writer to finish with the wake word (it
/// lives in our lane, which must outlive that writer's notify).
inline bool leave_blocked(reader_record* record) noexcept {
    if (record == nullptr) return false;
    block_state expected = block_state::blocked;
    // acq_rel: pairs with the writer's CAS (only one of us moves the state off `blocked`).
    if (record->blocked.compare_exchange_strong(
            expected, block_state::none, std::memory_order_acq_rel, std::memory_order_acquire)) {
        return false;
    }
    // acquire: pairs with the writer's release store of `canceled`, after its notify.
    while (record->blocked.load(std::memory_order_acquire) != block_state::canceled) {
        std::this_thread::yield();
    }
    record->blocked.store(block_state::none, std::memory_order_relaxed);
    return true;
}

/// Writer side: if the reader of `record` is a producer blocked on a lane whose consumer is
/// the calling thread, cancels its wait (it then throws would_deadlock and leaves its
/// dispatch). The caller is waiting for that dispatch to end, so that consumer will not run
/// its lanes until then: without this, both would wait for ever.
inline void cancel_blocked(reader_record& record, std::uint64_t self) noexcept {
    // acquire: pairs with the release store in enter_blocked, so the consumer we read next is
    // the one it stored (or a later update).
    if (record.blocked.load(std::memory_order_acquire) != block_state::blocked) return;
    // A manual_executor handed to another thread just now may make this stale; the producer
    // then gets would_deadlock although the new thread would have run it: a report, not a
    // loss.
    if (record.blocked_consumer.load(std::memory_order_relaxed) != self) return;
    block_state expected = block_state::blocked;
    // acquire: see above. Only one of the producer (leave_blocked) and us moves it.
    if (!record.blocked.compare_exchange_strong(expected, block_state::canceling,
                                                std::memory_order_acquire,
                                                std::memory_order_relaxed)) {
        return;
    }
    std::atomic<std::uint32_t>* wake = record.blocked_wake.load(std::memory_order_relaxed);
    TIDINGS_SCHEDULE_POINT();
    if (wake != nullptr) {
        // release: a producer that reads the new value (acquire) sees our CAS above.
        wake->fetch_add(1, std::memory_order_release);
        wake->notify_all();
    }
    // release: pairs with the acquire load in leave_blocked; we no longer touch the lane.
    record.blocked.store(block_state::canceled, std::memory_order_release);
}

/// Producer side, while blocked (after enter_blocked): true if a thread that waits for this
/// one to end (joining_mark) consumes the lane it waits on (`consumer`). Neither would ever
/// end: the caller gives up with would_deadlock. One load while no thread holds a mark; a scan
/// of the records otherwise (a blocked path only).
[[nodiscard]] inline bool joined_by_consumer(std::uint64_t consumer) noexcept {
    const join_point* joined_as = this_thread_joined_as;
    if (joined_as == nullptr || consumer == 0) return false;
    // seq_cst, here and below: after our seq_cst store of `blocked` (enter_blocked). A joining
    // thread increments the count, stores its mark, then loads `blocked`, all seq_cst
    // (joining_mark). In the single total order, either its load follows our store (it sees
    // us blocked and cancels us) or our loads here follow its stores (we see its count and
    // its mark): never both missed. Its token is stored before its mark (release), so the
    // token we read after the mark (acquire) is the mark's own.
    if (registry.joining.load(std::memory_order_seq_cst) == 0) return false;
    if (joined_as->recordless_joiner.load(std::memory_order_seq_cst) == consumer) return true;
    for (const reader_record* r = registry.head.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        if (r->joining.load(std::memory_order_seq_cst) == joined_as &&
            r->joining_token.load(std::memory_order_relaxed) == consumer) {
            return true;
        }
    }
    return false;
}

/// @brief Held by a thread while it waits for the thread joined as `joined` to end (a
/// thread_executor's stop, from its start, including a wait for another stopper, until its
/// join returns). Meanwhile that thread does not wait for space in a lane this thread consumes
/// (joined_by_consumer), and a wait already begun is canceled here. Any number of threads may
/// hold one for the same executor. The mark is kept in this thread's reader record if it has
/// one (it never allocates one here: at thread exit such a record could never be given back),
/// else in the join point (one such thread at a time; a second one is not protected). Without
/// a consumer token it does nothing: there is nothing to protect.
class joining_mark {
public:
    joining_mark(join_point& joined, std::uint64_t self) noexcept {
        if (self == 0) return;
        // seq_cst: see joined_by_consumer.
        registry.joining.fetch_add(1, std::memory_order_seq_cst);
        counted_ = true;
        record_ = this_thread_record;
        if (record_ != nullptr) {
            previous_ = record_->joining.load(std::memory_order_relaxed);  // only we write it
            previous_token_ = record_->joining_token.load(std::memory_order_relaxed);
            record_->joining_token.store(self, std::memory_order_relaxed);  // published below
            record_->joining.store(&joined, std::memory_order_seq_cst);     // see above
        } else {
            std::uint64_t expected = 0;
            if (joined.recordless_joiner.compare_exchange_strong(expected, self,
                                                                 std::memory_order_seq_cst)) {
                recordless_ = &joined;
            }
        }
        for (reader_record* r = registry.head.load(std::memory_order_acquire); r != nullptr;
             r = r->next) {
            // seq_cst: see joined_by_consumer. Relaxed for `blocked_joined_as`: stored before
            // the `blocked` we read (release).
            if (r->blocked.load(std::memory_order_seq_cst) == block_state::blocked &&
                r->blocked_joined_as.load(std::memory_order_relaxed) == &joined) {
                cancel_blocked(*r, self);
            }
        }
    }
    ~joining_mark() {
        // relaxed/release: a producer that still reads the mark only gives up a wait that
        // could not have ended anyway before our join returned.
        if (record_ != nullptr) {
            record_->joining.store(previous_, std::memory_order_relaxed);
            record_->joining_token.store(previous_token_, std::memory_order_relaxed);
        }
        if (recordless_ != nullptr)
            recordless_->recordless_joiner.store(0, std::memory_order_release);
        if (counted_) registry.joining.fetch_sub(1, std::memory_order_release);
    }
    joining_mark(const joining_mark&) = delete;
    joining_mark& operator=(const joining_mark&) = delete;

private:
    bool counted_ = false;
    reader_record* record_ = nullptr;
    join_point* recordless_ = nullptr;
    const join_point* previous_ = nullptr;
    std::uint64_t previous_token_ = 0;
};

/// cancel_blocked() on every record that wait_for_readers(tag, scope) has to wait for: a
/// producer blocked on a lane this thread consumes would otherwise never end its dispatch.
inline void cancel_blocked_waited_for(std::uint64_t tag, read_scope scope,
                                      std::uint64_t self) noexcept {
    for (reader_record* r = registry.head.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        // seq_cst: see oldest_reader_epoch().
        const std::uint64_t state = r->state.load(std::memory_order_seq_cst);
        if (state == 0 || state > tag || !reader_holds(*r, scope)) continue;
        cancel_blocked(*r, self);
    }
}

/// Waits until no reader can still see an object retired with tag `tag` in `scope` (see
/// read_scope; a null bus: every reader). Readers of other scopes are not waited for.
/// A producer blocked on a lane that this thread consumes is canceled (cancel_blocked).
/// @warning Must not be called inside a dispatch (TIDINGS_ASSERT): it would wait for itself.
inline void wait_for_readers(std::uint64_t tag, read_scope scope = {}) noexcept {
    TIDINGS_ASSERT(!in_read_section(), "wait_for_readers called inside a dispatch");
    if (!writer_barrier()) return;  // no other thread has ever entered a dispatch
    TIDINGS_SCHEDULE_POINT();
    const std::uint64_t self = this_thread_consumer_token;  // 0: consumes no executor
    for (reader_record* r = registry.head.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        // A reader with state <= tag entered before our increment and may hold the object if
        // it holds the scope; once its state changes it has left that dispatch (a re-entry
        // reads a newer epoch), and once no level holds the scope, it has left those levels
        // (a later level loads the new snapshot: it starts after our barrier).
        for (unsigned spins = 0;; ++spins) {
            // seq_cst: see oldest_reader_epoch().
            const std::uint64_t state = r->state.load(std::memory_order_seq_cst);
            if (state == 0 || state > tag) break;
            if (!reader_holds(*r, scope)) break;
            // Every record we must wait for, not only r: r may itself be waiting for such a
            // blocked producer (for a retention's mutex the producer holds, say), which we
            // must cancel for r to end. Producers we would not wait for are left alone.
            if (self != 0) cancel_blocked_waited_for(tag, scope, self);
            if (spins < 64) continue;
            std::this_thread::yield();
        }
    }
}

/// @brief The per-bus part of the thread-safe domain: its list of retired objects.
class epoch_domain {
public:
    /// Enters a dispatch that reads the snapshots of `channel` (null: any channel of the bus),
    /// so that the bus's writers wait for it, and no other bus's.
    /// @throws std::bad_alloc from the calling thread's first section (see epoch_read_section).
    class read_section {
    public:
        explicit read_section(epoch_domain& domain, const void* channel = nullptr)
            : section_(read_scope{&domain, channel}) {}

    private:
        epoch_read_section section_;
    };

    epoch_domain() noexcept { choose_barrier(); }
    epoch_domain(const epoch_domain&) = delete;
    epoch_domain& operator=(const epoch_domain&) = delete;
    ~epoch_domain() { reclaim_list(take_reclaimable(std::numeric_limits<std::uint64_t>::max())); }

    /// True when the calling thread is inside an inline dispatch of this domain's bus that no
    /// queued delivery of the same bus encloses: the bus must not be destroyed now, as that
    /// dispatch still uses it. (A queued delivery's executor keeps its bus alive until the
    /// task ends, and every deeper level ends before it.) Dispatches nested deeper than
    /// scope_depth are not described, and not detected.
    [[nodiscard]] bool in_own_inline_dispatch() const noexcept {
        const reader_record* record = this_thread_record;
        if (record == nullptr) return false;
        // relaxed: the calling thread's own record, read by the thread that writes it.
        const std::uint32_t depth =
            std::min(record->nesting.load(std::memory_order_relaxed), scope_depth);
        for (std::uint32_t level = 0; level < depth; ++level) {
            if (record->scope_bus[level].load(std::memory_order_relaxed) != this) continue;
            // An executor's batch (reads_nothing) right outside: a queued delivery.
            return level == 0 || record->scope_bus[level - 1].load(std::memory_order_relaxed) !=
                                     reads_nothing.bus;
        }
        return false;
    }

    /// Retires an object already unlinked from every snapshot; returns its tag. `scope` is
    /// the channel whose readers may still hold it (null: unknown, any channel of the bus).
    /// Caller holds the bus's writer mutex.
    std::uint64_t retire(retired* object, const void* scope = nullptr) noexcept {
        // seq_cst: orders the unlinking store before the increment for readers that load the
        // new epoch (acquire), and is the writer's half of the store-load race before it reads
        // reader states.
        const std::uint64_t tag = registry.epoch.fetch_add(1, std::memory_order_seq_cst);
        push(object, tag, scope);
        return tag;
    }

    /// Retires two objects unlinked together, with one tag.
    std::uint64_t retire(retired* first, retired* second, const void* scope = nullptr) noexcept {
        const std::uint64_t tag = retire(first, scope);
        push(second, tag, scope);
        return tag;
    }

    /// True when no other thread has ever entered a dispatch (or all that did have exited),
    /// so that a writer outside any dispatch has no reader to wait for.
    [[nodiscard]] static bool no_other_readers() noexcept {
        const std::uint32_t own = this_thread_record != nullptr ? 1U : 0U;
        // seq_cst: see writer_barrier().
        return registry.records_in_use.load(std::memory_order_seq_cst) <= own;
    }

    /// Unlinks and returns every retired object tagged below `oldest`. Caller holds the mutex.
    [[nodiscard]] retired* take_reclaimable(std::uint64_t oldest) noexcept {
        return take_if([oldest](const retired& r) { return r.retire_epoch < oldest; });
    }

    /// After wait(tag, scope): unlinks and returns every retired object of `scope` (every one,
    /// for a null scope) tagged up to `tag`. Objects of other channels stay: their readers
    /// were not waited for. Caller holds the mutex.
    [[nodiscard]] retired* take_waited(std::uint64_t tag, const void* scope) noexcept {
        return take_if([tag, scope](const retired& r) {
            return r.retire_epoch <= tag && (scope == nullptr || r.retire_scope == scope);
        });
    }

    /// How many objects wait; writers reclaim opportunistically past a threshold.
    [[nodiscard]] std::size_t pending() const noexcept { return count_; }

    [[nodiscard]] static bool in_dispatch() noexcept { return in_read_section(); }
    [[nodiscard]] static std::uint64_t oldest_epoch() noexcept { return oldest_reader_epoch(); }
    /// Waits for the readers of this bus that may hold objects of `scope` (a channel; null:
    /// any channel of the bus) retired up to `tag`. Not for other buses' readers.
    void wait(std::uint64_t tag, const void* scope) const noexcept {
        wait_for_readers(tag, read_scope{this, scope});
    }

private:
    /// Unlinks and returns the retired objects that `take` selects; the rest stay, counted.
    template <class Take>
    [[nodiscard]] retired* take_if(Take take) noexcept {
        retired* kept = nullptr;
        retired* taken = nullptr;
        count_ = 0;
        while (list_ != nullptr) {
            retired* next = list_->next_retired;
            if (take(*list_)) {
                list_->next_retired = taken;
                taken = list_;
            } else {
                list_->next_retired = kept;
                kept = list_;
                ++count_;
            }
            list_ = next;
        }
        list_ = kept;
        return taken;
    }

    void push(retired* object, std::uint64_t tag, const void* scope) noexcept {
        object->retire_epoch = tag;
        object->retire_scope = scope;
        object->next_retired = list_;
        list_ = object;
        ++count_;
    }

    retired* list_ = nullptr;
    std::size_t count_ = 0;
};

}  // namespace tidings::detail
