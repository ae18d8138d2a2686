// tidings::observable<T>: the current value first, then every change once and in order; set,
// get, update, map, tidings::latest, reentrancy, queued observers, handles and exceptions.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using tidings_test::counted;
using tidings_test::lifetime_counter;

// A type without operator==: every set is a change.
struct opaque {
    int value = 0;
};

struct reading {
    double celsius = 0;
    friend bool operator==(const reading&, const reading&) = default;
};

struct tick {
    int n = 0;  // no operator==: every publish is a change of the latest tick
};

/// Records every value an observer receives.
template <class T>
struct recorder {
    std::vector<T>* seen;
    void operator()(const T& value) const { seen->push_back(value); }
};

}  // namespace

// --- the current value, then every change ---------------------------------------------------

TEST_CASE("a new observer is called at once with the current value, then on each change",
          "[observable]") {
    tidings::observable<int> value{7};
    std::vector<int> seen;
    auto o = value.observe(recorder<int>{&seen});
    REQUIRE(seen == std::vector<int>{7});  // before observe returned
    value.set(8);
    value.set(9);
    CHECK(seen == std::vector<int>{7, 8, 9});
    CHECK(value.get() == 9);
}

TEST_CASE("a default-constructed observable holds a value-initialized T", "[observable]") {
    tidings::observable<int> value;
    CHECK(value.get() == 0);
    tidings::observable<std::string> text;
    CHECK(text.get().empty());
}

TEST_CASE("setting an equal value notifies no one, and set says whether the value changed",
          "[observable]") {
    tidings::observable<std::string> name{"ana"};
    std::vector<std::string> seen;
    auto o = name.observe(recorder<std::string>{&seen});
    CHECK_FALSE(name.set("ana"));
    CHECK(name.set("bo"));
    CHECK_FALSE(name.set("bo"));
    CHECK(name.set("ana"));
    CHECK(seen == std::vector<std::string>{"ana", "bo", "ana"});
}

TEST_CASE("an observable of a type without operator== notifies on every set", "[observable]") {
    tidings::observable<opaque> value{opaque{1}};
    std::vector<int> seen;
    auto o = value.observe([&](const opaque& v) { seen.push_back(v.value); });
    CHECK(value.set(opaque{1}));
    CHECK(value.set(opaque{1}));
    CHECK(seen == std::vector<int>{1, 1, 1});
}

TEST_CASE("every observer receives every change, in order, once", "[observable]") {
    tidings::observable<int> value{0};
    std::vector<int> first;
    std::vector<int> second;
    auto a = value.observe(recorder<int>{&first});
    value.set(1);
    auto b = value.observe(recorder<int>{&second});  // joins later: starts from 1
    value.set(2);
    value.set(3);
    CHECK(first == std::vector<int>{0, 1, 2, 3});
    CHECK(second == std::vector<int>{1, 2, 3});
    CHECK(value.observer_count() == 2);
}

TEST_CASE("priority orders the inline observers of one change", "[observable]") {
    tidings::observable<int> value{0};
    std::vector<std::string> log;
    auto low = value.observe([&](int v) { log.push_back("low " + std::to_string(v)); });
    auto high = value.observe([&](int v) { log.push_back("high " + std::to_string(v)); },
                              tidings::priority{5});
    log.clear();
    value.set(1);
    CHECK(log == std::vector<std::string>{"high 1", "low 1"});
}

// --- update -----------------------------------------------------------------------------------

TEST_CASE("update modifies the value in place and notifies only when it changed", "[observable]") {
    tidings::observable<std::vector<int>> list{std::vector<int>{1}};
    std::vector<std::size_t> sizes;
    auto o = list.observe([&](const std::vector<int>& v) { sizes.push_back(v.size()); });
    CHECK(list.update([](std::vector<int>& v) { v.push_back(2); }));
    CHECK_FALSE(list.update([](std::vector<int>&) {}));  // unchanged: no notification
    CHECK(list.update([](std::vector<int>& v) { v.push_back(3); }));
    CHECK(sizes == std::vector<std::size_t>{1, 2, 3});
    CHECK(list.get() == std::vector<int>{1, 2, 3});
}

