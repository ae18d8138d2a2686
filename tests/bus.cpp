// tidings::bus and tidings::single_threaded_bus: subscribe, publish, options, ordering,
// reentrancy and the lifetime of handles and handlers.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using tidings_test::counted;
using tidings_test::lifetime_counter;

struct ping {
    int value = 0;
};
struct pong {
    int value = 0;
};

// Free functions for the function-pointer tests (one test at a time uses them).
int free_calls = 0;
int free_last = 0;
void free_handler(const ping& e) {
    ++free_calls;
    free_last = e.value;
}

struct ping_counter {
    int* calls;
    void operator()(const ping& e) const { *calls += e.value; }
};

// Overloaded: its event type cannot be deduced; subscribe<ping> picks the ping overload.
struct overloaded_handler {
    std::vector<std::string>* log;
    void operator()(const ping&) const { log->push_back("ping"); }
    void operator()(const pong&) const { log->push_back("pong"); }
};

struct audit {
    std::vector<std::string> log;
    void on_ping(const ping& e) { log.push_back("ping " + std::to_string(e.value)); }
    void on_pong(const pong& e) const { const_log.push_back("pong " + std::to_string(e.value)); }
    mutable std::vector<std::string> const_log;
};

struct widget {
    bool* destroyed;
    int hits = 0;
    explicit widget(bool& flag) : destroyed(&flag) {}
    widget(const widget&) = delete;
    widget& operator=(const widget&) = delete;
    ~widget() { *destroyed = true; }
};

}  // namespace

// --- basics ---------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("a subscriber receives every published event of its type, in order", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<int> seen;
    auto s = bus.template subscribe<ping>([&](const ping& e) { seen.push_back(e.value); });
    bus.publish(ping{1});
    bus.publish(ping{2});
    bus.publish(ping{3});
    CHECK(seen == std::vector<int>{1, 2, 3});
    CHECK(s.connected());
}

TEMPLATE_TEST_CASE("an event reaches only the subscribers of its own type", "[bus]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    int pings = 0;
    int pongs = 0;
    auto a = bus.template subscribe<ping>([&](const ping&) { ++pings; });
    auto b = bus.template subscribe<pong>([&](const pong&) { ++pongs; });
    bus.publish(pong{7});
    CHECK(pings == 0);
    CHECK(pongs == 1);
    bus.publish(ping{7});
    CHECK(pings == 1);
    CHECK(pongs == 1);

    struct never_subscribed {};
    bus.publish(never_subscribed{});  // no channel: reaches no one, does nothing
    CHECK(bus.template subscriber_count<never_subscribed>() == 0);
}

TEMPLATE_TEST_CASE("the event type is deduced from the handler's parameter", "[bus]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    auto by_ref =
        bus.subscribe([&](const ping& e) { log.push_back("ref " + std::to_string(e.value)); });
    auto by_value =
        bus.subscribe([&](ping e) { log.push_back("value " + std::to_string(e.value)); });
    auto nothrow = bus.subscribe(
        [&](const ping& e) noexcept { log.push_back("noexcept " + std::to_string(e.value)); });
    auto stateful = bus.subscribe([&log, n = 0](const ping&) mutable {
        ++n;
        log.push_back("mutable " + std::to_string(n));
    });
    auto returns = bus.subscribe([&](const pong& e) {
        log.push_back("pong " + std::to_string(e.value));
        return 42;  // a result is ignored
    });
    CHECK(bus.template subscriber_count<ping>() == 4);
    CHECK(bus.template subscriber_count<pong>() == 1);

    bus.publish(ping{1});
    bus.publish(ping{2});
    bus.publish(pong{3});
    CHECK(log == std::vector<std::string>{"ref 1", "value 1", "noexcept 1", "mutable 1", "ref 2",
                                          "value 2", "noexcept 2", "mutable 2", "pong 3"});
}

TEMPLATE_TEST_CASE("a member function subscribes together with its object", "[bus]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    audit a;
    auto deduced = bus.subscribe(&audit::on_ping, a);
    auto named = bus.template subscribe<pong>(&audit::on_pong, a);
    auto first = bus.subscribe(&audit::on_ping, a, tidings::priority{1});
    bus.publish(ping{4});
    bus.publish(pong{5});
    CHECK(a.log == std::vector<std::string>{"ping 4", "ping 4"});
    CHECK(a.const_log == std::vector<std::string>{"pong 5"});

    deduced.unsubscribe();
    first.unsubscribe();
    bus.publish(ping{6});
    CHECK(a.log.size() == 2);
}

