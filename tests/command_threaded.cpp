// Stress tests of commands: registering, unregistering and sending from several threads at
// once, with inline handlers and handlers queued on a thread_executor. They run under
// ThreadSanitizer in CI, with smaller iteration counts (tidings_test::scaled). Catch2's
// assertions are not thread-safe: worker threads only count, and the test's own thread checks
// the counts.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <array>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <deque>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using tidings_test::busy_work;
using tidings_test::counted;
using tidings_test::lifetime_counter;
using tidings_test::scaled;
using tidings_test::spin_until;

/// Answers with the index of the thread whose handler won the registration.
struct who {
    using result_type = int;
};
/// Answers value * 2 + 1, so that a sender can check that it got its own result.
struct probe {
    std::int64_t value = 0;
    using result_type = std::int64_t;
};

constexpr std::int64_t answer(std::int64_t value) { return value * 2 + 1; }

/// What one sending thread saw.
struct send_counts {
    std::int64_t results = 0;
    std::int64_t no_handler = 0;
    std::int64_t wrong = 0;  // a result that was not the answer to this thread's own command
    std::int64_t other_errors = 0;
};

/// Sends `probe`s from `count` threads until stop() (or `per_thread` each, if nonzero), with
/// send or send_async, counting the outcomes per thread.
class sending_threads {
public:
    sending_threads(tidings::bus& bus, int count, std::int64_t per_thread = 0)
        : counts_(static_cast<std::size_t>(count)) {
        for (int t = 0; t < count; ++t) {
            threads_.emplace_back([this, &bus, t, per_thread] {
                send_counts& mine = counts_[static_cast<std::size_t>(t)];
                for (std::int64_t i = 0; per_thread == 0 || i < per_thread; ++i) {
                    if (per_thread == 0 && stop_.load(std::memory_order_acquire)) break;
                    const std::int64_t value = (static_cast<std::int64_t>(t) << 40) + i;
                    try {
                        const std::int64_t result = i % 2 == 0 ? bus.send(probe{value})
                                                               : bus.send_async(probe{value}).get();
                        ++mine.results;
                        if (result != answer(value)) ++mine.wrong;
                    } catch (const tidings::no_handler&) {
                        ++mine.no_handler;
                    } catch (...) {
                        ++mine.other_errors;
                    }
                    sent_.fetch_add(1, std::memory_order_relaxed);
                    std::this_thread::yield();
                }
            });
        }
    }
    ~sending_threads() { stop(); }
    sending_threads(const sending_threads&) = delete;
    sending_threads& operator=(const sending_threads&) = delete;

    [[nodiscard]] std::int64_t sent() const noexcept {
        return sent_.load(std::memory_order_relaxed);
    }

    /// Joins the threads (after telling endless ones to stop) and returns their counts.
    send_counts stop() {
        stop_.store(true, std::memory_order_release);
        threads_.clear();  // joins
        send_counts total;
        for (const send_counts& c : counts_) {
            total.results += c.results;
            total.no_handler += c.no_handler;
            total.wrong += c.wrong;
            total.other_errors += c.other_errors;
        }
        return total;
    }

private:
    std::vector<send_counts> counts_;
    std::atomic<bool> stop_{false};
    std::atomic<std::int64_t> sent_{0};
    std::vector<std::jthread> threads_;
};

}  // namespace

