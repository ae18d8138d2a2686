// Type identity (issue 9, item 17): a bus finds a type's channel by the compiler's name for the
// type, its hash, its layout and a per-module anchor, so that every module of a process reaches
// the same channel for one type and two types never share one. The cross-module half runs in
// tests/plugin/ (a host and a plugin built with -fvisibility=hidden); here, the in-process
// properties, and "another module" played through detail::bus_core with a made-up identity
// (another module's anchor and module address are all that tells its records apart).

#include <tidings/tidings.hpp>

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

// The other translation unit (tests/type_identity_other_tu.cpp).
namespace type_identity_other_tu {
tidings::subscription subscribe(tidings::bus& bus, int& received);
void publish(tidings::bus& bus, int value);
std::size_t subscriber_count(const tidings::bus& bus);
}  // namespace type_identity_other_tu

// At global scope on purpose: clang names a class local to a function without the function
// ("twin_event"), exactly like this one.
struct twin_event {
    int value = 0;
};

// In a named namespace: a name that other modules can name too (unlike the anonymous
// namespace's), so the made-up modules below may share its channel.
namespace type_identity_test {

struct probe_event {
    std::int64_t value = 0;
};

struct probe_command {
    using result_type = int;
    int value = 0;
};

}  // namespace type_identity_test

namespace {

using tidings::thread_safe;
using tidings::detail::bus_core;
using tidings::detail::identity_of;
using tidings::detail::type_identity;
using type_identity_test::probe_command;
using type_identity_test::probe_event;

/// Same name, layout and values as the type in the other translation unit.
struct same_name_event {
    int value = 0;
};

using probe_channel = tidings::detail::channel<probe_event, thread_safe>;

/// Stand-ins for another module's anchors and module address.
unsigned char other_module = 0;
unsigned char other_anchors[2048] = {};
unsigned char third_module = 0;
unsigned char third_anchor = 0;

/// How another module would see the type `identity` describes.
type_identity from_other_module(type_identity identity, std::size_t anchor = 0) {
    identity.anchor = &other_anchors[anchor];
    identity.module = &other_module;
    return identity;
}

/// A subscription to, and a way to publish, a class local to a function.
struct local_twin {
    tidings::subscription subscription;
    std::function<void(int)> publish;
};

local_twin local_twin_a(tidings::bus& bus, int& received) {
    struct twin_event {
        int value = 0;
    };
    return {bus.subscribe([&received](const twin_event& e) { received += e.value; }),
            [&bus](int value) { bus.publish(twin_event{value}); }};
}

local_twin local_twin_b(tidings::bus& bus, int& received) {
    struct twin_event {
        int value = 0;
    };
    auto publisher = std::make_shared<tidings::publisher<twin_event>>(bus);
    return {bus.subscribe([&received](const twin_event& e) { received += e.value; }),
            [publisher](int value) { publisher->publish(twin_event{value}); }};
}

}  // namespace

TEST_CASE(
    "two anonymous-namespace types of one name in two translation units never share a "
    "channel",
    "[type_identity]") {
    tidings::bus bus;
    int here = 0;
    int there = 0;
    auto mine = bus.subscribe([&here](const same_name_event& e) { here += e.value; });
    auto theirs = type_identity_other_tu::subscribe(bus, there);
    CHECK(bus.subscriber_count<same_name_event>() == 1);
    CHECK(type_identity_other_tu::subscriber_count(bus) == 1);

    bus.publish(same_name_event{1});
    CHECK(here == 1);
    CHECK(there == 0);
    type_identity_other_tu::publish(bus, 10);
    CHECK(here == 1);
    CHECK(there == 10);
}

TEST_CASE(
    "classes local to functions and a namespace-scope class of the same name never share "
    "a channel",
    "[type_identity]") {
    tidings::bus bus;
    int global = 0;
    int a = 0;
    int b = 0;
    auto s1 = bus.subscribe([&global](const twin_event& e) { global += e.value; });
    local_twin twin_a = local_twin_a(bus, a);
    local_twin twin_b = local_twin_b(bus, b);

    bus.publish(twin_event{1});
    twin_a.publish(10);
    twin_b.publish(100);
    CHECK(global == 1);
    CHECK(a == 10);
    CHECK(b == 100);
    CHECK(bus.subscriber_count<twin_event>() == 1);
}

TEST_CASE("a command and an event of one type keep channels of their own", "[type_identity]") {
    tidings::bus bus;
    int events = 0;
    auto subscribed = bus.subscribe([&events](const probe_command& c) { events += c.value; });
    auto handled = bus.handle([](const probe_command& c) { return c.value * 2; });
    CHECK(bus.send(probe_command{21}) == 42);
    CHECK(events == 0);
    bus.publish(probe_command{5});
    CHECK(events == 5);
    CHECK(bus.subscriber_count<probe_command>() == 1);
}

