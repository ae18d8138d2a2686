// tidings_bench_sync: the cost of synchronous (inline) delivery, against baselines and peers
// measured in the same run.
//
// What is measured
//   publish/<contender>/<n>           ns per publish with n = 0, 1, 10, 100 subscribers, for
//                                     tidings::bus, tidings::single_threaded_bus,
//                                     publisher<E> (on bus), publisher<E, single_thread>, a raw
//                                     loop over std::vector<std::function> (the baseline), and,
//                                     when found at configure time, Boost.Signals2 and sigc++ 3.
//   subscribe_unsubscribe/<c>/<n>     one subscribe and its destruction (disconnect for the
//                                     peers) with n = 0 and 100 subscribers already attached.
//   throughput/bus/threads:<t>        events/s published by t = 1 and 2 threads on the same
//                                     channel of a shared tidings::bus with 1 subscriber.
// Every contender runs the same handler: it adds the event's value to a slot of its own (its
// own cache line, or a thread_local one for the throughput benchmark) and hides the result
// from the optimizer with benchmark::DoNotOptimize. After the usual console output, main()
// prints a Markdown summary: ns per publish and ratios to the baselines, the targets, and
// PASS/MISS for each.
//
// How to run (Release; the benchmark target itself compiles with -O2)
//   bash scripts/bench.sh
// or by hand:
//   cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTIDINGS_BUILD_BENCHMARKS=ON
//         -DTIDINGS_BUILD_TESTS=OFF          (one command, on one line)
//   cmake --build build/bench && build/bench/benchmarks/tidings_bench_sync
// The usual --benchmark_* flags apply. Each benchmark runs once for at least 0.2 s unless
// --benchmark_min_time says otherwise; with --benchmark_repetitions=N the summary uses the
// median of the N repetitions. The summary's ns are CPU time per operation, which preemption
// by other processes does not inflate; the 2-thread throughput needs an otherwise idle machine.

#include "async_report.hpp"
#include "collecting_reporter.hpp"

#include <tidings/tidings.hpp>

#include <benchmark/benchmark.h>

