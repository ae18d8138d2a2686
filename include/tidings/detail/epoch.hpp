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
///   thread writes `state` and `nesting`; writers only read `state`.
/// - A writer unlinks an object (a new snapshot is stored), then retires it with the tag
///   `t = epoch++`. A reader that entered with an epoch greater than `t` loaded the epoch after
///   the increment, so it cannot see the unlinked object. So a retired object is free to
///   reclaim once every reader record is quiescent or holds an epoch greater than `t`.
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
/// every caller of `retire` and `take_reclaimable` holds.

#include <tidings/config.hpp>

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
};

/// Destroys every object of a list built by take_reclaimable().
inline void reclaim_list(retired* list) noexcept {
    while (list != nullptr) {
        retired* next = list->next_retired;
        list->reclaim(list);
        list = next;
    }
}

/// One thread's read-side state. Padded so that a thread's writes to its own record never
/// share a cache line with another thread's.
struct alignas(cache_line_size) reader_record {
    std::atomic<std::uint64_t> state{0};  ///< 0 = quiescent, else the epoch at entry
    std::atomic<bool> in_use{false};      ///< owned by a live thread
    /// Owner-only: leaving the outermost section has work to do (thread exit, see
    /// reader_record_owner): checked there, so the common exit tests one byte of this line.
    bool exit_pending = false;
    /// Owner-only: the record was claimed after the thread's record owner was destroyed (a
    /// publish from a thread_local destructor); it is given back when the section ends.
    bool temporary = false;
    std::uint32_t nesting = 0;      ///< dispatch depth; touched only by the owner thread
    reader_record* next = nullptr;  ///< immutable once the record is in the registry
};
static_assert(sizeof(reader_record) == cache_line_size, "one reader record per cache line");

enum class barrier_kind : int { unknown = 0, membarrier = 1, sequentially_consistent = 2 };

/// The process-wide part: the epoch and the list of reader records. Constant-initialized, so
/// it is usable from any static initializer.
struct epoch_registry {
    alignas(cache_line_size) std::atomic<std::uint64_t> epoch{1};
    alignas(cache_line_size) std::atomic<reader_record*> head{nullptr};
    std::atomic<std::uint32_t> records_in_use{0};
    std::atomic<barrier_kind> barrier{barrier_kind::unknown};
};

inline constinit epoch_registry registry{};

/// This thread's record, or null before its first dispatch.
inline constinit thread_local reader_record* this_thread_record = nullptr;

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
        if (record->nesting != 0) {
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

/// Chooses the barrier once per process. Called by every bus constructor, so a reader never
/// relies on a membarrier that no writer issues.
inline barrier_kind choose_barrier() noexcept {
    barrier_kind kind = registry.barrier.load(std::memory_order_acquire);
    if (kind != barrier_kind::unknown) return kind;
    barrier_kind chosen = barrier_kind::sequentially_consistent;
#if TIDINGS_USE_MEMBARRIER
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
        chosen = barrier_kind::membarrier;
    }
#endif
    barrier_kind expected = barrier_kind::unknown;
    // acq_rel: the registration above happens before any reader that sees `membarrier`.
    registry.barrier.compare_exchange_strong(expected, chosen, std::memory_order_acq_rel,
                                             std::memory_order_acquire);
    return registry.barrier.load(std::memory_order_acquire);
}

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
    if (record == nullptr || record->nesting == 0) {
        cleanup();  // not in a section: nothing can use the resource after the caller
        return;
    }
    this_thread_exit_cleanup = cleanup;
    record->exit_pending = true;
}

