// The inline dispatch loop (issue 11): a plain subscriber is called through its delegate with
// no per-node check while nothing of the snapshot was unlinked, and the walk switches to
// checking every node once something was. These tests try to make the fast walk call a
// subscriber it must skip: removals from every kind of callback, nested and reentrant
// publishes, throws, `once` and filtered subscribers mixed with plain ones, and removals whose
// new snapshot could not be allocated.

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct ping {
    int value = 0;
};
struct pong {
    int value = 0;
};

using log_type = std::vector<std::string>;

}  // namespace

TEMPLATE_TEST_CASE("a handler that unsubscribes a later subscriber and then throws stops it",
                   "[dispatch][reentrancy][errors]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bus.set_error_policy(tidings::error_policy::report);
    int reported = 0;
    bus.set_error_handler([&](const tidings::handler_error&) { ++reported; });
    log_type log;
    tidings::subscription victim;
    auto killer = bus.template subscribe<ping>([&](const ping&) {
        log.push_back("killer");
        victim.unsubscribe();
        throw std::runtime_error("after the unsubscribe");
    });
    victim = bus.template subscribe<ping>([&](const ping&) { log.push_back("victim"); });
    auto last = bus.template subscribe<ping>([&](const ping&) { log.push_back("last"); });
    bus.publish(ping{});
    bus.publish(ping{});
    CHECK(log == log_type{"killer", "last", "killer", "last"});
    CHECK(reported == 2);
}

TEMPLATE_TEST_CASE(
    "a nested publish whose handler unsubscribes a later subscriber of the outer event stops it "
    "in the outer dispatch",
    "[dispatch][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    log_type log;
    tidings::subscription victim;
    auto remover = bus.template subscribe<pong>([&](const pong&) {
        log.push_back("remover");
        victim.unsubscribe();
    });
    auto first = bus.template subscribe<ping>([&](const ping&) {
        log.push_back("first");
        bus.publish(pong{});
    });
    victim = bus.template subscribe<ping>([&](const ping&) { log.push_back("victim"); });
    auto last = bus.template subscribe<ping>([&](const ping&) { log.push_back("last"); });
    bus.publish(ping{});
    CHECK(log == log_type{"first", "remover", "last"});
}

TEMPLATE_TEST_CASE(
    "a reentrant publish of the same event that unsubscribes a later subscriber stops it in "
    "both dispatches",
    "[dispatch][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    log_type log;
    tidings::subscription victim;
    auto first = bus.template subscribe<ping>([&](const ping& e) {
        log.push_back("first " + std::to_string(e.value));
        if (e.value == 0) {
            bus.publish(ping{1});
        } else {
            victim.unsubscribe();
        }
    });
    victim = bus.template subscribe<ping>(
        [&](const ping& e) { log.push_back("victim " + std::to_string(e.value)); });
    auto last = bus.template subscribe<ping>(
        [&](const ping& e) { log.push_back("last " + std::to_string(e.value)); });
    bus.publish(ping{0});
    CHECK(log == log_type{"first 0", "first 1", "last 1", "last 0"});
}

TEMPLATE_TEST_CASE(
    "a handler that subscribes someone and then unsubscribes a later subscriber stops it",
    "[dispatch][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    // The subscribe installs a new snapshot without unlinking anything; the dispatch keeps
    // walking the old one, and must still notice the unsubscribe that follows.
    TestType bus;
    log_type log;
    tidings::subscription victim;
    std::vector<tidings::subscription> added;
    auto first = bus.template subscribe<ping>([&](const ping&) {
        log.push_back("first");
        if (!victim.connected()) return;
        added.push_back(bus.template subscribe<ping>([&](const ping&) { log.push_back("added"); }));
        victim.unsubscribe();
    });
    victim = bus.template subscribe<ping>([&](const ping&) { log.push_back("victim"); });
    auto last = bus.template subscribe<ping>([&](const ping&) { log.push_back("last"); });
    bus.publish(ping{});
    CHECK(log == log_type{"first", "last"});
    log.clear();
    bus.publish(ping{});
    CHECK(log == log_type{"first", "last", "added"});
}

TEMPLATE_TEST_CASE(
    "plain, once, filtered and tracked subscribers in one channel all run in order, each as "
    "its options say",
    "[dispatch]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    log_type log;
    auto owner = std::make_shared<int>(0);
    auto plain1 = bus.template subscribe<ping>([&](const ping&) { log.push_back("plain1"); });
    auto once =
        bus.template subscribe<ping>([&](const ping&) { log.push_back("once"); }, tidings::once);
    auto plain2 = bus.template subscribe<ping>([&](const ping&) { log.push_back("plain2"); });
    auto odd = bus.template subscribe<ping>(
        [&](const ping&) { log.push_back("odd"); },
        tidings::filter([](const ping& e) { return e.value % 2 == 1; }));
    auto tracked = bus.template subscribe<ping>([&](const ping&) { log.push_back("tracked"); },
                                                tidings::track(owner));
    auto plain3 = bus.template subscribe<ping>([&](const ping&) { log.push_back("plain3"); });
    bus.publish(ping{1});
    CHECK(log == log_type{"plain1", "once", "plain2", "odd", "tracked", "plain3"});
    log.clear();
    owner.reset();
    bus.publish(ping{2});
    CHECK(log == log_type{"plain1", "plain2", "plain3"});
    log.clear();
    bus.publish(ping{3});
    CHECK(log == log_type{"plain1", "plain2", "odd", "plain3"});
}

