// tidings_bench_async: queued (cross-thread) delivery through a tidings::thread_executor,
// against a hand-written mutex + condition-variable bus and the queue libraries Debian packages,
// all measured in the same run.
//
// What is measured
//   throughput/<contender>/producers:<p>   events/s from p = 1 or 2 producer threads to one
//                                          consumer thread that runs the handler, end to end:
//                                          from the producers' start until the consumer has
//                                          handled the last event; 3 rounds of 2^21 events
//                                          (after an untimed warm-up round), fewer if 2 s ran out.
//   latency/<contender>                    publish → handler latency, one event in flight: the
//                                          producer stamps the event with steady_clock, the
//                                          handler subtracts, stores the sample and acknowledges;
//                                          the producer waits for the acknowledgement before the
//                                          next event. p50 / p99 / p99.9 of 100 000 samples
//                                          (after 2 000 untimed), fewer if 4 s ran out.
//   latency/tidings_adaptive_sparse        the same with 200 µs of silence before each event, so
//                                          that the adaptive consumer has gone to sleep (the
//                                          futex wake-up path). 5 000 samples, or 4 s.
//   idle/<strategy>                        CPU time of a thread_executor's worker during 1 s of
//                                          silence after a burst, as % of one core, read with
//                                          CLOCK_THREAD_CPUTIME_ID by handlers on the worker.
//
// Contenders (each carries the same 16-byte event to the same handler on one consumer thread)
//   tidings_adaptive     bus.publish(e) to a subscriber with deliver_on(thread_executor),
//                        default executor_options (wait_strategy::adaptive, capacity 1024, block)
//   tidings_spin         the same with wait_strategy::spin
//   mutex_bus            the classic: publish locks a std::mutex, pushes a
//                        std::function<void()> closure (subscriber pointer + event) on a
//                        std::deque, unlocks and notifies a std::condition_variable; the consumer
//                        pops one closure per lock and calls it
//   moodycamel           moodycamel::ConcurrentQueue<event>, a ProducerToken per producer thread,
//                        the consumer spins on try_dequeue_bulk (ConsumerToken, 64 at a time)
//   moodycamel_blocking  moodycamel::BlockingConcurrentQueue<event>, wait_dequeue_bulk
//   tbb_bounded          tbb::concurrent_bounded_queue<event>, capacity 1024, push / pop
// The peers are compiled in when found at configure time (TIDINGS_BENCH_HAVE_MOODYCAMEL,
// TIDINGS_BENCH_HAVE_TBB). The handler adds a field of the event to a consumer-owned sum and
// counts the round down.
//
// How to run (Release)
//   bash scripts/bench.sh
// or build the tidings_bench_async target and run it. Options: the usual --benchmark_* flags
// (--benchmark_repetitions=N: the summary uses medians), and --pin=P,C[,Q] to pin the producer
// to CPU P, the consumer to C and the second producer to Q. A run takes under a minute on a
// quiet machine, about 90 s on a busy one (the time budgets above).

#include "async_report.hpp"
#include "collecting_reporter.hpp"

#include <tidings/tidings.hpp>

#include <benchmark/benchmark.h>

