// What an unsubscribe waits for (detail/epoch.hpp, scoped waiting), and the self-deadlock of a
// loop thread that waits for a producer blocked on the loop's own full queue.
//
// No test here depends on timing. A test of "does not wait" blocks a handler elsewhere on a
// latch that is released only after the unsubscribe returned: an unsubscribe that waits for
// that handler never returns, and the test fails by timing out. Catch2's assertions are not
// thread-safe: other threads only record, and the test's thread checks.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using tidings_test::scaled;
using tidings_test::spin_until;

struct tick {
    int value = 0;
};
struct tock {
    int value = 0;
};
struct ask {
    int value = 0;
    using result_type = int;
};

/// A handler somewhere that is running, blocked until release(): started by start(), which
/// returns once the handler is inside its call.
class blocked_handler {
public:
    blocked_handler() = default;
    blocked_handler(const blocked_handler&) = delete;
    blocked_handler& operator=(const blocked_handler&) = delete;
    ~blocked_handler() { release(); }

    /// The body to run inside the handler.
    void block() {
        entered_.count_down();
        release_.wait();
    }

    /// Runs `publish` on a new thread and returns once the handler blocks.
    void start(std::function<void()> publish) {
        thread_ = std::jthread([publish = std::move(publish)] { publish(); });
        entered_.wait();
    }

    void release() {
        if (!released_) {
            released_ = true;
            release_.count_down();
        }
        if (thread_.joinable()) thread_.join();
    }

private:
    std::latch entered_{1};
    std::latch release_{1};
    bool released_ = false;
    std::jthread thread_;
};

}  // namespace

TEST_CASE("unsubscribe does not wait for a handler running on another bus",
          "[reclamation][threaded]") {
    tidings::bus gui;
    tidings::bus worker;
    blocked_handler slow;
    auto busy = worker.subscribe<tick>([&](const tick&) { slow.block(); });
    std::atomic<int> calls{0};
    auto widget = gui.subscribe<tick>([&](const tick&) { calls.fetch_add(1); });
    gui.publish(tick{});
    slow.start([&] { worker.publish(tick{}); });

    widget.unsubscribe();  // must return while the other bus's handler runs
    gui.publish(tick{});
    slow.release();
    CHECK(calls.load() == 1);
}

TEST_CASE("unsubscribe does not wait for a handler of another event type of the same bus",
          "[reclamation][threaded]") {
    tidings::bus shared;
    blocked_handler slow;
    auto busy = shared.subscribe<tock>([&](const tock&) { slow.block(); });
    auto widget = shared.subscribe<tick>([](const tick&) {});
    slow.start([&] { shared.publish(tock{}); });

    widget.unsubscribe();
    CHECK_FALSE(widget.connected());
    slow.release();
}

TEST_CASE("unsubscribe does not wait for a queued handler or a command of another bus",
          "[reclamation][threaded]") {
    tidings::bus gui;
    tidings::bus worker;
    tidings::thread_executor pool;
    SECTION("a queued handler running on a worker thread") {
        blocked_handler slow;
        auto busy =
            worker.subscribe<tick>([&](const tick&) { slow.block(); }, tidings::deliver_on(pool));
        auto widget = gui.subscribe<tick>([](const tick&) {});
        slow.start([&] { worker.publish(tick{}); });
        widget.unsubscribe();
        slow.release();
    }
    SECTION("a command handler") {
        blocked_handler slow;
        auto busy = worker.handle([&](const ask& a) {
            slow.block();
            return a.value;
        });
        auto widget = gui.subscribe<tick>([](const tick&) {});
        slow.start([&] { (void)worker.send(ask{1}); });
        widget.unsubscribe();
        slow.release();
    }
}

TEST_CASE("unsubscribe does not wait for a handler of another bus five publishes deep",
          "[reclamation][threaded]") {
    // A queued handler that publishes, whose handler publishes, and so on: the executor's
    // batch and its delivery already take two levels of the reader's record. Every level up to
    // the record's depth names its channel, so an unrelated unsubscribe does not wait.
    struct level {
        int depth = 0;
    };
    tidings::bus worker;
    tidings::bus gui;
    tidings::thread_executor pool;
    blocked_handler slow;
    auto start = worker.subscribe<tick>([&](const tick&) { worker.publish(level{1}); },
                                        tidings::deliver_on(pool));
    auto chain = worker.subscribe<level>([&](const level& l) {
        if (l.depth < 5) {
            worker.publish(level{l.depth + 1});
        } else {
            slow.block();
        }
    });
    auto widget = gui.subscribe<tock>([](const tock&) {});
    slow.start([&] { worker.publish(tick{}); });
    widget.unsubscribe();  // must return while the chain's innermost handler is blocked
    CHECK_FALSE(widget.connected());
    slow.release();
}