/// @brief RAII read-side critical section: while one is alive on a thread, nothing that thread
/// could have loaded from a snapshot is freed. Nestable; costs no shared write.
///
/// The calling thread's first section allocates its reader record (unless a finished thread
/// left one to reuse): @throws std::bad_alloc then, before anything was read (strong).
class epoch_read_section {
public:
    epoch_read_section() {
        reader_record* record = this_thread_record;
        if (record == nullptr) [[unlikely]] {
            record = register_this_thread();
        }
        record_ = record;
        if (record->nesting++ != 0) return;
        // acquire: if we read an epoch past a writer's increment, we also see the snapshot it
        // stored before the increment (pairs with the seq_cst fetch_add in retire()).
        const std::uint64_t epoch = registry.epoch.load(std::memory_order_acquire);
        if (registry.barrier.load(std::memory_order_relaxed) == barrier_kind::membarrier) {
            // release: our earlier dispatch's reads happen before a writer that reads this
            // state. The store-load order against the snapshot load that follows is made by
            // the writer's membarrier; here only the compiler must keep the order.
            record->state.store(epoch, std::memory_order_release);
            std::atomic_signal_fence(std::memory_order_seq_cst);
        } else {
            // seq_cst exchange: the full barrier on our side of the store-load race.
            record->state.exchange(epoch, std::memory_order_seq_cst);
        }
        TIDINGS_SCHEDULE_POINT();
    }
    ~epoch_read_section() {
        if (--record_->nesting == 0) {
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
    return record != nullptr && record->nesting != 0;
}

/// Makes every reader's earlier state store visible before we read states. Returns false
/// when no other thread has a record, in which case no barrier is needed at all.
inline bool writer_barrier() noexcept {
    const std::uint32_t own = this_thread_record != nullptr ? 1U : 0U;
    // seq_cst: pairs with the seq_cst fetch_add in register_this_thread (see there).
    if (registry.records_in_use.load(std::memory_order_seq_cst) <= own) return false;
#if TIDINGS_USE_MEMBARRIER
    if (registry.barrier.load(std::memory_order_relaxed) == barrier_kind::membarrier) {
        syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    }
#endif
    // Otherwise readers use a seq_cst exchange, and our seq_cst epoch increment (made before
    // this call) and the seq_cst state loads below complete the store-load pairing.
    return true;
}

/// The smallest epoch a reader may still be using: every retired object tagged below it can
/// be reclaimed. Never blocks.
[[nodiscard]] inline std::uint64_t oldest_reader_epoch() noexcept {
    std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
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

/// Waits until no reader can still see an object retired with tag `tag`.
/// @warning Must not be called inside a dispatch (TIDINGS_ASSERT): it would wait for itself.
inline void wait_for_readers(std::uint64_t tag) noexcept {
    TIDINGS_ASSERT(!in_read_section(), "wait_for_readers called inside a dispatch");
    if (!writer_barrier()) return;  // no other thread has ever entered a dispatch
    for (reader_record* r = registry.head.load(std::memory_order_acquire); r != nullptr;
         r = r->next) {
        // A reader with state <= tag entered before our increment and may hold the object;
        // once its state changes it has left that dispatch (a re-entry reads a newer epoch).
        for (unsigned spins = 0;; ++spins) {
            // seq_cst: see oldest_reader_epoch().
            const std::uint64_t state = r->state.load(std::memory_order_seq_cst);
            if (state == 0 || state > tag) break;
            if (spins < 64) continue;
            std::this_thread::yield();
        }
    }
}

/// @brief The per-bus part of the thread-safe domain: its list of retired objects.
class epoch_domain {
public:
    /// Enters a dispatch; the domain argument only mirrors single_thread_domain's interface.
    /// @throws std::bad_alloc from the calling thread's first section (see epoch_read_section).
    class read_section {
    public:
        explicit read_section(epoch_domain& /*domain*/) {}

    private:
        epoch_read_section section_;
    };

    epoch_domain() noexcept { choose_barrier(); }
    epoch_domain(const epoch_domain&) = delete;
    epoch_domain& operator=(const epoch_domain&) = delete;
    ~epoch_domain() { reclaim_list(take_reclaimable(std::numeric_limits<std::uint64_t>::max())); }

    /// Retires an object already unlinked from every snapshot; returns its tag.
    /// Caller holds the bus's writer mutex.
    std::uint64_t retire(retired* object) noexcept {
        // seq_cst: orders the unlinking store before the increment for readers that load the
        // new epoch (acquire), and is the writer's half of the store-load race before it reads
        // reader states.
        const std::uint64_t tag = registry.epoch.fetch_add(1, std::memory_order_seq_cst);
        push(object, tag);
        return tag;
    }

    /// Retires two objects unlinked together, with one tag.
    std::uint64_t retire(retired* first, retired* second) noexcept {
        const std::uint64_t tag = retire(first);
        push(second, tag);
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
        retired* keep = nullptr;
        retired* take = nullptr;
        count_ = 0;
        while (list_ != nullptr) {
            retired* next = list_->next_retired;
            if (list_->retire_epoch < oldest) {
                list_->next_retired = take;
                take = list_;
            } else {
                list_->next_retired = keep;
                keep = list_;
                ++count_;
            }
            list_ = next;
        }
        list_ = keep;
        return take;
    }

    /// How many objects wait; writers reclaim opportunistically past a threshold.
    [[nodiscard]] std::size_t pending() const noexcept { return count_; }

    [[nodiscard]] static bool in_dispatch() noexcept { return in_read_section(); }
    [[nodiscard]] static std::uint64_t oldest_epoch() noexcept { return oldest_reader_epoch(); }
    static void wait(std::uint64_t tag) noexcept { wait_for_readers(tag); }

private:
    void push(retired* object, std::uint64_t tag) noexcept {
        object->retire_epoch = tag;
        object->next_retired = list_;
        list_ = object;
        ++count_;
    }

    retired* list_ = nullptr;
    std::size_t count_ = 0;
};

}  // namespace tidings::detail