#if defined(TIDINGS_BENCH_HAVE_MOODYCAMEL)
#include <blockingconcurrentqueue.h>
#include <concurrentqueue.h>
#endif
#if defined(TIDINGS_BENCH_HAVE_TBB)
#include <oneapi/tbb/concurrent_queue.h>
#endif

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace tidings_bench {
namespace {

using namespace async_report;

#if defined(TIDINGS_BENCH_HAVE_MOODYCAMEL)
constexpr bool have_moodycamel = true;
#else
constexpr bool have_moodycamel = false;
#endif
#if defined(TIDINGS_BENCH_HAVE_TBB)
constexpr bool have_tbb = true;
#else
constexpr bool have_tbb = false;
#endif

// --- sizes -------------------------------------------------------------------------------------

constexpr std::uint64_t round_events = std::uint64_t{1} << 21;   ///< events per timed round
constexpr std::uint64_t warmup_events = std::uint64_t{1} << 17;  ///< one untimed round first
constexpr std::int64_t throughput_rounds = 3;  ///< rounds per figure, unless over budget
constexpr std::int64_t latency_samples = 100'000;
constexpr std::int64_t latency_warmup = 2'000;
constexpr std::int64_t sparse_samples = 5'000;
constexpr auto sparse_gap = std::chrono::microseconds{200};
// Time budgets, so that a run stays near a minute even on a busy machine, where a time slice
// lost by a spinning thread can stretch a round to seconds: no new round (or sample) starts
// once the budget is spent; the summary shows how many were taken.
constexpr auto throughput_budget = std::chrono::seconds{2};
constexpr auto latency_budget = std::chrono::seconds{4};
constexpr std::uint64_t idle_burst_events = 100'000;
constexpr auto idle_window = std::chrono::seconds{1};

// --- the event and the handlers ----------------------------------------------------------------

/// @brief The 16-byte event every contender carries.
struct tick {
    std::uint64_t stamp;  ///< throughput: a sequence number; latency: steady_clock ns at publish
    std::uint64_t value;  ///< throughput: summed by the handler; latency: the sample's index
};
static_assert(sizeof(tick) == 16, "the benchmark's event is 16 bytes");

/// @brief The throughput handler's state. `sum` and `remaining` belong to the consumer while a
/// round runs; the benchmark thread sets `remaining` between rounds (ordered by `rounds`).
struct alignas(64) throughput_sink {
    std::uint64_t sum = 0;
    std::uint64_t remaining = 0;
    alignas(64) std::atomic<std::uint32_t> rounds{0};
};

/// @brief Adds the event's value to the consumer's sum; the last event of a round signals.
struct throughput_handler {
    throughput_sink* sink;

    void operator()(const tick& e) const {
        sink->sum += e.value;
        if (--sink->remaining == 0) {
            // release: the round's handler calls happen before the benchmark thread goes on
            // (pairs with the acquire in wait_round).
            sink->rounds.fetch_add(1, std::memory_order_release);
            sink->rounds.notify_one();
        }
    }
};

/// @brief The latency handler's state: samples by index, and the acknowledgement.
struct latency_sink {
    alignas(64) std::vector<std::uint64_t> samples;
    alignas(64) std::atomic<std::uint64_t> ack{0};
};

/// @brief Stores now - stamp at the event's index, then acknowledges it.
struct latency_handler {
    latency_sink* sink;

    void operator()(const tick& e) const {
        const std::uint64_t now = now_ns();
        sink->samples[e.value] = now - e.stamp;
        // release: the sample is written before the producer reads it (pairs with its acquire).
        sink->ack.store(e.value, std::memory_order_release);
    }
};

// --- the contenders ----------------------------------------------------------------------------
// Each is built with its handler and the CPU to pin its consumer to, starts its consumer
// thread, and hands out producers (one per producing thread) with publish(const tick&). The
// destructor returns once every published event has been handled.

/// @brief Asks an executor's worker to pin itself, and waits until it has.
struct pin_request {
    int cpu;
};

void pin_worker(tidings::bus& bus, tidings::thread_executor& worker, std::optional<int> cpu) {
    if (!cpu) return;
    std::atomic<bool> done{false};
    const tidings::subscription pin = bus.subscribe<pin_request>(
        [&done](const pin_request& request) {
            (void)pin_this_thread(request.cpu);
            done.store(true, std::memory_order_release);  // pairs with the acquire below
            done.notify_one();
        },
        tidings::deliver_on(worker));
    bus.publish(pin_request{*cpu});
    while (!done.load(std::memory_order_acquire)) done.wait(false, std::memory_order_acquire);
}

/// @brief tidings: bus.publish(e) to one subscriber queued on a thread_executor.
template <class Handler, tidings::wait_strategy Wait>
class tidings_contender {
public:
    tidings_contender(Handler handler, std::optional<int> consumer_cpu)
        : worker_(options()),
          subscription_(bus_.subscribe<tick>(handler, tidings::deliver_on(worker_))) {
        pin_worker(bus_, worker_, consumer_cpu);
    }

    struct producer {
        tidings::bus* bus;
        void publish(const tick& e) const { bus->publish(e); }
    };

    producer make_producer() { return producer{&bus_}; }

private:
    static tidings::executor_options options() {
        tidings::executor_options chosen;
        chosen.wait = Wait;
        return chosen;
    }

    tidings::thread_executor worker_;  // destroyed last: drains what is queued
    tidings::bus bus_;
    tidings::subscription subscription_;
};

/// @brief The classic hand-written bus: a mutex, a deque of closures, a condition variable
/// notified on every push.
template <class Handler>
class mutex_bus_contender {
public:
    mutex_bus_contender(Handler handler, std::optional<int> consumer_cpu)
        : subscriber_(std::move(handler)), consumer_([this, consumer_cpu] {
              (void)pin_this_thread(consumer_cpu);
              run();
          }) {}

    mutex_bus_contender(const mutex_bus_contender&) = delete;
    mutex_bus_contender& operator=(const mutex_bus_contender&) = delete;

    ~mutex_bus_contender() {
        {
            const std::lock_guard lock{mutex_};
            stopping_ = true;
        }
        ready_.notify_one();
        consumer_.join();
    }

    struct producer {
        mutex_bus_contender* bus;
        void publish(const tick& e) const { bus->publish(e); }
    };

    producer make_producer() { return producer{this}; }

    void publish(const tick& e) {
        {
            const std::lock_guard lock{mutex_};
            tasks_.emplace_back([subscriber = &subscriber_, e] { (*subscriber)(e); });
        }
        ready_.notify_one();
    }

private:
    void run() {
        for (;;) {
            std::function<void()> task;
            {
                std::unique_lock lock{mutex_};
                ready_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
                if (tasks_.empty()) return;  // stopping, and drained
                task = std::move(tasks_.front());
                tasks_.pop_front();
            }
            task();
        }
    }

    std::function<void(const tick&)> subscriber_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> tasks_;  // guarded by mutex_
    bool stopping_ = false;                    // guarded by mutex_
    std::thread consumer_;                     // last: starts after the rest is built
};

#if defined(TIDINGS_BENCH_HAVE_MOODYCAMEL)
constexpr std::size_t peer_bulk = 64;

/// @brief moodycamel::ConcurrentQueue, its consumer spinning on try_dequeue_bulk.
template <class Handler>
class moodycamel_contender {
public:
    moodycamel_contender(Handler handler, std::optional<int> consumer_cpu)
        : handler_(handler), consumer_([this, consumer_cpu] {
              (void)pin_this_thread(consumer_cpu);
              run();
          }) {}

    moodycamel_contender(const moodycamel_contender&) = delete;
    moodycamel_contender& operator=(const moodycamel_contender&) = delete;

    ~moodycamel_contender() {
        stopping_.store(true, std::memory_order_release);  // pairs with the acquire in run()
        consumer_.join();
    }

    struct producer {
        moodycamel::ProducerToken token;
        moodycamel::ConcurrentQueue<tick>* queue;
        void publish(const tick& e) { (void)queue->enqueue(token, e); }
    };

    producer make_producer() { return producer{moodycamel::ProducerToken{queue_}, &queue_}; }

private:
    void run() {
        moodycamel::ConsumerToken token{queue_};
        std::array<tick, peer_bulk> batch{};
        for (;;) {
            const std::size_t count = queue_.try_dequeue_bulk(token, batch.data(), batch.size());
            for (std::size_t i = 0; i < count; ++i) handler_(batch[i]);
            if (count != 0) continue;
            if (stopping_.load(std::memory_order_acquire)) {
                // Every producer finished before the destructor ran: drain and leave.
                while (const std::size_t rest =
                           queue_.try_dequeue_bulk(token, batch.data(), batch.size())) {
                    for (std::size_t i = 0; i < rest; ++i) handler_(batch[i]);
                }
                return;
            }
            cpu_relax();
        }
    }

    Handler handler_;
    moodycamel::ConcurrentQueue<tick> queue_{4096};
    std::atomic<bool> stopping_{false};
    std::thread consumer_;  // last: starts after the rest is built
};

/// @brief moodycamel::BlockingConcurrentQueue, its consumer in wait_dequeue_bulk.
template <class Handler>
class moodycamel_blocking_contender {
public:
    moodycamel_blocking_contender(Handler handler, std::optional<int> consumer_cpu)
        : handler_(handler), consumer_([this, consumer_cpu] {
              (void)pin_this_thread(consumer_cpu);
              run();
          }) {}

    moodycamel_blocking_contender(const moodycamel_blocking_contender&) = delete;
    moodycamel_blocking_contender& operator=(const moodycamel_blocking_contender&) = delete;

    ~moodycamel_blocking_contender() {
        stopping_.store(true, std::memory_order_release);  // pairs with the acquire in run()
        consumer_.join();
    }

    struct producer {
        moodycamel::ProducerToken token;
        moodycamel::BlockingConcurrentQueue<tick>* queue;
        void publish(const tick& e) { (void)queue->enqueue(token, e); }
    };

    producer make_producer() { return producer{moodycamel::ProducerToken{queue_}, &queue_}; }

private:
    void run() {
        moodycamel::ConsumerToken token{queue_};
        std::array<tick, peer_bulk> batch{};
        for (;;) {
            const std::size_t count = queue_.wait_dequeue_bulk_timed(
                token, batch.data(), batch.size(), std::chrono::milliseconds{5});
            for (std::size_t i = 0; i < count; ++i) handler_(batch[i]);
            if (count == 0 && stopping_.load(std::memory_order_acquire)) {
                while (const std::size_t rest =
                           queue_.try_dequeue_bulk(token, batch.data(), batch.size())) {
                    for (std::size_t i = 0; i < rest; ++i) handler_(batch[i]);
                }
                return;
            }
        }
    }

    Handler handler_;
    moodycamel::BlockingConcurrentQueue<tick> queue_{4096};
    std::atomic<bool> stopping_{false};
    std::thread consumer_;  // last: starts after the rest is built
};
#endif

#if defined(TIDINGS_BENCH_HAVE_TBB)
/// @brief tbb::concurrent_bounded_queue with capacity 1024: push blocks when full, pop when empty.
template <class Handler>
class tbb_contender {
public:
    tbb_contender(Handler handler, std::optional<int> consumer_cpu)
        : handler_(handler), queue_(make_queue()), consumer_([this, consumer_cpu] {
              (void)pin_this_thread(consumer_cpu);
              run();
          }) {}

    tbb_contender(const tbb_contender&) = delete;
    tbb_contender& operator=(const tbb_contender&) = delete;

    ~tbb_contender() {
        // abort() only wakes a pop that is already waiting, so stop with a flag and one wake-up
        // event instead. release: pairs with the acquire in run().
        stopping_.store(true, std::memory_order_release);
        queue_.push(tick{0, 0});
        consumer_.join();
    }

    struct producer {
        tbb::concurrent_bounded_queue<tick>* queue;
        void publish(const tick& e) const { queue->push(e); }
    };

    producer make_producer() { return producer{&queue_}; }

private:
    static tbb::concurrent_bounded_queue<tick> make_queue() {
        tbb::concurrent_bounded_queue<tick> queue;
        queue.set_capacity(1024);
        return queue;
    }

    void run() {
        tick e{};
        for (;;) {
            queue_.pop(e);
            // Every real event was handled before the destructor: an event seen after the flag
            // is the wake-up.
            if (stopping_.load(std::memory_order_acquire)) return;
            handler_(e);
        }
    }

    Handler handler_;
    tbb::concurrent_bounded_queue<tick> queue_;
    std::atomic<bool> stopping_{false};
    std::thread consumer_;  // last: starts after the rest is built
};
#endif

// --- throughput --------------------------------------------------------------------------------

template <class Contender>
void produce(Contender& contender, std::uint64_t first, std::uint64_t count) {
    auto producer = contender.make_producer();
    for (std::uint64_t i = first; i < first + count; ++i) {
        producer.publish(tick{i, i & 0xFFFFU});
    }
}

void wait_round(throughput_sink& sink, std::uint32_t target) {
    for (;;) {
        // acquire: pairs with the release in throughput_handler.
        const std::uint32_t seen = sink.rounds.load(std::memory_order_acquire);
        if (seen >= target) return;
        sink.rounds.wait(seen, std::memory_order_acquire);
    }
}

/// @brief `events` events from `producers` threads (this one and maybe one more), until the
/// consumer has handled the last one.
template <class Contender>
void run_round(Contender& contender, throughput_sink& sink, int producers, std::uint64_t events) {
    const std::uint32_t target = sink.rounds.load(std::memory_order_acquire) + 1;
    sink.remaining = events;  // the consumer is idle: it signalled the previous round
    if (producers == 1) {
        produce(contender, 0, events);
    } else {
        const std::uint64_t half = events / 2;
        const std::jthread second{[&contender, half, events] {
            (void)pin_this_thread(chosen_pinning().second_producer);
            produce(contender, half, events - half);
        }};
        produce(contender, 0, half);
    }  // the second producer is joined here
    wait_round(sink, target);
}

/// @brief One iteration: up to throughput_rounds rounds (fewer if over budget), timed together.
template <class Contender>
void bm_throughput(benchmark::State& state, const std::string& key) {
    const int producers = static_cast<int>(state.range(0));
    (void)pin_this_thread(chosen_pinning().producer);
    throughput_sink sink;
    std::int64_t rounds = 0;
    {
        Contender contender{throughput_handler{&sink}, chosen_pinning().consumer};
        run_round(contender, sink, producers, warmup_events);
        for (auto _ : state) {
            const auto start = std::chrono::steady_clock::now();
            do {
                run_round(contender, sink, producers, round_events);
                ++rounds;
            } while (rounds < throughput_rounds &&
                     std::chrono::steady_clock::now() - start < throughput_budget);
        }
    }
    benchmark::DoNotOptimize(sink.sum);
    state.SetItemsProcessed(rounds * static_cast<std::int64_t>(round_events));
    state.counters["rounds"] = static_cast<double>(rounds);
    figures().add_value(key + "/producers:" + std::to_string(producers) + "/rounds",
                        static_cast<double>(rounds));
}

// --- latency -----------------------------------------------------------------------------------

template <class Producer>
void ping(Producer& producer, latency_sink& sink, std::uint64_t id) {
    producer.publish(tick{now_ns(), id});
    // acquire: pairs with the release in latency_handler.
    while (sink.ack.load(std::memory_order_acquire) != id) cpu_relax();
}

/// @brief One iteration: up to `samples` pings (fewer if over budget), `gap` apart.
template <class Contender>
void bm_latency(benchmark::State& state, const std::string& key, std::int64_t samples,
                std::chrono::microseconds gap) {
    (void)pin_this_thread(chosen_pinning().producer);
    latency_sink sink;
    sink.samples.assign(static_cast<std::size_t>(latency_warmup + samples + 1), 0);
    std::uint64_t id = 0;
    {
        Contender contender{latency_handler{&sink}, chosen_pinning().consumer};
        auto producer = contender.make_producer();
        for (std::int64_t i = 0; i < latency_warmup; ++i) ping(producer, sink, ++id);
        for (auto _ : state) {
            const auto start = std::chrono::steady_clock::now();
            for (std::int64_t taken = 0; taken < samples; ++taken) {
                if (taken % 256 == 0 && std::chrono::steady_clock::now() - start > latency_budget) {
                    break;
                }
                if (gap.count() != 0) std::this_thread::sleep_for(gap);
                ping(producer, sink, ++id);
            }
        }
    }
    std::vector<std::uint64_t> measured(
        sink.samples.begin() + static_cast<std::ptrdiff_t>(latency_warmup + 1),
        sink.samples.begin() + static_cast<std::ptrdiff_t>(id + 1));
    const percentiles p = percentiles_of(measured);
    figures().add_latency(key, p);
    state.counters["p50_ns"] = p.p50;
    state.counters["p99_ns"] = p.p99;
    state.counters["p99.9_ns"] = p.p999;
    state.counters["samples"] = static_cast<double>(p.samples);
}

// --- idle cost ---------------------------------------------------------------------------------

/// @brief Asks the worker for its thread's CPU time.
struct cpu_probe {};

/// @brief What the probe handler read on the worker.
struct probe_sink {
    std::uint64_t cpu_ns = 0;
    std::uint64_t wall_ns = 0;
    alignas(64) std::atomic<std::uint32_t> answers{0};
};

std::uint64_t thread_cpu_ns() noexcept {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000U +
           static_cast<std::uint64_t>(now.tv_nsec);
}

struct probe_reading {
    std::uint64_t cpu_ns;
    std::uint64_t wall_ns;
};

probe_reading read_worker(tidings::bus& bus, probe_sink& sink) {
    const std::uint32_t before = sink.answers.load(std::memory_order_acquire);
    bus.publish(cpu_probe{});
    for (;;) {
        // acquire: pairs with the release in the probe handler.
        const std::uint32_t seen = sink.answers.load(std::memory_order_acquire);
        if (seen != before) break;
        sink.answers.wait(seen, std::memory_order_acquire);
    }
    return {sink.cpu_ns, sink.wall_ns};
}

void bm_idle(benchmark::State& state, const std::string& key, tidings::wait_strategy wait) {
    (void)pin_this_thread(chosen_pinning().producer);
    tidings::executor_options options;
    options.wait = wait;
    throughput_sink sink;
    probe_sink probe;
    double percent = 0.0;
    {
        tidings::thread_executor worker{options};
        tidings::bus bus;
        const tidings::subscription events =
            bus.subscribe<tick>(throughput_handler{&sink}, tidings::deliver_on(worker));
        const tidings::subscription probes = bus.subscribe<cpu_probe>(
            [&probe](const cpu_probe&) {
                probe.cpu_ns = thread_cpu_ns();
                probe.wall_ns = now_ns();
                // release: the readings before the answer (pairs with read_worker's acquire).
                probe.answers.fetch_add(1, std::memory_order_release);
                probe.answers.notify_one();
            },
            tidings::deliver_on(worker));
        pin_worker(bus, worker, chosen_pinning().consumer);
        for (auto _ : state) {
            const std::uint32_t target = sink.rounds.load(std::memory_order_acquire) + 1;
            sink.remaining = idle_burst_events;
            for (std::uint64_t i = 0; i < idle_burst_events; ++i) bus.publish(tick{i, i});
            wait_round(sink, target);
            const probe_reading start = read_worker(bus, probe);
            std::this_thread::sleep_for(idle_window);
            const probe_reading end = read_worker(bus, probe);
            percent = 100.0 * static_cast<double>(end.cpu_ns - start.cpu_ns) /
                      static_cast<double>(end.wall_ns - start.wall_ns);
        }
    }
    figures().add_value(key, percent);
    state.counters["idle_cpu_%"] = percent;
}

// --- registration ------------------------------------------------------------------------------

/// @brief A contender as the summary names it.
struct contender_info {
    std::string_view key;
    std::string_view label;
    bool built;
};

constexpr std::string_view adaptive_key = "tidings_adaptive";
constexpr std::string_view spin_key = "tidings_spin";
constexpr std::string_view mutex_key = "mutex_bus";
constexpr std::string_view moodycamel_key = "moodycamel";
constexpr std::string_view sparse_key = "tidings_adaptive_sparse";

constexpr std::array contenders{
    contender_info{adaptive_key, "tidings `thread_executor`, default (adaptive)", true},
    contender_info{spin_key, "tidings `thread_executor`, `wait_strategy::spin`", true},
    contender_info{mutex_key, "mutex + `deque<function>` + condvar bus", true},
    contender_info{moodycamel_key, "moodycamel `ConcurrentQueue` (spinning consumer)",
                   have_moodycamel},
    contender_info{"moodycamel_blocking", "moodycamel `BlockingConcurrentQueue`", have_moodycamel},
    contender_info{"tbb_bounded", "TBB `concurrent_bounded_queue` (capacity 1024)", have_tbb},
};

template <template <class> class Contender>
void register_contender(std::string_view key) {
    const std::string name{key};
    benchmark::RegisterBenchmark(("throughput/" + name).c_str(),
                                 [name](benchmark::State& state) {
                                     bm_throughput<Contender<throughput_handler>>(
                                         state, "throughput/" + name);
                                 })
        ->ArgName("producers")
        ->Arg(1)
        ->Arg(2)
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("latency/" + name).c_str(),
                                 [name](benchmark::State& state) {
                                     bm_latency<Contender<latency_handler>>(
                                         state, "latency/" + name, latency_samples,
                                         std::chrono::microseconds{0});
                                 })
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
}

template <class Handler>
using tidings_adaptive = tidings_contender<Handler, tidings::wait_strategy::adaptive>;
template <class Handler>
using tidings_spin = tidings_contender<Handler, tidings::wait_strategy::spin>;

void register_benchmarks() {
    register_contender<tidings_adaptive>(adaptive_key);
    register_contender<tidings_spin>(spin_key);
    register_contender<mutex_bus_contender>(mutex_key);
#if defined(TIDINGS_BENCH_HAVE_MOODYCAMEL)
    register_contender<moodycamel_contender>(moodycamel_key);
    register_contender<moodycamel_blocking_contender>("moodycamel_blocking");
#endif
#if defined(TIDINGS_BENCH_HAVE_TBB)
    register_contender<tbb_contender>("tbb_bounded");
#endif
    benchmark::RegisterBenchmark(("latency/" + std::string{sparse_key}).c_str(),
                                 [](benchmark::State& state) {
                                     bm_latency<tidings_adaptive<latency_handler>>(
                                         state, "latency/" + std::string{sparse_key},
                                         sparse_samples, sparse_gap);
                                 })
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("idle/" + std::string{adaptive_key}).c_str(),
                                 [](benchmark::State& state) {
                                     bm_idle(state, "idle/" + std::string{adaptive_key},
                                             tidings::wait_strategy::adaptive);
                                 })
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("idle/" + std::string{spin_key}).c_str(),
                                 [](benchmark::State& state) {
                                     bm_idle(state, "idle/" + std::string{spin_key},
                                             tidings::wait_strategy::spin);
                                 })
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
}