TEST_CASE("update with a function that throws leaves the value and notifies no one",
          "[observable]") {
    tidings::observable<int> value{1};
    std::vector<int> seen;
    auto o = value.observe(recorder<int>{&seen});
    CHECK_THROWS_AS(value.update([](int& v) {
        v = 2;
        throw std::runtime_error("modify failed");
    }),
                    std::runtime_error);
    // The modify function changed its argument before throwing: that was a copy, so the
    // value is unchanged (strong guarantee), no one was notified, and the observable works.
    CHECK(value.get() == 1);
    CHECK(seen == std::vector<int>{1});
    value.set(5);
    CHECK(seen == std::vector<int>{1, 5});
}

// --- map ----------------------------------------------------------------------------------------

TEST_CASE("map derives an observable recomputed on change, notifying only when it changes",
          "[observable][map]") {
    tidings::observable<double> temperature{20.0};
    int computed = 0;
    auto alarm = temperature.map([&](double t) {
        ++computed;
        return t > 30.0;
    });
    CHECK_FALSE(alarm.get());
    std::vector<bool> seen;
    auto o = alarm.observe([&](bool on) { seen.push_back(on); });
    const int computed_before = computed;
    temperature.set(25.0);
    temperature.set(31.0);
    temperature.set(35.0);
    temperature.set(29.0);
    temperature.set(29.0);  // not a change of the source: not even recomputed
    CHECK(computed - computed_before == 4);
    CHECK(seen == std::vector<bool>{false, true, false});
    CHECK_FALSE(alarm.get());
}

TEST_CASE("a derived observable can be mapped again", "[observable][map]") {
    tidings::observable<int> value{1};
    auto doubled = value.map([](int v) { return v * 2; });
    auto text = doubled.map([](int v) { return std::to_string(v); });
    std::vector<std::string> seen;
    auto o = text.observe(recorder<std::string>{&seen});
    value.set(2);
    value.set(5);
    CHECK(seen == std::vector<std::string>{"2", "4", "10"});
}

TEST_CASE("a derived observable detaches from its source when either is destroyed",
          "[observable][map]") {
    auto source = std::make_unique<tidings::observable<int>>(1);
    {
        auto derived = source->map([](int v) { return v + 1; });
        CHECK(source->observer_count() == 1);
        CHECK(derived.get() == 2);
    }
    CHECK(source->observer_count() == 0);  // the derived one is gone: no observer left

    auto derived = source->map([](int v) { return v + 1; });
    std::vector<int> seen;
    auto o = derived.observe(recorder<int>{&seen});
    source.reset();  // the source dies first: the derived one keeps its last value
    CHECK(derived.get() == 2);
    CHECK(derived.set(10));  // and is still an observable
    CHECK(seen == std::vector<int>{2, 10});
}

TEST_CASE("map's function may return a reference or a different type: the result is decayed",
          "[observable][map]") {
    tidings::observable<std::pair<int, std::string>> entry{{1, "one"}};
    auto name = entry.map(
        [](const std::pair<int, std::string>& e) -> const std::string& { return e.second; });
    static_assert(std::is_same_v<decltype(name), tidings::observable<std::string>>);
    entry.set({2, "two"});
    CHECK(name.get() == "two");
}

// --- latest ------------------------------------------------------------------------------------

TEST_CASE("latest exposes the newest event of a type as an observable, empty until the first",
          "[observable][latest]") {
    tidings::bus bus;
    auto last = tidings::latest<reading>(bus);
    static_assert(std::is_same_v<decltype(last), tidings::observable<std::optional<reading>>>);
    CHECK_FALSE(last.get().has_value());
    std::vector<std::optional<reading>> seen;
    auto o = last.observe(recorder<std::optional<reading>>{&seen});
    bus.publish(reading{21.0});
    bus.publish(reading{21.0});  // equal to the latest: no notification
    bus.publish(reading{22.5});
    REQUIRE(seen.size() == 3);
    CHECK_FALSE(seen[0].has_value());
    CHECK(seen[1]->celsius == 21.0);
    CHECK(seen[2]->celsius == 22.5);
    CHECK(last.get()->celsius == 22.5);
}

TEST_CASE("latest of an event without operator== notifies on every publish",
          "[observable][latest]") {
    tidings::bus bus;
    auto last = tidings::latest<tick>(bus);
    int notified = 0;
    auto o = last.observe([&](const std::optional<tick>&) { ++notified; });
    bus.publish(tick{1});
    bus.publish(tick{1});
    CHECK(notified == 3);
    CHECK(last.get()->n == 1);
}

