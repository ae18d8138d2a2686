// The plugin half of the cross-module type identity test (see host.cpp): a shared library
// built with -fvisibility=hidden that subscribes to and publishes the host's event types on
// the host's bus.

#include "events.hpp"

#include <tidings/tidings.hpp>

#include <cstdint>
#include <utility>
#include <vector>

namespace {

plugin_test::tally seen;
std::vector<tidings::subscription> kept;

/// Same name as the host's own anonymous-namespace type, but a different type: the host must
/// never receive it.
struct local_event {
    std::int64_t payload;
};

}  // namespace

/// Another definition of a type the host defines differently (an ODR violation across the
/// two modules, made on purpose): tidings must refuse to connect the two.
struct odr_probe {
    std::int32_t a;
};

PLUGIN_TEST_EXPORT void plugin_attach(tidings::bus& bus) {
    // pong first: the old per-module type index numbered the plugin's types in a different
    // order from the host's, which is how pong handlers used to receive pings.
    kept.push_back(bus.subscribe([](const plugin_test::pong& p) {
        ++seen.pongs;
        if (!plugin_test::good_pong(p)) ++seen.bad_pongs;
        seen.pong_sum += p.x;
    }));
    kept.push_back(bus.subscribe([](const plugin_test::ping& p) {
        ++seen.pings;
        if (!plugin_test::good_ping(p)) ++seen.bad_pings;
        seen.ping_sum += p.value;
    }));
    kept.push_back(bus.subscribe([](const local_event&) { ++seen.local_events; }));
    try {
        kept.push_back(bus.handle([](const plugin_test::add& c) { return c.a + c.b; }));
    } catch (...) {
        ++seen.attach_errors;
    }
}

PLUGIN_TEST_EXPORT void plugin_publish(tidings::bus& bus, int count) {
    tidings::publisher<plugin_test::pong> pongs{bus};
    for (int i = 0; i < count; ++i) {
        bus.publish(plugin_test::pong{0.5 + i, -(i + 1)});
        pongs.publish(plugin_test::pong{0.5 + i, -(i + 1)});
    }
    tidings::publisher<plugin_test::ping> pings{bus};
    for (int i = 0; i < count; ++i) {
        bus.publish(plugin_test::ping{1000 + i});
        pings.publish(plugin_test::ping{1000 + i});
    }
}

PLUGIN_TEST_EXPORT void plugin_publish_local(tidings::bus& bus) { bus.publish(local_event{7}); }

/// Returns a bit set: 1 if publishing the plugin's odr_probe threw tidings::type_mismatch,
/// 2 if subscribing to it did, 4 if binding a publisher to it did.
PLUGIN_TEST_EXPORT int plugin_try_mismatch(tidings::bus& bus) {
    int result = 0;
    try {
        bus.publish(odr_probe{1});
    } catch (const tidings::type_mismatch&) {
        result |= 1;
    }
    try {
        auto s = bus.subscribe([](const odr_probe&) {});
    } catch (const tidings::type_mismatch&) {
        result |= 2;
    }
    try {
        tidings::publisher<odr_probe> p{bus};
        p.publish(odr_probe{2});
    } catch (const tidings::type_mismatch&) {
        result |= 4;
    }
    return result;
}

PLUGIN_TEST_EXPORT void plugin_report(plugin_test::tally* out) { *out = seen; }

PLUGIN_TEST_EXPORT void plugin_detach() { kept.clear(); }
