// Stress tests of tidings::bus: publishing, subscribing and unsubscribing from several threads
// at once. They run under ThreadSanitizer in CI, with smaller iteration counts
// (tidings_test::scaled). Catch2's assertions are not thread-safe: worker threads only count,
// and the test's own thread checks the counts.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <deque>
#include <latch>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace {

using tidings_test::busy_work;
using tidings_test::counted;
using tidings_test::lifetime_counter;
using tidings_test::scaled;
using tidings_test::spin_until;

struct alpha {
    std::int64_t value = 0;
};
struct beta {
    std::int64_t value = 0;
};
/// Carries the last round its publisher had seen end when it started publishing.
struct stamped {
    std::int64_t seen_round = -1;
};

/// The next permanent handler expected in the current dispatch of this thread, per type.
thread_local int next_alpha_handler = 0;
thread_local int next_beta_handler = 0;

/// Publishes until stop(), from `count` threads. Each thread yields between publishes: with
/// more runnable threads than cores, a publisher preempted inside a dispatch would otherwise
/// hold up an unsubscribe (which waits for it) for a whole scheduler time slice.
class publishing_threads {
public:
    template <class Publish>
    publishing_threads(int count, Publish publish) {
        for (int t = 0; t < count; ++t) {
            threads_.emplace_back([this, publish, t] {
                while (!stop_.load(std::memory_order_acquire)) {
                    publish(t);
                    std::this_thread::yield();
                }
            });
        }
    }
    ~publishing_threads() { stop(); }
    publishing_threads(const publishing_threads&) = delete;
    publishing_threads& operator=(const publishing_threads&) = delete;

    void stop() {
        stop_.store(true, std::memory_order_release);
        threads_.clear();  // joins
    }

private:
    std::atomic<bool> stop_{false};
    std::vector<std::jthread> threads_;
};

}  // namespace

