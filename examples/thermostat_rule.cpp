// thermostat_rule: listener rules on a bus. A sensor publishes temperature readings; a rule is
// a subscription whose filter is the rule's check and whose handler is its action. The fan
// rules act on readings and publish fan_switched; other rules react to that event in turn
// (rules chaining). Exits with 0 only if the fan switched exactly as expected.
//
// The sensor loop, the fan and the rules all live in one thread, so the bus is a
// tidings::single_threaded_bus: the same API as tidings::bus, without atomics or locks.

#include <tidings/tidings.hpp>

#include <cstdio>
#include <vector>

namespace {

/// What the sensor measured.
struct temperature_read {
    double celsius;
};

/// What the fan rules did: a fact, published for whoever cares.
struct fan_switched {
    bool on;
    double celsius;  ///< the reading that made the rule act
};

struct fan {
    bool on = false;
};

}  // namespace

int main() {
    tidings::single_threaded_bus bus;
    fan the_fan;

    // A display shows every reading before any rule acts on it: a higher priority runs first.
    auto display = bus.subscribe(
        [](const temperature_read& r) { std::printf("sensor: %.1f °C\n", r.celsius); },
        tidings::priority{1});

    // Rule 1: if it is above 30 °C and the fan is off, turn the fan on.
    auto cool_down = bus.subscribe<temperature_read>(
        [&](const temperature_read& r) {  // the action
            the_fan.on = true;
            bus.publish(fan_switched{true, r.celsius});  // a handler may publish
        },
        tidings::filter([&](const temperature_read& r) {  // the check
            return r.celsius > 30.0 && !the_fan.on;
        }));

    // Rule 2: below 26 °C with the fan on, turn it off again. The gap between 26 and 30 keeps
    // the fan from switching on and off at every reading around one threshold.
    auto rest = bus.subscribe<temperature_read>(
        [&](const temperature_read& r) {
            the_fan.on = false;
            bus.publish(fan_switched{false, r.celsius});
        },
        tidings::filter([&](const temperature_read& r) { return r.celsius < 26.0 && the_fan.on; }));

    // Chained rules: they react to what rules 1 and 2 did, not to the sensor.
    int switches = 0;
    auto report = bus.subscribe([&](const fan_switched& s) {
        ++switches;
        std::printf("  fan %s (at %.1f °C)\n", s.on ? "on" : "off", s.celsius);
    });
    int alerts = 0;
    auto alert = bus.subscribe<fan_switched>(
        [&](const fan_switched& s) {
            ++alerts;
            std::printf("  alert: the fan had to start at %.1f °C\n", s.celsius);
        },
        tidings::filter([](const fan_switched& s) { return s.on && s.celsius > 32.0; }));

    // The sensor: a publisher bound to the readings' channel of this single-threaded bus.
    tidings::publisher<temperature_read, tidings::single_thread> sensor{bus};
    const std::vector<double> readings{24.5, 28.0, 30.5, 32.0, 31.0, 27.5, 25.5, 29.0, 33.5, 24.0};
    for (double celsius : readings) sensor.publish({celsius});

    // On at 30.5, off at 25.5, on at 33.5 (with an alert), off at 24.0.
    const bool ok = switches == 4 && alerts == 1 && !the_fan.on;
    std::printf("%d switches, %d alert(s), fan %s: %s\n", switches, alerts,
                the_fan.on ? "on" : "off", ok ? "as expected" : "UNEXPECTED");
    return ok ? 0 : 1;
}