TEST_CASE("destroying a bus does not wait for a handler running on another bus",
          "[reclamation][threaded]") {
    tidings::bus worker;
    blocked_handler slow;
    auto busy = worker.subscribe<tick>([&](const tick&) { slow.block(); });
    std::optional<tidings::bus> gui{std::in_place};
    auto widget = gui->subscribe<tick>([](const tick&) {});
    slow.start([&] { worker.publish(tick{}); });

    gui.reset();
    CHECK_FALSE(widget.connected());
    slow.release();
}

TEST_CASE("an observer's unsubscribe does not wait for an observer of another observable",
          "[reclamation][threaded]") {
    tidings::observable<int> temperature{0};
    tidings::observable<int> pressure{0};
    blocked_handler slow;
    bool first = true;
    auto busy = pressure.observe([&](const int&) {
        if (first) {  // the current value, delivered at once in this thread
            first = false;
            return;
        }
        slow.block();
    });
    auto label = temperature.observe([](const int&) {});
    slow.start([&] { pressure.set(1); });

    label.unsubscribe();
    temperature.set(2);
    slow.release();
}

TEST_CASE(
    "unsubscribe still waits for its handler when it runs nested in another channel's "
    "dispatch",
    "[reclamation][threaded]") {
    // The handler runs at every depth up to and past the levels a reader record describes.
    const int depth = GENERATE(1, 2, 3, 4, 6);
    tidings::bus shared;
    std::latch entered{1};
    std::latch release{1};
    std::atomic<bool> running{false};
    std::vector<tidings::subscription> relays;
    // Level k publishes tick{k + 1}; the last level's handler is the one we unsubscribe.
    relays.push_back(shared.subscribe<tock>([&](const tock&) { shared.publish(tick{1}); }));
    relays.push_back(shared.subscribe<tick>([&](const tick& t) {
        if (t.value < depth) shared.publish(tick{t.value + 1});
    }));
    auto target = shared.subscribe<tick>([&](const tick& t) {
        if (t.value != depth) return;
        running.store(true);
        entered.count_down();
        release.wait();
        tidings_test::busy_work(1000);
        running.store(false);
    });
    std::jthread publisher([&] { shared.publish(tock{}); });
    entered.wait();

    std::atomic<bool> about_to_unsubscribe{false};
    std::atomic<bool> running_after{true};
    std::jthread unsubscriber([&] {
        about_to_unsubscribe.store(true);
        target.unsubscribe();
        running_after.store(running.load());
    });
    spin_until([&] { return about_to_unsubscribe.load(); });
    release.count_down();
    unsubscriber.join();
    publisher.join();
    CHECK_FALSE(running_after.load());
}

TEST_CASE("scoped unsubscribes keep their guarantee under concurrent publishing on many buses",
          "[reclamation][threaded]") {
    // Four buses, two event types each; publishers on all of them, and a thread that
    // subscribes and unsubscribes: a handler must never run after its unsubscribe returned.
    constexpr int bus_count = 4;
    std::vector<std::unique_ptr<tidings::bus>> buses;
    for (int i = 0; i < bus_count; ++i) buses.push_back(std::make_unique<tidings::bus>());
    std::vector<tidings::subscription> background;
    for (auto& b : buses) {
        background.push_back(b->subscribe<tick>([&](const tick& t) {
            if (t.value % 3 == 0) buses[0]->publish(tock{t.value});  // nested, another bus
        }));
    }
    std::atomic<bool> stop{false};
    std::atomic<int> late_calls{0};
    std::vector<std::jthread> publishers;
    for (int p = 0; p < 3; ++p) {
        publishers.emplace_back([&, p] {
            for (int i = 0; !stop.load(std::memory_order_acquire); ++i) {
                buses[static_cast<std::size_t>((i + p) % bus_count)]->publish(tick{i});
                buses[static_cast<std::size_t>(p % bus_count)]->publish(tock{i});
                std::this_thread::yield();
            }
        });
    }
    const auto rounds = scaled(2000);
    for (std::int64_t round = 0; round < rounds; ++round) {
        auto& target = *buses[static_cast<std::size_t>(round % bus_count)];
        std::atomic<bool> gone{false};
        tidings::subscription sub;
        if (round % 2 == 0) {
            sub = target.subscribe<tick>([&](const tick&) {
                if (gone.load(std::memory_order_acquire)) late_calls.fetch_add(1);
            });
        } else {
            sub = target.subscribe<tock>([&](const tock&) {
                if (gone.load(std::memory_order_acquire)) late_calls.fetch_add(1);
            });
        }
        std::this_thread::yield();
        sub.unsubscribe();
        gone.store(true, std::memory_order_release);
        std::this_thread::yield();
    }
    stop.store(true, std::memory_order_release);
    publishers.clear();
    CHECK(late_calls.load() == 0);
}

