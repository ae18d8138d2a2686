// The strict consumer: a program that uses every public part of tidings, built the way our
// strictest users build (-Wshadow -Wconversion -Wsign-conversion -Wold-style-cast, and
// -Wuseless-cast on GCC, with -Werror in CI) and the way plugins are built
// (-fvisibility=hidden -fvisibility-inlines-hidden). Compiling it instantiates the header
// templates a user's code would, so a warning in one of them fails the build; running it
// checks that the program still works when built that way.

#include <tidings/tidings.hpp>

#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <string>

namespace {

struct reading {
    int sensor;
    double celsius;
};
struct big_reading {  // too large for a queue slot: travels on the heap
    double values[12];
};
struct move_only_event {
    std::unique_ptr<int> payload;
};
struct double_it {
    using result_type = long;
    long value;
};
struct log_line {
    using result_type = void;
    std::string text;
};

struct panel {
    int readings = 0;
    int bigs = 0;
    void on(const reading&) { ++readings; }
    void on(const big_reading&) { ++bigs; }
    void on_reading(const reading&) { ++readings; }
};

int failures = 0;
void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "strict_consumer: %s\n", what);
        ++failures;
    }
}

void events_and_options() {
    tidings::bus bus;
    int seen = 0;
    auto tracked_owner = std::make_shared<int>(0);
    auto a = bus.subscribe([&](const reading& r) { seen += r.sensor; }, tidings::priority{3},
                           tidings::filter([](const reading& r) { return r.celsius > 0.0; }));
    auto b = bus.subscribe<reading>([&](const reading&) { ++seen; }, tidings::once);
    auto c = bus.subscribe([&](const reading&) { ++seen; }, tidings::track(tracked_owner));
    panel p;
    auto d = bus.subscribe(&panel::on_reading, p);
    tidings::subscriber<reading, big_reading> group{bus, p};
    tidings::publisher<reading> readings{bus};
    readings.publish({2, 1.5});
    bus.publish(reading{1, -1.0});
    bus.publish(big_reading{});
    check(seen == 2 + 1 + 2, "inline subscribers with options");
    check(p.readings == 4 && p.bigs == 1, "member function and subscriber<E...>");
    check(bus.subscriber_count<reading>() == 4, "subscriber_count");
    a.unsubscribe();
    check(!a.connected(), "unsubscribe");

    auto moved = bus.subscribe([&](const move_only_event& e) { seen += *e.payload; });
    bus.publish(move_only_event{std::make_unique<int>(10)});
    check(seen == 15, "a move-only event");

    bus.set_error_policy(tidings::error_policy::report);
    int reported = 0;
    bus.set_error_handler([&](const tidings::handler_error&) { ++reported; });
    auto thrower = bus.subscribe([](const big_reading&) { throw 1; });
    bus.publish(big_reading{});
    check(reported == 1, "the error handler");

    tidings::single_threaded_bus local;
    auto l = local.subscribe([&](const reading&) { ++seen; });
    local.publish(reading{0, 0.0});
    check(seen == 16, "single_threaded_bus");
}

void executors_and_replay() {
    tidings::executor_options options;
    options.capacity = 8;
    options.on_full = tidings::overflow::block;
    tidings::manual_executor frame{options};
    tidings::thread_executor worker;
    tidings::bus bus;
    bus.retain<reading>(4);
    bus.publish(reading{7, 1.0});
    int framed = 0;
    std::atomic<int> worked{0};
    auto f = bus.subscribe([&](const reading&) { ++framed; }, tidings::deliver_on(frame),
                           tidings::replay);
    auto w = bus.subscribe([&](const big_reading&) { worked.fetch_add(1); },
                           tidings::deliver_on(worker));
    const tidings::publish_result result = bus.publish(reading{8, 2.0});
    check(result.accepted() && result.queued == 1, "publish_result");
    bus.publish(big_reading{});
    check(frame.run_pending() == 2 && framed == 2, "manual_executor with a replay");
    check(worker.stop() == 0 && worked.load() == 1, "thread_executor drains on stop");
    const tidings::executor_stats stats = frame.stats();
    check(stats.executed == 2 && stats.pending == 0, "executor_stats");
}

void commands() {
    tidings::bus bus;
    tidings::thread_executor worker;
    auto doubler = bus.handle([](const double_it& c) { return c.value * 2; });
    std::string last;
    auto logger =
        bus.handle([&](const log_line& c) { last = c.text; }, tidings::deliver_on(worker));
    check(bus.send(double_it{21}) == 42, "send");
    std::future<void> logged = bus.send_async(log_line{"hello"});
    logged.get();
    check(last == "hello", "send_async to a queued handler");
    bool missing = false;
    try {
        doubler.unsubscribe();
        (void)bus.send(double_it{1});
    } catch (const tidings::no_handler&) {
        missing = true;
    }
    check(missing, "no_handler");
}

void observables() {
    tidings::observable<double> temperature{20.0};
    auto hot = temperature.map([](double t) { return t > 30.0; });
    int changes = 0;
    bool alarm = false;
    auto o = temperature.observe([&](double) { ++changes; });
    auto a = hot.observe([&](bool on) { alarm = on; });
    temperature.set(31.5);
    temperature.update([](double& t) { t += 1.0; });
    check(changes == 3 && alarm && temperature.get() > 32.0, "observable, map, update");

    tidings::bus bus;
    auto newest = tidings::latest<reading>(bus);
    bus.publish(reading{4, 4.0});
    const std::optional<reading> seen = newest.get();
    check(seen.has_value() && seen->sensor == 4, "latest<E>");
}

}  // namespace

int main() {
    events_and_options();
    executors_and_replay();
    commands();
    observables();
    if (failures != 0) return 1;
    std::puts("strict_consumer: every part of the API works when built strictly");
    return 0;
}