TEST_CASE("of several threads registering a handler at once exactly one wins",
          "[command][threads]") {
    constexpr int threads = 4;
    const std::int64_t rounds = scaled(5'000, 5);
    tidings::bus bus;
    tidings::thread_executor worker;
    // Each thread writes only its own slot, and the test's thread reads them between rounds.
    std::array<tidings::subscription, threads> slots;
    std::atomic<std::int64_t> wins{0};
    std::atomic<std::int64_t> duplicates{0};
    std::atomic<std::int64_t> other_errors{0};
    std::barrier start{threads + 1};
    std::barrier finish{threads + 1};

    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (std::int64_t round = 0; round < rounds; ++round) {
                start.arrive_and_wait();
                try {
                    // Inline and queued registrations compete alike.
                    if ((round + t) % 2 == 0) {
                        slots[static_cast<std::size_t>(t)] =
                            bus.handle<who>([t](const who&) { return t; });
                    } else {
                        slots[static_cast<std::size_t>(t)] = bus.handle<who>(
                            [t](const who&) { return t; }, tidings::deliver_on(worker));
                    }
                    wins.fetch_add(1, std::memory_order_relaxed);
                } catch (const tidings::duplicate_handler&) {
                    duplicates.fetch_add(1, std::memory_order_relaxed);
                } catch (...) {
                    other_errors.fetch_add(1, std::memory_order_relaxed);
                }
                finish.arrive_and_wait();
            }
        });
    }

    std::int64_t rounds_with_one_winner = 0;
    std::int64_t winner_answered = 0;
    for (std::int64_t round = 0; round < rounds; ++round) {
        start.arrive_and_wait();
        finish.arrive_and_wait();
        int connected = 0;
        int winner = -1;
        for (int t = 0; t < threads; ++t) {
            if (slots[static_cast<std::size_t>(t)].connected()) {
                ++connected;
                winner = t;
            }
        }
        if (connected == 1) {
            ++rounds_with_one_winner;
            if (bus.send(who{}) == winner) ++winner_answered;
        }
        for (auto& slot : slots) slot.unsubscribe();  // free the command for the next round
    }
    pool.clear();

    CHECK(rounds_with_one_winner == rounds);
    CHECK(winner_answered == rounds);
    CHECK(wins.load() == rounds);
    CHECK(duplicates.load() == rounds * (threads - 1));
    CHECK(other_errors.load() == 0);
}

TEST_CASE("handlers registering and unregistering while others send: a result or no_handler",
          "[command][threads]") {
    const bool queued = GENERATE(false, true);
    CAPTURE(queued);
    const std::int64_t registrations_per_thread = scaled(4'000, 4);
    tidings::thread_executor worker;
    tidings::bus bus;
    std::atomic<std::int64_t> calls{0};
    std::atomic<std::int64_t> registered{0};
    std::atomic<std::int64_t> duplicates{0};

    sending_threads senders{bus, 2};
    std::vector<std::jthread> churn;
    for (int t = 0; t < 2; ++t) {
        churn.emplace_back([&] {
            for (std::int64_t i = 0; i < registrations_per_thread; ++i) {
                std::atomic<std::int64_t> mine{0};  // calls of this registration
                auto handler = [&calls, &mine](const probe& c) {
                    calls.fetch_add(1, std::memory_order_relaxed);
                    mine.fetch_add(1, std::memory_order_relaxed);
                    return answer(c.value);
                };
                tidings::subscription h;
                try {
                    h = queued ? bus.handle<probe>(handler, tidings::deliver_on(worker))
                               : bus.handle<probe>(handler);
                } catch (const tidings::duplicate_handler&) {
                    duplicates.fetch_add(1, std::memory_order_relaxed);
                    std::this_thread::yield();
                    continue;
                }
                registered.fetch_add(1, std::memory_order_relaxed);
                // Keep it until it answered once, so that the senders make progress; then
                // unsubscribe while they go on sending.
                const std::int64_t sent_before = senders.sent();
                spin_until([&] {
                    return mine.load(std::memory_order_relaxed) > 0 ||
                           senders.sent() > sent_before + 64;
                });
                h.unsubscribe();  // waits for a running call: `mine` outlives every call
            }
        });
    }
    churn.clear();  // joins
    const send_counts total = senders.stop();

    CHECK(total.wrong == 0);
    CHECK(total.other_errors == 0);
    CHECK(total.results + total.no_handler == senders.sent());
    CHECK(calls.load() == total.results);  // every call answered exactly one sender
    CHECK(registered.load() + duplicates.load() == 2 * registrations_per_thread);
    CHECK(registered.load() > 0);
    CHECK(total.results > 0);
}

TEST_CASE("many threads sending to a queued handler each get their own result",
          "[command][threads]") {
    constexpr int threads = 4;
    const std::int64_t per_thread = scaled(20'000, 8);
    tidings::executor_options options;
    options.capacity = 8;  // small: senders with several send_async in flight block for space
    tidings::thread_executor worker{options};
    tidings::bus bus;
    std::atomic<std::int64_t> calls{0};
    std::atomic<std::int64_t> off_worker{0};
    auto h = bus.handle<probe>(
        [&](const probe& c) {
            if (std::this_thread::get_id() != worker.thread_id()) {
                off_worker.fetch_add(1, std::memory_order_relaxed);
            }
            calls.fetch_add(1, std::memory_order_relaxed);
            return answer(c.value);
        },
        tidings::deliver_on(worker));

    std::array<std::int64_t, threads> results{};
    std::array<std::int64_t, threads> wrong{};
    std::array<std::int64_t, threads> errors{};
    {
        std::vector<std::jthread> pool;
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                const auto index = static_cast<std::size_t>(t);
                constexpr std::int64_t batch = 32;
                std::vector<std::pair<std::int64_t, std::future<std::int64_t>>> in_flight;
                for (std::int64_t i = 0; i < per_thread; ++i) {
                    const std::int64_t value = (static_cast<std::int64_t>(t) << 40) + i;
                    try {
                        if (t % 2 == 0) {  // blocking sends
                            if (bus.send(probe{value}) != answer(value)) ++wrong[index];
                            ++results[index];
                        } else {  // batches of send_async
                            in_flight.emplace_back(value, bus.send_async(probe{value}));
                            if (static_cast<std::int64_t>(in_flight.size()) == batch ||
                                i + 1 == per_thread) {
                                for (auto& [sent, future] : in_flight) {
                                    if (future.get() != answer(sent)) ++wrong[index];
                                    ++results[index];
                                }
                                in_flight.clear();
                            }
                        }
                    } catch (...) {
                        ++errors[index];
                    }
                }
            });
        }
    }

    std::int64_t total = 0;
    for (int t = 0; t < threads; ++t) {
        const auto index = static_cast<std::size_t>(t);
        CAPTURE(t);
        CHECK(results[index] == per_thread);
        CHECK(wrong[index] == 0);
        CHECK(errors[index] == 0);
        total += results[index];
    }
    CHECK(calls.load() == total);
    CHECK(off_worker.load() == 0);
}