TEMPLATE_TEST_CASE("a function pointer or function reference subscribes", "[bus]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    free_calls = 0;
    free_last = 0;
    auto by_pointer = bus.subscribe(&free_handler);
    auto by_reference = bus.subscribe(free_handler);
    auto named = bus.template subscribe<ping>(&free_handler);
    bus.publish(ping{9});
    CHECK(free_calls == 3);
    CHECK(free_last == 9);
}

TEMPLATE_TEST_CASE("a function object subscribes, deduced or with the event type named", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    int total = 0;
    std::vector<std::string> log;
    auto counter = bus.subscribe(ping_counter{&total});
    auto overloaded = bus.template subscribe<pong>(overloaded_handler{&log});
    bus.publish(ping{3});
    bus.publish(ping{4});
    bus.publish(pong{});
    CHECK(total == 7);
    CHECK(log == std::vector<std::string>{"pong"});
}

TEMPLATE_TEST_CASE("a move-only handler subscribes", "[bus]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    auto owned = std::make_unique<int>(0);
    int* value = owned.get();
    auto s = bus.subscribe([p = std::move(owned)](const ping& e) { *p += e.value; });
    bus.publish(ping{5});
    CHECK(*value == 5);
}

// --- ordering -------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("subscribers run in priority order, ties in subscription order", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    struct entry {
        int priority;
        int tag;
        std::optional<tidings::subscription> handle;
    };
    std::vector<entry> model;  // what the bus should hold, in subscription order
    std::vector<int> calls;
    int next_tag = 0;

    auto add = [&](int prio) {
        const int tag = next_tag++;
        model.push_back({prio, tag, std::nullopt});
        model.back().handle.emplace(bus.template subscribe<ping>(
            [&calls, tag](const ping&) { calls.push_back(tag); }, tidings::priority{prio}));
    };
    auto expected = [&] {
        std::vector<const entry*> order;
        for (const entry& e : model) order.push_back(&e);
        std::stable_sort(order.begin(), order.end(),
                         [](const entry* a, const entry* b) { return a->priority > b->priority; });
        std::vector<int> tags;
        for (const entry* e : order) tags.push_back(e->tag);
        return tags;
    };
    auto check_every_publish = [&] {
        for (int round = 0; round < 2; ++round) {
            calls.clear();
            bus.publish(ping{});
            REQUIRE(calls == expected());
        }
        REQUIRE(bus.template subscriber_count<ping>() == model.size());
    };

    for (int prio : {0, 5, -3, 5, 0, INT_MAX, -3, 5, INT_MIN, 0}) {
        add(prio);
        check_every_publish();
    }
    // Unsubscribe from the middle (and the ends), re-checking after each; then subscribe again
    // at priorities that already exist: newcomers go after their equals.
    for (std::size_t victim : {4U, 1U, 0U, 6U}) {
        model[victim].handle.reset();
        model.erase(model.begin() + static_cast<std::ptrdiff_t>(victim));
        check_every_publish();
    }
    for (int prio : {5, 0, -3, INT_MAX, 5}) {
        add(prio);
        check_every_publish();
    }
    while (!model.empty()) {
        model[model.size() / 2].handle->unsubscribe();
        model.erase(model.begin() + static_cast<std::ptrdiff_t>(model.size() / 2));
        check_every_publish();
    }
}

// --- options --------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("a filter runs the action only for events that pass its check", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<int> checked;
    std::vector<int> acted;
    auto s = bus.template subscribe<ping>([&](const ping& e) { acted.push_back(e.value); },
                                          tidings::filter([&](const ping& e) {
                                              checked.push_back(e.value);
                                              return e.value % 2 == 0;
                                          }));
    // A check returning something convertible to bool is accepted too.
    int truthy_calls = 0;
    auto t = bus.template subscribe<pong>([&](const pong&) { ++truthy_calls; },
                                          tidings::filter([](const pong& e) { return e.value; }));
    for (int i = 1; i <= 6; ++i) bus.publish(ping{i});
    bus.publish(pong{0});
    bus.publish(pong{3});
    CHECK(checked == std::vector<int>{1, 2, 3, 4, 5, 6});
    CHECK(acted == std::vector<int>{2, 4, 6});
    CHECK(truthy_calls == 1);
    CHECK(s.connected());
}

TEMPLATE_TEST_CASE("options combine in any order", "[bus]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    auto low = bus.template subscribe<ping>([&](const ping&) { log.push_back("low"); });
    auto high = bus.template subscribe<ping>(
        [&](const ping& e) { log.push_back("high " + std::to_string(e.value)); },
        tidings::filter([](const ping& e) { return e.value > 1; }), tidings::priority{3});
    auto also_high = bus.template subscribe<ping>(
        [&](const ping& e) { log.push_back("once " + std::to_string(e.value)); },
        tidings::priority{3}, tidings::once,
        tidings::filter([](const ping& e) { return e.value > 2; }));
    bus.publish(ping{1});
    bus.publish(ping{2});
    bus.publish(ping{3});
    bus.publish(ping{4});
    CHECK(log == std::vector<std::string>{"low", "high 2", "low", "high 3", "once 3", "low",
                                          "high 4", "low"});
    CHECK(!also_high.connected());
}

