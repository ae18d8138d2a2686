// Misuse that reads well (issue 9): the forms users bring from other libraries either work or
// fail to compile with a `tidings:` message naming the fix (tests/compile_fail/). Here: the
// forms that are accepted, and the one run-time check among them.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "test_support.hpp"

#include <csignal>
#include <stdexcept>

namespace {

struct order_placed {
    int id = 0;
};

struct audit {
    int placed = 0;
    int last = 0;
    void on_placed(const order_placed& e) {
        ++placed;
        last = e.id;
    }
    [[nodiscard]] int peek(const order_placed& e) const { return e.id + placed; }
};

struct special_audit : audit {};

}  // namespace

TEMPLATE_TEST_CASE("a member function subscribes with its object by pointer, as in Qt and EnTT",
                   "[misuse][member]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    audit a;
    special_audit derived;
    const audit frozen;
    auto by_pointer = bus.subscribe(&audit::on_placed, &a);
    auto named_type =
        bus.template subscribe<order_placed>(&audit::on_placed, &a, tidings::priority{1});
    auto through_base = bus.subscribe(&audit::on_placed, &derived);
    auto const_member = bus.subscribe(&audit::peek, &frozen);
    auto by_reference = bus.subscribe(&audit::on_placed, a);
    bus.publish(order_placed{7});
    CHECK(a.placed == 3);
    CHECK(a.last == 7);
    CHECK(derived.placed == 1);
    by_pointer.unsubscribe();
    bus.publish(order_placed{8});
    CHECK(a.placed == 5);
}

TEMPLATE_TEST_CASE("a null object pointer throws invalid_argument and subscribes nothing",
                   "[misuse][member]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    audit* nobody = nullptr;
    CHECK_THROWS_AS(bus.subscribe(&audit::on_placed, nobody), std::invalid_argument);
    CHECK_THROWS_WITH(bus.template subscribe<order_placed>(&audit::on_placed, nobody),
                      Catch::Contains("tidings:") && Catch::Contains("null"));
    CHECK(bus.template subscriber_count<order_placed>() == 0);
    bus.publish(order_placed{1});  // nothing to call
}

TEST_CASE("a publisher of a single_threaded_bus names its threading policy", "[misuse]") {
    tidings::single_threaded_bus bus;
    int seen = 0;
    auto s = bus.subscribe([&](const order_placed&) { ++seen; });
    // tidings::publisher<order_placed> p{bus} does not compile, and says to write this
    // (tests/compile_fail/publisher_single_threaded_bus.cpp).
    const tidings::publisher<order_placed, tidings::single_thread> orders{bus};
    orders.publish(order_placed{1});
    CHECK(seen == 1);
}

// --- misuse that ends the process ------------------------------------------------------------
// Destroying a bus (or an observable) from inside its own inline dispatch frees what the
// dispatch still runs on: a use-after-free, undetected before. It now ends the process with a
// `tidings:` message, in every build; the same destruction from a queued handler is allowed
// (the executor keeps the bus alive until the task ends).

namespace {

constexpr const char* own_dispatch_message =
    "tidings: a bus was destroyed inside one of its own handlers";

}  // namespace

TEST_CASE("a bus destroyed inside one of its own inline handlers ends the process with a message",
          "[misuse][lifetime]") {
    if (tidings_test::under_tsan) return;  // fork() in a threaded process: not under TSan
    SECTION("its handler, directly") {
        const auto outcome = tidings_test::run_in_child([] {
            auto* bus = new tidings::bus;
            auto s = bus->subscribe<order_placed>([&](const order_placed&) { delete bus; });
            bus->publish(order_placed{1});
        });
        CHECK(outcome.signal == SIGABRT);
        INFO(outcome.err);
        CHECK(tidings_test::contains(outcome.err, own_dispatch_message));
    }
    SECTION("its inline handler, inside a queued handler of another bus") {
        const auto outcome = tidings_test::run_in_child([] {
            tidings::manual_executor loop;
            tidings::bus other;
            auto* bus = new tidings::bus;
            auto inner = bus->subscribe<order_placed>([&](const order_placed&) { delete bus; });
            auto outer = other.subscribe<order_placed>(
                [&](const order_placed& e) { bus->publish(e); }, tidings::deliver_on(loop));
            other.publish(order_placed{1});
            loop.run_pending();
        });
        CHECK(outcome.signal == SIGABRT);
        INFO(outcome.err);
        CHECK(tidings_test::contains(outcome.err, own_dispatch_message));
    }
    SECTION("an observable, in one of its own inline observers") {
        const auto outcome = tidings_test::run_in_child([] {
            auto* value = new tidings::observable<int>{0};
            auto o = value->observe([&](const int& v) {
                if (v == 1) delete value;
            });
            value->set(1);
        });
        CHECK(outcome.signal == SIGABRT);
        INFO(outcome.err);
        CHECK(tidings_test::contains(outcome.err, own_dispatch_message));
    }
}

TEST_CASE(
    "a bus may be destroyed inside a queued handler of its own, or inside a handler of "
    "another bus",
    "[misuse][lifetime]") {
    int calls = 0;
    SECTION("its own queued handler") {
        tidings::manual_executor loop;
        auto* bus = new tidings::bus;
        auto s = bus->subscribe<order_placed>(
            [&](const order_placed&) {
                ++calls;
                delete bus;
            },
            tidings::deliver_on(loop));
        bus->publish(order_placed{1});
        CHECK(loop.run_pending() == 1);
        CHECK_FALSE(s.connected());
    }
    SECTION("an inline handler of another bus") {
        tidings::bus other;
        auto* bus = new tidings::bus;
        auto s = bus->subscribe<order_placed>([&](const order_placed&) { ++calls; });
        auto t = other.subscribe<order_placed>([&](const order_placed&) {
            ++calls;
            delete bus;
        });
        other.publish(order_placed{1});
        CHECK_FALSE(s.connected());
    }
    CHECK(calls == 1);
}