namespace {

/// A producer thread blocked (overflow::block) on a full lane of `loop`, publishing `tick`
/// through `publish`: start() returns once two ticks filled the lane and the third publish
/// sleeps, waiting for space (so it is inside its dispatch, and its wait is visible to a
/// thread that cancels it). The outcome of the third publish is recorded.
class blocked_producer {
public:
    enum class outcome { pending, delivered, would_deadlock, other_error };

    explicit blocked_producer(std::function<void(const tick&)> publish)
        : publish_(std::move(publish)) {}
    blocked_producer(const blocked_producer&) = delete;
    blocked_producer& operator=(const blocked_producer&) = delete;

    void start(tidings::manual_executor& loop) {
        thread_ = std::jthread([this] {
            publish_(tick{1});
            publish_(tick{2});
            try {
                publish_(tick{3});
                result_.store(outcome::delivered);
            } catch (const tidings::would_deadlock&) {
                result_.store(outcome::would_deadlock);
            } catch (...) {
                result_.store(outcome::other_error);
            }
        });
        // Not "the third publish began": between that and its wait, an unsubscribe or a bus's
        // destruction finds no dispatch to wait for, and the publish then sleeps for ever (or,
        // its bus gone, returns quietly). Asleep implies it entered its blocked wait.
        spin_until([&] { return loop.pending() == 2 && loop.core().sleeping_producers() == 1; });
    }

    outcome join() {
        if (thread_.joinable()) thread_.join();
        return result_.load();
    }

    [[nodiscard]] bool done() const { return result_.load() != outcome::pending; }

private:
    std::function<void(const tick&)> publish_;
    std::atomic<outcome> result_{outcome::pending};
    std::jthread thread_;
};

/// Counts, by kind, the queued handlers' exceptions a bus reports (error_policy::report):
/// the would_deadlock of a canceled blocked publish, and anything else.
struct deadlock_reports {
    std::atomic<int> would_deadlock{0};
    std::atomic<int> other{0};

    explicit deadlock_reports(tidings::bus& events) {
        events.set_error_policy(tidings::error_policy::report);
        events.set_error_handler([this](const tidings::handler_error& error) {
            try {
                std::rethrow_exception(error.exception);
            } catch (const tidings::would_deadlock&) {
                would_deadlock.fetch_add(1);
            } catch (...) {
                other.fetch_add(1);
            }
        });
    }
};

tidings::executor_options tiny_blocking_lane() {
    tidings::executor_options options;
    options.capacity = 2;
    options.on_full = tidings::overflow::block;
    return options;
}

}  // namespace

TEST_CASE(
    "a loop thread that unsubscribes while a producer is blocked on its full queue "
    "cancels the producer with would_deadlock",
    "[reclamation][threaded]") {
    tidings::manual_executor loop{tiny_blocking_lane()};  // this thread is its loop
    tidings::bus events;
    std::atomic<int> delivered{0};
    auto queued = events.subscribe<tick>([&](const tick&) { delivered.fetch_add(1); },
                                         tidings::deliver_on(loop));
    auto inline_one = events.subscribe<tick>([](const tick&) {});
    blocked_producer producer{[&](const tick& t) { events.publish(t); }};
    producer.start(loop);

    // A subscription of the very channel the producer is publishing: its unsubscribe waits
    // for the producer's dispatch, which waits for this thread to run the loop.
    inline_one.unsubscribe();
    CHECK(producer.join() == blocked_producer::outcome::would_deadlock);
    // Nothing silently lost: the two accepted events are delivered, the third was reported.
    CHECK(loop.run_pending() == 2);
    CHECK(delivered.load() == 2);
    CHECK(loop.stats().queued == 2);
}

