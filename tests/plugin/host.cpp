// The host half of the cross-module type identity test (issue 9, item 17). Host and plugin
// are both built with -fvisibility=hidden -fvisibility-inlines-hidden, so each has its own
// copy of tidings' inline variables; they share one bus, owned here. Both sides subscribe to
// and publish `ping` and `pong`; each handler must receive only its own type, with the right
// values and counts. The plugin is loaded with dlopen(RTLD_LOCAL), or, built with
// PLUGIN_TEST_LINKED, linked directly.
//
// Usage: tidings_plugin_host <path of the plugin>   (the linked variant takes no argument)
// Exit status 0 when every check passed; each failed check prints one line.

#include "events.hpp"

#include <tidings/tidings.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#if defined(PLUGIN_TEST_LINKED)
extern "C" {
void plugin_attach(tidings::bus&);
void plugin_publish(tidings::bus&, int);
void plugin_publish_local(tidings::bus&);
int plugin_try_mismatch(tidings::bus&);
void plugin_report(plugin_test::tally*);
void plugin_detach();
}
#else
#include <dlfcn.h>
#endif

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        ++failures;
        std::printf("FAILED: %s\n", what.c_str());
    }
}

void check_equal(std::int64_t got, std::int64_t want, const std::string& what) {
    check(got == want, what + ": got " + std::to_string(got) + ", want " + std::to_string(want));
}

plugin_test::tally seen;
int local_events = 0;
int odr_probes = 0;

/// Same name as the plugin's anonymous-namespace type; a different type.
struct local_event {
    std::int64_t payload;
};

}  // namespace

/// The host's definition; the plugin's has another layout (see plugin.cpp).
struct odr_probe {
    double a[4];
};

namespace {

struct plugin_api {
    plugin_test::attach_fn attach;
    plugin_test::publish_fn publish;
    plugin_test::publish_local_fn publish_local;
    plugin_test::mismatch_fn try_mismatch;
    plugin_test::report_fn report;
    plugin_test::detach_fn detach;
};

#if defined(PLUGIN_TEST_LINKED)
plugin_api load(int, char**, void*&) {
    return {&plugin_attach,       &plugin_publish, &plugin_publish_local,
            &plugin_try_mismatch, &plugin_report,  &plugin_detach};
}
#else
template <class Fn>
Fn symbol(void* handle, const char* name) {
    void* found = dlsym(handle, name);
    if (found == nullptr) {
        std::printf("FAILED: dlsym(%s): %s\n", name, dlerror());
        std::exit(1);
    }
    return reinterpret_cast<Fn>(found);
}

plugin_api load(int argc, char** argv, void*& handle) {
    if (argc < 2) {
        std::printf("usage: %s <plugin.so>\n", argv[0]);
        std::exit(2);
    }
    handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        std::printf("FAILED: dlopen(%s): %s\n", argv[1], dlerror());
        std::exit(1);
    }
    return {symbol<plugin_test::attach_fn>(handle, "plugin_attach"),
            symbol<plugin_test::publish_fn>(handle, "plugin_publish"),
            symbol<plugin_test::publish_local_fn>(handle, "plugin_publish_local"),
            symbol<plugin_test::mismatch_fn>(handle, "plugin_try_mismatch"),
            symbol<plugin_test::report_fn>(handle, "plugin_report"),
            symbol<plugin_test::detach_fn>(handle, "plugin_detach")};
}
#endif

plugin_test::tally report(const plugin_api& plugin) {
    plugin_test::tally result;
    plugin.report(&result);
    return result;
}

void publish_from_host(tidings::bus& bus, int count) {
    tidings::publisher<plugin_test::ping> pings{bus};
    for (int i = 0; i < count; ++i) {
        bus.publish(plugin_test::ping{1000 + i});
        pings.publish(plugin_test::ping{1000 + i});
    }
    tidings::publisher<plugin_test::pong> pongs{bus};
    for (int i = 0; i < count; ++i) {
        bus.publish(plugin_test::pong{0.5 + i, -(i + 1)});
        pongs.publish(plugin_test::pong{0.5 + i, -(i + 1)});
    }
}

