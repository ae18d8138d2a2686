// tidings_bench_lane: where the time of a queued delivery goes, in one thread, without
// contention: the executor lane alone against the whole bus path, with the synchronous publish
// and a std::function call for scale. For the docs' "where the time goes" figures.
//
// What is measured (every benchmark is a loop of batches of 256 events, all in one thread)
//   lane/push_run             executor_core::push of 256 records of a task shaped like the
//                             library's queued delivery of a 16-byte event (a 48-byte record),
//                             inside one epoch read section (push must run in one), then
//                             executor_core::run_visible() runs them. No bus, no channel, no
//                             subscriber: the lane's own cost.
//   bus/queued_publish_run    tidings::bus with one subscriber of a 16-byte event delivered
//                             with deliver_on(manual_executor): 256 bus.publish(e), then
//                             run_pending(). The same lane, plus the bus: channel lookup, read
//                             sections, the subscriber snapshot, deliver_queued on the consumer.
//   bus/inline_publish        the same bus and event with one inline subscriber: the
//                             synchronous publish path that the queued one shares.
//   baseline/std_function_call  256 calls of a std::function<void(const E&)>, for scale.
// Every handler (and the lane task) adds the event's `b` to a global sink, hidden from the
// optimizer once per batch.
//
// How to read it
//   Time / CPU                per batch of 256 events (items_per_second: events/s).
//   ns_per_event              the whole batch per event (steady_clock, see below).
//   push_ns, run_ns           queued benchmarks only: the producer half (push or publish) and
//                             the consumer half (run_visible or run_pending) per event;
//                             push_ns + run_ns = ns_per_event.
// How the split is timed: each batch reads std::chrono::steady_clock three times (before the
// pushes, between the pushes and the run, after the run) and adds the two intervals to two
// totals, divided by the events at the end. Three clock reads (~20 ns each, vDSO) per 256
// events add well under 0.1 ns to each half. PauseTiming/ResumeTiming was not used: each
// costs far more than a batch's half and its noise would swamp the split; nor was the
// difference of two separate benchmarks (push only vs push+run), since a push-only loop
// cannot run without a consumer and subtracting two noisy figures is less stable.
//
// How to run (Release; the target compiles with -O2 like the other benchmarks)
//   cmake --build build/bench --target tidings_bench_lane
//   build/bench/benchmarks/tidings_bench_lane
// Each benchmark runs for at least 0.5 s unless --benchmark_min_time says otherwise: the
// whole executable takes a few seconds.

#include <tidings/tidings.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace tidings_bench {
namespace {

using clock_type = std::chrono::steady_clock;

/// Events per batch: 256 records of 48 bytes (12 KiB) fit in the default 16 KiB lane, so a
/// batch never waits for space.
constexpr std::size_t batch = 256;

/// Where every handler adds its event's `b`. One thread only: a plain variable.
std::uint64_t sink = 0;

/// @brief A 16-byte event, as in the lane record size the docs quote (48 bytes).
struct event16 {
    std::uint64_t a;
    std::uint64_t b;
};
static_assert(sizeof(event16) == 16);

/// @brief A lane task shaped like the library's inline delivery of a 16-byte event
/// (detail::delivery_task): channel pointer, max id, recipients, the event. Running it adds
/// the event's `b` to the sink instead of delivering through a channel.
struct lane_task {
    static constexpr bool on_heap = false;

    void* target;
    std::uint64_t max_id;
    std::uint32_t recipients;
    struct {
        std::uint64_t a;
        std::uint64_t b;
    } event;

    static tidings::detail::task_outcome operation(tidings::detail::record_header& h,
                                                   tidings::detail::task_action /*action*/,
                                                   void* /*executor*/) noexcept {
        auto* self = h.payload<lane_task>();
        sink += self->event.b;
        return {tidings::detail::record_size_of<lane_task>, 0};
    }
};
static_assert(tidings::detail::record_size_of<lane_task> == 48,
              "the record of a queued 16-byte event is 48 bytes");
static_assert(tidings::detail::record_size_of<lane_task> ==
                  tidings::detail::record_size_of<
                      tidings::detail::delivery_task<event16, tidings::thread_safe, true>>,
              "lane_task takes the same record as the bus's delivery of an event16");

/// @brief The subscriber of the bus benchmarks and the target of the std::function baseline.
struct sink_handler {
    void operator()(const event16& e) const { sink += e.b; }
};

/// @brief Per-event totals of a queued benchmark's two halves.
struct split_timer {
    std::chrono::nanoseconds producer{0};
    std::chrono::nanoseconds consumer{0};