TEST_CASE(
    "a loop thread does not deadlock with a producer blocked on its full queue when it "
    "unsubscribes elsewhere or destroys a bus or stops another executor",
    "[reclamation][threaded]") {
    tidings::manual_executor loop{tiny_blocking_lane()};
    auto events = std::make_unique<tidings::bus>();
    std::atomic<int> delivered{0};
    auto queued = events->subscribe<tick>([&](const tick&) { delivered.fetch_add(1); },
                                          tidings::deliver_on(loop));
    tidings::publisher<tick> ticks{*events};
    blocked_producer producer{[&](const tick& t) { ticks.publish(t); }};
    tidings::bus other;
    auto other_sub = other.subscribe<tick>([](const tick&) {});
    auto other_type = events->subscribe<tock>([](const tock&) {});
    auto other_loop = std::make_unique<tidings::manual_executor>();
    auto other_worker = std::make_unique<tidings::thread_executor>();
    producer.start(loop);

    auto expected = blocked_producer::outcome::would_deadlock;
    SECTION("unsubscribe on another bus") {
        other_sub.unsubscribe();  // does not wait for the producer at all
        expected = blocked_producer::outcome::delivered;
    }
    SECTION("unsubscribe of another event type of the producer's bus") {
        other_type.unsubscribe();
        expected = blocked_producer::outcome::delivered;
    }
    SECTION("destroying another bus") {
        std::optional<tidings::bus> unrelated{std::in_place};
        auto s = unrelated->subscribe<tick>([](const tick&) {});
        unrelated.reset();
        expected = blocked_producer::outcome::delivered;
    }
    SECTION("destroying the producer's bus") {
        events.reset();  // the producer publishes through a publisher, which outlives it
    }
    SECTION("stopping another thread executor") { other_worker->stop(); }
    SECTION("destroying another thread executor") { other_worker.reset(); }
    SECTION("destroying another manual executor") { other_loop.reset(); }

    if (expected == blocked_producer::outcome::delivered) {
        // Nothing waited for the producer: the loop runs, and its third event gets through.
        while (!producer.done()) loop.run_pending();
    }
    const auto result = producer.join();
    CHECK(result == expected);
    loop.run_pending();
    // Nothing silently lost: every accepted event ran (or, its bus gone, was cancelled).
    const auto stats = loop.stats();
    CHECK(stats.queued == (result == blocked_producer::outcome::delivered ? 3U : 2U));
    CHECK(stats.executed == stats.queued);
    CHECK(static_cast<std::uint64_t>(delivered.load()) + stats.cancelled == stats.queued);
}

TEST_CASE(
    "a loop thread that stops a thread executor whose draining handlers block on the loop's "
    "full queue gets those publishes canceled with would_deadlock",
    "[reclamation][threaded]") {
    // The worker's handlers forward to the loop with overflow::block. The loop stops the
    // worker: the stop drains the worker, whose forwards fill the loop's lane of 2 and then
    // block, while the loop waits in the join and cannot run its lane. Before the fix the stop
    // never returned (the cancel ran only during the stop's grace period, not in the drain).
    tidings::manual_executor loop{tiny_blocking_lane()};  // this thread is its loop
    tidings::bus events;
    deadlock_reports reports{events};
    std::optional<tidings::thread_executor> worker{std::in_place};
    std::atomic<int> forwarded_seen{0};
    auto on_loop = events.subscribe<tock>([&](const tock&) { forwarded_seen.fetch_add(1); },
                                          tidings::deliver_on(loop));
    auto on_worker = events.subscribe<tick>([&](const tick& t) { events.publish(tock{t.value}); },
                                            tidings::deliver_on(*worker));
    constexpr int published = 10;
    for (int i = 0; i < published; ++i) events.publish(tick{i});

    SECTION("stopped once its first forwards filled the loop's queue") {
        spin_until([&] { return loop.pending() == 2; });
        worker->stop();
    }
    SECTION("stopped at once") { worker->stop(); }
    SECTION("destroyed instead of stopped") {
        spin_until([&] { return loop.pending() == 2; });
        worker.reset();
    }

    // Every forward is accounted for: 2 queued on the loop, the others reported.
    CHECK(loop.run_pending() == 2);
    CHECK(forwarded_seen.load() == 2);
    CHECK(reports.would_deadlock.load() == published - 2);
    CHECK(reports.other.load() == 0);
}

