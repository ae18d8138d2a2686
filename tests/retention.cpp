// Retained events and late join: bus.retain<E>(n) keeps the newest n events of a channel, and
// a subscriber with tidings::replay (or replay(k)) receives them, oldest first, before the live
// ones; the copies are bounded by n and freed by retain<E>(0) and by the bus's destruction.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using tidings_test::counted;
using tidings_test::lifetime_counter;

struct goal {
    int seq = 0;
};

struct other {
    int seq = 0;
};

/// An event whose copies are counted.
struct tracked_goal {
    int seq = 0;
    counted life;
};

template <class Bus>
void publish_goals(Bus& bus, int from, int to) {
    for (int i = from; i <= to; ++i) bus.publish(goal{i});
}

std::vector<int> range(int from, int to) {
    std::vector<int> result;
    for (int i = from; i <= to; ++i) result.push_back(i);
    return result;
}

}  // namespace

TEMPLATE_TEST_CASE("nothing is retained by default: replay on a fresh channel replays nothing",
                   "[retention]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay);
    CHECK(seen.empty());
    bus.publish(goal{4});
    CHECK(seen == std::vector<int>{4});  // an ordinary subscription
}

TEMPLATE_TEST_CASE(
    "a replaying subscriber receives the newest n retained events oldest first, "
    "then the live ones",
    "[retention]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bus.template retain<goal>(3);
    publish_goals(bus, 1, 5);  // no subscriber yet: they are kept anyway
    std::vector<int> seen;
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay);
    CHECK(seen == std::vector<int>{3, 4, 5});  // inside subscribe, before it returned
    publish_goals(bus, 6, 7);
    CHECK(seen == std::vector<int>{3, 4, 5, 6, 7});
}

TEST_CASE("only the events published after retain are kept, and only of that type", "[retention]") {
    tidings::bus bus;
    publish_goals(bus, 1, 2);
    bus.retain<goal>(10);
    publish_goals(bus, 3, 4);
    bus.publish(other{99});
    std::vector<int> goals;
    std::vector<int> others;
    auto g = bus.subscribe([&](const goal& e) { goals.push_back(e.seq); }, tidings::replay);
    auto o = bus.subscribe([&](const other& e) { others.push_back(e.seq); }, tidings::replay);
    CHECK(goals == std::vector<int>{3, 4});
    CHECK(others.empty());
}

TEST_CASE("a subscriber without replay receives only the live events of a retaining channel",
          "[retention]") {
    tidings::bus bus;
    bus.retain<goal>(5);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); });
    publish_goals(bus, 4, 5);
    CHECK(seen == std::vector<int>{4, 5});
}

TEST_CASE("replay(k) replays the newest k retained events", "[retention]") {
    tidings::bus bus;
    bus.retain<goal>(5);
    publish_goals(bus, 1, 9);
    std::vector<int> two;
    std::vector<int> many;
    std::vector<int> none;
    auto a = bus.subscribe([&](const goal& g) { two.push_back(g.seq); }, tidings::replay(2));
    auto b = bus.subscribe([&](const goal& g) { many.push_back(g.seq); }, tidings::replay(50));
    auto c = bus.subscribe([&](const goal& g) { none.push_back(g.seq); }, tidings::replay(0));
    CHECK(two == std::vector<int>{8, 9});
    CHECK(many == range(5, 9));  // no more than are retained
    CHECK(none.empty());
    bus.publish(goal{10});
    CHECK(two == std::vector<int>{8, 9, 10});
    CHECK(many == range(5, 10));
    CHECK(none == std::vector<int>{10});
}

TEST_CASE("the ring wraps around many times and still replays the newest, in order",
          "[retention]") {
    tidings::bus bus;
    bus.retain<goal>(4);
    for (int round = 1; round <= 50; ++round) {
        bus.publish(goal{round});
        std::vector<int> seen;
        auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay);
        INFO("after " << round << " publishes");
        CHECK(seen == range(round < 4 ? 1 : round - 3, round));
    }
}

TEST_CASE("retain can shrink and grow: the newest events are kept", "[retention]") {
    tidings::bus bus;
    bus.retain<goal>(5);
    publish_goals(bus, 1, 5);
    bus.retain<goal>(2);
    std::vector<int> after_shrink;
    {
        auto s =
            bus.subscribe([&](const goal& g) { after_shrink.push_back(g.seq); }, tidings::replay);
    }
    CHECK(after_shrink == std::vector<int>{4, 5});
    bus.retain<goal>(4);  // growing keeps what is there, and makes room
    publish_goals(bus, 6, 7);
    std::vector<int> after_grow;
    auto s = bus.subscribe([&](const goal& g) { after_grow.push_back(g.seq); }, tidings::replay);
    CHECK(after_grow == range(4, 7));
}

TEST_CASE("retain<E>(0) frees the retained copies and stops retaining", "[retention][lifetime]") {
    lifetime_counter counter;
    tidings::bus bus;
    bus.retain<tracked_goal>(3);
    for (int i = 1; i <= 10; ++i) bus.publish(tracked_goal{i, counted{counter}});
    CHECK(counter.live() == 3);  // bounded by n: the ring overwrites the oldest
    bus.retain<tracked_goal>(0);
    CHECK(counter.live() == 0);
    bus.publish(tracked_goal{11, counted{counter}});
    CHECK(counter.live() == 0);  // not retaining any more
    std::vector<int> seen;
    auto s = bus.subscribe([&](const tracked_goal& g) { seen.push_back(g.seq); }, tidings::replay);
    CHECK(seen.empty());
    bus.publish(tracked_goal{12, counted{counter}});
    CHECK(seen == std::vector<int>{12});
}

TEST_CASE("retained copies are bounded by n and freed when the bus is destroyed",
          "[retention][lifetime]") {
    lifetime_counter counter;
    {
        tidings::bus bus;
        bus.retain<tracked_goal>(4);
        std::vector<int> seen;
        auto s = bus.subscribe([&](const tracked_goal& g) { seen.push_back(g.seq); });
        for (int i = 1; i <= 100; ++i) {
            bus.publish(tracked_goal{i, counted{counter}});
            REQUIRE(counter.live() == std::min(i, 4));
        }
        CHECK(seen.size() == 100);
    }
    CHECK(counter.live() == 0);
}

