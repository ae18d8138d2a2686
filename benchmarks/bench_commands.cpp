// tidings_bench_commands: the cost of commands, observable state and retained events, against
// hand-written baselines measured in the same run.
//
// What is measured
//   send/bus                      bus.send(cmd) to its one inline handler, which returns a result
//   send/std_function             the baseline: the same handler called through std::function
//   observable_set/observable/<n> observable<int>::set(v) with n = 1 and 10 inline observers
//                                 (v changes on every call, so every set notifies)
//   observable_set/raw_loop/<n>   the baseline: assign the value, then call n std::function
//                                 observers with it
//   observable_set/locked_loop/<n> for scale, not a target: the same under a std::mutex, with
//                                 the comparison that decides whether to notify
//   publish/retain_64             bus.publish(e) with one inline subscriber on a channel that
//                                 retains its last 64 events (bus.retain<E>(64))
//   publish/no_retention          the same channel without retention
// Every handler and observer adds its argument to a slot of its own and hides the result from
// the optimizer. After the console output, main() prints a Markdown summary with the ratios to
// the baselines, the targets, and PASS/MISS. Every benchmark is one thread, so the summary
// compares CPU time, which other processes on the machine do not inflate.
//
// How to run (Release)
//   bash scripts/bench.sh
// or build the tidings_bench_commands target and run it. The usual --benchmark_* flags apply;
// each benchmark runs for at least 0.2 s unless --benchmark_min_time says otherwise, and with
// --benchmark_repetitions=N the summary uses the median of N.

#include "async_report.hpp"
#include "collecting_reporter.hpp"

