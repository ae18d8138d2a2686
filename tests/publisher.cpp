// tidings::publisher<E>: publishing through a handle bound to one channel.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstdint>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

struct quote {
    int price = 0;
};
struct trade {
    int volume = 0;
};

// A bus type together with the publisher that goes with it.
struct thread_safe_bus {
    using bus = tidings::bus;
    template <class E>
    using publisher = tidings::publisher<E>;
};
struct single_threaded_bus {
    using bus = tidings::single_threaded_bus;
    template <class E>
    using publisher = tidings::publisher<E, tidings::single_thread>;
};

}  // namespace

TEMPLATE_TEST_CASE("a publisher delivers exactly like bus.publish", "[publisher]", thread_safe_bus,
                   single_threaded_bus) {
    typename TestType::bus bus;
    std::vector<std::string> log;
    auto low = bus.template subscribe<quote>(
        [&](const quote& q) { log.push_back("low " + std::to_string(q.price)); },
        tidings::priority{-1});
    auto high = bus.template subscribe<quote>(
        [&](const quote& q) { log.push_back("high " + std::to_string(q.price)); },
        tidings::priority{1});
    auto even = bus.template subscribe<quote>(
        [&](const quote& q) { log.push_back("even " + std::to_string(q.price)); },
        tidings::filter([](const quote& q) { return q.price % 2 == 0; }));
    auto other = bus.template subscribe<trade>([&](const trade&) { log.push_back("trade"); });

    for (int price : {1, 2}) bus.publish(quote{price});
    const std::vector<std::string> through_bus = log;
    log.clear();

    typename TestType::template publisher<quote> pub{bus};
    pub.publish(quote{1});
    pub({2});  // the call operator, with a braced event
    CHECK(log == through_bus);
    CHECK(log == std::vector<std::string>{"high 1", "low 1", "high 2", "even 2", "low 2"});
}

TEMPLATE_TEST_CASE("a publisher made before anyone subscribed reaches later subscribers",
                   "[publisher]", thread_safe_bus, single_threaded_bus) {
    typename TestType::bus bus;
    typename TestType::template publisher<quote> pub{bus};
    pub.publish(quote{1});  // nobody yet
    int calls = 0;
    auto s = bus.template subscribe<quote>([&](const quote&) { ++calls; });
    pub.publish(quote{2});
    CHECK(calls == 1);
    s.unsubscribe();
    pub.publish(quote{3});
    CHECK(calls == 1);
    auto again = bus.template subscribe<quote>([&](const quote&) { ++calls; });
    const auto copy = pub;  // a copy publishes to the same channel
    copy.publish(quote{4});
    CHECK(calls == 2);
}

TEMPLATE_TEST_CASE("a publisher follows the bus's error policy", "[publisher]", thread_safe_bus,
                   single_threaded_bus) {
    typename TestType::bus bus;
    int after = 0;
    auto thrower = bus.template subscribe<quote>(
        [](const quote&) { throw std::runtime_error("publisher"); }, tidings::priority{1});
    auto counter = bus.template subscribe<quote>([&](const quote&) { ++after; });
    typename TestType::template publisher<quote> pub{bus};
    CHECK_THROWS_WITH(pub.publish(quote{}), "publisher");
    CHECK(after == 1);
    int reported = 0;
    bus.set_error_policy(tidings::error_policy::report);
    bus.set_error_handler([&](const tidings::handler_error& e) {
        if (e.subscription_id == thrower.id()) ++reported;
    });
    CHECK_NOTHROW(pub.publish(quote{}));
    CHECK(after == 2);
    CHECK(reported == 1);
}

TEST_CASE("many threads may publish through one shared publisher", "[publisher][threads]") {
    constexpr int threads = 4;
    const std::int64_t per_thread = tidings_test::scaled(50'000);
    tidings::bus bus;
    std::atomic<std::int64_t> first{0};
    std::atomic<std::int64_t> second{0};
    std::atomic<std::int64_t> sum{0};
    auto a =
        bus.subscribe<quote>([&](const quote&) { first.fetch_add(1, std::memory_order_relaxed); });
    auto b = bus.subscribe<quote>([&](const quote& q) {
        second.fetch_add(1, std::memory_order_relaxed);
        sum.fetch_add(q.price, std::memory_order_relaxed);
    });
    const tidings::publisher<quote> pub{bus};
    std::latch start{threads};
    {
        std::vector<std::jthread> workers;
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                start.arrive_and_wait();
                for (std::int64_t i = 0; i < per_thread; ++i) pub.publish(quote{t + 1});
            });
        }
    }
    CHECK(first.load() == threads * per_thread);
    CHECK(second.load() == threads * per_thread);
    CHECK(sum.load() == per_thread * (1 + 2 + 3 + 4));
}
