// tidings::subscriber<E...>: one object's on() overloads, connected as one RAII group.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

struct order_opened {
    int id = 0;
};
struct order_closed {
    int id = 0;
};
struct order_audited {
    int id = 0;
};

struct audit {
    std::vector<std::string> log;
    void on(const order_opened& e) { log.push_back("opened " + std::to_string(e.id)); }
    void on(order_closed e) { log.push_back("closed " + std::to_string(e.id)); }  // by value
    void on(const order_audited& e) { log.push_back("audited " + std::to_string(e.id)); }
};

}  // namespace

TEMPLATE_TEST_CASE("subscriber<A, B> calls the object's on() for each listed event type",
                   "[subscriber]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    audit a;
    tidings::subscriber<order_opened, order_closed> sub{bus, a};
    CHECK(sub.connected());
    CHECK(bus.template subscriber_count<order_opened>() == 1);
    CHECK(bus.template subscriber_count<order_closed>() == 1);
    bus.publish(order_opened{1});
    bus.publish(order_closed{2});
    bus.publish(order_opened{3});
    bus.publish(order_audited{4});  // has an on() overload, but is not listed
    CHECK(a.log == std::vector<std::string>{"opened 1", "closed 2", "opened 3"});
    CHECK(bus.template subscriber_count<order_audited>() == 0);
}

TEMPLATE_TEST_CASE("unsubscribing a subscriber detaches all its handlers", "[subscriber]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    audit a;
    tidings::subscriber<order_opened, order_closed, order_audited> sub{bus, a};
    sub.unsubscribe();
    CHECK(!sub.connected());
    bus.publish(order_opened{1});
    bus.publish(order_closed{2});
    bus.publish(order_audited{3});
    CHECK(a.log.empty());
    CHECK(bus.template subscriber_count<order_opened>() == 0);
    CHECK(bus.template subscriber_count<order_closed>() == 0);
    CHECK(bus.template subscriber_count<order_audited>() == 0);
    sub.unsubscribe();  // idempotent
}

TEMPLATE_TEST_CASE("destroying a subscriber detaches all its handlers", "[subscriber]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    audit a;
    {
        tidings::subscriber<order_opened, order_closed> sub{bus, a};
        bus.publish(order_opened{1});
    }
    bus.publish(order_opened{2});
    bus.publish(order_closed{3});
    CHECK(a.log == std::vector<std::string>{"opened 1"});
    CHECK(bus.template subscriber_count<order_opened>() == 0);
    CHECK(bus.template subscriber_count<order_closed>() == 0);
}

TEMPLATE_TEST_CASE("a subscriber's options apply to every one of its event types", "[subscriber]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    audit a;
    auto plain_opened = bus.template subscribe<order_opened>(
        [&](const order_opened&) { a.log.push_back("plain"); });
    auto plain_closed = bus.template subscribe<order_closed>(
        [&](const order_closed&) { a.log.push_back("plain"); });
    tidings::subscriber<order_opened, order_closed> sub{bus, a, tidings::priority{5}};
    bus.publish(order_opened{1});
    bus.publish(order_closed{2});
    CHECK(a.log == std::vector<std::string>{"opened 1", "plain", "closed 2", "plain"});
}

TEMPLATE_TEST_CASE("a subscriber reports disconnected once any of its handlers ended",
                   "[subscriber]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    audit a;
    tidings::subscriber<order_opened, order_closed> sub{bus, a, tidings::once};
    CHECK(sub.connected());
    bus.publish(order_opened{1});
    CHECK(!sub.connected());  // order_opened's handler ran once and left
    bus.publish(order_opened{2});
    bus.publish(order_closed{3});
    bus.publish(order_closed{4});
    CHECK(a.log == std::vector<std::string>{"opened 1", "closed 3"});
}

TEMPLATE_TEST_CASE("a subscriber may outlive its bus", "[subscriber]", tidings::bus,
                   tidings::single_threaded_bus) {
    auto bus = std::make_unique<TestType>();
    audit a;
    tidings::subscriber<order_opened, order_closed> sub{*bus, a};
    bus->publish(order_closed{1});
    bus.reset();
    CHECK(!sub.connected());
    sub.unsubscribe();
    CHECK(a.log == std::vector<std::string>{"closed 1"});
}