TEST_CASE(
    "4 threads publishing 2 types while 2 threads subscribe and unsubscribe deliver exact "
    "counts",
    "[threads]") {
    constexpr int publishers = 4;
    constexpr int churners = 2;
    constexpr int permanent = 4;                 // per event type
    const std::int64_t events = scaled(40'000);  // per publisher and per type
    tidings::bus bus;

    std::array<std::atomic<std::int64_t>, permanent> alpha_counts{};
    std::array<std::atomic<std::int64_t>, permanent> beta_counts{};
    std::atomic<std::int64_t> alpha_sum{0};
    std::atomic<std::int64_t> order_violations{0};
    std::vector<tidings::subscription> permanents;
    for (int k = 0; k < permanent; ++k) {
        // Priorities 30, 20, 10, 0: handler k must run k-th in every dispatch, whatever the
        // churning subscribers (priorities -5..35) do around them.
        const tidings::priority rank{(permanent - 1 - k) * 10};
        permanents.push_back(bus.subscribe<alpha>(
            [&, k](const alpha& e) {
                if (next_alpha_handler != k) order_violations.fetch_add(1);
                next_alpha_handler = (k + 1) % permanent;
                alpha_counts[k].fetch_add(1, std::memory_order_relaxed);
                if (k == 0) alpha_sum.fetch_add(e.value, std::memory_order_relaxed);
            },
            rank));
        permanents.push_back(bus.subscribe<beta>(
            [&, k](const beta&) {
                if (next_beta_handler != k) order_violations.fetch_add(1);
                next_beta_handler = (k + 1) % permanent;
                beta_counts[k].fetch_add(1, std::memory_order_relaxed);
            },
            rank));
    }

    // A churned subscription: its handler must never run once unsubscribe() has returned.
    struct churned {
        std::atomic<bool> gone{false};
    };
    std::atomic<std::int64_t> churn_calls{0};
    std::atomic<std::int64_t> churn_violations{0};
    std::atomic<std::int64_t> churn_cycles{0};
    std::atomic<int> publishers_left{publishers};
    std::latch start{publishers + churners};
    {
        std::vector<std::jthread> threads;
        for (int c = 0; c < churners; ++c) {
            threads.emplace_back([&, c] {
                std::minstd_rand rng(static_cast<unsigned>(c + 1));
                std::deque<churned> records;  // stable addresses; one per subscription made
                std::vector<std::pair<tidings::subscription, churned*>> live;
                auto make = [&]() -> std::pair<tidings::subscription, churned*> {
                    churned* record = &records.emplace_back();
                    const tidings::priority rank{static_cast<int>(rng() % 41) - 5};
                    auto handler = [&churn_calls, &churn_violations, record](const auto&) {
                        if (record->gone.load(std::memory_order_acquire)) {
                            churn_violations.fetch_add(1);
                        }
                        churn_calls.fetch_add(1, std::memory_order_relaxed);
                    };
                    if (rng() % 2 == 0) return {bus.subscribe<alpha>(handler, rank), record};
                    return {bus.subscribe<beta>(handler, rank), record};
                };
                start.arrive_and_wait();
                while (publishers_left.load(std::memory_order_acquire) != 0) {
                    while (live.size() < 8) live.push_back(make());
                    std::shuffle(live.begin(), live.end(), rng);
                    while (live.size() > 2) {
                        auto [handle, record] = std::move(live.back());
                        live.pop_back();
                        switch (rng() % 3) {
                            case 0:
                                handle.unsubscribe();
                                break;
                            case 1:
                                handle = tidings::subscription{};  // move-assignment
                                break;
                            default: {
                                const tidings::subscription destroyed{std::move(handle)};
                            } break;
                        }
                        record->gone.store(true, std::memory_order_release);
                    }
                    churn_cycles.fetch_add(1, std::memory_order_relaxed);
                    std::this_thread::yield();
                    if (records.size() > 4096) {
                        // Keep memory bounded: only the live ones may still be referenced.
                        for (auto& [handle, record] : live) {
                            handle.unsubscribe();
                            record->gone.store(true, std::memory_order_release);
                        }
                        live.clear();
                        records.clear();
                    }
                }
                for (auto& [handle, record] : live) handle.unsubscribe();
            });
        }
        for (int p = 0; p < publishers; ++p) {
            threads.emplace_back([&, p] {
                start.arrive_and_wait();
                for (std::int64_t i = 0; i < events; ++i) {
                    bus.publish(alpha{p + 1});
                    bus.publish(beta{i});
                    // Six threads share two cores: see publishing_threads.
                    std::this_thread::yield();
                }
                publishers_left.fetch_sub(1, std::memory_order_release);
            });
        }
    }

    const std::int64_t expected = publishers * events;
    std::int64_t deliveries = 0;
    for (int k = 0; k < permanent; ++k) {
        INFO("permanent handler " << k);
        CHECK(alpha_counts[k].load() == expected);
        CHECK(beta_counts[k].load() == expected);
        deliveries += alpha_counts[k].load() + beta_counts[k].load();
    }
    CHECK(alpha_sum.load() == events * (1 + 2 + 3 + 4));
    CHECK(order_violations.load() == 0);
    CHECK(churn_violations.load() == 0);
    CHECK(churn_cycles.load() > 0);
    CHECK(bus.subscriber_count<alpha>() == permanent);
    CHECK(bus.subscriber_count<beta>() == permanent);
    if (!tidings_test::under_tsan) CHECK(deliveries >= 1'000'000);
}

TEST_CASE("when unsubscribe returns the handler is not running and never runs again", "[threads]") {
    struct tick {};
    struct round_state {
        std::atomic<int> running{0};
        std::atomic<std::int64_t> calls{0};
        std::atomic<bool> stopped{false};
        lifetime_counter state;
    };
    const std::int64_t rounds = scaled(1'000, 10);
    tidings::bus bus;
    std::atomic<std::int64_t> seen_stopped{0};
    std::int64_t running_after_unsubscribe = 0;
    std::int64_t state_alive_after_unsubscribe = 0;
    std::deque<round_state> states;  // kept to the end: a late call would still find its state

    // Other subscribers around it, so the dispatch has several nodes.
    std::atomic<std::int64_t> others{0};
    auto before = bus.subscribe<tick>(
        [&](const tick&) { others.fetch_add(1, std::memory_order_relaxed); }, tidings::priority{1});
    auto after =
        bus.subscribe<tick>([&](const tick&) { others.fetch_add(1, std::memory_order_relaxed); },
                            tidings::priority{-1});
    publishing_threads publishers{2, [&](int) { bus.publish(tick{}); }};

    for (std::int64_t round = 0; round < rounds; ++round) {
        round_state& st = states.emplace_back();
        std::optional<tidings::subscription> sub{
            bus.subscribe<tick>([&st, &seen_stopped, keep = counted{st.state}](const tick&) {
                st.running.fetch_add(1, std::memory_order_seq_cst);
                if (st.stopped.load(std::memory_order_seq_cst)) seen_stopped.fetch_add(1);
                busy_work(64);
                if (st.stopped.load(std::memory_order_seq_cst)) seen_stopped.fetch_add(1);
                st.calls.fetch_add(1, std::memory_order_relaxed);
                st.running.fetch_sub(1, std::memory_order_seq_cst);
            })};
        // Unsubscribe while a call is (very likely) in progress in a publishing thread.
        spin_until([&] {
            return st.running.load(std::memory_order_relaxed) > 0 ||
                   st.calls.load(std::memory_order_relaxed) > 100;
        });
        switch (round % 3) {
            case 0:
                sub->unsubscribe();
                break;
            case 1:
                sub.reset();  // the destructor
                break;
            default:
                *sub = tidings::subscription{};  // move-assignment
                break;
        }
        if (st.running.load(std::memory_order_seq_cst) != 0) ++running_after_unsubscribe;
        st.stopped.store(true, std::memory_order_seq_cst);
        if (st.state.live() != 0) ++state_alive_after_unsubscribe;
    }
    publishers.stop();

    CHECK(running_after_unsubscribe == 0);
    CHECK(seen_stopped.load() == 0);
    CHECK(state_alive_after_unsubscribe == 0);
    CHECK(others.load() > 0);
}

TEST_CASE(
    "a handler unsubscribing itself while other threads publish returns and is never "
    "started again",
    "[threads]") {
    struct round_state {
        std::int64_t id = 0;
        tidings::subscription sub;
        std::atomic<bool> ready{false};  // `sub` holds the handle
        std::atomic<bool> claimed{false};
        std::atomic<bool> unsubscribed{false};
        std::atomic<std::int64_t> calls{0};
    };
    const std::int64_t rounds = scaled(1'000, 10);
    tidings::bus bus;
    // The newest round whose self-unsubscribe had returned; each publish carries the value its
    // publisher saw before starting, so a dispatch that started later cannot call that round's
    // handler.
    std::atomic<std::int64_t> last_unsubscribed{-1};
    std::atomic<std::int64_t> late_calls{0};
    std::deque<round_state> states;

    publishing_threads publishers{
        3, [&](int) { bus.publish(stamped{last_unsubscribed.load(std::memory_order_acquire)}); }};
    for (std::int64_t round = 0; round < rounds; ++round) {
        round_state& st = states.emplace_back();
        st.id = round;
        st.sub = bus.subscribe<stamped>([&st, &late_calls, &last_unsubscribed](const stamped& e) {
            if (e.seen_round >= st.id) late_calls.fetch_add(1);
            st.calls.fetch_add(1, std::memory_order_relaxed);
            busy_work(16);
            // acquire: pairs with the release store below, after `sub` was assigned.
            if (!st.ready.load(std::memory_order_acquire)) return;
            if (st.claimed.exchange(true, std::memory_order_acq_rel)) return;
            st.sub.unsubscribe();  // inside a dispatch: must return at once
            // release: pairs with the acquire loads of the publishers and of the test thread.
            last_unsubscribed.store(st.id, std::memory_order_release);
            st.unsubscribed.store(true, std::memory_order_release);
        });
        st.ready.store(true, std::memory_order_release);
        spin_until([&] { return st.unsubscribed.load(std::memory_order_acquire); });
        // This thread's own publish starts after the unsubscribe returned.
        bus.publish(stamped{last_unsubscribed.load(std::memory_order_acquire)});
    }
    publishers.stop();
    CHECK(late_calls.load() == 0);
    CHECK(bus.subscriber_count<stamped>() == 0);
    std::int64_t disconnected = 0;
    for (const round_state& st : states) disconnected += st.sub.connected() ? 0 : 1;
    CHECK(disconnected == rounds);
}

TEST_CASE(
    "concurrent subscribes, unsubscribes and handle destruction, then the bus dies before "
    "the handles",
    "[threads]") {
    constexpr int workers = 3;
    const std::int64_t steps = scaled(20'000);
    const bool publisher_outlives_bus = GENERATE(false, true);
    auto bus = std::make_unique<tidings::bus>();
    std::optional<tidings::publisher<alpha>> pub;
    if (publisher_outlives_bus) pub.emplace(*bus);
    lifetime_counter state;
    std::atomic<std::int64_t> delivered{0};
    std::atomic<std::int64_t> connected_after_bus_died{0};
    std::atomic<std::int64_t> handles_left{0};
    std::latch done_publishing{workers};
    std::latch bus_destroyed{1};
    {
        std::vector<std::jthread> threads;
        for (int w = 0; w < workers; ++w) {
            threads.emplace_back([&, w] {
                std::minstd_rand rng(static_cast<unsigned>(100 + w));
                std::vector<tidings::subscription> mine;
                auto pick = [&] { return static_cast<std::size_t>(rng() % mine.size()); };
                for (std::int64_t i = 0; i < steps; ++i) {
                    const unsigned op = rng() % 10;
                    if (op < 3 || mine.size() < 4) {
                        auto count = [&delivered, keep = counted{state}](const auto&) {
                            delivered.fetch_add(1, std::memory_order_relaxed);
                        };
                        const tidings::priority rank{static_cast<int>(rng() % 5)};
                        switch (rng() % 4) {
                            case 0:
                                mine.push_back(bus->subscribe<alpha>(count, rank));
                                break;
                            case 1:
                                mine.push_back(bus->subscribe<beta>(count, tidings::once));
                                break;
                            case 2:
                                mine.push_back(bus->subscribe<alpha>(
                                    count, tidings::filter(
                                               [](const alpha& e) { return e.value % 2 == 0; })));
                                break;
                            default:
                                mine.push_back(bus->subscribe<beta>(count));
                                break;
                        }
                    } else if (op < 5) {
                        bus->publish(alpha{static_cast<std::int64_t>(i)});
                    } else if (op < 7) {
                        bus->publish(beta{});
                    } else if (op == 7) {
                        mine[pick()].unsubscribe();  // the handle stays
                    } else if (op == 8) {
                        mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(pick()));
                    } else {
                        const std::size_t a = pick();
                        const std::size_t b = pick();
                        if (a != b) mine[a] = std::move(mine[b]);
                    }
                    if (mine.size() > 48) mine.erase(mine.begin(), mine.begin() + 24);
                }
                done_publishing.count_down();
                bus_destroyed.wait();
                // The bus is gone; these handles were made in this thread and die here.
                for (std::size_t i = 0; i < mine.size(); ++i) {
                    if (mine[i].connected()) connected_after_bus_died.fetch_add(1);
                    if (i % 2 == 0) mine[i].unsubscribe();
                }
                handles_left.fetch_add(static_cast<std::int64_t>(mine.size()));
            });
        }
        done_publishing.wait();
        bus.reset();
        CHECK(state.live() == 0);  // every handler died with the bus, while handles live on
        if (pub) pub->publish(alpha{});
        bus_destroyed.count_down();
    }
    CHECK(connected_after_bus_died.load() == 0);
    CHECK(handles_left.load() > 0);
    CHECK(delivered.load() > 0);
    CHECK(state.live() == 0);
}

TEST_CASE("two handlers that unsubscribe each other from two threads do not deadlock",
          "[threads]") {
    struct round_state {
        tidings::subscription a;  // used by the beta thread's handler
        tidings::subscription b;  // used by the alpha thread's handler
    };
    const std::int64_t rounds = scaled(500, 10);
    tidings::bus bus;
    round_state current;
    std::barrier step{3};    // the test thread and the two publishers, twice per round
    std::barrier inside{2};  // the two handlers meet while both are inside a dispatch
    std::atomic<std::int64_t> a_calls{0};
    std::atomic<std::int64_t> b_calls{0};
    {
        std::jthread alpha_thread([&] {
            for (std::int64_t r = 0; r < rounds; ++r) {
                step.arrive_and_wait();
                bus.publish(alpha{});
                step.arrive_and_wait();
            }
        });
        std::jthread beta_thread([&] {
            for (std::int64_t r = 0; r < rounds; ++r) {
                step.arrive_and_wait();
                bus.publish(beta{});
                step.arrive_and_wait();
            }
        });
        std::int64_t bad_rounds = 0;
        for (std::int64_t r = 0; r < rounds; ++r) {
            current.a = bus.subscribe<alpha>([&](const alpha&) {
                a_calls.fetch_add(1, std::memory_order_relaxed);
                inside.arrive_and_wait();
                current.b.unsubscribe();  // b is running in the other thread right now
            });
            current.b = bus.subscribe<beta>([&](const beta&) {
                b_calls.fetch_add(1, std::memory_order_relaxed);
                inside.arrive_and_wait();
                current.a.unsubscribe();
            });
            step.arrive_and_wait();  // go
            step.arrive_and_wait();  // both publishes returned
            if (current.a.connected() || current.b.connected()) ++bad_rounds;
        }
        CHECK(bad_rounds == 0);
    }
    CHECK(a_calls.load() == rounds);
    CHECK(b_calls.load() == rounds);
    CHECK(bus.subscriber_count<alpha>() == 0);
    CHECK(bus.subscriber_count<beta>() == 0);
}

TEST_CASE("a tracked object dying in one thread is never used by a handler running in another",
          "[threads]") {
    struct tick {};
    struct flag {
        std::atomic<bool> destroyed{false};
    };
    struct probe {
        flag* f;
        std::atomic<std::int64_t> hits{0};
        explicit probe(flag& x) : f(&x) {}
        probe(const probe&) = delete;
        probe& operator=(const probe&) = delete;
        ~probe() { f->destroyed.store(true, std::memory_order_seq_cst); }
    };
    const std::int64_t rounds = scaled(1'000, 10);
    tidings::bus bus;
    std::atomic<std::int64_t> used_dead{0};
    std::atomic<std::int64_t> calls{0};
    std::deque<flag> flags;
    publishing_threads publishers{2, [&](int) { bus.publish(tick{}); }};
    for (std::int64_t round = 0; round < rounds; ++round) {
        flag& f = flags.emplace_back();
        auto owner = std::make_shared<probe>(f);
        probe* raw = owner.get();
        const std::int64_t calls_before = calls.load();
        auto sub = bus.subscribe<tick>(
            [raw, &f, &used_dead, &calls](const tick&) {
                if (f.destroyed.load(std::memory_order_seq_cst)) used_dead.fetch_add(1);
                busy_work(32);
                raw->hits.fetch_add(1, std::memory_order_relaxed);  // a use-after-free if dead
                if (f.destroyed.load(std::memory_order_seq_cst)) used_dead.fetch_add(1);
                calls.fetch_add(1, std::memory_order_relaxed);
            },
            tidings::track(owner));
        spin_until([&] { return calls.load(std::memory_order_relaxed) > calls_before; });
        owner.reset();  // the last owner may now be a handler's lock() in a publishing thread
        spin_until([&] { return !sub.connected(); });  // a later publish notices the death
        sub.unsubscribe();
        // The bus keeps no strong reference: the object dies (perhaps in another thread).
        spin_until([&] { return f.destroyed.load(); });
    }
    publishers.stop();
    CHECK(used_dead.load() == 0);
}