#include <tidings/tidings.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tidings_bench {
namespace {

using namespace async_report;

// --- commands ----------------------------------------------------------------------------------

/// @brief A command with a result.
struct add_numbers {
    int a;
    int b;
    using result_type = int;
};

/// @brief The handler both contenders call.
struct add_handler {
    int operator()(const add_numbers& command) const { return command.a + command.b; }
};

void bm_send_bus(benchmark::State& state) {
    tidings::bus bus;
    const tidings::subscription handler = bus.handle<add_numbers>(add_handler{});
    add_numbers command{1, 2};
    for (auto _ : state) {
        benchmark::DoNotOptimize(command);
        int result = bus.send(command);
        benchmark::DoNotOptimize(result);
    }
}

void bm_send_std_function(benchmark::State& state) {
    const std::function<int(const add_numbers&)> handler = add_handler{};
    add_numbers command{1, 2};
    for (auto _ : state) {
        benchmark::DoNotOptimize(command);
        int result = handler(command);
        benchmark::DoNotOptimize(result);
    }
}

// --- observable state --------------------------------------------------------------------------

/// @brief One observer's output, alone on its cache line.
struct alignas(64) observer_slot {
    std::int64_t sum = 0;
};

/// @brief The observer both contenders call.
struct sum_observer {
    observer_slot* slot;
    void operator()(const int& value) const {
        slot->sum += value;
        benchmark::DoNotOptimize(slot->sum);
    }
};

void bm_observable_set(benchmark::State& state) {
    std::vector<observer_slot> slots(static_cast<std::size_t>(state.range(0)));
    tidings::observable<int> value{0};
    std::vector<tidings::observer> observers;
    for (observer_slot& slot : slots) observers.push_back(value.observe(sum_observer{&slot}));
    int next = 0;
    for (auto _ : state) {
        value.set(++next);
    }
}

void bm_raw_observer_loop(benchmark::State& state) {
    std::vector<observer_slot> slots(static_cast<std::size_t>(state.range(0)));
    std::vector<std::function<void(const int&)>> observers;
    for (observer_slot& slot : slots) observers.emplace_back(sum_observer{&slot});
    int value = 0;
    int next = 0;
    for (auto _ : state) {
        value = ++next;
        benchmark::DoNotOptimize(value);
        for (const auto& observer : observers) observer(value);
    }
}

/// @brief A thread-safe hand-written observable: compare and assign under a mutex, then call
/// the observers (outside the lock). Not a target baseline; it shows what thread safety alone
/// costs next to the raw loop.
void bm_locked_observer_loop(benchmark::State& state) {
    std::vector<observer_slot> slots(static_cast<std::size_t>(state.range(0)));
    std::vector<std::function<void(const int&)>> observers;
    for (observer_slot& slot : slots) observers.emplace_back(sum_observer{&slot});
    std::mutex mutex;
    int value = 0;
    int next = 0;
    for (auto _ : state) {
        int changed_to = 0;
        {
            const std::lock_guard lock{mutex};
            if (value == ++next) continue;
            value = next;
            changed_to = value;
        }
        for (const auto& observer : observers) observer(changed_to);
    }
}

// --- retained events ---------------------------------------------------------------------------

/// @brief The event published on the retaining and the plain channel.
struct quote {
    int id;
    double price;
};

struct alignas(64) quote_slot {
    double sum = 0.0;
};

template <std::size_t Retained>
void bm_publish_retained(benchmark::State& state) {
    quote_slot slot;
    tidings::bus bus;
    if constexpr (Retained != 0) bus.retain<quote>(Retained);
    const tidings::subscription subscription = bus.subscribe<quote>([&slot](const quote& q) {
        slot.sum += q.price;
        benchmark::DoNotOptimize(slot.sum);
    });
    const quote q{1, 0.5};
    for (auto _ : state) {
        bus.publish(q);
    }
}

// --- registration ------------------------------------------------------------------------------

void register_benchmarks() {
    benchmark::RegisterBenchmark("send/bus", &bm_send_bus);
    benchmark::RegisterBenchmark("send/std_function", &bm_send_std_function);
    benchmark::RegisterBenchmark("observable_set/observable", &bm_observable_set)->Arg(1)->Arg(10);
    benchmark::RegisterBenchmark("observable_set/raw_loop", &bm_raw_observer_loop)->Arg(1)->Arg(10);
    benchmark::RegisterBenchmark("observable_set/locked_loop", &bm_locked_observer_loop)
        ->Arg(1)
        ->Arg(10);
    benchmark::RegisterBenchmark("publish/retain_64", &bm_publish_retained<64>);
    benchmark::RegisterBenchmark("publish/no_retention", &bm_publish_retained<0>);
}

// --- the summary -------------------------------------------------------------------------------

/// @brief One row of the summary: a contender, its baseline, and the target ratio if any.
struct comparison {
    std::string_view label;
    std::string_view name;
    std::string_view args;
    std::string_view baseline_label;
    std::string_view baseline_name;
    std::optional<double> limit;  ///< contender ≤ limit × baseline; nullopt: report only
};

constexpr std::array comparisons{
    comparison{"`bus.send(cmd)`, inline handler", "send/bus", "", "`std::function` call",
               "send/std_function", 1.5},
    comparison{"`observable<int>::set`, 1 observer", "observable_set/observable", "1",
               "assign + 1 `std::function`", "observable_set/raw_loop", 1.5},
    comparison{"`observable<int>::set`, 10 observers", "observable_set/observable", "10",
               "assign + loop of 10 `std::function`", "observable_set/raw_loop", 1.5},
    comparison{"`observable<int>::set`, 1 observer", "observable_set/observable", "1",
               "mutex + compare + assign + 1 `std::function`", "observable_set/locked_loop",
               std::nullopt},
    comparison{"`observable<int>::set`, 10 observers", "observable_set/observable", "10",
               "mutex + compare + assign + loop of 10", "observable_set/locked_loop", std::nullopt},
    comparison{"`publish`, channel retaining 64, 1 subscriber", "publish/retain_64", "",
               "`publish`, no retention", "publish/no_retention", std::nullopt},
};

void print_summary(std::ostream& out, const collecting_reporter& results,
                   std::optional<double> load_at_start) {
    out << "\n## tidings_bench_commands summary\n\n"
        << "- compiler: " << compiler() << '\n'
        << "- CPUs: " << std::thread::hardware_concurrency();
    if (results.cpu_mhz() > 0.0) out << " @ " << fixed(results.cpu_mhz(), 0) << " MHz";
    out << "\n- figures: ";
    if (const std::int64_t repetitions = results.median_repetitions(); repetitions > 0) {
        out << "median of " << repetitions << " repetitions";
    } else {
        out << "one run per benchmark (--benchmark_repetitions=N for the median of N)";
    }
    out << ", CPU time per operation (single-threaded loops: CPU time leaves out the time "
           "other processes take, wall-clock time would not)\n";
    if (const std::string load = describe_load(load_at_start); !load.empty()) {
        out << "- machine load: " << load << '\n';
    }

    verdicts score;
    table t({"operation", "ns", "baseline", "baseline ns", "× baseline", "target", "result"},
            "lrlrrll");
    for (const comparison& c : comparisons) {
        const result* r = results.find(c.name, c.args);
        const result* base = results.find(c.baseline_name, c.args);
        if (r == nullptr) continue;
        const bool measured = base != nullptr && base->cpu_ns > 0.0;
        const double ratio = measured ? r->cpu_ns / base->cpu_ns : 0.0;
        t.add({std::string{c.label}, fixed(r->cpu_ns, 2), std::string{c.baseline_label},
               measured ? fixed(base->cpu_ns, 2) : "", measured ? fixed(ratio, 2) : "",
               c.limit ? "≤ " + fixed(*c.limit, 1) + "×" : "report only",
               c.limit ? score.judge(measured, ratio <= *c.limit) : ""});
    }
    if (!t.empty()) {
        out << "\n### Commands, observable state, retained events (lower is better)\n\n";
        t.print(out);
    }
    out << '\n';
    score.print(out);
}

}  // namespace
}  // namespace tidings_bench

int main(int argc, char** argv) {
    using namespace tidings_bench;
    std::vector<char*> args(argv, argv + argc);
    std::string min_time;
    async_report::default_min_time(args, min_time, "0.2");
    return async_report::run_benchmarks("tidings_bench_commands", std::move(args),
                                        register_benchmarks, print_summary);
}