#if defined(TIDINGS_BENCH_HAVE_BOOST)
#include <boost/signals2/connection.hpp>
#include <boost/signals2/signal.hpp>
#endif
#if defined(TIDINGS_BENCH_HAVE_SIGC)
#include <sigc++/connection.h>
#include <sigc++/signal.h>
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace tidings_bench {
namespace {

#if defined(TIDINGS_BENCH_HAVE_BOOST)
constexpr bool have_boost = true;
#else
constexpr bool have_boost = false;
#endif
#if defined(TIDINGS_BENCH_HAVE_SIGC)
constexpr bool have_sigc = true;
#else
constexpr bool have_sigc = false;
#endif

// --- the event and the handler every contender runs ----------------------------------------

/// @brief The event published in every benchmark.
struct sample_event {
    int id;
    double value;
};

/// @brief One handler's output, alone on its cache line so that no two handlers share one.
struct alignas(64) sink_slot {
    double value = 0.0;
};

/// @brief The handler of the single-threaded benchmarks: the same body for every contender.
struct sink_handler {
    sink_slot* slot;

    void operator()(const sample_event& e) const {
        slot->value += e.value;
        benchmark::DoNotOptimize(slot->value);
    }
};

/// @brief The throughput handler's output: one per publishing thread, so the handler's own cost
/// does not include a cache line bouncing between the threads.
thread_local sink_slot thread_sink;

/// @brief The handler of the throughput benchmark: sink_handler's body, on thread_sink.
struct thread_sink_handler {
    void operator()(const sample_event& e) const {
        thread_sink.value += e.value;
        benchmark::DoNotOptimize(thread_sink.value);
    }
};

// --- the contenders ------------------------------------------------------------------------
// Each one can add(handler) a subscriber that stays, publish(e), and (except the baseline)
// subscribe_unsubscribe(handler): attach one more handler and detach it again.

/// @brief The baseline: a hand-written observer list.
struct raw_loop_contender {
    std::vector<std::function<void(const sample_event&)>> handlers;

    void add(const sink_handler& handler) { handlers.emplace_back(handler); }

    void publish(const sample_event& e) const {
        for (const auto& handler : handlers) {
            handler(e);
        }
    }
};

/// @brief tidings::bus or tidings::single_threaded_bus, publishing with `bus.publish(e)`.
template <class Bus>
struct bus_contender {
    Bus bus;
    std::vector<tidings::subscription> subscriptions;

    void add(const sink_handler& handler) {
        subscriptions.push_back(bus.template subscribe<sample_event>(handler));
    }

    void publish(const sample_event& e) { bus.publish(e); }

    void subscribe_unsubscribe(const sink_handler& handler) {
        [[maybe_unused]] const tidings::subscription subscription =
            bus.template subscribe<sample_event>(handler);
    }
};

/// @brief tidings::publisher<E, Threading>: publishing without the per-call channel lookup.
template <class Threading>
struct publisher_contender {
    tidings::basic_bus<Threading> bus;
    tidings::publisher<sample_event, Threading> publisher{bus};
    std::vector<tidings::subscription> subscriptions;

    void add(const sink_handler& handler) {
        subscriptions.push_back(bus.template subscribe<sample_event>(handler));
    }

    void publish(const sample_event& e) { publisher.publish(e); }
};

#if defined(TIDINGS_BENCH_HAVE_BOOST)
/// @brief Boost.Signals2 with its defaults (thread-safe, mutex-protected slot list).
struct boost_signals2_contender {
    boost::signals2::signal<void(const sample_event&)> signal;

    void add(const sink_handler& handler) { signal.connect(handler); }

    void publish(const sample_event& e) { signal(e); }

    void subscribe_unsubscribe(const sink_handler& handler) {
        const boost::signals2::scoped_connection connection{signal.connect(handler)};
    }
};
#endif

#if defined(TIDINGS_BENCH_HAVE_SIGC)
/// @brief libsigc++ 3 (single-threaded by design).
struct sigc_contender {
    sigc::signal<void(const sample_event&)> signal;

    void add(const sink_handler& handler) { signal.connect(handler); }

    void publish(const sample_event& e) { signal.emit(e); }

    void subscribe_unsubscribe(const sink_handler& handler) {
        sigc::connection connection = signal.connect(handler);
        connection.disconnect();
    }
};
#endif

// --- the benchmarks ------------------------------------------------------------------------

/// @brief ns per publish with state.range(0) subscribers.
template <class Contender>
void bm_publish(benchmark::State& state) {
    std::vector<sink_slot> sinks(static_cast<std::size_t>(state.range(0)));
    Contender contender;  // declared after sinks: its handlers go before their slots do
    for (sink_slot& sink : sinks) {
        contender.add(sink_handler{&sink});
    }
    const sample_event e{1, 0.5};
    for (auto _ : state) {
        contender.publish(e);
    }
}

/// @brief One subscribe and its unsubscribe, with state.range(0) subscribers already attached.
template <class Contender>
void bm_subscribe_unsubscribe(benchmark::State& state) {
    std::vector<sink_slot> sinks(static_cast<std::size_t>(state.range(0)) + 1);
    Contender contender;
    for (std::size_t i = 0; i + 1 < sinks.size(); ++i) {
        contender.add(sink_handler{&sinks[i]});
    }
    const sink_handler extra{&sinks.back()};
    for (auto _ : state) {
        contender.subscribe_unsubscribe(extra);
    }
}

/// @brief The bus shared by the threads of bm_throughput_bus, with its one subscriber.
struct shared_bus {
    tidings::bus bus;
    tidings::subscription subscription = bus.subscribe<sample_event>(thread_sink_handler{});
};

std::unique_ptr<shared_bus> throughput_bus;

/// @brief Events/s published by state.threads() threads on one channel of one bus.
void bm_throughput_bus(benchmark::State& state) {
    // Thread 0 builds the bus before the timed loop and destroys it after: the loop's start and
    // end are barriers across all the benchmark's threads, which orders both against the
    // other threads' publishes.
    if (state.thread_index() == 0) {
        throughput_bus = std::make_unique<shared_bus>();
    }
    const sample_event e{1, 0.5};
    for (auto _ : state) {
        throughput_bus->bus.publish(e);
    }
    state.SetItemsProcessed(state.iterations());
    if (state.thread_index() == 0) {
        throughput_bus.reset();
    }
}

// --- registration --------------------------------------------------------------------------

/// @brief A contender as the summary names it.
struct contender_info {
    std::string_view key;    ///< benchmark name suffix: publish/<key>
    std::string_view label;  ///< as shown in the summary
    bool built;              ///< false: a peer that was not found at configure time
};

constexpr std::string_view raw_key = "raw_std_function";
constexpr std::string_view boost_key = "boost_signals2";
constexpr std::string_view sigc_key = "sigc";

constexpr std::array publish_contenders{
    contender_info{raw_key, "raw `std::function` loop", true},
    contender_info{"single_threaded_bus", "`single_threaded_bus`", true},
    contender_info{"bus", "`bus`", true},
    contender_info{"publisher_single_thread", "`publisher<E, single_thread>`", true},
    contender_info{"publisher", "`publisher<E>` (bus)", true},
    contender_info{boost_key, "Boost.Signals2", have_boost},
    contender_info{sigc_key, "sigc++ 3", have_sigc},
};

constexpr std::array subscribe_contenders{
    contender_info{"single_threaded_bus", "`single_threaded_bus`", true},
    contender_info{"bus", "`bus`", true},
    contender_info{boost_key, "Boost.Signals2", have_boost},
    contender_info{sigc_key, "sigc++ 3", have_sigc},
};

constexpr std::array<std::int64_t, 4> subscriber_counts{0, 1, 10, 100};
constexpr std::array<std::int64_t, 2> existing_counts{0, 100};
constexpr std::array<std::int64_t, 2> thread_counts{1, 2};

template <class Contender>
void register_publish(std::string_view key) {
    auto* b = benchmark::RegisterBenchmark(("publish/" + std::string{key}).c_str(),
                                           &bm_publish<Contender>);
    for (const std::int64_t count : subscriber_counts) {
        b->Arg(count);
    }
}

template <class Contender>
void register_subscribe_unsubscribe(std::string_view key) {
    auto* b = benchmark::RegisterBenchmark(("subscribe_unsubscribe/" + std::string{key}).c_str(),
                                           &bm_subscribe_unsubscribe<Contender>);
    for (const std::int64_t count : existing_counts) {
        b->Arg(count);
    }
}

void register_benchmarks() {
    register_publish<raw_loop_contender>(raw_key);
    register_publish<bus_contender<tidings::single_threaded_bus>>("single_threaded_bus");
    register_publish<bus_contender<tidings::bus>>("bus");
    register_publish<publisher_contender<tidings::single_thread>>("publisher_single_thread");
    register_publish<publisher_contender<tidings::thread_safe>>("publisher");
#if defined(TIDINGS_BENCH_HAVE_BOOST)
    register_publish<boost_signals2_contender>(boost_key);
#endif
#if defined(TIDINGS_BENCH_HAVE_SIGC)
    register_publish<sigc_contender>(sigc_key);
#endif

    register_subscribe_unsubscribe<bus_contender<tidings::single_threaded_bus>>(
        "single_threaded_bus");
    register_subscribe_unsubscribe<bus_contender<tidings::bus>>("bus");
#if defined(TIDINGS_BENCH_HAVE_BOOST)
    register_subscribe_unsubscribe<boost_signals2_contender>(boost_key);
#endif
#if defined(TIDINGS_BENCH_HAVE_SIGC)
    register_subscribe_unsubscribe<sigc_contender>(sigc_key);
#endif

    auto* b = benchmark::RegisterBenchmark("throughput/bus", &bm_throughput_bus);
    for (const std::int64_t threads : thread_counts) {
        b->Threads(static_cast<int>(threads));
    }
    b->UseRealTime();
}

// --- the targets ---------------------------------------------------------------------------

/// @brief publish/<contender>/<subscribers> must cost at most `limit` times publish/<baseline>.
struct publish_target {
    std::string_view contender;
    std::int64_t subscribers;
    std::string_view baseline;
    double limit;
};

constexpr std::array publish_targets{
    publish_target{"single_threaded_bus", 1, raw_key, 1.3},
    publish_target{"single_threaded_bus", 1, boost_key, 0.3},
    publish_target{"single_threaded_bus", 1, sigc_key, 0.3},
    publish_target{"bus", 1, raw_key, 3.0},
    publish_target{"bus", 1, boost_key, 0.3},
    publish_target{"bus", 1, sigc_key, 0.3},
    publish_target{"single_threaded_bus", 10, raw_key, 1.15},
    publish_target{"bus", 10, raw_key, 1.15},
};

/// 2-thread throughput must be at least this multiple of 1-thread throughput.
constexpr double throughput_scaling_target = 1.6;

/// subscribe + unsubscribe on either bus, with this many existing subscribers, ...
constexpr std::int64_t subscribe_target_existing = 100;
/// ... must take at most this many ns.
constexpr double subscribe_target_ns = 100.0;

// --- the summary ---------------------------------------------------------------------------

std::string fixed(double value, int decimals) {
    std::array<char, 64> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%.*f", decimals, value);
    return buffer.data();
}

std::string_view short_label(std::string_view key) {
    if (key == raw_key) {
        return "raw";
    }
    if (key == boost_key) {
        return "Boost.Signals2";
    }
    if (key == sigc_key) {
        return "sigc++";
    }
    return key;
}

// The summary's bookkeeping and tables are the ones the other benchmark executables use.
using scoreboard = async_report::verdicts;
using markdown_table = async_report::table;

using async_report::compiler;

void print_environment(std::ostream& out) {
    out << "tidings_bench_sync: compiler " << compiler() << ", "
        << std::thread::hardware_concurrency() << " CPUs\n";
#if !defined(__OPTIMIZE__) || !defined(NDEBUG)
    out << "WARNING: not an optimized build with NDEBUG (configure with "
           "-DCMAKE_BUILD_TYPE=Release): the figures below are not meaningful.\n";
#endif
}

void print_publish_table(std::ostream& out, const collecting_reporter& results, scoreboard& score) {
    markdown_table table({"subscribers", "contender", "ns/publish", "× raw", "× Boost.Signals2",
                          "× sigc++", "target", "result"},
                         "rlrrrrll");
    const auto ns_of = [&](std::string_view key, std::int64_t count) -> std::optional<double> {
        const result* r = results.find("publish/" + std::string{key}, std::to_string(count));
        return r == nullptr ? std::nullopt : std::optional{r->cpu_ns};
    };
    const auto ratio_cell = [](std::optional<double> ns, std::optional<double> baseline_ns) {
        return ns && baseline_ns && *baseline_ns > 0.0 ? fixed(*ns / *baseline_ns, 2)
                                                       : std::string{};
    };

    for (const std::int64_t count : subscriber_counts) {
        const std::optional<double> raw_ns = ns_of(raw_key, count);
        for (const contender_info& contender : publish_contenders) {
            const std::optional<double> ns = ns_of(contender.key, count);
            if (!ns) {
                continue;
            }
            std::string targets;
            std::string verdicts;
            for (const publish_target& t : publish_targets) {
                if (t.contender != contender.key || t.subscribers != count) {
                    continue;
                }
                const std::optional<double> baseline_ns = ns_of(t.baseline, count);
                const bool met = baseline_ns && *ns <= t.limit * *baseline_ns;
                targets += (targets.empty() ? "" : ", ") + std::string{short_label(t.baseline)} +
                           " ≤ " + fixed(t.limit, 2) + "×";
                verdicts +=
                    (verdicts.empty() ? "" : ", ") + score.judge(baseline_ns.has_value(), met);
            }
            const bool peers_column = count == 1;
            table.add({std::to_string(count), std::string{contender.label}, fixed(*ns, 2),
                       ratio_cell(ns, raw_ns),
                       peers_column ? ratio_cell(ns, ns_of(boost_key, count)) : std::string{},
                       peers_column ? ratio_cell(ns, ns_of(sigc_key, count)) : std::string{},
                       targets, verdicts});
        }
    }
    if (table.empty()) {
        return;
    }
    out << "\n### ns per publish (lower is better)\n\n";
    table.print(out);
}

void print_subscribe_table(std::ostream& out, const collecting_reporter& results,
                           scoreboard& score) {
    markdown_table table(
        {"existing subscribers", "contender", "ns (subscribe + unsubscribe)", "target", "result"},
        "rlrll");
    for (const std::int64_t count : existing_counts) {
        for (const contender_info& contender : subscribe_contenders) {
            const result* r = results.find("subscribe_unsubscribe/" + std::string{contender.key},
                                           std::to_string(count));
            if (r == nullptr) {
                continue;
            }
            const bool is_bus = contender.key == "bus" || contender.key == "single_threaded_bus";
            const bool has_target = is_bus && count == subscribe_target_existing;
            table.add({std::to_string(count), std::string{contender.label}, fixed(r->cpu_ns, 1),
                       has_target ? "≤ " + fixed(subscribe_target_ns, 0) + " ns" : "",
                       has_target ? score.judge(true, r->cpu_ns <= subscribe_target_ns) : ""});
        }
    }
    if (table.empty()) {
        return;
    }
    out << "\n### subscribe + unsubscribe (lower is better)\n\n";
    table.print(out);
}

void print_throughput_table(std::ostream& out, const collecting_reporter& results,
                            scoreboard& score) {
    markdown_table table(
        {"publishing threads", "events/s (all threads)", "× 1 thread", "target", "result"},
        "rrrll");
    const result* one = results.find("throughput/bus", "", 1);
    for (const std::int64_t threads : thread_counts) {
        const result* r = results.find("throughput/bus", "", threads);
        if (r == nullptr) {
            continue;
        }
        const bool has_ratio = one != nullptr && one->items_per_second > 0.0;
        const double ratio = has_ratio ? r->items_per_second / one->items_per_second : 0.0;
        const bool has_target = threads == 2;
        table.add({std::to_string(threads), fixed(r->items_per_second / 1e6, 1) + " M",
                   has_ratio ? fixed(ratio, 2) : "",
                   has_target ? "≥ " + fixed(throughput_scaling_target, 2) + "× 1 thread" : "",
                   has_target ? score.judge(has_ratio, ratio >= throughput_scaling_target) : ""});
    }
    if (table.empty()) {
        return;
    }
    out << "\n### publish throughput, shared `bus`, one channel, 1 subscriber (higher is "
           "better)\n\n";
    table.print(out);
    if (std::thread::hardware_concurrency() < 2) {
        out << "\nOnly one CPU: the 2-thread figure measures time slicing, not scaling.\n";
    }
}

void print_summary(std::ostream& out, const collecting_reporter& results) {
    out << "\n## tidings_bench_sync summary\n\n"
        << "- compiler: " << compiler() << '\n'
        << "- CPUs: " << std::thread::hardware_concurrency();
    if (results.cpu_mhz() > 0.0) {
        out << " @ " << fixed(results.cpu_mhz(), 0) << " MHz";
    }
    out << "\n- figures: ";
    if (const std::int64_t repetitions = results.median_repetitions(); repetitions > 0) {
        out << "median of " << repetitions << " repetitions";
    } else {
        out << "one run per benchmark (pass --benchmark_repetitions=N for the median of N)";
    }
    out << "; ns are CPU time per operation (equal to wall-clock time on an idle machine, and\n"
           "  not inflated by preemption on a busy one); throughput is wall-clock\n";
    for (const contender_info& contender : publish_contenders) {
        if (!contender.built) {
            out << "- " << contender.label
                << ": not built (not found at configure time), its targets are not measured\n";
        }
    }

    scoreboard score;
    print_publish_table(out, results, score);
    print_subscribe_table(out, results, score);
    print_throughput_table(out, results, score);
    out << '\n';
    score.print(out);
}

}  // namespace
}  // namespace tidings_bench