TEST_CASE("shrinking the retention frees the copies it no longer keeps", "[retention][lifetime]") {
    lifetime_counter counter;
    tidings::bus bus;
    bus.retain<tracked_goal>(8);
    for (int i = 1; i <= 8; ++i) bus.publish(tracked_goal{i, counted{counter}});
    CHECK(counter.live() == 8);
    bus.retain<tracked_goal>(3);
    CHECK(counter.live() == 3);
}

TEST_CASE("a filter applies to replayed events as to live ones", "[retention]") {
    tidings::bus bus;
    bus.retain<goal>(10);
    publish_goals(bus, 1, 6);
    std::vector<int> seen;
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                           tidings::filter([](const goal& g) { return g.seq % 2 == 0; }));
    CHECK(seen == std::vector<int>{2, 4, 6});
    publish_goals(bus, 7, 8);
    CHECK(seen == std::vector<int>{2, 4, 6, 8});
}

TEST_CASE("replay combines with priority and track", "[retention]") {
    tidings::bus bus;
    bus.retain<goal>(2);
    publish_goals(bus, 1, 2);
    std::vector<std::string> log;
    auto owner = std::make_shared<int>(0);
    auto low = bus.subscribe([&](const goal& g) { log.push_back("low " + std::to_string(g.seq)); });
    auto high =
        bus.subscribe([&](const goal& g) { log.push_back("high " + std::to_string(g.seq)); },
                      tidings::priority{5}, tidings::replay, tidings::track(owner));
    CHECK(log == std::vector<std::string>{"high 1", "high 2"});
    log.clear();
    bus.publish(goal{3});
    CHECK(log == std::vector<std::string>{"high 3", "low 3"});
    owner.reset();
    log.clear();
    bus.publish(goal{4});
    CHECK(log == std::vector<std::string>{"low 4"});
}

TEST_CASE("a replaying handler that publishes the same type sees its event after the replay",
          "[retention][reentrancy]") {
    tidings::bus bus;
    bus.retain<goal>(10);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    auto s = bus.subscribe(
        [&](const goal& g) {
            seen.push_back(g.seq);
            if (g.seq == 1) bus.publish(goal{100});  // during the replay
        },
        tidings::replay);
    CHECK(seen == std::vector<int>{1, 2, 3, 100});
    std::vector<int> later;
    auto t = bus.subscribe([&](const goal& g) { later.push_back(g.seq); }, tidings::replay);
    CHECK(later == std::vector<int>{1, 2, 3, 100});  // and it was retained in that order
}

TEST_CASE("a throwing handler during an inline replay: the rest of the replay still runs",
          "[retention][errors]") {
    tidings::bus bus;
    bus.set_error_policy(tidings::error_policy::report);
    std::vector<std::string> reported;
    bus.set_error_handler([&](const tidings::handler_error&) { reported.emplace_back("x"); });
    bus.retain<goal>(5);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    auto s = bus.subscribe(
        [&](const goal& g) {
            seen.push_back(g.seq);
            if (g.seq == 2) throw std::runtime_error("two");
        },
        tidings::replay);
    CHECK(seen == range(1, 3));
    CHECK(reported.size() == 1);
    CHECK(s.connected());  // with error_policy::report the subscription stays
    bus.publish(goal{4});
    CHECK(seen == range(1, 4));
}

// docs/replay.md: "With error_policy::rethrow_first, if the handler throws during the replay,
// the rest of the replay still runs, then subscribe rethrows the first exception and the new
// subscription is undone".
TEST_CASE(
    "with rethrow_first, a throwing replay makes subscribe rethrow and undoes the "
    "subscription",
    "[retention][errors]") {
    tidings::bus bus;
    bus.set_error_handler([](const tidings::handler_error&) {});
    bus.retain<goal>(5);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    auto subscribe = [&] {
        return bus.subscribe(
            [&](const goal& g) {
                seen.push_back(g.seq);
                if (g.seq == 2) throw std::runtime_error("two");
            },
            tidings::replay);
    };
    CHECK_THROWS_WITH(subscribe(), "two");
    CHECK(seen == range(1, 3));
    CHECK(bus.subscriber_count<goal>() == 0);
}

// --- queued subscribers ------------------------------------------------------------------------

TEST_CASE("a queued subscriber replays on its executor, then receives the live events",
          "[retention][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    bus.retain<goal>(3);
    publish_goals(bus, 1, 5);
    std::vector<int> seen;
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                           tidings::deliver_on(loop));
    CHECK(seen.empty());  // queued: nothing runs in subscribe
    publish_goals(bus, 6, 7);
    loop.run_pending();
    CHECK(seen == range(3, 7));
}

TEST_CASE("a queued replaying subscriber holds back live events that overtake its replay",
          "[retention][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    bus.retain<goal>(10);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    tidings::subscription s;
    // The replay is queued from the subscribing thread's lane, the live events from the
    // publishers' lanes; run_one takes the lanes in turn, so live events can run first.
    std::thread joiner([&] {
        s = bus.subscribe([&](const goal& e) { seen.push_back(e.seq); }, tidings::replay,
                          tidings::deliver_on(loop));
    });
    joiner.join();
    bus.publish(goal{4});
    std::thread live([&] { bus.publish(goal{5}); });
    live.join();
    while (loop.run_one() != 0) {
    }
    REQUIRE(seen.size() == 5);
    CHECK(std::vector<int>(seen.begin(), seen.begin() + 3) == range(1, 3));
    // Live events from two threads keep per-producer order only.
    CHECK(((seen[3] == 4 && seen[4] == 5) || (seen[3] == 5 && seen[4] == 4)));
}

// A tracked subscriber's handler never runs once the object is gone (options.hpp, track),
// replayed events included.
TEST_CASE("a queued replay is not delivered once the tracked object is gone",
          "[retention][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    bus.retain<goal>(3);
    publish_goals(bus, 1, 3);
    auto owner = std::make_shared<int>(0);
    std::vector<int> seen;
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                           tidings::track(owner), tidings::deliver_on(loop));
    bus.publish(goal{4});
    owner.reset();
    loop.run_pending();
    CHECK(seen.empty());
}

TEST_CASE("a queued replaying subscriber that leaves before its executor runs receives nothing",
          "[retention][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    bus.retain<goal>(3);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    {
        auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                               tidings::deliver_on(loop));
        bus.publish(goal{4});
    }
    loop.run_pending();
    CHECK(seen.empty());
    CHECK(loop.stats().cancelled == 4);
}