// --- the targets -------------------------------------------------------------------------------

/// @brief throughput/<contender> with `producers` must reach `factor` × throughput/<baseline>.
struct throughput_target {
    std::string_view contender;
    int producers;
    std::string_view baseline;
    double factor;
};

constexpr std::array throughput_targets{
    throughput_target{adaptive_key, 1, mutex_key, 5.0},
    throughput_target{adaptive_key, 1, moodycamel_key, 2.0},
    throughput_target{adaptive_key, 2, moodycamel_key, 1.5},
    throughput_target{spin_key, 1, mutex_key, 5.0},
    throughput_target{spin_key, 1, moodycamel_key, 2.0},
    throughput_target{spin_key, 2, moodycamel_key, 1.5},
};

constexpr double spin_p50_target_ns = 1000.0;
constexpr double spin_p999_target_ns = 5000.0;
constexpr double adaptive_over_spin_target = 1.5;
constexpr double idle_target_percent = 1.0;

// --- the summary -------------------------------------------------------------------------------

std::string short_label(std::string_view key) {
    if (key == mutex_key) return "mutex bus";
    if (key == moodycamel_key) return "moodycamel";
    return std::string{key};
}

void print_throughput(std::ostream& out, const collecting_reporter& results, verdicts& score) {
    table t({"producers", "contender", "M events/s", "rounds", "× mutex bus", "× moodycamel",
             "target", "result"},
            "rlrrrrll");
    const auto rate = [&](std::string_view key, int producers) -> std::optional<double> {
        const result* r = results.find("throughput/" + std::string{key},
                                       "producers:" + std::to_string(producers));
        if (r == nullptr || r->items_per_second <= 0.0) return std::nullopt;
        return r->items_per_second;
    };
    const auto ratio = [](std::optional<double> a, std::optional<double> b) {
        return a && b ? fixed(*a / *b, 2) : std::string{};
    };
    for (const int producers : {1, 2}) {
        for (const contender_info& c : contenders) {
            const std::optional<double> r = rate(c.key, producers);
            if (!r) continue;
            std::string targets;
            std::string results_cell;
            for (const throughput_target& goal : throughput_targets) {
                if (goal.contender != c.key || goal.producers != producers) continue;
                const std::optional<double> base = rate(goal.baseline, producers);
                targets += (targets.empty() ? "" : ", ") + std::string{"≥ "} +
                           fixed(goal.factor, 1) + "× " + short_label(goal.baseline);
                results_cell += (results_cell.empty() ? "" : ", ") +
                                score.judge(base.has_value(), base && *r >= goal.factor * *base);
            }
            const std::optional<double> rounds =
                figures().value("throughput/" + std::string{c.key} +
                                "/producers:" + std::to_string(producers) + "/rounds");
            t.add({std::to_string(producers), std::string{c.label}, fixed(*r / 1e6, 2),
                   rounds ? fixed(*rounds, 0) : "",
                   c.key == mutex_key ? "" : ratio(r, rate(mutex_key, producers)),
                   c.key == moodycamel_key ? "" : ratio(r, rate(moodycamel_key, producers)),
                   targets, results_cell});
        }
    }
    if (t.empty()) return;
    out << "\n### Throughput: one consumer thread, 16-byte events, trivial handler (higher is "
           "better)\n\n";
    t.print(out);
    out << "\nEach figure: " << throughput_rounds << " rounds of " << round_events
        << " events (fewer when a " << throughput_budget.count()
        << " s budget ran out), timed from the producers' start to the consumer's last "
           "handler call.\n";
    if (std::thread::hardware_concurrency() < 3) {
        out << "Only " << std::thread::hardware_concurrency()
            << " CPUs: with 2 producers, 3 threads share them (oversubscribed), and a spinning "
               "consumer takes CPU time from the producers; the 2-producer rows measure time "
               "slicing as much as the queues.\n";
    }
}