TEMPLATE_TEST_CASE("a once handler is called exactly once, then disconnected", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<int> seen;
    int others = 0;
    auto s = bus.template subscribe<ping>([&](const ping& e) { seen.push_back(e.value); },
                                          tidings::once);
    auto other = bus.template subscribe<ping>([&](const ping&) { ++others; });
    CHECK(s.connected());
    CHECK(bus.template subscriber_count<ping>() == 2);
    bus.publish(ping{1});
    CHECK(!s.connected());
    CHECK(bus.template subscriber_count<ping>() == 1);
    bus.publish(ping{2});
    bus.publish(ping{3});
    CHECK(seen == std::vector<int>{1});
    CHECK(others == 3);
    s.unsubscribe();  // still fine
    CHECK(!s.connected());
}

TEMPLATE_TEST_CASE("a once handler with a filter fires on the first event that passes it", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<int> seen;
    auto s =
        bus.template subscribe<ping>([&](const ping& e) { seen.push_back(e.value); }, tidings::once,
                                     tidings::filter([](const ping& e) { return e.value >= 3; }));
    bus.publish(ping{1});
    bus.publish(ping{2});
    CHECK(s.connected());
    bus.publish(ping{3});
    bus.publish(ping{4});
    CHECK(seen == std::vector<int>{3});
    CHECK(!s.connected());
}

TEST_CASE("a once handler is called exactly once under concurrent publishes from 4 threads",
          "[bus][threads]") {
    const int rounds = static_cast<int>(tidings_test::scaled(200, 8));
    int rounds_with_wrong_count = 0;
    int rounds_still_connected = 0;
    for (int round = 0; round < rounds; ++round) {
        tidings::bus bus;
        std::atomic<int> calls{0};
        auto s = bus.subscribe<ping>(
            [&](const ping&) { calls.fetch_add(1, std::memory_order_relaxed); }, tidings::once);
        std::latch start{4};
        {
            std::vector<std::jthread> threads;
            for (int t = 0; t < 4; ++t) {
                threads.emplace_back([&] {
                    start.arrive_and_wait();
                    for (int i = 0; i < 20; ++i) bus.publish(ping{i});
                });
            }
        }
        if (calls.load() != 1) ++rounds_with_wrong_count;
        if (s.connected()) ++rounds_still_connected;
    }
    CHECK(rounds_with_wrong_count == 0);
    CHECK(rounds_still_connected == 0);
}

TEMPLATE_TEST_CASE("a tracked subscription ends when its owner dies, without calling the handler",
                   "[bus]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bool destroyed = false;
    int calls_on_dead_object = 0;
    auto owner = std::make_shared<widget>(destroyed);
    widget* raw = owner.get();
    auto handler = [&calls_on_dead_object, raw, &destroyed](const ping&) {
        if (destroyed) {
            ++calls_on_dead_object;  // would be a use-after-free
            return;
        }
        ++raw->hits;
    };
    std::optional<tidings::subscription> s;
    SECTION("tracking a shared_ptr") {
        s.emplace(bus.template subscribe<ping>(handler, tidings::track(owner)));
    }
    SECTION("tracking a weak_ptr") {
        s.emplace(
            bus.template subscribe<ping>(handler, tidings::track(std::weak_ptr<widget>(owner))));
    }
    bus.publish(ping{});
    bus.publish(ping{});
    CHECK(raw->hits == 2);
    CHECK(s->connected());

    owner.reset();
    REQUIRE(destroyed);
    bus.publish(ping{});
    bus.publish(ping{});
    CHECK(calls_on_dead_object == 0);
    CHECK(!s->connected());
    CHECK(bus.template subscriber_count<ping>() == 0);
    s->unsubscribe();
}

TEMPLATE_TEST_CASE("a tracked subscription's filter never runs on a dead object", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bool destroyed = false;
    int checks = 0;
    int checks_on_dead_object = 0;
    int calls = 0;
    auto owner = std::make_shared<widget>(destroyed);
    widget* raw = owner.get();
    auto s = bus.template subscribe<ping>([&](const ping&) { ++calls; }, tidings::track(owner),
                                          tidings::filter([&, raw](const ping&) {
                                              if (destroyed) {
                                                  ++checks_on_dead_object;
                                                  return false;
                                              }
                                              ++checks;
                                              return raw->hits >= 0;
                                          }));
    bus.publish(ping{});
    CHECK(checks == 1);
    CHECK(calls == 1);
    owner.reset();
    bus.publish(ping{});
    bus.publish(ping{});
    CHECK(checks_on_dead_object == 0);
    CHECK(calls == 1);
    CHECK(!s.connected());
}