TEST_CASE("latest detaches from the bus when it or the bus is destroyed", "[observable][latest]") {
    auto bus = std::make_unique<tidings::bus>();
    {
        auto last = tidings::latest<reading>(*bus);
        CHECK(bus->subscriber_count<reading>() == 1);
    }
    CHECK(bus->subscriber_count<reading>() == 0);

    auto last = tidings::latest<reading>(*bus);
    bus->publish(reading{3.0});
    bus.reset();  // the bus dies first: the observable keeps its last value
    CHECK(last.get()->celsius == 3.0);
}

TEST_CASE("latest works on a single_threaded_bus", "[observable][latest]") {
    tidings::single_threaded_bus bus;
    auto last = tidings::latest<reading>(bus);
    bus.publish(reading{4.0});
    CHECK(last.get()->celsius == 4.0);
}

// --- reentrancy ---------------------------------------------------------------------------------

TEST_CASE("a set from inside an observer is delivered after the current change reached everyone",
          "[observable][reentrancy]") {
    tidings::observable<int> value{0};
    std::vector<std::string> log;
    auto clamp = value.observe(
        [&](int v) {
            log.push_back("clamp " + std::to_string(v));
            if (v > 45) value.set(45);
        },
        tidings::priority{1});
    auto show = value.observe([&](int v) {
        // get() returns the newest value, which may already be later than the one delivered.
        log.push_back("show " + std::to_string(v) + " get " + std::to_string(value.get()));
    });
    log.clear();
    value.set(71);
    CHECK(log ==
          std::vector<std::string>{"clamp 71", "show 71 get 45", "clamp 45", "show 45 get 45"});
    CHECK(value.get() == 45);
}

