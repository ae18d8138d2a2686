#pragma once
/// @file detail/bus_core.hpp
/// @brief The shared state behind a bus: its channel table, writer mutex, reclamation domain
/// and error handling. Subscriptions and publishers hold it by (weak or strong) shared_ptr, so
/// a handle may outlive the bus object itself.
///
/// Thread safety (thread_safe policy): find_channel and the channels' publish are lock-free;
/// everything that changes a snapshot takes `mutex_`, and never waits for readers while
/// holding it (a handler may subscribe from inside a dispatch).

#include <tidings/config.hpp>
#include <tidings/detail/channel.hpp>
#include <tidings/detail/executor_core.hpp>
#include <tidings/detail/fatal_misuse.hpp>
#include <tidings/detail/type_index.hpp>
#include <tidings/detail/type_name.hpp>
#include <tidings/policy.hpp>
#include <tidings/subscription.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace tidings::detail {

/// The signature of a bus's error handler.
using error_handler = std::function<void(const handler_error&)>;

/// The handler used until the user sets one: one line on stderr, so nothing is silent.
inline void default_error_handler(const handler_error& error) noexcept {
    const char* what = "an exception not derived from std::exception";
    try {
        std::rethrow_exception(error.exception);
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
    }
    std::fprintf(stderr, "tidings: a handler of %.*s (subscription %llu) threw: %s\n",
                 static_cast<int>(error.event_type.size()), error.event_type.data(),
                 static_cast<unsigned long long>(error.subscription_id), what);
}