void check_tally(const plugin_test::tally& t, const std::string& side, int count) {
    // Each of the two modules publishes `count` of each type twice (bus.publish, publisher).
    const int each = 4 * count;
    std::int64_t ping_sum = 0;
    double pong_sum = 0.0;
    for (int i = 0; i < count; ++i) {
        ping_sum += 4 * (1000 + i);
        pong_sum += 4 * (0.5 + i);
    }
    check_equal(t.pings, each, side + " ping handler: pings received");
    check_equal(t.pongs, each, side + " pong handler: pongs received");
    check_equal(t.bad_pings, 0, side + " ping handler: objects that are not pings");
    check_equal(t.bad_pongs, 0, side + " pong handler: objects that are not pongs");
    check_equal(t.ping_sum, ping_sum, side + " ping handler: sum of values");
    check(t.pong_sum == pong_sum, side + " pong handler: sum of values");
}

int run(int argc, char** argv) {
    void* handle = nullptr;
    const plugin_api plugin = load(argc, argv, handle);
    constexpr int count = 5;
    {
        tidings::bus bus;
        // ping first, the plugin pong first (see plugin.cpp).
        auto s1 = bus.subscribe([](const plugin_test::ping& p) {
            ++seen.pings;
            if (!plugin_test::good_ping(p)) ++seen.bad_pings;
            seen.ping_sum += p.value;
        });
        auto s2 = bus.subscribe([](const plugin_test::pong& p) {
            ++seen.pongs;
            if (!plugin_test::good_pong(p)) ++seen.bad_pongs;
            seen.pong_sum += p.x;
        });
        auto s3 = bus.subscribe([](const local_event&) { ++local_events; });
        auto s4 = bus.subscribe([](const odr_probe&) { ++odr_probes; });

        plugin.attach(bus);
        check_equal(report(plugin).attach_errors, 0, "errors in the plugin's attach");
        check_equal(static_cast<std::int64_t>(bus.subscriber_count<plugin_test::ping>()), 2,
                    "subscriber_count<ping> seen from the host");
        check_equal(static_cast<std::int64_t>(bus.subscriber_count<plugin_test::pong>()), 2,
                    "subscriber_count<pong> seen from the host");
        publish_from_host(bus, count);
        plugin.publish(bus, count);
        check_tally(seen, "host", count);
        check_tally(report(plugin), "plugin", count);

        try {
            check_equal(bus.send(plugin_test::add{2, 3}), 5, "the plugin's command handler");
        } catch (const std::exception& e) {
            check(false, std::string("send to the plugin's command handler threw: ") + e.what());
        }

        // Types in anonymous namespaces are different types in each module.
        plugin.publish_local(bus);
        check_equal(local_events, 0, "host's local_event handler after the plugin's publish");
        bus.publish(local_event{1});
        check_equal(local_events, 1, "host's local_event handler after its own publish");
        check_equal(report(plugin).local_events, 1,
                    "plugin's local_event handler, which received only its own publish");

        // One name, two layouts: refused, never delivered.
        check_equal(plugin.try_mismatch(bus), 7,
                    "type_mismatch from the plugin's publish (1), subscribe (2), publisher (4)");
        check_equal(odr_probes, 0, "host's odr_probe handler after the plugin's attempts");
        bus.publish(odr_probe{{1.0, 2.0, 3.0, 4.0}});
        check_equal(odr_probes, 1, "host's odr_probe handler after its own publish");

        plugin.detach();
    }  // the bus goes before the plugin's code, which some of its channels use
#if !defined(PLUGIN_TEST_LINKED)
    dlclose(handle);
#endif
    if (failures == 0) std::printf("all checks passed\n");
    return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::printf("FAILED: uncaught exception: %s\n", e.what());
        return 1;
    }
}