// --- failures: throwing copies, throwing filters and handlers, out of memory --------------------

namespace {

struct copy_failure : std::runtime_error {
    copy_failure() : std::runtime_error("copy failed") {}
};

/// Copies of `fragile` made by this thread until the one that throws (0: none throws).
thread_local int copies_until_failure = 0;
thread_local bool copy_failed = false;

/// Makes this thread's `n`th copy of a `fragile` from now throw (0 disarms); returns whether
/// the previously armed failure happened.
bool fail_nth_copy(int n) {
    copies_until_failure = n;
    return std::exchange(copy_failed, false);
}

std::string label(int seq) {
    // Longer than any small-string buffer: the text lives on the heap, so AddressSanitizer
    // reports a read of a destroyed event.
    return "goal " + std::to_string(seq) + ", scored in the second half of a long match";
}

/// An event whose copy throws on request, with a canary that its destructor clears, so a
/// handler can see that it was given a destroyed or never-constructed event.
struct fragile {
    int seq = 0;
    std::string text;
    bool alive = true;

    explicit fragile(int s) : seq(s), text(label(s)) {}
    fragile(const fragile& other) : seq(other.seq), text(other.text) {
        if (copies_until_failure > 0 && --copies_until_failure == 0) {
            copy_failed = true;
            throw copy_failure{};
        }
    }
    fragile(fragile&& other) noexcept : seq(other.seq), text(std::move(other.text)) {}
    fragile& operator=(const fragile&) = delete;
    fragile& operator=(fragile&&) = delete;
    ~fragile() { alive = false; }

    /// True for a live event that is what its number says.
    [[nodiscard]] bool sound() const { return alive && text == label(seq); }
};

/// What a replaying subscriber receives now: the numbers of the retained events, or -1 for
/// an event that was not sound.
template <class Bus>
std::vector<int> replayed_now(Bus& bus) {
    std::vector<int> seen;
    auto s = bus.subscribe([&](const fragile& e) { seen.push_back(e.sound() ? e.seq : -1); },
                           tidings::replay);
    return seen;
}

}  // namespace

// Issue 9, item 4: with the ring full, a copy that threw while keeping left a slot that a later
// replay read (the oldest event, destroyed).
TEMPLATE_TEST_CASE(
    "a copy that throws while a full ring keeps an event leaves the retained events intact, "
    "and publish reports it before any subscriber ran",
    "[retention][errors]", tidings::bus, tidings::single_threaded_bus) {
    for (int n = 1; n <= 3; ++n) {  // the nth copy made by the publish throws
        INFO("the copy that throws: " << n);
        TestType bus;
        bus.template retain<fragile>(3);
        std::vector<int> seen;
        auto live = bus.subscribe([&](const fragile& e) { seen.push_back(e.seq); });
        for (int i = 1; i <= 4; ++i) bus.publish(fragile{i});  // full: 2, 3, 4
        const fragile next{5};
        fail_nth_copy(n);
        bool threw = false;
        try {
            bus.publish(next);  // an lvalue: one copy, the kept one
        } catch (const copy_failure&) {
            threw = true;
        }
        CHECK(fail_nth_copy(0) == threw);
        if (threw) {
            // Strong guarantee: nothing happened; no subscriber saw it, nothing was kept.
            CHECK(seen == range(1, 4));
            CHECK(replayed_now(bus) == range(2, 4));
        } else {
            CHECK(seen == range(1, 5));
            CHECK(replayed_now(bus) == range(3, 5));
        }
        // The channel goes on: the next publish is kept and delivered.
        bus.publish(fragile{6});
        CHECK(seen.back() == 6);
        CHECK(replayed_now(bus) == (threw ? std::vector<int>{3, 4, 6} : range(4, 6)));
    }
}

TEST_CASE("a copy that throws while a ring with room keeps an event changes nothing",
          "[retention][errors]") {
    tidings::bus bus;
    bus.retain<fragile>(5);
    bus.publish(fragile{1});
    fail_nth_copy(1);
    CHECK_THROWS_AS(bus.publish(fragile{2}), copy_failure);
    CHECK(fail_nth_copy(0));
    CHECK(replayed_now(bus) == std::vector<int>{1});
    bus.publish(fragile{3});
    CHECK(replayed_now(bus) == std::vector<int>{1, 3});
}

TEST_CASE(
    "a copy that throws while queuing a retained event is reported after the inline "
    "subscribers ran, and the event stays retained",
    "[retention][errors][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    bus.retain<fragile>(3);
    std::vector<int> inline_seen;
    std::vector<int> queued_seen;
    auto a = bus.subscribe([&](const fragile& e) { inline_seen.push_back(e.seq); });
    auto b = bus.subscribe([&](const fragile& e) { queued_seen.push_back(e.seq); },
                           tidings::deliver_on(loop));
    const fragile first{1};
    fail_nth_copy(2);  // the 1st copy is kept; the 2nd goes to the queue
    CHECK_THROWS_AS(bus.publish(first), copy_failure);
    CHECK(fail_nth_copy(0));
    CHECK(inline_seen == std::vector<int>{1});
    loop.run_pending();
    CHECK(queued_seen.empty());  // the queue refused it, and the publisher was told
    CHECK(replayed_now(bus) == std::vector<int>{1});
    bus.publish(fragile{2});
    loop.run_pending();
    CHECK(queued_seen == std::vector<int>{2});
}

TEST_CASE(
    "a copy that throws during an inline replay undoes the subscribe and leaves the retained "
    "events intact",
    "[retention][errors]") {
    for (int n = 1; n <= 4; ++n) {
        INFO("the copy that throws: " << n);
        tidings::bus bus;
        bus.retain<fragile>(3);
        for (int i = 1; i <= 4; ++i) bus.publish(fragile{i});
        std::vector<int> seen;
        fail_nth_copy(n);
        tidings::subscription s;
        bool threw = false;
        try {
            s = bus.subscribe([&](const fragile& e) { seen.push_back(e.sound() ? e.seq : -1); },
                              tidings::replay);
        } catch (const copy_failure&) {
            threw = true;
        }
        CHECK(fail_nth_copy(0) == threw);
        if (threw) {
            CHECK(seen.empty());
            CHECK_FALSE(s.connected());
            CHECK(bus.subscriber_count<fragile>() == 0);
        } else {
            CHECK(seen == range(2, 4));
        }
        CHECK(replayed_now(bus) == range(2, 4));
        bus.publish(fragile{5});
        CHECK(replayed_now(bus) == range(3, 5));
        if (!threw) CHECK(seen == range(2, 5));
    }
}