template <class Threading>
class bus_core final : public bus_core_base,
                       public channel_host<Threading>,
                       public executor_client,
                       public std::enable_shared_from_this<bus_core<Threading>> {
public:
    using mutex_type = typename Threading::mutex_type;
    using domain_type = typename Threading::domain_type;
    template <class T>
    using atomic_type = typename Threading::template atomic_type<T>;

    bus_core() = default;
    bus_core(const bus_core&) = delete;
    bus_core& operator=(const bus_core&) = delete;

    ~bus_core() override {
        shutdown();
        for (channel_record* record = records_; record != nullptr;) {
            channel_record* next = record->next;
            if (record->owns_channel) delete record->channel;
            delete record;
            record = next;
        }
        delete table_.load(std::memory_order_relaxed);  // and, through it, the older tables
    }

    /// The channel of `Key` (an event type, or a command_key), or null if nothing ever
    /// subscribed to or bound a publisher to it, in this module or in another one that names
    /// the same type. Lock-free and allocation-free. The usual case, a type this module looked
    /// up before, costs one acquire load of the table and a probe that compares one pointer
    /// (the type's anchor) and its layout per slot.
    /// @throws tidings::type_mismatch when the bus knows this name from another module with
    ///   another layout, or cannot tell which of two same-named types another module means.
    template <class Key, class Channel = channel<Key, Threading>>
    [[nodiscard]] TIDINGS_ALWAYS_INLINE Channel* find_channel() const {
        // Constants, so that the probe compares immediates; the identity is made only on the
        // slow paths.
        return find_channel_impl<Channel>(key_hash<Key>, &type_anchor<Key>, key_layout<Key>,
                                          by_key<Key>{});
    }

    /// find_channel<Key> for the type `wanted` describes (tests use it to play another module).
    template <class Channel>
    [[nodiscard]] Channel* find_channel(const type_identity& wanted) const {
        return find_channel_impl<Channel>(wanted.hash, wanted.anchor, wanted.layout,
                                          by_identity{wanted});
    }

    /// The channel of `Key`, created on first use (or joined, when another module of the
    /// process made the channel of the same type). After the first call from a module, the
    /// table holds this module's anchor for `Key` and find_channel takes its fast path.
    /// @throws std::bad_alloc, or tidings::type_mismatch (see find_channel); strong guarantee:
    ///   the table is as it was.
    template <class Key, class Channel = channel<Key, Threading>>
    [[nodiscard]] Channel& channel_for() {
        return channel_for_impl<Channel>(key_hash<Key>, &type_anchor<Key>, key_layout<Key>,
                                         by_key<Key>{});
    }

    /// channel_for<Key> for the type `wanted` describes (tests use it to play another module).
    template <class Channel>
    Channel& channel_for(const type_identity& wanted) {
        return channel_for_impl<Channel>(wanted.hash, wanted.anchor, wanted.layout,
                                         by_identity{wanted});
    }

    /// Links a new node into its channel. @throws what the channel's link_locked throws
    /// (bad_alloc; duplicate_handler for a command), leaving the node unlinked.
    template <class Channel, class Node>
    void link(Channel& target, Node& added) {
        if (added.executor != nullptr) {
            // Before linking: from the first queued task on, the executor keeps us alive.
            added.executor->attach(std::shared_ptr<void>(this->shared_from_this()), *this);
        }
        bool reclaim = false;
        {
            std::lock_guard lock{mutex_};
            if (added.executor != nullptr && !delivers_on(added.executor)) {
                executors_.push_back(added.executor);
            }
            if (added.id == 0) added.id = ++last_id_;
            if (shut_down_) {
                added.removed.store(true, std::memory_order_relaxed);
                domain_.retire(&added, scope_of(target));
                return;
            }
            if (retired* old = target.link_locked(added)) domain_.retire(old, scope_of(target));
            reclaim = domain_.pending() >= reclaim_threshold;
        }
        if (reclaim) reclaim_some();
    }

    /// The channel's retention, or null if it never retained.
    template <class Event>
    [[nodiscard]] retention<Event, Threading>* retention_of(channel<Event, Threading>& target) {
        std::lock_guard lock{mutex_};
        return target.retention_if_any();
    }

    /// Sets how many events the channel keeps. Lock order: the retention's mutex, then ours
    /// (as in a replaying subscribe).
    template <class Event>
    void retain(channel<Event, Threading>& target, std::size_t count) {
        retention<Event, Threading>* kept = nullptr;
        {
            std::lock_guard lock{mutex_};
            kept = &target.retention_locked();
        }
        std::lock_guard retention_lock{kept->mutex};
        std::lock_guard lock{mutex_};
        // Strong guarantee: the channel makes the new ring and snapshot before installing them.
        if (retired* old = target.retain_locked(count)) domain_.retire(old, scope_of(target));
    }

    void unsubscribe(node_base& removed) noexcept override {
        std::uint64_t tag = 0;
        retired* garbage = nullptr;
        {
            std::lock_guard lock{mutex_};
            tag = unlink_locked(removed);
            // Even when this call unlinked nothing (a `once` handler that already fired), a
            // dispatch may still be running that handler: wait for the readers of now.
            if (tag == 0) tag = current_tag();
            if (!domain_.in_dispatch() && domain_.no_other_readers()) {
                // Nothing to wait for: reclaim in this critical section.
                garbage = domain_.take_reclaimable(tag + 1);
                tag = 0;
            }
        }
        reclaim_list(garbage);  // outside the lock: a handler's destructor may use the bus
        // Waits only for the dispatches of this channel (see finish_removal).
        if (tag != 0) finish_removal(tag, removed.channel);
    }

    [[nodiscard]] bool connected(const node_base& node) const noexcept override {
        if (node.channel == nullptr) return false;
        if constexpr (Threading::is_thread_safe) {
            // Out of memory for this thread's first read section: answer from the node alone
            // (its memory is the handle's), without the tracked object's check.
            if (!try_register_this_thread()) {
                return !static_cast<const channel_base<Threading>*>(node.channel)->is_removed(node);
            }
        }
        // A read section: a tracked node's owner check reads its handler's state, which a
        // concurrent unsubscribe may reclaim only after we leave.
        typename domain_type::read_section section{domain_, node.channel};
        if (static_cast<const channel_base<Threading>*>(node.channel)->is_removed(node)) {
            return false;
        }
        return node.owner_gone == nullptr || !node.owner_gone(node);
    }

    void remove_in_dispatch(node_base& removed) noexcept override {
        bool reclaim = false;
        {
            std::lock_guard lock{mutex_};
            unlink_locked(removed);
            reclaim = domain_.pending() >= reclaim_threshold;
        }
        if (reclaim) reclaim_some();
    }

    void report_error(std::exception_ptr error, std::string_view event_type,
                      std::uint64_t subscription_id,
                      std::optional<std::exception_ptr>* first_error) noexcept override {
        // relaxed: the policy is a setting, not a synchronization point.
        if (first_error != nullptr &&
            policy_.load(std::memory_order_relaxed) == error_policy::rethrow_first &&
            !first_error->has_value()) {
            first_error->emplace(std::move(error));
            return;
        }
        std::shared_ptr<const error_handler> handler;
        {
            std::lock_guard lock{mutex_};
            handler = error_handler_;
        }
        const handler_error info{std::move(error), event_type, subscription_id};
        // An error handler that throws terminates (this function is noexcept): there is no
        // one left to report its failure to.
        if (handler != nullptr && *handler) {
            (*handler)(info);
        } else {
            default_error_handler(info);
        }
    }

    void set_error_policy(error_policy policy) noexcept {
        policy_.store(policy, std::memory_order_relaxed);  // relaxed: see report_error
    }

    void set_error_handler(error_handler handler) {
        auto shared = std::make_shared<const error_handler>(std::move(handler));
        std::lock_guard lock{mutex_};
        error_handler_ = std::move(shared);
    }

    /// Detaches every subscription (they report connected() == false from now on) and waits
    /// until no dispatch can still call them, unless called inside a dispatch. Executors that
    /// still hold tasks of this bus release it once those are gone (the tasks find no
    /// subscriber and count as cancelled).
    void shutdown() noexcept {
        if (domain_.in_own_inline_dispatch()) {
            fatal_misuse(
                "a bus was destroyed inside one of its own handlers (or an observable inside "
                "one of its own observers) while that dispatch is still running on this "
                "thread; destroy it after the publish returns, or from a queued handler");
        }
        {
            std::lock_guard lock{mutex_};
            if (shut_down_) return;
            shut_down_ = true;
        }
        finish_removal(unlink_matching(nullptr, true), nullptr);  // every channel of this bus
        // An executor may drop its reference to us in bus_shut_down: keep this core alive
        // until after the unlock (null when called from our own destructor, which no
        // executor's reference can outlive).
        const std::shared_ptr<bus_core> self = this->weak_from_this().lock();
        std::lock_guard lock{mutex_};
        // Under our mutex, so that an executor being destroyed (which must take it in
        // detach_executor) is still alive while we call it.
        bool queued_any = false;
        for (const channel_record* record = records_; record != nullptr; record = record->next) {
            queued_any = queued_any || record->channel->queued_any();
        }
        for (executor_core* executor : executors_) executor->bus_shut_down(*this, queued_any);
        executors_.clear();
    }

    /// An executor is going away: unlinks the subscriptions that deliver on it.
    void detach_executor(executor_core& executor) noexcept override {
        finish_removal(unlink_matching(&executor, false), nullptr);
        std::lock_guard lock{mutex_};
        std::erase(executors_, &executor);
    }

private:
    /// True when some node of this bus delivers on `executor` (it is in executors_). Caller
    /// holds mutex_. A loop rather than std::find: <algorithm> is not needed for one search.
    [[nodiscard]] bool delivers_on(const executor_core* executor) const noexcept {
        for (const executor_core* known : executors_) {
            if (known == executor) return true;
        }
        return false;
    }

    /// Past this many retired objects, a writer tries a non-blocking reclamation.
    static constexpr std::size_t reclaim_threshold = 32;
    /// The first table's slots; each new table doubles them, keeping at most half in use.
    static constexpr std::size_t first_table_size = 16;

    /// What the bus knows of one type as one module sees it, and its channel. Made under
    /// `mutex_` before its slot is published, never changed after; freed with the core.
    /// The name is copied: a module that only joined a channel may be unloaded while the bus
    /// lives, and its records' anchors are then plain numbers (compared with the hash, never
    /// followed).
    struct channel_record {
        channel_record(const type_identity& wanted, channel_base<Threading>* target, bool owns,
                       channel_record* older)
            : identity(wanted),
              name(wanted.name),
              channel(target),
              owns_channel(owns),
              next(older) {
            identity.name = name;
        }
        channel_record(const channel_record&) = delete;
        channel_record& operator=(const channel_record&) = delete;

        type_identity identity;  ///< its name views `name`
        std::string name;
        channel_base<Threading>* channel;
        bool owns_channel;     ///< the first record of a channel; it deletes the channel
        channel_record* next;  ///< every record, newest first (guarded by mutex_)
    };

    /// A slot of the open-addressing table. `anchor` is null while the slot is empty, and is
    /// stored last, with release: the other fields are plain and never change afterwards.
    struct table_slot {
        atomic_type<const void*> anchor{nullptr};
        std::uint64_t hash = 0;
        std::uint64_t layout = 0;
        channel_base<Threading>* channel = nullptr;
        const channel_record* record = nullptr;
    };

    /// The table readers probe: `mask + 1` slots (a power of two), linear probing from the
    /// name's hash. Slots are only ever added; a table that would pass half full is replaced
    /// by a copy twice its size, and the old one stays (readers may still probe it) until the
    /// core dies, which costs at most as much memory again as the newest table.
    struct channel_table {
        std::size_t mask = 0;
        std::unique_ptr<table_slot[]> slots;
        std::unique_ptr<channel_table> older;
        std::size_t used = 0;  // guarded by mutex_
    };

    /// The slow paths of a lookup of `Key`, out of line: the fast path then holds nothing but
    /// constants (its identity is made only here).
    template <class Key>
    struct by_key {
        [[gnu::noinline]] static channel_base<Threading>* resolve(const channel_table& table) {
            return bus_core::resolve(table, identity_of<Key>());
        }
        [[noreturn]] [[gnu::noinline]] static void mismatch(const channel_record& known) {
            throw_layout_mismatch(known.identity, identity_of<Key>());
        }
        [[nodiscard]] static type_identity identity() noexcept { return identity_of<Key>(); }
    };

    /// The same for a lookup by an identity (tests).
    struct by_identity {
        const type_identity& wanted;
        [[nodiscard]] channel_base<Threading>* resolve(const channel_table& table) const {
            return bus_core::resolve(table, wanted);
        }
        [[noreturn]] void mismatch(const channel_record& known) const {
            throw_layout_mismatch(known.identity, wanted);
        }
        [[nodiscard]] type_identity identity() const noexcept { return wanted; }
    };

    template <class Channel, class Slow>
    TIDINGS_ALWAYS_INLINE Channel* find_channel_impl(std::uint64_t hash, const void* anchor,
                                                     std::uint64_t layout, Slow slow) const {
        // acquire: pairs with the release store in insert_locked, so the table and the slots
        // copied into it are complete when we see its pointer.
        const channel_table* table = table_.load(std::memory_order_acquire);
        if (table == nullptr) return nullptr;
        bool same_hash = false;
        if (const table_slot* slot = probe(*table, hash, anchor, same_hash)) [[likely]] {
            if (slot->layout != layout) [[unlikely]]
                slow.mismatch(*slot->record);
            return static_cast<Channel*>(slot->channel);
        }
        // Not yet looked up by this module: another module may have made the channel.
        if (!same_hash) return nullptr;
        return static_cast<Channel*>(slow.resolve(*table));
    }

    template <class Channel, class Slow>
    Channel& channel_for_impl(std::uint64_t hash, const void* anchor, std::uint64_t layout,
                              Slow slow) {
        // acquire: see find_channel_impl.
        if (const channel_table* table = table_.load(std::memory_order_acquire)) {
            bool same_hash = false;
            if (const table_slot* slot = probe(*table, hash, anchor, same_hash)) [[likely]] {
                if (slot->layout != layout) [[unlikely]]
                    slow.mismatch(*slot->record);
                return *static_cast<Channel*>(slot->channel);
            }
        }
        TIDINGS_SCHEDULE_POINT();  // another thread may insert the type before we lock
        std::lock_guard lock{mutex_};
        return *static_cast<Channel*>(insert_locked(slow.identity(), [this] {
            return static_cast<channel_base<Threading>*>(new Channel(*this, domain_));
        }));
    }

    /// Where the probe for `hash` starts. A template, so that the cast that a 32-bit size_t
    /// needs is not even compiled where it would be useless (-Wuseless-cast).
    template <class Hash>
    [[nodiscard]] static constexpr std::size_t home_slot(Hash hash, std::size_t mask) noexcept {
        if constexpr (std::is_same_v<Hash, std::size_t>) {
            return hash & mask;
        } else {
            return static_cast<std::size_t>(hash & mask);  // mask fits: so does the result
        }
    }

    /// The slot with `anchor` and `hash` (this module's record of a type; the caller checks
    /// its layout), or null. `same_hash` tells whether the probe passed a slot of the same
    /// hash: another module's record of the same name (or a collision), which only the slow
    /// path can settle.
    TIDINGS_ALWAYS_INLINE static const table_slot* probe(const channel_table& table,
                                                         std::uint64_t hash, const void* anchor,
                                                         bool& same_hash) noexcept {
        // Locals: the acquire loads below would make the compiler reload the members.
        const std::size_t mask = table.mask;
        const table_slot* const slots = table.slots.get();
        for (std::size_t i = home_slot(hash, mask);; i = (i + 1) & mask) {
            const table_slot& slot = slots[i];
            // acquire: pairs with the release store in place_locked, so the slot's other
            // fields (and the channel they point to) are complete.
            const void* const found = slot.anchor.load(std::memory_order_acquire);
            if (found == nullptr) return nullptr;
            if (slot.hash == hash) {
                // The anchor alone is not enough: an unloaded module's anchor may be reused.
                if (found == anchor) [[likely]]
                    return &slot;
                same_hash = true;
            }
        }
    }

    /// The slow path: the channel that another module made for the type `wanted` names, or
    /// null. Only names that other modules can name are shared (see module_local_name); two
    /// different anchors from one module are two different types.
    /// @throws tidings::type_mismatch (see find_channel).
    [[nodiscard]] [[gnu::noinline]] static channel_base<Threading>* resolve(
        const channel_table& table, const type_identity& wanted) {
        if (!wanted.shareable) return nullptr;
        const channel_record* joined = nullptr;  // a record of another module
        bool same_module = false;                // another type of this module has this name
        for (std::size_t i = home_slot(wanted.hash, table.mask);; i = (i + 1) & table.mask) {
            const table_slot& slot = table.slots[i];
            // acquire: see probe.
            if (slot.anchor.load(std::memory_order_acquire) == nullptr) break;
            const channel_record& record = *slot.record;
            if (record.identity.hash != wanted.hash || record.identity.name != wanted.name) {
                continue;  // another name (a collision of the hash, or no relation)
            }
            // Inserted since our probe (or a record of a module loaded at the same address
            // before, for a type of the same name).
            if (record.identity.anchor == wanted.anchor) {
                if (record.identity.layout != wanted.layout) {
                    throw_layout_mismatch(record.identity, wanted);
                }
                return record.channel;
            }
            if (record.identity.module == wanted.module) {
                same_module = true;
            } else if (joined == nullptr) {
                joined = &record;
            } else if (joined->channel != record.channel) {
                throw_ambiguous(wanted);
            }
        }
        if (joined == nullptr) return nullptr;
        // Two types of this module bear the name (clang names a local class without its
        // function), and another module uses it: which one does it mean?
        if (same_module) throw_ambiguous(wanted);
        if (joined->identity.layout != wanted.layout) {
            throw_layout_mismatch(joined->identity, wanted);
        }
        return joined->channel;
    }

    /// Under `mutex_`: the channel of `wanted`, found, joined or made with `make`, and a record
    /// of it for this module. Strong guarantee.
    template <class Make>
    channel_base<Threading>* insert_locked(const type_identity& wanted, Make make) {
        channel_table* table = table_.load(std::memory_order_relaxed);  // ours: under mutex_
        if (table != nullptr) {
            // Another thread of this module may have inserted it since our probe.
            for (std::size_t i = home_slot(wanted.hash, table->mask);; i = (i + 1) & table->mask) {
                const table_slot& slot = table->slots[i];
                const void* const found = slot.anchor.load(std::memory_order_relaxed);
                if (found == nullptr) break;
                if (found != wanted.anchor || slot.hash != wanted.hash) continue;
                if (slot.layout != wanted.layout) {
                    throw_layout_mismatch(slot.record->identity, wanted);
                }
                return slot.channel;
            }
        }
        channel_base<Threading>* joined = table != nullptr ? resolve(*table, wanted) : nullptr;
        // Everything that may throw, before anything changes.
        std::unique_ptr<channel_base<Threading>> created;
        if (joined == nullptr) created.reset(make());
        channel_base<Threading>* const target = joined != nullptr ? joined : created.get();
        auto record = std::make_unique<channel_record>(wanted, target, joined == nullptr, records_);
        std::unique_ptr<channel_table> grown;
        if (table == nullptr || (table->used + 1) * 2 > table->mask + 1) {
            grown = copy_table(table);
        }
        // From here on nothing throws.
        channel_table* const into = grown != nullptr ? grown.get() : table;
        place_locked(*into, *record);
        if (grown != nullptr) {
            grown->older.reset(table);
            TIDINGS_SCHEDULE_POINT();  // readers still probe the old table
            // release: pairs with the acquire loads in find_channel and channel_for.
            table_.store(grown.release(), std::memory_order_release);
        }
        records_ = record.release();
        static_cast<void>(created.release());  // owned by its record from now on
        return target;
    }

    /// A table twice the size of `old` (or the first one), holding its slots; not yet
    /// published, so its slots are written with relaxed stores. @throws std::bad_alloc.
    static std::unique_ptr<channel_table> copy_table(const channel_table* old) {
        const std::size_t size = old != nullptr ? (old->mask + 1) * 2 : first_table_size;
        auto fresh = std::make_unique<channel_table>();
        fresh->slots = std::make_unique<table_slot[]>(size);
        fresh->mask = size - 1;
        if (old != nullptr) {
            for (std::size_t i = 0; i <= old->mask; ++i) {
                if (const table_slot& slot = old->slots[i];
                    slot.anchor.load(std::memory_order_relaxed) != nullptr) {
                    place_locked(*fresh, *slot.record);
                }
            }
        }
        return fresh;
    }

    /// Fills a free slot of `table` with `record` and publishes it. Requires room.
    static void place_locked(channel_table& table, const channel_record& record) noexcept {
        std::size_t i = home_slot(record.identity.hash, table.mask);
        while (table.slots[i].anchor.load(std::memory_order_relaxed) != nullptr) {
            i = (i + 1) & table.mask;
        }
        table_slot& slot = table.slots[i];
        slot.hash = record.identity.hash;
        slot.layout = record.identity.layout;
        slot.channel = record.channel;
        slot.record = &record;
        ++table.used;
        TIDINGS_SCHEDULE_POINT();  // a reader may probe this slot while we fill it
        // release: pairs with the acquire loads in probe and resolve.
        slot.anchor.store(record.identity.anchor, std::memory_order_release);
    }

    [[noreturn]] static void throw_layout_mismatch(const type_identity& known,
                                                   const type_identity& wanted) {
        throw type_mismatch("tidings: two definitions of the type " + describe(wanted) +
                            " meet on one bus: this module's has " + describe_layout(wanted) +
                            ", the bus already has " + describe(known) + " with " +
                            describe_layout(known) +
                            " from elsewhere in the program (an ODR violation, typically "
                            "across shared libraries); every module must see one definition "
                            "of an event or command type");
    }

    [[noreturn]] static void throw_ambiguous(const type_identity& named) {
        throw type_mismatch("tidings: two different types of one module are both named " +
                            describe(named) +
                            " on one bus, and another module uses that name: the bus cannot "
                            "tell which of them it means (clang names a class local to a "
                            "function without the function); rename one of them");
    }

    [[nodiscard]] static std::string describe(const type_identity& identity) {
        return "`" + std::string(identity.name) + "`";
    }

    [[nodiscard]] static std::string describe_layout(const type_identity& identity) {
        return std::to_string(identity.layout >> 8) + " bytes aligned to " +
               std::to_string(std::uint64_t{1} << (identity.layout & 0xffU));
    }

    /// Unlinks the nodes on `executor` (every node if `all`) from every channel and retires
    /// them; returns the last tag (0 if nothing was retired).
    std::uint64_t unlink_matching(const executor_core* executor, bool all) noexcept {
        std::uint64_t tag = 0;
        std::lock_guard lock{mutex_};
        for (const channel_record* record = records_; record != nullptr; record = record->next) {
            if (!record->owns_channel) continue;  // a channel joined from another module
            channel_base<Threading>* target = record->channel;
            retired* nodes = nullptr;
            if (retired* old = target->unlink_matching_locked(executor, all, nodes)) {
                tag = domain_.retire(old, target);
            }
            while (nodes != nullptr) {
                retired* next = nodes->next_retired;
                tag = domain_.retire(nodes, target);
                nodes = next;
            }
        }
        return tag;
    }

    /// Unlinks `removed` and retires it with the snapshot it left; returns the last tag.
    std::uint64_t unlink_locked(node_base& removed) noexcept {
        auto* target = static_cast<channel_base<Threading>*>(removed.channel);
        if (target == nullptr) return 0;
        retired* old = target->unlink_locked(removed);
        if (old == nullptr) return 0;  // unlinked before (once, tracking, shutdown)
        if (old == &removed) return domain_.retire(old, target);  // a command: no snapshot
        return domain_.retire(old, &removed, target);
    }

    /// After an unsubscribe: outside a dispatch, wait until no reader can be running the
    /// removed handlers and reclaim; inside one, leave that to a later writer. `scope` is the
    /// channel the objects tagged `tag` came from (null: any channel of this bus): the wait is
    /// only for this bus's dispatches of that channel, never for another bus's or channel's.
    void finish_removal(std::uint64_t tag, const void* scope) noexcept {
        bool reclaim = false;
        if (!domain_.in_dispatch()) {
            if (tag == 0) tag = current_tag();
            domain_.wait(tag, scope);
            retired* garbage = nullptr;
            {
                std::lock_guard lock{mutex_};
                // Only what the wait covered: objects of other channels may still be read.
                garbage = domain_.take_waited(tag, scope);
                reclaim = domain_.pending() >= reclaim_threshold;
            }
            // Outside the lock: a handler's destructor may unsubscribe or subscribe.
            reclaim_list(garbage);
        } else {
            std::lock_guard lock{mutex_};
            reclaim = domain_.pending() >= reclaim_threshold;
        }
        if (reclaim) reclaim_some();
    }

    /// A non-blocking reclamation, once enough garbage has gathered.
    void reclaim_some() noexcept {
        const std::uint64_t oldest = domain_.oldest_epoch();
        retired* garbage = nullptr;
        {
            std::lock_guard lock{mutex_};
            garbage = domain_.take_reclaimable(oldest);
        }
        reclaim_list(garbage);
    }

    /// What a channel's readers and its retired objects name as their scope (detail/epoch.hpp):
    /// its channel_base address, as in node_base::channel.
    template <class Channel>
    [[nodiscard]] static const void* scope_of(Channel& target) noexcept {
        return static_cast<channel_base<Threading>*>(&target);
    }

    [[nodiscard]] static std::uint64_t current_tag() noexcept {
        if constexpr (Threading::is_thread_safe) {
            // seq_cst: like a retire, so that readers of the current epoch are waited for.
            return registry.epoch.fetch_add(1, std::memory_order_seq_cst);
        } else {
            return 0;
        }
    }

    mutable mutex_type mutex_;
    mutable domain_type domain_;
    /// The newest channel table (null until the first channel); it owns the older ones.
    atomic_type<channel_table*> table_{nullptr};
    /// Every record, newest first (guarded by mutex_).
    channel_record* records_ = nullptr;
    std::uint64_t last_id_ = 0;  // guarded by mutex_
    bool shut_down_ = false;     // guarded by mutex_
    atomic_type<error_policy> policy_{error_policy::rethrow_first};
    std::shared_ptr<const error_handler> error_handler_;  // guarded by mutex_
    std::vector<executor_core*> executors_;  // executors some node delivers on; by mutex_
};

}  // namespace tidings::detail