int main(int argc, char** argv) {
    using namespace tidings_bench;

    // Run each benchmark once for 0.2 s unless the command line chooses a min time, so that the
    // whole binary stays well under a minute.
    std::vector<char*> args(argv, argv + argc);
    std::string default_min_time = "--benchmark_min_time=0.2";
    bool has_min_time = false;
    for (int i = 1; i < argc; ++i) {
        has_min_time =
            has_min_time || std::string_view{argv[i]}.starts_with("--benchmark_min_time");
    }
    if (!has_min_time) {
        args.push_back(default_min_time.data());
    }
    int args_count = static_cast<int>(args.size());
    args.push_back(nullptr);
    benchmark::Initialize(&args_count, args.data());
    if (benchmark::ReportUnrecognizedArguments(args_count, args.data())) {
        return 1;
    }

    // The display reporter honours --benchmark_format and --benchmark_color. The summary goes
    // with the console output, and to stderr when stdout carries JSON or CSV.
    benchmark::BenchmarkReporter* display = benchmark::CreateDefaultDisplayReporter();
    std::ostream& out =
        dynamic_cast<benchmark::ConsoleReporter*>(display) != nullptr ? std::cout : std::cerr;
    print_environment(out);
    out.flush();

    register_benchmarks();
    collecting_reporter reporter{display};
    benchmark::RunSpecifiedBenchmarks(&reporter);
    if (!reporter.empty()) {
        print_summary(out, reporter);
    }
    benchmark::Shutdown();
    return 0;
}