TEST_CASE(
    "a copy that throws during a queued replay undoes the subscribe; nothing of it is "
    "delivered and the executor goes on",
    "[retention][errors][executor]") {
    bool some_threw = false;
    bool one_succeeded = false;
    for (int n = 1; n <= 8; ++n) {
        INFO("the copy that throws: " << n);
        tidings::manual_executor loop;
        tidings::bus bus;
        bus.retain<fragile>(3);
        for (int i = 1; i <= 4; ++i) bus.publish(fragile{i});
        std::vector<int> seen;
        fail_nth_copy(n);
        tidings::subscription s;
        bool threw = false;
        try {
            s = bus.subscribe([&](const fragile& e) { seen.push_back(e.sound() ? e.seq : -1); },
                              tidings::replay, tidings::deliver_on(loop));
        } catch (const copy_failure&) {
            threw = true;
        }
        CHECK(fail_nth_copy(0) == threw);
        loop.run_pending();
        if (threw) {
            some_threw = true;
            CHECK(seen.empty());
            CHECK(bus.subscriber_count<fragile>() == 0);
        } else {
            one_succeeded = true;
            CHECK(seen == range(2, 4));
        }
        bus.publish(fragile{5});
        loop.run_pending();
        CHECK(seen == (threw ? std::vector<int>{} : range(2, 5)));
        CHECK(replayed_now(bus) == range(3, 5));
    }
    CHECK(some_threw);
    CHECK(one_succeeded);
}

TEST_CASE(
    "a live event whose copy throws while the replay gate holds it is reported, and the "
    "others follow in order",
    "[retention][errors]") {
    tidings::bus bus;
    bus.set_error_policy(tidings::error_policy::report);
    int reported = 0;
    bus.set_error_handler([&](const tidings::handler_error&) { ++reported; });
    bus.retain<fragile>(10);
    for (int i = 1; i <= 3; ++i) bus.publish(fragile{i});
    std::vector<int> seen;
    auto s = bus.subscribe(
        [&](const fragile& e) {
            seen.push_back(e.sound() ? e.seq : -1);
            if (e.seq == 1) {
                // Published during the replay: held until it ends. The 1st copy is kept by
                // the channel, the 2nd is the gate's, which throws.
                fail_nth_copy(2);
                bus.publish(fragile{100});
                CHECK(fail_nth_copy(0));
                bus.publish(fragile{101});
            }
        },
        tidings::replay);
    CHECK(seen == std::vector<int>{1, 2, 3, 101});
    CHECK(reported == 1);
    CHECK(replayed_now(bus) == std::vector<int>{1, 2, 3, 100, 101});
}

// Issue 9, item 5: the replay gate counted a replayed event off only after its filter said
// yes or no, so a throwing filter kept it shut: every later live event was held for ever.
TEST_CASE("a filter that throws on a replayed event does not keep the live events back",
          "[retention][errors]") {
    tidings::bus bus;
    bus.set_error_policy(tidings::error_policy::report);
    int reported = 0;
    bus.set_error_handler([&](const tidings::handler_error&) { ++reported; });
    bus.retain<goal>(5);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                           tidings::filter([](const goal& g) {
                               if (g.seq == 2) throw std::runtime_error("filter");
                               return true;
                           }));
    CHECK(seen == std::vector<int>{1, 3});
    CHECK(reported == 1);
    publish_goals(bus, 4, 5);
    CHECK(seen == std::vector<int>{1, 3, 4, 5});
}

TEST_CASE("a filter that throws on a queued replayed event does not keep the live events back",
          "[retention][errors][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    int reported = 0;
    bus.set_error_handler([&](const tidings::handler_error&) { ++reported; });
    bus.retain<goal>(5);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    tidings::subscription s;
    // Subscribed from another thread: the replay comes through that thread's lane, and the
    // live events through this one's, which the executor may run first.
    // The joiner stays until the live events are queued: its lane is then not reused by this
    // thread, and the executor takes this thread's newer lane first, so the live events
    // overtake the replay and wait in the gate.
    std::latch subscribed{1};
    std::latch published{1};
    std::thread joiner([&] {
        s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                          tidings::deliver_on(loop), tidings::filter([](const goal& g) {
                              if (g.seq == 3) throw std::runtime_error("filter");
                              return true;
                          }));
        subscribed.count_down();
        published.wait();
    });
    subscribed.wait();
    publish_goals(bus, 4, 6);
    published.count_down();
    joiner.join();
    while (loop.run_one() != 0) {
    }
    CHECK(reported == 1);
    CHECK(seen == std::vector<int>{1, 2, 4, 5, 6});
    publish_goals(bus, 7, 7);
    loop.run_pending();
    CHECK(seen == std::vector<int>{1, 2, 4, 5, 6, 7});
}

// Issue 9, item 5: a handler throwing on the last replayed event left the held live events
// waiting for the next publish; then one of them throwing dropped the rest, and the live event
// that had set the flush going, without a report.
TEST_CASE(
    "a handler that throws on the last replayed event still receives the held live events "
    "right after it, and each one that throws is reported",
    "[retention][errors]") {
    tidings::bus bus;
    bus.set_error_policy(tidings::error_policy::report);
    std::vector<int> reported;
    bus.set_error_handler([&](const tidings::handler_error& e) {
        try {
            std::rethrow_exception(e.exception);
        } catch (const std::runtime_error& error) {
            reported.push_back(std::stoi(error.what()));
        }
    });
    bus.retain<goal>(5);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    auto s = bus.subscribe(
        [&](const goal& g) {
            seen.push_back(g.seq);
            if (g.seq == 1) publish_goals(bus, 100, 102);  // during the replay: held
            if (g.seq == 3 || g.seq == 100 || g.seq == 101) {
                throw std::runtime_error(std::to_string(g.seq));
            }
        },
        tidings::replay);
    CHECK(seen == std::vector<int>{1, 2, 3, 100, 101, 102});  // before subscribe returned
    CHECK(reported == std::vector<int>{3, 100, 101});
    publish_goals(bus, 4, 4);
    CHECK(seen == std::vector<int>{1, 2, 3, 100, 101, 102, 4});
}