TEMPLATE_TEST_CASE(
    "a handler that unsubscribes each kind of later subscriber in turn stops exactly that one",
    "[dispatch][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    const std::vector<std::string> kinds{"plain", "once", "filtered", "tracked"};
    for (const std::string& doomed : kinds) {
        INFO("the unsubscribed subscriber: " << doomed);
        TestType bus;
        log_type log;
        auto owner = std::make_shared<int>(0);
        std::vector<std::optional<tidings::subscription>> later(kinds.size());
        std::size_t victim_index = 0;
        auto remover = bus.template subscribe<ping>([&](const ping&) {
            log.push_back("remover");
            if (later[victim_index]) later[victim_index]->unsubscribe();
        });
        for (std::size_t i = 0; i < kinds.size(); ++i) {
            auto note = [&log, name = kinds[i]](const ping&) { log.push_back(name); };
            if (kinds[i] == doomed) victim_index = i;
            if (kinds[i] == "plain") {
                later[i].emplace(bus.template subscribe<ping>(note));
            } else if (kinds[i] == "once") {
                later[i].emplace(bus.template subscribe<ping>(note, tidings::once));
            } else if (kinds[i] == "filtered") {
                later[i].emplace(bus.template subscribe<ping>(
                    note, tidings::filter([](const ping&) { return true; })));
            } else {
                later[i].emplace(bus.template subscribe<ping>(note, tidings::track(owner)));
            }
        }
        bus.publish(ping{});
        log_type expected{"remover"};
        for (const std::string& kind : kinds) {
            if (kind != doomed) expected.push_back(kind);
        }
        CHECK(log == expected);
    }
}

TEMPLATE_TEST_CASE(
    "after an unsubscribe whose snapshot could not be allocated, every publish skips that "
    "subscriber and calls the others in order",
    "[dispatch][allocation]", tidings::bus, tidings::single_threaded_bus) {
    if (!tidings_test::can_fail_allocations) return;
    int failed_runs = 0;
    for (int n = 1; n <= 10; ++n) {
        INFO("allocation " << n << " fails");
        TestType bus;
        log_type log;
        log.reserve(64);  // the handlers' push_back must not allocate under the failure
        // The victim first: no call before it could reveal the removal to the walk.
        auto victim = bus.template subscribe<ping>([&](const ping&) { log.push_back("victim"); });
        auto first = bus.template subscribe<ping>([&](const ping&) { log.push_back("first"); });
        auto last = bus.template subscribe<ping>([&](const ping&) { log.push_back("last"); });
        bool failed = false;
        {
            tidings_test::allocation_failure failure{n};
            victim.unsubscribe();
            failed = failure.failed();
        }
        if (failed) ++failed_runs;
        for (int i = 0; i < 3; ++i) bus.publish(ping{i});
        CHECK(log == log_type{"first", "last", "first", "last", "first", "last"});
        // The channel's next change replaces the snapshot that still held the victim.
        log.clear();
        auto added = bus.template subscribe<ping>([&](const ping&) { log.push_back("added"); });
        bus.publish(ping{});
        CHECK(log == log_type{"first", "last", "added"});
        if (!failed) break;
    }
    CHECK(failed_runs >= 1);
}

TEMPLATE_TEST_CASE(
    "a handler that unsubscribes a later subscriber while the new snapshot cannot be "
    "allocated stops it in the same dispatch",
    "[dispatch][allocation][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    if (!tidings_test::can_fail_allocations) return;
    int failed_runs = 0;
    for (int n = 1; n <= 10; ++n) {
        INFO("allocation " << n << " fails");
        TestType bus;
        log_type log;
        log.reserve(64);
        tidings::subscription victim;
        bool failed = false;
        auto first = bus.template subscribe<ping>([&](const ping&) {
            log.push_back("first");
            if (!victim.connected()) return;
            tidings_test::allocation_failure failure{n};
            victim.unsubscribe();
            failed = failure.failed();
        });
        victim = bus.template subscribe<ping>([&](const ping&) { log.push_back("victim"); });
        auto last = bus.template subscribe<ping>([&](const ping&) { log.push_back("last"); });
        bus.publish(ping{});
        bus.publish(ping{});
        if (failed) ++failed_runs;
        CHECK(log == log_type{"first", "last", "first", "last"});
        if (!failed) break;
    }
    CHECK(failed_runs >= 1);
}

TEMPLATE_TEST_CASE("a once handler that throws is removed, and the subscribers after it run",
                   "[dispatch][errors]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    bus.set_error_policy(tidings::error_policy::report);
    int reported = 0;
    bus.set_error_handler([&](const tidings::handler_error&) { ++reported; });
    log_type log;
    auto first = bus.template subscribe<ping>([&](const ping&) { log.push_back("first"); });
    auto once = bus.template subscribe<ping>(
        [&](const ping&) {
            log.push_back("once");
            throw std::runtime_error("once");
        },
        tidings::once);
    auto last = bus.template subscribe<ping>([&](const ping&) { log.push_back("last"); });
    bus.publish(ping{});
    bus.publish(ping{});
    CHECK(log == log_type{"first", "once", "last", "first", "last"});
    CHECK(reported == 1);
    CHECK_FALSE(once.connected());
    CHECK(bus.template subscriber_count<ping>() == 2);
}

TEMPLATE_TEST_CASE("a handler that unsubscribes itself and every later subscriber ends the walk",
                   "[dispatch][reentrancy]", tidings::bus, tidings::single_threaded_bus) {
    TestType bus;
    log_type log;
    std::vector<tidings::subscription> all;
    all.push_back(bus.template subscribe<ping>([&](const ping&) {
        log.push_back("sweeper");
        for (auto& s : all) s.unsubscribe();
    }));
    for (int i = 0; i < 5; ++i) {
        all.push_back(bus.template subscribe<ping>([&](const ping&) { log.push_back("later"); }));
    }
    bus.publish(ping{});
    bus.publish(ping{});
    CHECK(log == log_type{"sweeper"});
    CHECK(bus.template subscriber_count<ping>() == 0);
}