void print_latency(std::ostream& out, verdicts& score) {
    table t({"contender", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "samples", "target", "result"},
            "lrrrrrll");
    const std::optional<percentiles> spin = figures().latency("latency/" + std::string{spin_key});
    const auto add = [&](std::string_view key, std::string_view label) {
        const std::optional<percentiles> p = figures().latency("latency/" + std::string{key});
        if (!p) return;
        std::string targets;
        std::string verdict;
        if (key == spin_key) {
            targets = "p50 ≤ " + fixed(spin_p50_target_ns, 0) + ", p99.9 ≤ " +
                      fixed(spin_p999_target_ns, 0);
            verdict = score.judge(true, p->p50 <= spin_p50_target_ns) + ", " +
                      score.judge(true, p->p999 <= spin_p999_target_ns);
        } else if (key == adaptive_key) {
            targets = "p50 ≤ " + fixed(adaptive_over_spin_target, 1) + "× spin p50";
            const bool measured = spin.has_value() && spin->p50 > 0.0;
            verdict =
                score.judge(measured, measured && p->p50 <= adaptive_over_spin_target * spin->p50);
            if (measured) targets += " (" + fixed(p->p50 / spin->p50, 2) + "×)";
        }
        t.add({std::string{label}, fixed(p->p50, 0), fixed(p->p99, 0), fixed(p->p999, 0),
               fixed(p->max, 0), std::to_string(p->samples), targets, verdict});
    };
    for (const contender_info& c : contenders) add(c.key, c.label);
    add(sparse_key, "tidings default (adaptive), 200 µs between events (consumer asleep)");
    if (t.empty()) return;
    out << "\n### Latency publish → handler, one event in flight (lower is better)\n\n";
    t.print(out);
    out << "\nsteady_clock read on both threads; one read costs about "
        << fixed(clock_overhead_ns(), 0)
        << " ns here, included in every figure. The mutex bus and the blocking queues put their "
           "consumer to sleep between events, so their figures include a futex wake-up.\n";
}