TEST_CASE("another module's type of the same name and layout reaches the same channel",
          "[type_identity]") {
    auto core = std::make_shared<bus_core<thread_safe>>();
    probe_channel& mine = core->channel_for<probe_event>();
    const type_identity theirs = from_other_module(identity_of<probe_event>());

    // Before the other module made a record of its own: found by name (the lock-free path).
    CHECK(core->find_channel<probe_channel>(theirs) == &mine);
    // Its record, then its fast path.
    CHECK(&core->channel_for<probe_channel>(theirs) == &mine);
    CHECK(core->find_channel<probe_channel>(theirs) == &mine);
    CHECK(core->find_channel<probe_event>() == &mine);

    // A third module joins the same channel.
    type_identity third = identity_of<probe_event>();
    third.anchor = &third_anchor;
    third.module = &third_module;
    CHECK(&core->channel_for<probe_channel>(third) == &mine);
}

TEST_CASE(
    "a type of another module with the same name and another layout is refused with an "
    "error naming both",
    "[type_identity]") {
    auto core = std::make_shared<bus_core<thread_safe>>();
    probe_channel& mine = core->channel_for<probe_event>();
    type_identity theirs = from_other_module(identity_of<probe_event>());
    theirs.layout = tidings::detail::layout_of<char[24]>;  // 24 bytes aligned to 1

    const std::string name{tidings::detail::type_name<probe_event>};
    auto names_both = [&name](const tidings::type_mismatch& e) {
        const std::string what = e.what();
        return what.find("`" + name + "`") != std::string::npos &&
               what.find("24 bytes aligned to 1") != std::string::npos &&
               what.find("8 bytes aligned to 8") != std::string::npos;
    };
    // The publish path, the subscribe path, then once more (nothing was recorded).
    CHECK_THROWS_MATCHES(core->find_channel<probe_channel>(theirs), tidings::type_mismatch,
                         Catch::Matchers::Predicate<tidings::type_mismatch>(names_both));
    CHECK_THROWS_AS(core->channel_for<probe_channel>(theirs), tidings::type_mismatch);
    CHECK_THROWS_AS(core->find_channel<probe_channel>(theirs), tidings::type_mismatch);
    // This module's own lookups are unaffected.
    CHECK(core->find_channel<probe_event>() == &mine);

    // The same when the other module came first: then this module's type is refused.
    auto other_first = std::make_shared<bus_core<thread_safe>>();
    static_cast<void>(other_first->channel_for<probe_channel>(theirs));
    CHECK_THROWS_AS(other_first->find_channel<probe_event>(), tidings::type_mismatch);
    CHECK_THROWS_AS(other_first->channel_for<probe_event>(), tidings::type_mismatch);

    // One anchor, two layouts (the dynamic linker merged the anchors of two definitions).
    type_identity merged = identity_of<probe_event>();
    merged.layout = tidings::detail::layout_of<char[24]>;
    CHECK_THROWS_AS(core->find_channel<probe_channel>(merged), tidings::type_mismatch);
    CHECK_THROWS_AS(core->channel_for<probe_channel>(merged), tidings::type_mismatch);
}

TEST_CASE(
    "a type whose name marks it as local to its module never joins another module's "
    "channel",
    "[type_identity]") {
    auto core = std::make_shared<bus_core<thread_safe>>();
    auto& mine = core->channel_for<tidings::detail::channel<same_name_event, thread_safe>>(
        identity_of<same_name_event>());
    const type_identity theirs = from_other_module(identity_of<same_name_event>());
    CHECK_FALSE(theirs.shareable);
    CHECK(core->find_channel<tidings::detail::channel<same_name_event, thread_safe>>(theirs) ==
          nullptr);
    auto& made = core->channel_for<tidings::detail::channel<same_name_event, thread_safe>>(theirs);
    CHECK(&made != &mine);

    // The names each compiler gives such types.
    using tidings::detail::module_local_name;
    CHECK(module_local_name("{anonymous}::ping"));
    CHECK(module_local_name("(anonymous namespace)::ping"));
    CHECK(module_local_name("`anonymous namespace'::ping"));
    CHECK(module_local_name("std::vector<{anonymous}::ping>"));
    CHECK(module_local_name("<unnamed struct>"));
    CHECK(module_local_name("(unnamed struct at a.cpp:3:1)"));
    CHECK(module_local_name("main()::<lambda(int)>"));
    CHECK(module_local_name("(lambda at a.cpp:3:1)"));
    CHECK(module_local_name("f()::local"));
    CHECK_FALSE(module_local_name("shop::order"));
    CHECK_FALSE(module_local_name("box<void(int)>::inner"));
    CHECK_FALSE(module_local_name("box<int (*)(int)>"));
    CHECK_FALSE(module_local_name(tidings::detail::type_name<probe_event>));
}

