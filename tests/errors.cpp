// Throwing handlers: the error policies and what the error handler learns.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

// At global scope on purpose: the error handler must name it exactly "order_placed".
struct order_placed {
    int id = 0;
};

namespace shop {
struct order_cancelled {
    int id = 0;
};
}  // namespace shop

namespace {

struct reported {
    std::string what;
    std::string event_type;
    std::uint64_t subscription_id = 0;
};

std::string what_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (int value) {
        return "int " + std::to_string(value);
    } catch (...) {
        return "unknown";
    }
}

template <class Bus>
void collect_errors(Bus& bus, std::vector<reported>& out) {
    bus.set_error_handler([&out](const tidings::handler_error& error) {
        out.push_back(
            {what_of(error.exception), std::string(error.event_type), error.subscription_id});
    });
}

}  // namespace

TEMPLATE_TEST_CASE("a throwing handler does not stop the other subscribers, under either policy",
                   "[errors]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    const auto policy =
        GENERATE(tidings::error_policy::rethrow_first, tidings::error_policy::report);
    bus.set_error_policy(policy);
    std::vector<reported> errors;
    collect_errors(bus, errors);
    std::vector<std::string> log;
    auto first = bus.template subscribe<order_placed>(
        [&](const order_placed&) { log.push_back("first"); }, tidings::priority{1});
    auto thrower = bus.template subscribe<order_placed>([&](const order_placed&) {
        log.push_back("thrower");
        throw std::runtime_error("boom");
    });
    auto last = bus.template subscribe<order_placed>(
        [&](const order_placed&) { log.push_back("last"); }, tidings::priority{-1});
    bool threw = false;
    try {
        bus.publish(order_placed{1});
    } catch (const std::runtime_error&) {
        threw = true;
    }
    CHECK(log == std::vector<std::string>{"first", "thrower", "last"});
    CHECK(threw == (policy == tidings::error_policy::rethrow_first));
    CHECK(errors.size() == (policy == tidings::error_policy::report ? 1U : 0U));
    CHECK(thrower.connected());  // a throw does not unsubscribe
    log.clear();
    try {
        bus.publish(order_placed{2});
    } catch (const std::runtime_error&) {
    }
    CHECK(log == std::vector<std::string>{"first", "thrower", "last"});
}

TEMPLATE_TEST_CASE(
    "rethrow_first rethrows the first exception after every handler ran, and reports the rest",
    "[errors]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bus.set_error_policy(tidings::error_policy::rethrow_first);
    std::vector<reported> errors;
    collect_errors(bus, errors);
    std::vector<std::string> log;
    auto a = bus.template subscribe<order_placed>([&](const order_placed&) {
        log.push_back("a");
        throw std::runtime_error("first");
    });
    auto b = bus.template subscribe<order_placed>([&](const order_placed&) { log.push_back("b"); });
    auto c = bus.template subscribe<order_placed>([&](const order_placed&) {
        log.push_back("c");
        throw std::logic_error("second");
    });
    auto d = bus.template subscribe<order_placed>([&](const order_placed&) {
        log.push_back("d");
        throw 3;
    });
    auto e = bus.template subscribe<order_placed>([&](const order_placed&) { log.push_back("e"); });

    std::string caught;
    std::vector<std::string> log_when_caught;
    try {
        bus.publish(order_placed{7});
    } catch (const std::runtime_error& error) {
        caught = error.what();
        log_when_caught = log;
    }
    CHECK(caught == "first");
    CHECK(log_when_caught == std::vector<std::string>{"a", "b", "c", "d", "e"});
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].what == "second");
    CHECK(errors[0].event_type == "order_placed");
    CHECK(errors[0].subscription_id == c.id());
    CHECK(errors[1].what == "int 3");
    CHECK(errors[1].subscription_id == d.id());
}

TEMPLATE_TEST_CASE("rethrow_first is the default error policy", "[errors]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    int after = 0;
    auto a = bus.template subscribe<order_placed>(
        [](const order_placed&) { throw std::runtime_error("default"); });
    auto b = bus.template subscribe<order_placed>([&](const order_placed&) { ++after; });
    CHECK_THROWS_WITH(bus.publish(order_placed{}), "default");
    CHECK(after == 1);
}