TEST_CASE(
    "a queued handler that throws on replayed and held events receives every event, replay "
    "first, each failure reported, without waiting for another publish",
    "[retention][errors][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    std::vector<int> reported;
    bus.set_error_handler([&](const tidings::handler_error& e) {
        try {
            std::rethrow_exception(e.exception);
        } catch (const std::runtime_error& error) {
            reported.push_back(std::stoi(error.what()));
        }
    });
    bus.retain<goal>(5);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    tidings::subscription s;
    // The joiner stays until the live events are queued: its lane is then not reused by this
    // thread, and the executor takes this thread's newer lane first, so the live events
    // overtake the replay and wait in the gate.
    std::latch subscribed{1};
    std::latch published{1};
    std::thread joiner([&] {
        s = bus.subscribe(
            [&](const goal& g) {
                seen.push_back(g.seq);
                if (g.seq == 3 || g.seq == 4) throw std::runtime_error(std::to_string(g.seq));
            },
            tidings::replay, tidings::deliver_on(loop));
        subscribed.count_down();
        published.wait();
    });
    subscribed.wait();
    publish_goals(bus, 4, 6);
    published.count_down();
    joiner.join();
    while (loop.run_one() != 0) {
    }
    CHECK(seen == range(1, 6));
    std::sort(reported.begin(), reported.end());
    CHECK(reported == std::vector<int>{3, 4});
}

TEST_CASE("a replaying handler that unsubscribes itself is not given the held events",
          "[retention][reentrancy][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    bus.retain<goal>(5);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    tidings::subscription s;
    // The joiner stays until the live events are queued: its lane is then not reused by this
    // thread, and the executor takes this thread's newer lane first, so the live events
    // overtake the replay and wait in the gate.
    std::latch subscribed{1};
    std::latch published{1};
    std::thread joiner([&] {
        s = bus.subscribe(
            [&](const goal& g) {
                seen.push_back(g.seq);
                if (g.seq == 4) s.unsubscribe();
            },
            tidings::replay, tidings::deliver_on(loop));
        subscribed.count_down();
        published.wait();
    });
    subscribed.wait();
    publish_goals(bus, 4, 6);
    published.count_down();
    joiner.join();  // held if they overtake the replay
    while (loop.run_one() != 0) {
    }
    CHECK(seen == range(1, 4));
}

// Issue 9, item 10: the gate's move constructor is noexcept and moved a std::deque, whose move
// allocates in libstdc++: out of memory, subscribe(..., replay) called std::terminate.
TEST_CASE("moving a replay gate allocates nothing, so its noexcept move cannot fail",
          "[retention][allocation]") {
    using gate = tidings::detail::replay_gate<fragile, std::function<void(const fragile&)>>;
    static_assert(std::is_nothrow_move_constructible_v<gate>);
    gate original{[](const fragile&) {}, 3};
    tidings_test::allocation_window window;
    gate moved{std::move(original)};
    CHECK(window.stop() == 0);
    CHECK(moved.remaining.load(std::memory_order_relaxed) == 3);
}

TEST_CASE(
    "subscribe with replay under an allocation failure at each step either subscribes or "
    "throws bad_alloc, and the channel goes on",
    "[retention][allocation]") {
    if (!tidings_test::can_fail_allocations) return;
    lifetime_counter counter;
    for (const bool queued : {false, true}) {
        bool finished = false;
        for (int n = 1; n <= 200 && !finished; ++n) {
            INFO((queued ? "queued" : "inline") << ", allocation " << n << " fails");
            tidings::manual_executor loop;
            tidings::bus bus;
            bus.retain<fragile>(3);
            for (int i = 1; i <= 4; ++i) bus.publish(fragile{i});
            std::vector<int> seen;
            seen.reserve(16);  // the handler's own pushes allocate nothing under the failure
            // Allocates nothing itself (sound() would): only the library's allocations fail.
            auto handler = [&seen, life = counted{counter}](const fragile& e) {
                seen.push_back(e.alive ? e.seq : -1);
            };
            tidings::subscription s;
            bool threw = false;
            {
                tidings_test::allocation_failure failure{n};
                try {
                    s = queued ? bus.subscribe(handler, tidings::replay, tidings::deliver_on(loop))
                               : bus.subscribe(handler, tidings::replay);
                } catch (const std::bad_alloc&) {
                    threw = true;
                }
                finished = !failure.failed();
                CHECK((threw ? failure.failed() : true));
            }
            loop.run_pending();
            if (threw) {
                CHECK(seen.empty());
                CHECK(bus.subscriber_count<fragile>() == 0);
            } else {
                CHECK(seen == range(2, 4));
            }
            bus.publish(fragile{5});
            loop.run_pending();
            CHECK(seen == (threw ? std::vector<int>{} : range(2, 5)));
            CHECK(replayed_now(bus) == range(3, 5));
        }
        CHECK(finished);
    }
    CHECK(counter.live() == 0);
}

TEST_CASE(
    "retain under an allocation failure at each step either takes effect or throws "
    "bad_alloc with the kept events and their count as before",
    "[retention][allocation]") {
    if (!tidings_test::can_fail_allocations) return;
    for (const std::size_t target : {std::size_t{0}, std::size_t{2}, std::size_t{6}}) {
        bool finished = false;
        for (int n = 1; n <= 50 && !finished; ++n) {
            INFO("retain(" << target << ") with allocation " << n << " failing");
            tidings::bus bus;
            bus.retain<fragile>(4);
            for (int i = 1; i <= 5; ++i) bus.publish(fragile{i});  // kept: 2..5
            bool threw = false;
            {
                tidings_test::allocation_failure failure{n};
                try {
                    bus.retain<fragile>(target);
                } catch (const std::bad_alloc&) {
                    threw = true;
                }
                finished = !failure.failed();
            }
            const std::size_t in_force = threw ? 4 : target;
            if (threw) {
                CHECK(replayed_now(bus) == range(2, 5));
            } else if (target != 0) {
                CHECK(replayed_now(bus) == range(std::max(2, 6 - static_cast<int>(target)), 5));
            }
            for (int i = 6; i <= 12; ++i) bus.publish(fragile{i});
            const std::vector<int> expected =
                in_force == 0 ? std::vector<int>{} : range(13 - static_cast<int>(in_force), 12);
            CHECK(replayed_now(bus) == expected);
        }
        CHECK(finished);
    }
}

