#pragma once
// The event and command types that the host and the plugin share (tests/plugin/). Both are
// built with -fvisibility=hidden -fvisibility-inlines-hidden: each has its own copy of every
// inline variable in tidings, as a plugin and a Windows DLL would.

#include <tidings/tidings.hpp>

#include <cstdint>

namespace plugin_test {

struct ping {
    std::int32_t value;
};

struct pong {
    double x;
    std::int32_t n;
};

/// A command handled by the plugin and sent by the host.
struct add {
    using result_type = std::int32_t;
    std::int32_t a;
    std::int32_t b;
};

/// What each side saw: counts per type, and how many carried a value that type never has.
struct tally {
    int pings = 0;
    int pongs = 0;
    int bad_pings = 0;
    int bad_pongs = 0;
    std::int64_t ping_sum = 0;
    double pong_sum = 0.0;
    int local_events = 0;
    int attach_errors = 0;
};

/// The values: every ping is 1000 + i, every pong is {0.5 + i, -(i + 1)}, i = 0, 1, 2...
inline bool good_ping(const ping& p) { return p.value >= 1000 && p.value < 2000; }
inline bool good_pong(const pong& p) {
    return p.n < 0 && p.n > -1000 && p.x == 0.5 + static_cast<double>(-p.n - 1);
}

/// The plugin's entry points (extern "C", exported; everything else is hidden).
using attach_fn = void (*)(tidings::bus&);
using publish_fn = void (*)(tidings::bus&, int count);
using publish_local_fn = void (*)(tidings::bus&);
using mismatch_fn = int (*)(tidings::bus&);
using report_fn = void (*)(tally*);
using detach_fn = void (*)();

}  // namespace plugin_test

#if defined(_WIN32)
#define PLUGIN_TEST_EXPORT extern "C" __declspec(dllexport)
#else
#define PLUGIN_TEST_EXPORT extern "C" __attribute__((visibility("default")))
#endif