// subscription::connected() documents "false ... after a tracked object died"; this checks it
// holds as soon as the owner is gone, not only after the next publish noticed it.
TEMPLATE_TEST_CASE("a tracked subscription reports disconnected as soon as its owner is gone",
                   "[bus]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bool destroyed = false;
    auto owner = std::make_shared<widget>(destroyed);
    auto s = bus.template subscribe<ping>([](const ping&) {}, tidings::track(owner));
    CHECK(s.connected());
    owner.reset();
    CHECK(!s.connected());
}

TEMPLATE_TEST_CASE("subscriber_count counts the connected handlers of one type", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    CHECK(bus.template subscriber_count<ping>() == 0);
    auto a = bus.template subscribe<ping>([](const ping&) {});
    auto b = bus.template subscribe<ping>([](const ping&) {}, tidings::priority{2});
    auto c = bus.template subscribe<pong>([](const pong&) {});
    auto d = bus.template subscribe<ping>([](const ping&) {}, tidings::once);
    CHECK(bus.template subscriber_count<ping>() == 3);
    CHECK(bus.template subscriber_count<pong>() == 1);
    b.unsubscribe();
    CHECK(bus.template subscriber_count<ping>() == 2);
    bus.publish(ping{});  // the once handler leaves
    CHECK(bus.template subscriber_count<ping>() == 1);
    {
        auto moved = std::move(a);
        CHECK(bus.template subscriber_count<ping>() == 1);
    }
    CHECK(bus.template subscriber_count<ping>() == 0);
    CHECK(bus.template subscriber_count<pong>() == 1);
}

// --- reentrancy -----------------------------------------------------------------------------

TEMPLATE_TEST_CASE("a handler may publish an event of the same type", "[bus][reentrancy]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    auto first = bus.template subscribe<ping>(
        [&](const ping& e) {
            log.push_back("A" + std::to_string(e.value));
            if (e.value < 3) bus.publish(ping{e.value + 1});
        },
        tidings::priority{1});
    auto second = bus.template subscribe<ping>(
        [&](const ping& e) { log.push_back("B" + std::to_string(e.value)); });
    bus.publish(ping{0});
    CHECK(log == std::vector<std::string>{"A0", "A1", "A2", "A3", "B3", "B2", "B1", "B0"});
}

TEMPLATE_TEST_CASE("a handler may publish an event of another type", "[bus][reentrancy]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    auto high = bus.template subscribe<ping>(
        [&](const ping& e) {
            log.push_back("ping high");
            bus.publish(pong{e.value * 10});
        },
        tidings::priority{1});
    auto low = bus.template subscribe<ping>([&](const ping&) { log.push_back("ping low"); });
    auto other = bus.template subscribe<pong>(
        [&](const pong& e) { log.push_back("pong " + std::to_string(e.value)); });
    bus.publish(ping{4});
    CHECK(log == std::vector<std::string>{"ping high", "pong 40", "ping low"});
}

TEMPLATE_TEST_CASE("a subscription made during a dispatch misses that event and gets the next",
                   "[bus][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    std::vector<tidings::subscription> added;
    auto subscribing = bus.template subscribe<ping>([&](const ping& e) {
        log.push_back("subscriber " + std::to_string(e.value));
        if (e.value != 1) return;
        // One that would run later in this dispatch, one that would have run earlier.
        added.push_back(bus.template subscribe<ping>(
            [&](const ping& x) { log.push_back("later " + std::to_string(x.value)); },
            tidings::priority{-1}));
        added.push_back(bus.template subscribe<ping>(
            [&](const ping& x) { log.push_back("earlier " + std::to_string(x.value)); },
            tidings::priority{1}));
    });
    bus.publish(ping{1});
    CHECK(log == std::vector<std::string>{"subscriber 1"});
    CHECK(added.size() == 2);
    CHECK(added[0].connected());
    CHECK(bus.template subscriber_count<ping>() == 3);
    log.clear();
    bus.publish(ping{2});
    CHECK(log == std::vector<std::string>{"earlier 2", "subscriber 2", "later 2"});
}