TEST_CASE("types whose names hash alike still get channels of their own", "[type_identity]") {
    auto core = std::make_shared<bus_core<thread_safe>>();
    probe_channel& mine = core->channel_for<probe_event>();
    // Other names, this module, and the hash of probe_event's name: collisions.
    std::vector<type_identity> colliding;
    std::vector<probe_channel*> channels;
    static const std::string names[] = {"collide::a", "collide::b", "collide::c"};
    for (std::size_t i = 0; i < 3; ++i) {
        type_identity other = identity_of<probe_event>();
        other.name = names[i];
        other.anchor = &other_anchors[100 + i];
        colliding.push_back(other);
        channels.push_back(&core->channel_for<probe_channel>(other));
    }
    // And another module's record of one of them: it joins that one only.
    type_identity remote = from_other_module(colliding[1], 200);
    CHECK(core->find_channel<probe_channel>(remote) == channels[1]);
    CHECK(&core->channel_for<probe_channel>(remote) == channels[1]);

    CHECK(core->find_channel<probe_event>() == &mine);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(channels[i] != &mine);
        CHECK(core->find_channel<probe_channel>(colliding[i]) == channels[i]);
        for (std::size_t j = 0; j < i; ++j) CHECK(channels[i] != channels[j]);
    }
}

TEST_CASE(
    "two same-named types of one module meeting that name from another module are reported "
    "as ambiguous",
    "[type_identity]") {
    // What clang's names allow: a namespace-scope `twin_event` and a local class `twin_event`
    // in one module, and a `twin_event` in another.
    auto core = std::make_shared<bus_core<thread_safe>>();
    type_identity first = identity_of<probe_event>();
    first.name = "twin_event";
    first.hash = tidings::detail::hash_type_name(first.name);
    type_identity second = first;
    second.anchor = &other_anchors[300];  // this module, another type
    const type_identity remote = from_other_module(first, 301);

    probe_channel& a = core->channel_for<probe_channel>(first);
    probe_channel& b = core->channel_for<probe_channel>(second);
    CHECK(&a != &b);  // one module, two anchors: two types
    CHECK_THROWS_MATCHES(
        core->channel_for<probe_channel>(remote), tidings::type_mismatch,
        Catch::Matchers::Predicate<tidings::type_mismatch>([](const tidings::type_mismatch& e) {
            return std::string(e.what()).find("`twin_event`") != std::string::npos;
        }));
    CHECK_THROWS_AS(core->find_channel<probe_channel>(remote), tidings::type_mismatch);
}

TEST_CASE("the channel table grows past many types and still finds every one", "[type_identity]") {
    auto core = std::make_shared<bus_core<thread_safe>>();
    std::vector<type_identity> identities;
    std::vector<probe_channel*> channels;
    static std::vector<std::string> names;
    names.clear();
    names.reserve(1000);
    for (std::size_t i = 0; i < 1000; ++i) names.push_back("grow::type_" + std::to_string(i));
    for (std::size_t i = 0; i < 1000; ++i) {
        type_identity id = identity_of<probe_event>();
        id.name = names[i];
        id.hash = tidings::detail::hash_type_name(id.name);
        id.anchor = &other_anchors[i];
        identities.push_back(id);
        channels.push_back(&core->channel_for<probe_channel>(id));
        // Everything made so far, after every growth.
        if ((i & (i + 1)) == 0) {
            for (std::size_t j = 0; j <= i; ++j) {
                REQUIRE(core->find_channel<probe_channel>(identities[j]) == channels[j]);
            }
        }
    }
    for (std::size_t i = 0; i < 1000; ++i) {
        REQUIRE(core->find_channel<probe_channel>(identities[i]) == channels[i]);
        REQUIRE(&core->channel_for<probe_channel>(identities[i]) == channels[i]);
    }
}

TEST_CASE("an allocation failure while making a channel leaves the channel table as it was",
          "[type_identity][allocation]") {
    if (!tidings_test::can_fail_allocations) return;
    auto core = std::make_shared<bus_core<thread_safe>>();
    static std::vector<std::string> names;
    names.clear();
    names.reserve(40);
    std::vector<type_identity> made;
    std::vector<probe_channel*> channels;
    // 40 types: the sweep passes the table's growth at 8, 16 and 32 channels.
    for (std::size_t t = 0; t < 40; ++t) {
        names.push_back("sweep::type_" + std::to_string(t));
        type_identity id = identity_of<probe_event>();
        id.name = names.back();
        id.hash = tidings::detail::hash_type_name(id.name);
        id.anchor = &other_anchors[1000 + t];
        probe_channel* channel = nullptr;
        for (std::int64_t n = 1;; ++n) {
            bool failed = false;
            {
                tidings_test::allocation_failure failure{n};
                try {
                    channel = &core->channel_for<probe_channel>(id);
                } catch (const std::bad_alloc&) {
                }
                failed = failure.failed();
            }
            if (!failed) break;
            REQUIRE(core->find_channel<probe_channel>(id) == nullptr);
            for (std::size_t j = 0; j < made.size(); ++j) {
                REQUIRE(core->find_channel<probe_channel>(made[j]) == channels[j]);
            }
        }
        REQUIRE(channel != nullptr);
        REQUIRE(core->find_channel<probe_channel>(id) == channel);
        made.push_back(id);
        channels.push_back(channel);
    }
}