    void add(clock_type::time_point start, clock_type::time_point middle,
             clock_type::time_point end) {
        producer += middle - start;
        consumer += end - middle;
    }
};

double per_event(std::chrono::nanoseconds total, double events) {
    return events > 0 ? static_cast<double>(total.count()) / events : 0.0;
}

/// Items processed, and the per-event counters (split when `split` is true).
void report(benchmark::State& state, const split_timer& timer, bool split) {
    const auto events =
        static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(batch);
    state.SetItemsProcessed(events);
    const auto count = static_cast<double>(events);
    state.counters["ns_per_event"] = per_event(timer.producer + timer.consumer, count);
    if (split) {
        state.counters["push_ns"] = per_event(timer.producer, count);
        state.counters["run_ns"] = per_event(timer.consumer, count);
    }
    benchmark::DoNotOptimize(sink);
}

// --- 1. the lane alone -------------------------------------------------------------------------

void bm_lane_push_run(benchmark::State& state) {
    tidings::manual_executor executor;
    tidings::detail::executor_core& core = executor.core();
    split_timer timer;
    for (auto _ : state) {
        const clock_type::time_point start = clock_type::now();
        {
            // push must run inside a read section (stop() waits for those); one per batch,
            // as the consumer's run_lane does, so its cost is spread over the batch.
            tidings::detail::epoch_read_section section{tidings::detail::reads_nothing};
            for (std::size_t i = 0; i < batch; ++i) {
                core.push<lane_task>([&](void* where) {
                    ::new (where) lane_task{&core, i, 1, {i, i}};
                });
            }
        }
        const clock_type::time_point middle = clock_type::now();
        const std::size_t ran = core.run_visible();
        const clock_type::time_point end = clock_type::now();
        timer.add(start, middle, end);
        if (ran != batch) [[unlikely]] {
            state.SkipWithError("run_visible did not run the whole batch");
            break;
        }
    }
    report(state, timer, true);
}

// --- 2. the bus, queued on a manual_executor ---------------------------------------------------

void bm_bus_queued_publish_run(benchmark::State& state) {
    tidings::manual_executor executor;
    tidings::bus bus;
    const tidings::subscription subscription =
        bus.subscribe<event16>(sink_handler{}, tidings::deliver_on(executor));
    split_timer timer;
    for (auto _ : state) {
        const clock_type::time_point start = clock_type::now();
        for (std::size_t i = 0; i < batch; ++i) {
            bus.publish(event16{i, i});
        }
        const clock_type::time_point middle = clock_type::now();
        const std::size_t ran = executor.run_pending();
        const clock_type::time_point end = clock_type::now();
        timer.add(start, middle, end);
        if (ran != batch) [[unlikely]] {
            state.SkipWithError("run_pending did not run the whole batch");
            break;
        }
    }
    report(state, timer, true);
}

// --- 3. the bus, inline ------------------------------------------------------------------------

void bm_bus_inline_publish(benchmark::State& state) {
    tidings::bus bus;
    const tidings::subscription subscription = bus.subscribe<event16>(sink_handler{});
    split_timer timer;
    for (auto _ : state) {
        const clock_type::time_point start = clock_type::now();
        for (std::size_t i = 0; i < batch; ++i) {
            bus.publish(event16{i, i});
        }
        const clock_type::time_point end = clock_type::now();
        timer.add(start, end, end);
    }
    report(state, timer, false);
}

// --- 4. baseline: std::function ----------------------------------------------------------------

void bm_std_function_call(benchmark::State& state) {
    std::function<void(const event16&)> handler = sink_handler{};
    split_timer timer;
    for (auto _ : state) {
        // The optimizer must not see through the std::function to the handler.
        benchmark::DoNotOptimize(handler);
        const clock_type::time_point start = clock_type::now();
        for (std::size_t i = 0; i < batch; ++i) {
            handler(event16{i, i});
        }
        const clock_type::time_point end = clock_type::now();
        timer.add(start, end, end);
    }
    report(state, timer, false);
}

}  // namespace
}  // namespace tidings_bench

int main(int argc, char** argv) {
    using namespace tidings_bench;
    std::vector<char*> args(argv, argv + argc);
    // At least 0.5 s per benchmark unless the command line says otherwise.
    std::string min_time = "--benchmark_min_time=0.5";
    bool has_min_time = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (std::string_view{args[i]}.starts_with("--benchmark_min_time")) has_min_time = true;
    }
    if (!has_min_time) args.push_back(min_time.data());
    int args_count = static_cast<int>(args.size());
    args.push_back(nullptr);
    benchmark::Initialize(&args_count, args.data());
    if (benchmark::ReportUnrecognizedArguments(args_count, args.data())) return 1;

    benchmark::RegisterBenchmark("lane/push_run", bm_lane_push_run);
    benchmark::RegisterBenchmark("bus/queued_publish_run", bm_bus_queued_publish_run);
    benchmark::RegisterBenchmark("bus/inline_publish", bm_bus_inline_publish);
    benchmark::RegisterBenchmark("baseline/std_function_call", bm_std_function_call);

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