// --- a queued replay that its executor partly refuses ---------------------------------------
//
// The replayed events are queued from the subscribing thread's lane and live events from the
// publishers' lanes, so live events can reach the replay gate first and wait there. Refused
// replayed events are counted off the gate: that must happen before a live event can wait
// for them, or the held events wait for a next live event that may never come.

namespace {

/// This thread's hook, run on each copy of a `hooked` event that the thread makes.
thread_local std::function<void()> copy_hook;

/// An event whose copies run the copying thread's hook: a test learns where a subscribe has
/// got to (and slows it down) without a sleep.
struct hooked {
    int seq = 0;
    explicit hooked(int s) noexcept : seq(s) {}
    hooked(const hooked& other) : seq(other.seq) {
        if (copy_hook) copy_hook();
    }
    hooked(hooked&&) noexcept = default;
    hooked& operator=(const hooked&) = default;
    hooked& operator=(hooked&&) noexcept = default;
};

template <class Bus>
void publish_hooked(Bus& bus, int from, int to) {
    for (int i = from; i <= to; ++i) bus.publish(hooked{i});
}

/// What a replaying handler received, split at its first live (positive) event.
struct received_parts {
    std::vector<int> replayed;
    std::vector<int> live;
};

received_parts split_at_live(const std::vector<int>& seen) {
    const auto first_live = std::find_if(seen.begin(), seen.end(), [](int seq) { return seq > 0; });
    return {std::vector<int>(seen.begin(), first_live), std::vector<int>(first_live, seen.end())};
}

/// What a replaying subscriber of `goal` receives now.
std::vector<int> replayed_goals(tidings::bus& bus) {
    std::vector<int> seen;
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay);
    return seen;
}

const char* policy_name(tidings::overflow policy) {
    switch (policy) {
        case tidings::overflow::block:
            return "block";
        case tidings::overflow::drop:
            return "drop";
        case tidings::overflow::fail:
            return "fail";
    }
    return "?";
}

}  // namespace

// Issue 9 review: with overflow::drop, the replayed events that a concurrent stop() refused
// were counted off the gate only after the accepted ones had run; the live events it held
// meanwhile then waited for a next live event, which a stopped executor never runs: lost.
TEST_CASE(
    "a queued replay cut short by its executor's stop delivers the accepted replayed events, "
    "then every accepted live event, and counts or throws the refused ones",
    "[retention][executor][threaded]") {
    const auto policy =
        GENERATE(tidings::overflow::drop, tidings::overflow::fail, tidings::overflow::block);
    // Many refused pushes after the stop: without the fix, the worker has time to run the
    // last accepted replayed event before the subscribing thread counts the refused ones off.
    constexpr int retained = 512;
    constexpr int live = 4;
    const int runs = static_cast<int>(tidings_test::scaled(64, 4));
    for (int run = 0; run < runs; ++run) {
        // The stop comes while the k-th replayed event is being queued: k are accepted.
        const int k = 1 + run % 8;
        INFO(policy_name(policy) << ", stopped at replayed event " << k);
        tidings::bus bus;
        bus.retain<hooked>(retained);
        publish_hooked(bus, -retained, -1);
        // It spins when idle, so it takes each task as soon as it is queued.
        tidings::thread_executor worker{tidings::executor_options{
            .capacity = 2 * retained, .on_full = policy, .spin_duration = std::chrono::seconds{1}}};
        std::vector<int> seen;    // written by the worker; read once its stop joined it
        std::vector<int> probed;  // likewise: every live event the worker accepted
        std::atomic<int> handled{0};
        // A lower priority: called after the replaying subscriber, in the same delivery task.
        auto probe = bus.subscribe([&](const hooked& e) { probed.push_back(e.seq); },
                                   tidings::deliver_on(worker), tidings::priority{-1});
        std::atomic<bool> linked{false};          // live events now reach the subscriber
        std::atomic<bool> stop_requested{false};  // by the copy hook, or once subscribe returned
        std::atomic<int> refused_live{0};         // publishes that threw executor_stopped
        std::thread publisher([&] {
            tidings_test::spin_until([&] { return linked.load(std::memory_order_acquire); });
            for (int i = 1; i <= live; ++i) {
                try {
                    bus.publish(hooked{i});
                } catch (const tidings::executor_stopped&) {
                    refused_live.fetch_add(1, std::memory_order_relaxed);
                }
            }
        });
        std::thread stopper([&] {
            tidings_test::spin_until(
                [&] { return stop_requested.load(std::memory_order_acquire); });
            worker.stop();
        });
        int copies_after_link = 0;
        copy_hook = [&] {
            // The subscribing thread reads its own link: the copies into the queue have begun.
            if (bus.subscriber_count<hooked>() != 2) return;
            linked.store(true, std::memory_order_release);
            if (++copies_after_link != k) return;
            // The k-th push has seen the executor accepting; the pushes after it will not.
            tidings_test::spin_until(
                [&] { return handled.load(std::memory_order_acquire) >= k - 1; });
            stop_requested.store(true, std::memory_order_release);
            tidings_test::spin_until([&] { return !worker.core().accepting(); });
        };
        bool threw = false;
        tidings::subscription s;
        try {
            s = bus.subscribe(
                [&](const hooked& e) {
                    seen.push_back(e.seq);
                    handled.fetch_add(1, std::memory_order_release);
                },
                tidings::replay, tidings::deliver_on(worker));
        } catch (const tidings::executor_stopped&) {
            threw = true;
        }
        copy_hook = nullptr;
        linked.store(true, std::memory_order_release);
        stop_requested.store(true, std::memory_order_release);
        publisher.join();
        stopper.join();  // stop() drained the worker: every accepted task ran

        const tidings::executor_stats stats = worker.stats();
        const received_parts parts = split_at_live(seen);
        CHECK(stats.discarded == 0);
        CHECK(probed.size() + static_cast<std::size_t>(refused_live.load()) +
                  (policy == tidings::overflow::drop ? stats.rejected - (retained - k) : 0) ==
              live);
        if (policy == tidings::overflow::drop) {
            // Refused replayed events are counted as rejected and skipped; the subscription
            // stays, and every live event the executor accepted follows the accepted replay.
            CHECK_FALSE(threw);
            CHECK(s.connected());
            CHECK(parts.replayed == range(-retained, -retained + k - 1));
            CHECK(parts.live == probed);
            CHECK(stats.rejected >= static_cast<std::uint64_t>(retained - k));
        } else {
            // block and fail throw executor_stopped: the subscription is undone. The gate still
            // waited for the refused events, so the handler got no live event; the k-th
            // replayed event may have run before the undo.
            CHECK(threw);
            CHECK_FALSE(s.connected());
            CHECK(bus.subscriber_count<hooked>() == 1);
            CHECK(parts.live.empty());
            CHECK((parts.replayed == range(-retained, -retained + k - 2) ||
                   parts.replayed == range(-retained, -retained + k - 1)));
            CHECK(stats.rejected == 0);
        }
    }
}