void print_idle(std::ostream& out, verdicts& score) {
    table t({"executor", "worker CPU in 1 s idle", "target", "result"}, "lrll");
    const auto add = [&](std::string_view key, std::string_view label, bool judged) {
        const std::optional<double> percent = figures().value("idle/" + std::string{key});
        if (!percent) return;
        t.add({std::string{label}, fixed(*percent, 3) + " %",
               judged ? "≤ " + fixed(idle_target_percent, 0) + " %" : "",
               judged ? score.judge(true, *percent <= idle_target_percent) : ""});
    };
    add(adaptive_key, "default options (adaptive)", true);
    add(spin_key, "`wait_strategy::spin` (for scale)", false);
    if (t.empty()) return;
    out << "\n### Idle cost: worker CPU time during 1 s of silence after a burst of "
        << idle_burst_events << " events (lower is better)\n\n";
    t.print(out);
    const std::optional<double> spin = figures().value("idle/" + std::string{spin_key});
    if (spin && *spin < 90.0) {
        out << "\nThe spinning worker, which never sleeps, got only " << fixed(*spin, 0)
            << " % of a core: other threads were running on this machine, and every figure "
               "above is affected.\n";
    }
}

void print_summary(std::ostream& out, const collecting_reporter& results,
                   std::optional<double> load_at_start) {
    out << "\n## tidings_bench_async summary\n\n"
        << "- compiler: " << compiler() << '\n'
        << "- CPUs: " << std::thread::hardware_concurrency();
    if (results.cpu_mhz() > 0.0) out << " @ " << fixed(results.cpu_mhz(), 0) << " MHz";
    out << "\n- pinning: " << describe(chosen_pinning()) << '\n';
    out << "- figures: ";
    if (const std::int64_t repetitions = results.median_repetitions(); repetitions > 0) {
        out << "median of " << repetitions << " repetitions";
    } else {
        out << "one run per benchmark (--benchmark_repetitions=N for the median of N)";
    }
    out << ", wall-clock time\n";
    if (const std::string load = describe_load(load_at_start); !load.empty()) {
        out << "- machine load: " << load << '\n';
    }
    for (const contender_info& c : contenders) {
        if (!c.built) out << "- " << c.label << ": not built (not found at configure time)\n";
    }
    verdicts score;
    print_throughput(out, results, score);
    print_latency(out, score);
    print_idle(out, score);
    out << '\n';
    score.print(out);
}

}  // namespace
}  // namespace tidings_bench

int main(int argc, char** argv) {
    using namespace tidings_bench;
    std::vector<char*> args(argv, argv + argc);
    if (!async_report::take_pin_argument(args)) return 1;
    return async_report::run_benchmarks("tidings_bench_async", std::move(args), register_benchmarks,
                                        print_summary);
}