TEST_CASE(
    "a loop thread that stops a thread executor that another thread is stopping too gets the "
    "worker's publishes into the loop's full queue canceled",
    "[reclamation][threaded]") {
    // Another thread, which runs no executor, stops the worker first and waits in its join;
    // the loop's stop then waits for that one. Before the fix, only the thread holding the
    // stop's mutex could cancel the worker's wait, and the loop waited for the mutex for ever.
    tidings::manual_executor loop{tiny_blocking_lane()};  // this thread is its loop
    tidings::bus events;
    deadlock_reports reports{events};
    tidings::thread_executor worker;
    std::atomic<int> forwarding{0};
    auto on_loop = events.subscribe<tock>([](const tock&) {}, tidings::deliver_on(loop));
    auto on_worker = events.subscribe<tick>(
        [&](const tick& t) {
            if (t.value == 0) {
                // Hold the worker until the other thread's stop has stopped accepting: the
                // forwards below then run in the stop's drain.
                spin_until([&] { return !worker.core().accepting(); });
                return;
            }
            forwarding.fetch_add(1);
            events.publish(tock{t.value});
        },
        tidings::deliver_on(worker));
    for (int i = 0; i <= 3; ++i) events.publish(tick{i});
    std::jthread other_stopper([&] { worker.stop(); });
    // Two forwards fill the loop's queue; the third blocks.
    spin_until([&] { return forwarding.load() == 3 && loop.pending() == 2; });
    worker.stop();
    other_stopper.join();
    CHECK(loop.run_pending() == 2);
    CHECK(reports.would_deadlock.load() == 1);
}

TEST_CASE(
    "a loop thread that never published stops a thread executor whose drain blocks on its "
    "full queue, and gets those publishes canceled",
    "[reclamation][threaded]") {
    // The loop thread has no reader record of its own (it has run no dispatch), so its stop's
    // mark lives in the executor's join point; it once allocated a record there instead (and
    // hung when that failed, or leaked it at thread exit).
    tidings::bus events;
    deadlock_reports reports{events};
    tidings::thread_executor worker;
    std::optional<tidings::manual_executor> loop;
    std::latch loop_ready{1};
    std::size_t ran_on_loop = 0;
    std::jthread loop_thread([&] {
        loop.emplace(tiny_blocking_lane());  // this thread is its loop; no dispatch yet
        auto on_loop = events.subscribe<tock>([](const tock&) {}, tidings::deliver_on(*loop));
        loop_ready.count_down();
        spin_until([&] { return loop->pending() == 2; });
        worker.stop();
        ran_on_loop = loop->run_pending();
    });
    loop_ready.wait();
    auto on_worker = events.subscribe<tick>(
        [&](const tick& t) {
            if (t.value == 0) {
                spin_until([&] { return loop->pending() == 2 && !worker.core().accepting(); });
                return;
            }
            events.publish(tock{t.value});
        },
        tidings::deliver_on(worker));
    // 1 and 2 fill the loop's queue before the stop; 0 holds the worker until the stop has
    // begun, so 3 and 4 block in the stop's drain.
    events.publish(tick{1});
    events.publish(tick{2});
    events.publish(tick{0});
    events.publish(tick{3});
    events.publish(tick{4});
    loop_thread.join();
    CHECK(ran_on_loop == 2);
    CHECK(reports.would_deadlock.load() == 2);
}

TEST_CASE(
    "a thread executor destroyed while another thread is in its stop waits for that stop to "
    "leave",
    "[reclamation][threaded]") {
    // The destructor's own stop joined the worker and freed the executor while the other
    // thread's stop still waited for the mutex (a use-after-free under ASan and TSan).
    for (int round = 0; round < 20; ++round) {
        tidings::bus events;
        auto* worker = new tidings::thread_executor;
        auto on_worker = events.subscribe<tick>(
            [&](const tick&) {
                // Both stops are under way before the worker drains: one joins, one waits.
                spin_until([&] { return worker->stops_in_progress() == 2; });
            },
            tidings::deliver_on(*worker));
        events.publish(tick{});
        std::jthread other_stopper([&] { (void)worker->stop(); });
        delete worker;
        other_stopper.join();
        CHECK_FALSE(on_worker.connected());
    }
}

TEST_CASE(
    "subscriber_count while another thread subscribes and unsubscribes reads no freed "
    "snapshot",
    "[reclamation][threaded]") {
    // subscriber_count() runs outside any dispatch: it must not read a snapshot that an
    // unsubscribe may free meanwhile (ASan and TSan reported it before).
    tidings::bus shared;
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> largest{0};
    std::jthread counter([&] {
        while (!stop.load(std::memory_order_acquire)) {
            const std::size_t n = shared.subscriber_count<tick>();
            if (n > largest.load(std::memory_order_relaxed)) largest.store(n);
        }
    });
    const auto rounds = scaled(100000);
    for (std::int64_t i = 0; i < rounds; ++i) {
        auto first = shared.subscribe<tick>([](const tick&) {});
        auto second = shared.subscribe<tick>([](const tick&) {});
    }
    stop.store(true, std::memory_order_release);
    counter.join();
    CHECK(largest.load() <= 2);
    CHECK(shared.subscriber_count<tick>() == 0);
}