TEST_CASE("an observer may update the value it observes, repeatedly, without deadlock",
          "[observable][reentrancy]") {
    tidings::observable<int> value{0};
    std::vector<int> seen;
    auto counter = value.observe([&](int v) {
        if (v >= 1 && v < 5) value.update([](int& x) { ++x; });
    });
    auto o = value.observe(recorder<int>{&seen});
    value.set(1);
    CHECK(value.get() == 5);
    CHECK(seen == std::vector<int>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("an observer may observe: the new observer starts from the current value",
          "[observable][reentrancy]") {
    tidings::observable<int> value{0};
    std::vector<int> late_seen;
    tidings::observer late;
    auto joiner = value.observe([&](int v) {
        if (v == 2 && !late) late = value.observe(recorder<int>{&late_seen});
    });
    value.set(1);
    value.set(2);
    CHECK(late_seen == std::vector<int>{2});  // its first value, after the change being delivered
    value.set(3);
    CHECK(late_seen == std::vector<int>{2, 3});
}

TEST_CASE("an observer may unsubscribe itself from inside its call", "[observable][reentrancy]") {
    tidings::observable<int> value{0};
    std::vector<int> seen;
    tidings::observer self;
    self = value.observe([&](int v) {
        seen.push_back(v);
        if (v == 2) self.unsubscribe();
    });
    value.set(1);
    value.set(2);
    value.set(3);
    CHECK(seen == std::vector<int>{0, 1, 2});
    CHECK_FALSE(self.connected());
    CHECK(value.observer_count() == 0);
}

TEST_CASE("an observer may unsubscribe another one not yet called for this change",
          "[observable][reentrancy]") {
    tidings::observable<int> value{0};
    std::vector<int> victim_seen;
    tidings::observer victim;
    auto killer = value.observe(
        [&](int v) {
            if (v == 1) victim.unsubscribe();
        },
        tidings::priority{1});
    victim = value.observe(recorder<int>{&victim_seen});
    value.set(1);
    value.set(2);
    CHECK(victim_seen == std::vector<int>{0});
}

// --- handles -----------------------------------------------------------------------------------

TEST_CASE("an observer handle detaches when destroyed, and unsubscribe is idempotent",
          "[observable][handle]") {
    tidings::observable<int> value{0};
    std::vector<int> seen;
    {
        auto o = value.observe(recorder<int>{&seen});
        CHECK(o.connected());
        CHECK(static_cast<bool>(o));
        CHECK(value.observer_count() == 1);
    }
    CHECK(value.observer_count() == 0);
    value.set(1);
    CHECK(seen == std::vector<int>{0});

    auto o = value.observe(recorder<int>{&seen});
    o.unsubscribe();
    o.unsubscribe();
    CHECK_FALSE(o.connected());
    value.set(2);
    CHECK(seen == std::vector<int>{0, 1});

    tidings::observer empty;
    CHECK_FALSE(empty.connected());
    empty.unsubscribe();  // a default-constructed handle: nothing to do
}

TEST_CASE("moving an observer handle keeps the observer, assigning over one detaches it",
          "[observable][handle]") {
    tidings::observable<int> value{0};
    std::vector<int> first;
    std::vector<int> second;
    auto a = value.observe(recorder<int>{&first});
    tidings::observer moved = std::move(a);
    CHECK(moved.connected());
    value.set(1);
    moved = value.observe(recorder<int>{&second});  // the first observer is detached
    value.set(2);
    CHECK(first == std::vector<int>{0, 1});
    CHECK(second == std::vector<int>{1, 2});
    CHECK(value.observer_count() == 1);
}

TEST_CASE("an observer's captured state is destroyed when it is unsubscribed",
          "[observable][handle]") {
    lifetime_counter counter;
    tidings::observable<int> value{0};
    auto o = value.observe([c = counted{counter}](int) {});
    CHECK(counter.live() == 1);
    o.unsubscribe();
    CHECK(counter.live() == 0);
}

TEST_CASE("destroying an observable disconnects its observers and destroys their state",
          "[observable][handle]") {
    lifetime_counter counter;
    tidings::observer o;
    {
        tidings::observable<int> value{0};
        o = value.observe([c = counted{counter}](int) {});
        CHECK(o.connected());
    }
    CHECK_FALSE(o.connected());
    CHECK(counter.live() == 0);
    o.unsubscribe();  // safe after the observable is gone
}

// --- exceptions -----------------------------------------------------------------------------

TEST_CASE("a throwing observer does not stop the others; set rethrows the first exception",
          "[observable][errors]") {
    tidings::observable<int> value{0};
    std::vector<std::string> reported;  // the later exceptions, as on a bus with rethrow_first
    value.set_error_handler([&](const tidings::handler_error& e) {
        try {
            std::rethrow_exception(e.exception);
        } catch (const std::exception& x) {
            reported.emplace_back(x.what());
        }
    });
    std::vector<int> seen;
    auto thrower = value.observe(
        [](int v) {
            if (v == 1) throw std::runtime_error("one");
        },
        tidings::priority{2});
    auto other_thrower = value.observe(
        [](int v) {
            if (v == 1) throw std::logic_error("second");
        },
        tidings::priority{1});
    auto o = value.observe(recorder<int>{&seen});
    CHECK_THROWS_WITH(value.set(1), "one");
    CHECK(seen == std::vector<int>{0, 1});
    CHECK(value.get() == 1);  // the change happened
    CHECK(reported == std::vector<std::string>{"second"});
    CHECK_NOTHROW(value.set(2));
    CHECK(seen == std::vector<int>{0, 1, 2});
}

TEST_CASE("an exception from a change queued by a reentrant set reaches the delivering set",
          "[observable][errors]") {
    tidings::observable<int> value{0};
    auto setter = value.observe([&](int v) {
        if (v == 1) value.set(2);  // queued: delivered after this change, by the outer set
    });
    auto thrower = value.observe([](int v) {
        if (v == 2) throw std::runtime_error("two");
    });
    CHECK_THROWS_WITH(value.set(1), "two");
    CHECK(value.get() == 2);
}

TEST_CASE("an observer that throws on its first value makes observe throw and is not attached",
          "[observable][errors]") {
    tidings::observable<int> value{0};
    CHECK_THROWS_WITH(value.observe([](int) { throw std::runtime_error("first"); }), "first");
    CHECK(value.observer_count() == 0);
    std::vector<int> seen;
    auto o = value.observe(recorder<int>{&seen});
    value.set(1);
    CHECK(seen == std::vector<int>{0, 1});
}

// --- queued observers -------------------------------------------------------------------------

TEST_CASE(
    "a queued observer receives the current value and every change, in order, on its "
    "executor",
    "[observable][executor]") {
    tidings::manual_executor screen;
    tidings::observable<int> value{1};
    std::vector<int> seen;
    auto o = value.observe(recorder<int>{&seen}, tidings::deliver_on(screen));
    value.set(2);
    value.set(3);
    value.set(3);         // not a change
    CHECK(seen.empty());  // nothing runs until the executor does
    screen.run_pending();
    CHECK(seen == std::vector<int>{1, 2, 3});  // all of them, not only the latest
    value.set(4);
    screen.run_pending();
    CHECK(seen == std::vector<int>{1, 2, 3, 4});
    CHECK(value.observer_count() == 1);
}

TEST_CASE("a queued observer is never called after its handle is gone, even with values waiting",
          "[observable][executor]") {
    tidings::manual_executor screen;
    tidings::observable<int> value{0};
    std::vector<int> seen;
    lifetime_counter counter;
    {
        auto o = value.observe([&seen, c = counted{counter}](int v) { seen.push_back(v); },
                               tidings::deliver_on(screen));
        value.set(1);
        screen.run_pending();
        value.set(2);
        value.set(3);
    }
    CHECK(counter.live() == 0);
    screen.run_pending();
    CHECK(seen == std::vector<int>{0, 1});
    CHECK(value.observer_count() == 0);
}

TEST_CASE("a queued observer that unsubscribes itself is never called again",
          "[observable][executor]") {
    tidings::manual_executor screen;
    tidings::observable<int> value{0};
    std::vector<int> seen;
    tidings::observer self;
    self = value.observe(
        [&](int v) {
            seen.push_back(v);
            if (v == 1) self.unsubscribe();
        },
        tidings::deliver_on(screen));
    value.set(1);
    value.set(2);  // already waiting when the observer leaves during the delivery of 1
    value.set(3);
    screen.run_pending();
    CHECK(seen == std::vector<int>{0, 1});
}

TEST_CASE("a queued observer's exceptions go to the error handler; later values still arrive",
          "[observable][executor][errors]") {
    tidings::manual_executor screen;
    tidings::observable<int> value{0};
    std::vector<std::string> errors;
    value.set_error_handler([&](const tidings::handler_error& e) {
        try {
            std::rethrow_exception(e.exception);
        } catch (const std::exception& x) {
            errors.emplace_back(x.what());
        }
    });
    std::vector<int> seen;
    auto o = value.observe(
        [&](int v) {
            seen.push_back(v);
            if (v == 1 || v == 3) throw std::runtime_error("bad " + std::to_string(v));
        },
        tidings::deliver_on(screen));
    CHECK_NOTHROW(value.set(1));  // queued: the setter does not see the exception
    value.set(2);
    value.set(3);
    value.set(4);
    screen.run_pending();
    CHECK(seen == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(errors == std::vector<std::string>{"bad 1", "bad 3"});
    value.set(5);  // one value after a throw, delivered alone
    screen.run_pending();
    CHECK(seen == std::vector<int>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("a queued observer on a stopped executor: set reports it and the observer stays in step",
          "[observable][executor][errors]") {
    tidings::observable<int> value{0};
    std::vector<int> seen;
    auto worker = std::make_unique<tidings::thread_executor>();
    auto o = value.observe(recorder<int>{&seen}, tidings::deliver_on(*worker));
    worker->stop();  // the observer's executor no longer accepts values
    CHECK_THROWS_AS(value.set(1), tidings::executor_stopped);
    CHECK(value.get() == 1);
    worker.reset();  // destroying it disconnects the observer
    CHECK(seen == std::vector<int>{0});
}

TEST_CASE("queued and inline observers of one observable each receive every change in order",
          "[observable][executor]") {
    tidings::manual_executor screen;
    tidings::observable<int> value{0};
    std::vector<int> inline_seen;
    std::vector<int> queued_seen;
    auto q = value.observe(recorder<int>{&queued_seen}, tidings::deliver_on(screen));
    auto i = value.observe(recorder<int>{&inline_seen});
    for (int v = 1; v <= 100; ++v) {
        value.set(v);
        if (v % 7 == 0) screen.run_for_at_most(3);  // the queued one lags, then catches up
    }
    screen.run_pending();
    std::vector<int> expected;
    for (int v = 0; v <= 100; ++v) expected.push_back(v);
    CHECK(inline_seen == expected);
    CHECK(queued_seen == expected);
}
