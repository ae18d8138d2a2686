// Misuse that reads well (issue 9): the forms users bring from other libraries either work or
// fail to compile with a `tidings:` message naming the fix (tests/compile_fail/). Here: the
// forms that are accepted, and the one run-time check among them.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

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