TEST_CASE(
    "a queued replay into a full drop-policy queue skips the refused replayed events, counts "
    "them as dropped, and delivers the live events after the accepted ones",
    "[retention][executor]") {
    tidings::manual_executor loop{
        tidings::executor_options{.capacity = 2, .on_full = tidings::overflow::drop}};
    tidings::bus bus;
    bus.retain<goal>(4);
    publish_goals(bus, 1, 4);
    std::vector<int> seen;
    // This thread's lane takes two tasks: replayed events 1 and 2; 3 and 4 are dropped.
    auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                           tidings::deliver_on(loop));
    CHECK(loop.stats().dropped == 2);
    std::thread([&] { publish_goals(bus, 5, 6); }).join();  // through another lane
    loop.run_pending();
    CHECK(seen == std::vector<int>{1, 2, 5, 6});
    publish_goals(bus, 7, 7);
    loop.run_pending();
    CHECK(seen == std::vector<int>{1, 2, 5, 6, 7});
    const tidings::executor_stats stats = loop.stats();
    CHECK(stats.queued == 5);
    CHECK(stats.executed == 5);
    CHECK(stats.dropped == 2);
    CHECK(stats.cancelled == 0);
}

TEST_CASE(
    "a queued replay whose every replayed event is refused keeps the subscription and gives "
    "the handler every live event its executor accepts",
    "[retention][executor]") {
    SECTION("refused by a full drop-policy queue") {
        tidings::manual_executor loop{
            tidings::executor_options{.capacity = 2, .on_full = tidings::overflow::drop}};
        tidings::bus bus;
        bus.retain<goal>(3);
        publish_goals(bus, 1, 3);
        std::vector<int> others;
        auto filler = bus.subscribe([&](const other& o) { others.push_back(o.seq); },
                                    tidings::deliver_on(loop));
        bus.publish(other{1});  // these two fill this thread's lane
        bus.publish(other{2});
        std::vector<int> seen;
        auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                               tidings::deliver_on(loop));
        CHECK(s.connected());
        CHECK(loop.stats().dropped == 3);
        std::thread([&] { publish_goals(bus, 10, 11); }).join();
        loop.run_pending();
        CHECK(others == std::vector<int>{1, 2});
        CHECK(seen == std::vector<int>{10, 11});
        CHECK(loop.stats().executed == 4);
    }
    SECTION("refused by a stopped drop-policy executor") {
        tidings::thread_executor worker{
            tidings::executor_options{.on_full = tidings::overflow::drop}};
        worker.stop();
        tidings::bus bus;
        bus.retain<goal>(3);
        publish_goals(bus, 1, 3);
        std::vector<int> seen;
        auto s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay,
                               tidings::deliver_on(worker));
        CHECK(s.connected());
        CHECK(worker.stats().rejected == 3);
        const tidings::publish_result result = bus.publish(goal{4});
        CHECK(result.dropped == 1);
        CHECK(worker.stats().rejected == 4);
        CHECK(worker.stats().queued == 0);
        CHECK(seen.empty());
    }
    SECTION("refused by a stopped executor that throws: the subscribe is undone") {
        const auto policy = GENERATE(tidings::overflow::block, tidings::overflow::fail);
        INFO(policy_name(policy));
        tidings::thread_executor worker{tidings::executor_options{.on_full = policy}};
        worker.stop();
        tidings::bus bus;
        bus.retain<goal>(3);
        publish_goals(bus, 1, 3);
        tidings::subscription s;
        CHECK_THROWS_AS(
            s = bus.subscribe([](const goal&) {}, tidings::replay, tidings::deliver_on(worker)),
            tidings::executor_stopped);
        CHECK_FALSE(s.connected());
        CHECK(bus.subscriber_count<goal>() == 0);
        CHECK(worker.stats().rejected == 0);
    }
}

TEST_CASE(
    "a queued replay that overflows a fail-policy queue throws queue_full, undoes the "
    "subscribe, and gives its handler nothing; the channel goes on",
    "[retention][executor][errors]") {
    tidings::manual_executor loop{
        tidings::executor_options{.capacity = 2, .on_full = tidings::overflow::fail}};
    tidings::bus bus;
    bus.retain<goal>(3);
    publish_goals(bus, 1, 3);
    std::vector<int> seen;
    tidings::subscription s;
    CHECK_THROWS_AS(s = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); },
                                      tidings::replay, tidings::deliver_on(loop)),
                    tidings::queue_full);
    CHECK_FALSE(s.connected());
    CHECK(bus.subscriber_count<goal>() == 0);
    std::thread([&] { publish_goals(bus, 4, 4); }).join();
    loop.run_pending();  // the two replayed events it had queued find no subscriber
    CHECK(seen.empty());
    CHECK(loop.stats().cancelled == 2);
    // A replay that fits is queued whole.
    auto again = bus.subscribe([&](const goal& g) { seen.push_back(g.seq); }, tidings::replay(2),
                               tidings::deliver_on(loop));
    std::thread([&] { publish_goals(bus, 5, 5); }).join();
    loop.run_pending();
    CHECK(seen == std::vector<int>{3, 4, 5});
}