TEST_CASE("when a handler's registration ends the handler is not running and never runs again",
          "[command][threads]") {
    const bool queued = GENERATE(false, true);
    CAPTURE(queued);
    struct round_state {
        std::atomic<int> running{0};
        std::atomic<std::int64_t> calls{0};
        std::atomic<bool> stopped{false};
        lifetime_counter state;
    };
    const std::int64_t rounds = scaled(1'500, 3);
    tidings::thread_executor worker;
    tidings::bus bus;
    std::atomic<std::int64_t> seen_stopped{0};
    std::int64_t running_after_unsubscribe = 0;
    std::int64_t state_alive_after_unsubscribe = 0;
    std::deque<round_state> states;  // kept to the end: a late call would still find its state

    sending_threads senders{bus, 2};
    for (std::int64_t round = 0; round < rounds; ++round) {
        round_state& st = states.emplace_back();
        auto make_handler = [&st, &seen_stopped] {
            return [&st, &seen_stopped, keep = counted{st.state}](const probe& c) {
                st.running.fetch_add(1, std::memory_order_seq_cst);
                if (st.stopped.load(std::memory_order_seq_cst)) seen_stopped.fetch_add(1);
                busy_work(64);
                if (st.stopped.load(std::memory_order_seq_cst)) seen_stopped.fetch_add(1);
                st.calls.fetch_add(1, std::memory_order_relaxed);
                st.running.fetch_sub(1, std::memory_order_seq_cst);
                return answer(c.value);
            };
        };
        std::optional<tidings::subscription> h{
            queued ? bus.handle<probe>(make_handler(), tidings::deliver_on(worker))
                   : bus.handle<probe>(make_handler())};
        // End the registration while a call is (very likely) in progress.
        spin_until([&] {
            return st.running.load(std::memory_order_relaxed) > 0 ||
                   st.calls.load(std::memory_order_relaxed) > 20;
        });
        switch (round % 3) {
            case 0:
                h->unsubscribe();
                break;
            case 1:
                h.reset();  // the destructor
                break;
            default:
                *h = tidings::subscription{};  // move-assignment
                break;
        }
        if (st.running.load(std::memory_order_seq_cst) != 0) ++running_after_unsubscribe;
        st.stopped.store(true, std::memory_order_seq_cst);
        if (st.state.live() != 0) ++state_alive_after_unsubscribe;
    }
    const send_counts total = senders.stop();

    CHECK(running_after_unsubscribe == 0);
    CHECK(seen_stopped.load() == 0);
    CHECK(state_alive_after_unsubscribe == 0);
    CHECK(total.wrong == 0);
    CHECK(total.other_errors == 0);
    CHECK(total.results + total.no_handler == senders.sent());
    std::int64_t calls = 0;
    for (const round_state& st : states) calls += st.calls.load();
    CHECK(calls == total.results);
    CHECK(total.results >= rounds);  // every round answered at least one sender
}