TEMPLATE_TEST_CASE("a handler may unsubscribe itself and is not called again", "[bus][reentrancy]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    std::optional<tidings::subscription> self;
    bool connected_inside = true;
    int state_alive_inside = -1;
    lifetime_counter state;
    const bool destroy_handle = GENERATE(false, true);
    self.emplace(bus.template subscribe<ping>(
        [&, keep = counted{state}](const ping& e) {
            log.push_back("self " + std::to_string(e.value));
            if (destroy_handle) {
                self.reset();  // destroying the handle from inside its own handler
                connected_inside = false;
            } else {
                self->unsubscribe();
                connected_inside = self->connected();
            }
            // The running handler's own state is not destroyed under it.
            state_alive_inside = state.live();
            log.push_back("self still running");
        },
        tidings::priority{1}));
    auto other = bus.template subscribe<ping>(
        [&](const ping& e) { log.push_back("other " + std::to_string(e.value)); });
    bus.publish(ping{1});
    bus.publish(ping{2});
    CHECK(log == std::vector<std::string>{"self 1", "self still running", "other 1", "other 2"});
    CHECK(!connected_inside);
    CHECK(state_alive_inside == 1);
    CHECK(bus.template subscriber_count<ping>() == 1);
}

TEMPLATE_TEST_CASE("a handler that unsubscribes another not yet called in this dispatch stops it",
                   "[bus][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    std::optional<tidings::subscription> victim;
    const bool destroy_handle = GENERATE(false, true);
    auto killer = bus.template subscribe<ping>(
        [&](const ping&) {
            log.push_back("killer");
            if (!victim) return;
            if (destroy_handle) {
                victim.reset();
            } else {
                victim->unsubscribe();
            }
        },
        tidings::priority{10});
    victim.emplace(bus.template subscribe<ping>([&](const ping&) { log.push_back("victim"); }));
    auto last = bus.template subscribe<ping>([&](const ping&) { log.push_back("last"); },
                                             tidings::priority{-5});
    bus.publish(ping{});
    CHECK(log == std::vector<std::string>{"killer", "last"});
    log.clear();
    bus.publish(ping{});
    CHECK(log == std::vector<std::string>{"killer", "last"});
}

TEMPLATE_TEST_CASE("a handler that unsubscribes one already called leaves the dispatch intact",
                   "[bus][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    tidings::subscription early;
    early = bus.template subscribe<ping>([&](const ping&) { log.push_back("early"); },
                                         tidings::priority{10});
    auto middle = bus.template subscribe<ping>([&](const ping&) {
        log.push_back("middle");
        early.unsubscribe();
    });
    auto late = bus.template subscribe<ping>([&](const ping&) { log.push_back("late"); },
                                             tidings::priority{-10});
    bus.publish(ping{});
    bus.publish(ping{});
    CHECK(log == std::vector<std::string>{"early", "middle", "late", "middle", "late"});
}

TEMPLATE_TEST_CASE("a handler may unsubscribe and resubscribe during a dispatch",
                   "[bus][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<std::string> log;
    tidings::subscription swapped;
    auto make = [&](std::string name) {
        return bus.template subscribe<ping>([&log, name](const ping&) { log.push_back(name); });
    };
    swapped = make("first");
    bool swap = true;
    auto swapper = bus.template subscribe<ping>(
        [&](const ping&) {
            log.push_back("swapper");
            if (!std::exchange(swap, false)) return;
            swapped = make("second");  // move-assignment unsubscribes "first" mid-dispatch
        },
        tidings::priority{1});
    bus.publish(ping{});
    CHECK(log == std::vector<std::string>{"swapper"});
    log.clear();
    bus.publish(ping{});
    CHECK(log == std::vector<std::string>{"swapper", "second"});
}

// --- handles and lifetimes ------------------------------------------------------------------

TEMPLATE_TEST_CASE("an empty subscription is disconnected and unsubscribe is idempotent", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    tidings::subscription empty;
    CHECK(!empty.connected());
    CHECK(!static_cast<bool>(empty));
    CHECK(empty.id() == 0);
    empty.unsubscribe();

    TestType bus;
    int calls = 0;
    auto s = bus.template subscribe<ping>([&](const ping&) { ++calls; });
    CHECK(static_cast<bool>(s));
    s.unsubscribe();
    s.unsubscribe();
    CHECK(!s.connected());
    bus.publish(ping{});
    CHECK(calls == 0);
}

TEMPLATE_TEST_CASE("subscription ids are nonzero and distinct", "[bus]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    std::vector<tidings::subscription> subs;
    for (int i = 0; i < 5; ++i) subs.push_back(bus.template subscribe<ping>([](const ping&) {}));
    subs.push_back(bus.template subscribe<pong>([](const pong&) {}));
    std::vector<std::uint64_t> ids;
    for (const auto& s : subs) ids.push_back(s.id());
    CHECK(std::find(ids.begin(), ids.end(), 0U) == ids.end());
    std::sort(ids.begin(), ids.end());
    CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
}

