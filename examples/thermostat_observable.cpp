// thermostat_observable: state that observers watch, next to events on a bus. A sensor
// publishes readings on the bus; the current temperature is a tidings::observable<double> fed
// by them, the alarm is derived from it with map(), and the fan's state is an
// observable<bool>. The fan rules are listener rules on the bus: a filter (the check) and a
// handler (the action). Observers print every state they see: first the current value, then
// each change, once, in order; one of them corrects out-of-range values by setting the value
// it observes. A screen observer is queued on a manual executor and redraws
// once, at the end, with every value in order.
// Exits with 0 only if exactly the expected lines were printed.

#include <tidings/tidings.hpp>

#include <cstdarg>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace {

/// What the sensor measured: an event.
struct reading {
    double celsius;
    bool operator==(const reading&) const = default;
};

std::vector<std::string> printed;

/// Prints a line and remembers it for the final check.
void say(const char* format, ...) {
    char line[160];
    va_list args;
    va_start(args, format);
    std::vsnprintf(line, sizeof line, format, args);
    va_end(args);
    std::printf("%s\n", line);
    printed.emplace_back(line);
}

}  // namespace

int main() {
    tidings::bus bus;
    tidings::manual_executor screen;  // the GUI thread's loop; here: main, at the end

    // [state-begin]
    tidings::observable<double> temperature{20.0};
    tidings::observable<bool> fan{false};

    // An observer is called at once with the current value, then with every change.
    auto show_temperature = temperature.observe([](double t) { say("temperature: %.1f", t); });
    // A derived observable: recomputed on every change, it notifies only when it flips.
    auto alarm = temperature.map([](double t) { return t > 30.0; });
    auto show_alarm = alarm.observe([](bool on) { say("alarm: %s", on ? "ON" : "off"); });
    auto show_fan = fan.observe([](bool on) { say("fan: %s", on ? "on" : "off"); });
    // [state-end]

    // [reentrant-begin]
    // An observer may set the value it observes: the new value is delivered after the current
    // one has reached every observer, so no observer sees the two out of order.
    auto clamp = temperature.observe([&](double t) {
        if (t <= 45.0) return;
        say("clamp: %.1f is out of the sensor's range: set 45.0", t);
        temperature.set(45.0);
    });
    // [reentrant-end]

    // [queued-observer-begin]
    // A queued observer: its values wait for the screen's loop, then arrive all, in order.
    std::string redraws;
    auto draw = temperature.observe(
        [&](double t) {
            char value[16];
            std::snprintf(value, sizeof value, " %.1f", t);
            redraws += value;
        },
        tidings::deliver_on(screen));
    // [queued-observer-end]

    // [feed-begin]
    // The readings feed the state. set() notifies only when the value changed.
    auto feed = bus.subscribe([&](const reading& r) {
        say("sensor reads %.1f", r.celsius);
        if (!temperature.set(r.celsius)) say("  (no change: no notification)");
    });
    // [feed-end]

    // [rules-begin]
    // Listener rules: a filter is the check, the handler is the action.
    auto cool_down = bus.subscribe<reading>(
        [&](const reading&) {
            say("rule: above 30.0 with the fan off: start the fan");
            fan.set(true);
        },
        tidings::filter([&](const reading& r) { return r.celsius > 30.0 && !fan.get(); }));
    // A lower threshold to stop: the fan does not flap around one value.
    auto rest = bus.subscribe<reading>(
        [&](const reading&) {
            say("rule: below 26.0 with the fan on: stop the fan");
            fan.set(false);
        },
        tidings::filter([&](const reading& r) { return r.celsius < 26.0 && fan.get(); }));
    // [rules-end]

    // [latest-begin]
    // The latest event of a type, as state: empty until the first reading.
    tidings::observable<std::optional<reading>> last_reading = tidings::latest<reading>(bus);
    // [latest-end]
    const bool empty_at_first = !last_reading.get().has_value();

    for (double celsius : {24.5, 24.5, 28.0, 31.5, 33.0, 71.0, 29.0, 25.0})
        bus.publish(reading{celsius});

    // [update-begin]
    // Read-modify-write, atomic with respect to other writers.
    say("recalibrate: +0.5");
    temperature.update([](double& t) { t += 0.5; });
    // [update-end]

    // [late-observer-begin]
    // A late observer still starts from the current value.
    auto late =
        fan.observe([](bool on) { say("late observer: the fan is %s", on ? "on" : "off"); });
    // [late-observer-end]

    screen.run_pending();  // the screen's turn
    say("screen redraws:%s", redraws.c_str());
    say("latest reading: %.1f", last_reading.get().value_or(reading{0.0}).celsius);

    const std::vector<std::string> expected{
        "temperature: 20.0",
        "alarm: off",
        "fan: off",
        "sensor reads 24.5",
        "temperature: 24.5",
        "sensor reads 24.5",
        "  (no change: no notification)",
        "sensor reads 28.0",
        "temperature: 28.0",
        "sensor reads 31.5",
        "temperature: 31.5",
        "alarm: ON",
        "rule: above 30.0 with the fan off: start the fan",
        "fan: on",
        "sensor reads 33.0",
        "temperature: 33.0",
        "sensor reads 71.0",
        "temperature: 71.0",
        "clamp: 71.0 is out of the sensor's range: set 45.0",
        "temperature: 45.0",
        "sensor reads 29.0",
        "temperature: 29.0",
        "alarm: off",
        "sensor reads 25.0",
        "temperature: 25.0",
        "rule: below 26.0 with the fan on: stop the fan",
        "fan: off",
        "recalibrate: +0.5",
        "temperature: 25.5",
        "late observer: the fan is off",
        "screen redraws: 20.0 24.5 28.0 31.5 33.0 71.0 45.0 29.0 25.0 25.5",
        "latest reading: 25.0",
    };
    if (printed != expected || !empty_at_first || alarm.get() || fan.get()) {
        std::printf("UNEXPECTED: the lines above differ from the expected sequence\n");
        return 1;
    }
    return 0;
}