// A manual_executor has no stop(): it stops accepting when it is destroyed, which also
// disconnects its subscribers, so nothing is left to deliver to them.
TEST_CASE(
    "a manual_executor destroyed during a queued replay disconnects the replaying subscriber, "
    "which is given nothing",
    "[retention][executor][threaded]") {
    const auto policy = GENERATE(tidings::overflow::drop, tidings::overflow::block);
    INFO(policy_name(policy));
    constexpr int retained = 8;
    tidings::bus bus;
    bus.retain<hooked>(retained);
    publish_hooked(bus, -retained, -1);
    auto loop = std::make_unique<tidings::manual_executor>(
        tidings::executor_options{.capacity = 16, .on_full = policy});
    tidings::detail::executor_core& core = loop->core();
    std::atomic<bool> destroy{false};
    std::thread destroyer([&] {
        tidings_test::spin_until([&] { return destroy.load(std::memory_order_acquire); });
        loop.reset();  // waits for the pushes under way, then discards and disconnects
    });
    int copies_after_link = 0;
    copy_hook = [&] {
        if (bus.subscriber_count<hooked>() != 1 || ++copies_after_link != 3) return;
        destroy.store(true, std::memory_order_release);
        tidings_test::spin_until([&] { return !core.accepting(); });
    };
    std::vector<int> seen;
    tidings::subscription s;
    bool threw = false;
    try {
        s = bus.subscribe([&](const hooked& e) { seen.push_back(e.seq); }, tidings::replay,
                          tidings::deliver_on(*loop));
    } catch (const tidings::executor_stopped&) {
        threw = true;
    }
    copy_hook = nullptr;
    destroy.store(true, std::memory_order_release);
    destroyer.join();
    CHECK(threw == (policy == tidings::overflow::block));
    CHECK_FALSE(s.connected());
    CHECK(bus.subscriber_count<hooked>() == 0);
    CHECK(seen.empty());
    publish_hooked(bus, 1, 1);
    CHECK(seen.empty());
}

// --- retention changed by a replaying handler ----------------------------------------------

// Issue 9 review: an inline replaying handler that called retain<E>(0) rebuilt the snapshot
// without the retention flag, so other threads' publishes stopped taking the retention's
// mutex and reached the replay gate while it was still replaying (a data race on its held
// events, and live events out of order).
TEST_CASE(
    "an inline replaying handler that turns retention off or changes it receives other "
    "threads' live events after its replay, in order, each once",
    "[retention][threaded]") {
    enum class change { off, shrink, off_then_on };
    const change what = GENERATE(change::off, change::shrink, change::off_then_on);
    constexpr int retained = 3;
    constexpr int live = 40;
    const int runs = static_cast<int>(tidings_test::scaled(200, 4));
    for (int run = 0; run < runs; ++run) {
        INFO("change " << static_cast<int>(what) << ", run " << run);
        tidings::bus bus;
        bus.retain<goal>(retained);
        publish_goals(bus, -retained, -1);
        std::atomic<bool> go{false};
        std::atomic<int> attempted{0};
        std::thread publisher([&] {
            tidings_test::spin_until([&] { return go.load(std::memory_order_acquire); });
            for (int i = 1; i <= live; ++i) {
                attempted.store(i, std::memory_order_release);
                bus.publish(goal{i});
            }
        });
        std::vector<int> seen;  // the replay's thread, then the publisher's, one after the other
        auto s = bus.subscribe(
            [&](const goal& g) {
                seen.push_back(g.seq);
                if (g.seq != -retained) return;
                switch (what) {
                    case change::off:
                        bus.retain<goal>(0);
                        break;
                    case change::shrink:
                        bus.retain<goal>(1);
                        break;
                    case change::off_then_on:
                        bus.retain<goal>(0);
                        bus.retain<goal>(5);
                        break;
                }
                go.store(true, std::memory_order_release);
                // The publisher is in its first publish: without the fix, it reaches the
                // gate beside the rest of this replay.
                tidings_test::spin_until(
                    [&] { return attempted.load(std::memory_order_acquire) >= 1; });
                tidings_test::busy_work(run % 8 * 50);
            },
            tidings::replay);
        publisher.join();
        std::vector<int> expected = range(-retained, -1);
        for (int i = 1; i <= live; ++i) expected.push_back(i);
        CHECK(seen == expected);
        switch (what) {
            case change::off:
                CHECK(replayed_goals(bus).empty());
                break;
            case change::shrink:
                CHECK(replayed_goals(bus) == std::vector<int>{live});
                break;
            case change::off_then_on:
                CHECK(replayed_goals(bus) == range(live - 4, live));
                break;
        }
        // The channel goes on: the subscriber receives the next event once.
        publish_goals(bus, live + 1, live + 1);
        CHECK(seen.back() == live + 1);
        CHECK(seen.size() == expected.size() + 1);
    }
}

TEST_CASE(
    "a discarding stop during a queued replay counts the live events held behind the "
    "discarded replayed events as discarded",
    "[retention][replay][executor]") {
    // The gate held live events that had run on the executor while the replayed ones waited;
    // a discarding stop then threw the replayed events away, and the held ones with them,
    // uncounted: lost silently.
    tidings::bus bus;
    bus.retain<goal>(3);
    for (int i = 1; i <= 3; ++i) bus.publish(goal{i});
    tidings::thread_executor worker;
    std::latch release_blocker{1};
    std::atomic<bool> live_reached_filter{false};
    // The worker's first lane: one task that holds the worker while the others fill.
    std::latch blocker_running{1};
    auto blocker = bus.subscribe<other>(
        [&](const other&) {
            blocker_running.count_down();
            release_blocker.wait();
        },
        tidings::deliver_on(worker));
    bus.publish(other{});
    blocker_running.wait();  // before the other lanes exist: the worker serves them next
    std::vector<int> seen;   // the worker's
    tidings::subscription replaying;
    // The replayed events queue in this thread's lane, the live ones in another thread's
    // (newer, so the worker serves it first once the blocker returns).
    std::thread([&] {
        replaying = bus.subscribe<goal>(
            [&](const goal& g) { seen.push_back(g.seq); }, tidings::deliver_on(worker),
            tidings::replay, tidings::filter([&](const goal& g) {
                if (g.seq == 102) {
                    live_reached_filter.store(true);
                    // Passes once the stop has halted the worker:
                    // the replayed events are then discarded.
                    tidings_test::spin_until([&] { return worker.core().halted(); });
                }
                return true;
            }));
    }).join();
    std::thread([&] {
        bus.publish(goal{101});
        bus.publish(goal{102});
    }).join();
    release_blocker.count_down();
    tidings_test::spin_until([&] { return live_reached_filter.load(); });
    const std::size_t discarded = worker.stop(tidings::stop_mode::discard);
    // 3 replayed events, and the 2 live events held behind them.
    CHECK(discarded == 5);
    CHECK(worker.stats().discarded == 5);
    CHECK(seen.empty());
}