TEMPLATE_TEST_CASE("a moved subscription keeps the handler connected and leaves its source empty",
                   "[bus]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    int calls = 0;
    auto source = bus.template subscribe<ping>([&](const ping&) { ++calls; });
    const std::uint64_t id = source.id();
    tidings::subscription target{std::move(source)};
    CHECK(!source.connected());  // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(source.id() == 0);
    CHECK(target.connected());
    CHECK(target.id() == id);
    source.unsubscribe();  // does not touch the handler
    bus.publish(ping{});
    CHECK(calls == 1);
    target.unsubscribe();
    bus.publish(ping{});
    CHECK(calls == 1);
}

TEMPLATE_TEST_CASE("move-assigning a subscription disconnects the handler it held", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    lifetime_counter old_state;
    std::vector<std::string> log;
    auto held = bus.template subscribe<ping>(
        [&log, keep = counted{old_state}](const ping&) { log.push_back("old"); });
    auto other = bus.template subscribe<ping>([&](const ping&) { log.push_back("new"); });
    CHECK(old_state.live() == 1);
    held = std::move(other);
    CHECK(old_state.live() == 0);  // the old handler is gone, not just skipped
    CHECK(held.connected());
    CHECK(!other.connected());  // NOLINT(bugprone-use-after-move)
    bus.publish(ping{});
    CHECK(log == std::vector<std::string>{"new"});
    CHECK(bus.template subscriber_count<ping>() == 1);
}

TEMPLATE_TEST_CASE(
    "a handler's captured state is destroyed at unsubscribe, though its handle lives on", "[bus]",
    tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    lifetime_counter state;
    auto s = bus.template subscribe<ping>([keep = counted{state}](const ping&) {});
    bus.publish(ping{});
    CHECK(state.live() == 1);
    s.unsubscribe();
    CHECK(state.live() == 0);
    CHECK(state.constructed.load() > 0);
    CHECK(!s.connected());
}

TEMPLATE_TEST_CASE("a handler's captured state is destroyed when its handle is destroyed", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    lifetime_counter state;
    {
        auto s = bus.template subscribe<ping>([keep = counted{state}](const ping&) {});
        CHECK(state.live() == 1);
    }
    CHECK(state.live() == 0);
    {
        auto s =
            bus.template subscribe<ping>([keep = counted{state}](const ping&) {}, tidings::once);
        bus.publish(ping{});  // fires and disconnects itself
        CHECK(!s.connected());
    }
    CHECK(state.live() == 0);
}

TEMPLATE_TEST_CASE("destroying a handler's state may unsubscribe another subscription", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    auto bus = std::make_unique<TestType>();
    int inner_calls = 0;
    int outer_calls = 0;
    lifetime_counter state;
    auto inner = bus->template subscribe<pong>([&](const pong&) { ++inner_calls; });
    auto outer =
        bus->template subscribe<ping>([&outer_calls, owned = std::move(inner),
                                       keep = counted{state}](const ping&) { ++outer_calls; });
    bus->publish(ping{});
    bus->publish(pong{});
    CHECK(outer_calls == 1);
    CHECK(inner_calls == 1);
    CHECK(bus->template subscriber_count<pong>() == 1);

    SECTION("by unsubscribing the handler that owns it") { outer.unsubscribe(); }
    SECTION("by unsubscribing it from inside a dispatch") {
        auto killer = bus->template subscribe<pong>([&](const pong&) { outer.unsubscribe(); },
                                                    tidings::priority{1});
        bus->publish(pong{});
        killer.unsubscribe();
    }
    SECTION("by destroying the bus") { bus.reset(); }

    if (bus) {
        // The captured subscription is gone by the time the owner's handle is destroyed.
        outer = tidings::subscription{};
        const int inner_before = inner_calls;
        bus->publish(ping{});
        bus->publish(pong{});
        CHECK(bus->template subscriber_count<pong>() == 0);
        CHECK(inner_calls == inner_before);
    }
    CHECK(state.live() == 0);
    CHECK(outer_calls == 1);
}