TEMPLATE_TEST_CASE(
    "report gives every exception to the error handler, with the event type and subscription",
    "[errors]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bus.set_error_policy(tidings::error_policy::report);
    std::vector<reported> errors;
    collect_errors(bus, errors);
    int calls = 0;
    auto a = bus.template subscribe<order_placed>([&](const order_placed& e) {
        ++calls;
        throw std::runtime_error("order " + std::to_string(e.id));
    });
    auto quiet = bus.template subscribe<order_placed>([&](const order_placed&) { ++calls; });
    auto b = bus.template subscribe<order_placed>([&](const order_placed&) {
        ++calls;
        throw 42;
    });
    auto cancelled = bus.template subscribe<shop::order_cancelled>(
        [](const shop::order_cancelled&) { throw std::invalid_argument("cancelled"); });

    CHECK_NOTHROW(bus.publish(order_placed{5}));
    CHECK_NOTHROW(bus.publish(shop::order_cancelled{6}));
    CHECK(calls == 3);
    REQUIRE(errors.size() == 3);
    CHECK(errors[0].what == "order 5");
    CHECK(errors[0].event_type == "order_placed");
    CHECK(errors[0].subscription_id == a.id());
    CHECK(errors[1].what == "int 42");
    CHECK(errors[1].event_type == "order_placed");
    CHECK(errors[1].subscription_id == b.id());
    CHECK(errors[2].what == "cancelled");
    CHECK(errors[2].event_type == "shop::order_cancelled");
    CHECK(errors[2].subscription_id == cancelled.id());
    CHECK(a.id() != b.id());
}

TEMPLATE_TEST_CASE("report without an error handler still runs every subscriber and returns",
                   "[errors]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bus.set_error_policy(tidings::error_policy::report);
    int after = 0;
    // The default handler prints one line to stderr for this exception.
    auto a = bus.template subscribe<order_placed>(
        [](const order_placed&) { throw std::runtime_error("expected in this test, ignore"); });
    auto b = bus.template subscribe<order_placed>([&](const order_placed&) { ++after; });
    CHECK_NOTHROW(bus.publish(order_placed{}));
    CHECK(after == 1);
}

TEMPLATE_TEST_CASE("a once handler that throws is still removed", "[errors]", tidings::bus,
                   tidings::single_threaded_bus) {
    TestType bus;
    const auto policy =
        GENERATE(tidings::error_policy::rethrow_first, tidings::error_policy::report);
    bus.set_error_policy(policy);
    std::vector<reported> errors;
    collect_errors(bus, errors);
    int calls = 0;
    int others = 0;
    auto once = bus.template subscribe<order_placed>(
        [&](const order_placed&) {
            ++calls;
            throw std::runtime_error("once");
        },
        tidings::once);
    auto other = bus.template subscribe<order_placed>([&](const order_placed&) { ++others; });
    for (int i = 0; i < 3; ++i) {
        try {
            bus.publish(order_placed{i});
        } catch (const std::runtime_error&) {
        }
    }
    CHECK(calls == 1);
    CHECK(others == 3);
    CHECK(!once.connected());
    CHECK(bus.template subscriber_count<order_placed>() == 1);
    CHECK(errors.size() == (policy == tidings::error_policy::report ? 1U : 0U));
}

TEMPLATE_TEST_CASE("an exception from a nested publish reaches the outer handler first", "[errors]",
                   tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    std::vector<reported> errors;
    collect_errors(bus, errors);
    std::string seen_by_outer;
    auto inner = bus.template subscribe<shop::order_cancelled>(
        [](const shop::order_cancelled&) { throw std::runtime_error("inner"); });
    auto outer = bus.template subscribe<order_placed>([&](const order_placed&) {
        try {
            bus.publish(shop::order_cancelled{});
        } catch (const std::runtime_error& e) {
            seen_by_outer = e.what();
        }
    });
    CHECK_NOTHROW(bus.publish(order_placed{}));
    CHECK(seen_by_outer == "inner");
    CHECK(errors.empty());
}