TEST_CASE("lookups racing with channel creation and table growth always find the right channel",
          "[type_identity][threads]") {
    constexpr std::size_t made_count = 600;
    const int rounds = static_cast<int>(tidings_test::scaled(20, 10));
    static std::vector<std::string> names;
    names.clear();
    names.reserve(made_count);
    for (std::size_t i = 0; i < made_count; ++i) {
        names.push_back("race::type_" + std::to_string(i));
    }
    for (int round = 0; round < rounds; ++round) {
        auto core = std::make_shared<bus_core<thread_safe>>();
        std::vector<type_identity> identities(made_count);
        std::vector<std::atomic<probe_channel*>> channels(made_count);
        for (std::size_t i = 0; i < made_count; ++i) {
            type_identity id = identity_of<probe_event>();
            id.name = names[i];
            id.hash = tidings::detail::hash_type_name(id.name);
            id.anchor = &other_anchors[i];
            identities[i] = id;
        }
        std::atomic<std::size_t> announced{0};
        std::atomic<int> wrong{0};

        // Two writers make the channels (each creates its half, and also asks for the other
        // half, racing the other writer for the same type); two readers look them up.
        auto writer = [&](std::size_t first) {
            for (std::size_t k = 0; k < made_count; ++k) {
                const std::size_t i = (first + k) % made_count;
                probe_channel* got = &core->channel_for<probe_channel>(identities[i]);
                probe_channel* expected = nullptr;
                // acq_rel: pairs with itself in the other writer and with the readers' acquire.
                if (!channels[i].compare_exchange_strong(expected, got,
                                                         std::memory_order_acq_rel) &&
                    expected != got) {
                    wrong.fetch_add(1, std::memory_order_relaxed);
                }
                TIDINGS_SCHEDULE_POINT();
                // release: pairs with the readers' acquire load of `announced`.
                if (first == 0) announced.store(k + 1, std::memory_order_release);
            }
        };
        auto reader = [&] {
            for (;;) {
                // acquire: pairs with the writer's release store.
                const std::size_t seen = announced.load(std::memory_order_acquire);
                for (std::size_t i = 0; i < seen; ++i) {
                    probe_channel* found = core->find_channel<probe_channel>(identities[i]);
                    // acquire: pairs with the writers' compare_exchange.
                    if (found == nullptr || found != channels[i].load(std::memory_order_acquire)) {
                        wrong.fetch_add(1, std::memory_order_relaxed);
                    }
                }
                if (seen == made_count) return;
                TIDINGS_SCHEDULE_POINT();
            }
        };
        std::thread w1{writer, std::size_t{0}};
        std::thread w2{writer, made_count / 2};
        std::thread r1{reader};
        std::thread r2{reader};
        w1.join();
        w2.join();
        r1.join();
        r2.join();
        REQUIRE(wrong.load(std::memory_order_relaxed) == 0);
    }
}

namespace type_identity_names {
template <class T, int N>
struct tagged {
    double value;
};
template <char C>
struct key {
    int value;
};
}  // namespace type_identity_names

TEST_CASE("a type's name is whole even when it contains a bracket or a semicolon",
          "[type_identity]") {
    // Identity across modules rests on the name: cut at the first `]` or `;`, the names of
    // tagged<int[1], 1> and tagged<int[1], 2> were both "tagged<int [1", and a plugin's
    // handler of one received the other's events.
    using namespace type_identity_names;
    // Compared as std::string: Catch2 2.13 prints a std::string_view only when its main was
    // built with string_view support, which is not a given.
    const auto name = [](std::string_view view) { return std::string(view); };
    using tidings::detail::type_name;
    CHECK(name(type_name<tagged<int[1], 1>>) != name(type_name<tagged<int[1], 2>>));
    CHECK(name(type_name<key<';'>>) != name(type_name<key<']'>>));
    CHECK(type_name<key<']'>>.ends_with("key<']'>"));
    CHECK(type_name<tagged<int[1], 2>>.ends_with("2>"));
    CHECK(name(type_name<int>) == "int");
}