TEMPLATE_TEST_CASE("destroying the bus first leaves its subscriptions safe to use", "[bus]",
                   tidings::bus, tidings::single_threaded_bus) {
    lifetime_counter state;
    auto bus = std::make_unique<TestType>();
    auto a = bus->template subscribe<ping>([keep = counted{state}](const ping&) {});
    auto b = bus->template subscribe<pong>([keep = counted{state}](const pong&) {});
    auto c = bus->template subscribe<ping>([](const ping&) {});
    c.unsubscribe();
    CHECK(a.connected());
    const std::uint64_t id = a.id();
    bus.reset();
    CHECK(state.live() == 0);  // the handlers died with the bus
    CHECK(!a.connected());
    CHECK(!b.connected());
    CHECK(!c.connected());
    CHECK(a.id() == id);
    a.unsubscribe();
    a.unsubscribe();
    CHECK(!a.connected());
    tidings::subscription moved{std::move(b)};
    CHECK(!moved.connected());
    // b and moved are destroyed here, after their bus.
}

TEMPLATE_TEST_CASE("a publisher outliving its bus publishes to nobody", "[bus]", tidings::bus,
                   tidings::single_threaded_bus) {
    using threading = typename TestType::threading;
    auto bus = std::make_unique<TestType>();
    int calls = 0;
    auto s = bus->template subscribe<ping>([&](const ping&) { ++calls; });
    tidings::publisher<ping, threading> pub{*bus};
    tidings::publisher<pong, threading> unused{*bus};
    pub.publish(ping{});
    CHECK(calls == 1);
    bus.reset();
    CHECK(!s.connected());  // the publisher keeps the bus's state alive, not its subscriptions
    pub.publish(ping{});
    pub(ping{});
    unused.publish(pong{});
    CHECK(calls == 1);
    s.unsubscribe();
    pub.publish(ping{});
    CHECK(calls == 1);
}

TEMPLATE_TEST_CASE("moving a bus keeps its subscriptions, assigning over one disconnects its own",
                   "[bus]", tidings::bus, tidings::single_threaded_bus) {
    std::vector<std::string> log;
    TestType first;
    auto a = first.template subscribe<ping>([&](const ping&) { log.push_back("a"); });
    TestType second{std::move(first)};
    second.publish(ping{});
    CHECK(a.connected());
    CHECK(log == std::vector<std::string>{"a"});

    TestType third;
    auto b = third.template subscribe<ping>([&](const ping&) { log.push_back("b"); });
    third = std::move(second);
    CHECK(!b.connected());
    CHECK(a.connected());
    third.publish(ping{});
    CHECK(log == std::vector<std::string>{"a", "a"});
    a.unsubscribe();
    third.publish(ping{});
    CHECK(log.size() == 2);
}

// --- a filter that unsubscribes; out of memory while unsubscribing (issue 9, items 12 and 10) ---

// Issue 9, item 12: the filter ran, unsubscribed its own subscription, and its handler was
// called all the same, after unsubscribe() had returned.
TEMPLATE_TEST_CASE("a filter that unsubscribes its own subscription stops its handler at once",
                   "[bus][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    int handled = 0;
    int filtered = 0;
    tidings::subscription s;
    auto leave = [&](const ping&) {
        ++filtered;
        s.unsubscribe();
        return true;  // it would pass
    };
    auto owner = std::make_shared<int>(0);
    SECTION("plain") {
        s = bus.subscribe([&](const ping&) { ++handled; }, tidings::filter(leave));
    }
    SECTION("with once") {
        s = bus.subscribe([&](const ping&) { ++handled; }, tidings::filter(leave), tidings::once);
    }
    SECTION("with track") {
        s = bus.subscribe([&](const ping&) { ++handled; }, tidings::filter(leave),
                          tidings::track(owner));
    }
    SECTION("with priority, among other subscribers") {
        auto before = bus.subscribe([](const ping&) {}, tidings::priority{10});
        s = bus.subscribe([&](const ping&) { ++handled; }, tidings::filter(leave));
        auto after = bus.subscribe([](const ping&) {}, tidings::priority{-10});
        bus.publish(ping{1});
    }
    bus.publish(ping{1});
    bus.publish(ping{2});
    CHECK(filtered == 1);
    CHECK(handled == 0);
    CHECK_FALSE(s.connected());
    CHECK(bus.template subscriber_count<ping>() == 0);
}

TEST_CASE("a queued filter that unsubscribes its own subscription stops its handler at once",
          "[bus][reentrancy][executor]") {
    tidings::manual_executor loop;
    tidings::bus bus;
    int handled = 0;
    tidings::subscription s;
    s = bus.subscribe([&](const ping&) { ++handled; }, tidings::deliver_on(loop),
                      tidings::filter([&](const ping&) {
                          s.unsubscribe();
                          return true;
                      }));
    bus.publish(ping{1});
    bus.publish(ping{2});
    loop.run_pending();
    CHECK(handled == 0);
}

TEST_CASE(
    "a filter running in one thread while another thread unsubscribes: its handler is not "
    "called once the unsubscribe took effect",
    "[bus][threaded]") {
    for (const bool once : {false, true}) {
        INFO((once ? "once" : "not once"));
        tidings::bus bus;
        std::atomic<bool> in_filter{false};
        std::atomic<bool> go_on{false};
        std::atomic<int> handled{0};
        auto filter = tidings::filter([&](const ping&) {
            // release/acquire: pairs with the main thread's spin on in_filter.
            in_filter.store(true, std::memory_order_release);
            // acquire: pairs with the release store of go_on below, made after the
            // unsubscribing thread's unlink was seen.
            tidings_test::spin_until([&] { return go_on.load(std::memory_order_acquire); });
            return true;
        });
        auto handler = [&](const ping&) { handled.fetch_add(1, std::memory_order_relaxed); };
        tidings::subscription s =
            once ? bus.subscribe(handler, filter, tidings::once) : bus.subscribe(handler, filter);
        std::thread publisher([&] { bus.publish(ping{1}); });
        tidings_test::spin_until([&] { return in_filter.load(std::memory_order_acquire); });
        // Outside any dispatch: it unlinks, then waits for the publisher's dispatch to end.
        std::thread unsubscriber([&] { s.unsubscribe(); });
        tidings_test::spin_until([&] { return bus.subscriber_count<ping>() == 0; });
        go_on.store(true, std::memory_order_release);
        publisher.join();
        unsubscriber.join();
        CHECK(handled.load(std::memory_order_relaxed) == 0);
    }
}

// Issue 9, item 10: out of memory, the snapshot without the removed node could not be built;
// the node stayed in the old one and its handler's captured state was never destroyed.
TEMPLATE_TEST_CASE(
    "an unsubscribe whose new snapshot cannot be allocated still stops the handler and "
    "destroys its state, at the channel's next change or with the bus",
    "[bus][allocation][lifetime]", tidings::bus, tidings::single_threaded_bus) {
    if (!tidings_test::can_fail_allocations) return;
    for (const bool destroy_bus : {false, true}) {
        lifetime_counter counter;
        int failed_runs = 0;
        for (int n = 1; n <= 10; ++n) {
            INFO("allocation " << n << " fails; "
                               << (destroy_bus ? "bus destroyed" : "next change"));
            std::optional<TestType> bus{std::in_place};
            int handled = 0;
            auto other = bus->subscribe([](const ping&) {});
            tidings::subscription s =
                bus->subscribe([&handled, life = counted{counter}](const ping&) { ++handled; });
            bool failed = false;
            {
                tidings_test::allocation_failure failure{n};
                s.unsubscribe();
                failed = failure.failed();
            }
            if (failed) ++failed_runs;
            CHECK_FALSE(s.connected());
            bus->publish(ping{1});
            CHECK(handled == 0);
            if (destroy_bus) {
                bus.reset();
            } else {
                // The channel's next change takes the node out with the old snapshot.
                auto later = bus->subscribe([](const ping&) {});
                later.unsubscribe();
                bus->publish(ping{2});
                CHECK(handled == 0);
            }
            CHECK(counter.live() == 0);
            if (!failed) break;
        }
        CHECK(failed_runs >= 1);
    }
}

TEMPLATE_TEST_CASE(
    "destroying an executor or the bus while snapshots cannot be allocated still destroys "
    "every handler's state",
    "[bus][allocation][lifetime][executor]", tidings::bus, tidings::single_threaded_bus) {
    if (!tidings_test::can_fail_allocations) return;
    lifetime_counter counter;
    for (const bool executor_first : {true, false}) {
        int failed_runs = 0;
        for (int n = 1; n <= 40; ++n) {
            INFO("allocation " << n << " fails; " << (executor_first ? "executor" : "bus")
                               << " destroyed under the failure");
            std::optional<tidings::manual_executor> loop{std::in_place};
            std::optional<TestType> bus{std::in_place};
            bus->template retain<ping>(2);  // a retaining channel's snapshot always allocates
            bus->publish(ping{1});
            auto queued = bus->subscribe([life = counted{counter}](const ping&) {},
                                         tidings::deliver_on(*loop));
            auto direct = bus->subscribe([life = counted{counter}](const ping&) {});
            bus->publish(ping{2});
            loop->run_pending();
            bool failed = false;
            {
                tidings_test::allocation_failure failure{n};
                if (executor_first) {
                    loop.reset();
                } else {
                    bus.reset();
                }
                failed = failure.failed();
            }
            if (failed) ++failed_runs;
            CHECK_FALSE(queued.connected());
            bus.reset();
            loop.reset();
            CHECK(counter.live() == 0);
            if (!failed) break;
        }
        CHECK(failed_runs >= 1);
    }
}
