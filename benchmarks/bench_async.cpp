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
//   latency/tidings_adaptive_sparse        the same with 2 ms of silence before each event, so
//                                          that the adaptive consumer has gone to sleep (the
//                                          futex wake-up path). 1 000 samples, or 4 s.
//   idle/<strategy>                        CPU time of a thread_executor's worker during 1 s of
//                                          silence after a burst, as % of one core, read with
//                                          CLOCK_THREAD_CPUTIME_ID by handlers on the worker.
//   allocations/tidings_adaptive/bytes:<n> heap allocations by any thread (allocation_counter.cpp
//                                          replaces operator new) during 100 000 publishes of an
//                                          n-byte event to a default thread_executor.
// Beside throughput and latency figures: the process's involuntary context switches while they
// were taken (a preempted spinning thread stalls the other side for a time slice) and, for
// throughput, the allocations per event.
//
// Contenders (each carries the same 16-byte event to the same handler on one consumer thread)
//   raw_ring             the limit: a single-producer ring of 1024 events written here, the
//                        consumer calling the handler directly, 64 events per batch (1 producer)
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

#include "allocation_counter.hpp"
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

#include <sys/resource.h>

#include <algorithm>
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
// The idle wake-up: long enough that the default (adaptive) consumer has gone to sleep on its
// futex; 1 000 samples give a p99 from the 10 slowest, in about 2 s.
constexpr std::int64_t sparse_samples = 1'000;
constexpr auto sparse_gap = std::chrono::milliseconds{2};
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

/// @brief The raw limit: a single-producer single-consumer ring of ticks written here, its
/// consumer calling the handler directly (inlined). No type erasure, no subscriber lookup, no
/// allocation: what carrying a 16-byte event from one core to another costs at least.
/// One producer at a time (it is SPSC): registered for 1 producer only.
template <class Handler>
class raw_ring_contender {
public:
    raw_ring_contender(Handler handler, std::optional<int> consumer_cpu)
        : handler_(handler), consumer_([this, consumer_cpu] {
              (void)pin_this_thread(consumer_cpu);
              run();
          }) {}

    raw_ring_contender(const raw_ring_contender&) = delete;
    raw_ring_contender& operator=(const raw_ring_contender&) = delete;

    ~raw_ring_contender() {
        stopping_.store(true, std::memory_order_release);  // pairs with the acquire in run()
        consumer_.join();
    }

    struct producer {
        raw_ring_contender* ring;
        void publish(const tick& e) const { ring->push(e); }
    };

    producer make_producer() { return producer{this}; }

private:
    // 1024 events, 16 KiB: the ring stays well inside L1 on both cores.
    static constexpr std::uint64_t capacity = 1024;
    static constexpr std::uint64_t mask = capacity - 1;
    // The consumer publishes its position once per batch, not once per event: the producer
    // then reads that line once per batch too.
    static constexpr std::uint64_t batch = 64;

    void push(const tick& e) {
        const std::uint64_t tail = tail_.load(std::memory_order_relaxed);  // only we write it
        // The consumer's position is read only when the ring looks full from the last reading.
        while (tail - head_seen_ == capacity) {
            // acquire: the consumer has finished with the slot before we overwrite it.
            head_seen_ = head_.load(std::memory_order_acquire);
            if (tail - head_seen_ == capacity) cpu_relax();
        }
        slots_[tail & mask] = e;
        // release: the event is written before the consumer sees the new tail.
        tail_.store(tail + 1, std::memory_order_release);
    }

    void run() {
        std::uint64_t head = 0;
        std::uint64_t tail_seen = 0;
        for (;;) {
            if (head == tail_seen) {
                // acquire: pairs with the release in push(); the events up to it are written.
                tail_seen = tail_.load(std::memory_order_acquire);
                if (head == tail_seen) {
                    // stopping_ is set after the last push (same thread, or joined): one more
                    // look at the tail after seeing it finds every event.
                    if (stopping_.load(std::memory_order_acquire) &&
                        head == tail_.load(std::memory_order_acquire)) {
                        return;
                    }
                    cpu_relax();
                    continue;
                }
            }
            const std::uint64_t end = std::min(tail_seen, head + batch);
            for (; head != end; ++head) handler_(slots_[head & mask]);
            // release: the slots are read before the producer may reuse them.
            head_.store(head, std::memory_order_release);
        }
    }

    Handler handler_;
    // The producer's line: its position, and its last view of the consumer's.
    alignas(64) std::atomic<std::uint64_t> tail_{0};
    std::uint64_t head_seen_ = 0;
    // The consumer's line: its position (the consumer's view of tail_ is a local in run()).
    alignas(64) std::atomic<std::uint64_t> head_{0};
    std::atomic<bool> stopping_{false};
    alignas(64) std::array<tick, capacity> slots_{};
    std::thread consumer_;  // last: starts after the rest is built
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
    alignas(64) moodycamel::ConcurrentQueue<tick> queue_{4096};
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

/// @brief A contender on cache lines of its own. It lives in the benchmark thread's frame,
/// which is also the first producer's: without the alignment, a line could hold both the
/// producer's locals and a field the consumer writes, and every contender would pay for the
/// false sharing differently, depending on its layout.
template <class Contender>
struct alignas(64) isolated {
    template <class Handler>
    isolated(Handler handler, std::optional<int> consumer_cpu) : value(handler, consumer_cpu) {}

    Contender value;
};

/// @brief Involuntary context switches of this process so far (every thread, live or joined):
/// each is a thread taken off its CPU for another one. A spinning consumer or producer that is
/// preempted stalls the other side for a whole time slice (milliseconds), so a figure taken with
/// many of them measures the scheduler more than the queue; the summary shows the count.
std::int64_t preemptions_so_far() noexcept {
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    return static_cast<std::int64_t>(usage.ru_nivcsw);
}

// --- throughput --------------------------------------------------------------------------------

template <class Producer>
void produce(Producer& producer, std::uint64_t first, std::uint64_t count) {
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

/// @brief The second producer of the 2-producer rounds: one thread for the whole benchmark,
/// with one producer (its token, its lane) made once, like the benchmark thread's own. A
/// round then pays for neither a thread start nor a token's or lane's set-up, and the
/// allocations counted are the publishes' own.
template <class Contender>
class producer_thread {
public:
    explicit producer_thread(Contender& contender)
        : thread_([this, &contender] { run(contender); }) {}

    producer_thread(const producer_thread&) = delete;
    producer_thread& operator=(const producer_thread&) = delete;

    ~producer_thread() {
        stopping_.store(true, std::memory_order_relaxed);  // published by the release below
        commands_.fetch_add(1, std::memory_order_release);
        commands_.notify_one();
    }  // thread_ joins

    /// @brief Publishes `count` events numbered from `first` on this thread; returns at once.
    /// The caller learns that they are done from the consumer (wait_round).
    void start(std::uint64_t first, std::uint64_t count) {
        first_ = first;
        count_ = count;
        // release: first_ and count_ are written before the thread reads them.
        commands_.fetch_add(1, std::memory_order_release);
        commands_.notify_one();
    }

private:
    void run(Contender& contender) {
        (void)pin_this_thread(chosen_pinning().second_producer);
        auto producer = contender.make_producer();
        std::uint32_t handled = 0;
        for (;;) {
            // acquire: pairs with the release in start() and in the destructor.
            const std::uint32_t seen = commands_.load(std::memory_order_acquire);
            if (seen == handled) {
                commands_.wait(seen, std::memory_order_acquire);
                continue;
            }
            if (stopping_.load(std::memory_order_relaxed)) return;
            handled = seen;
            produce(producer, first_, count_);
        }
    }

    std::uint64_t first_ = 0;  // written by start() before the release, read after the acquire
    std::uint64_t count_ = 0;
    std::atomic<bool> stopping_{false};
    alignas(64) std::atomic<std::uint32_t> commands_{0};
    std::jthread thread_;  // last: starts after the rest is built
};

/// @brief `events` events from this thread (`first`) and, when there is one, `second`, until
/// the consumer has handled the last one.
template <class Contender, class Producer>
void run_round(Producer& first, producer_thread<Contender>* second, throughput_sink& sink,
               std::uint64_t events) {
    const std::uint32_t target = sink.rounds.load(std::memory_order_acquire) + 1;
    sink.remaining = events;  // the consumer is idle: it signalled the previous round
    if (second == nullptr) {
        produce(first, 0, events);
    } else {
        const std::uint64_t half = events / 2;
        second->start(half, events - half);
        produce(first, 0, half);
    }
    wait_round(sink, target);
}

/// @brief One iteration: up to throughput_rounds rounds (fewer if over budget), timed together.
/// The contender, its consumer and its producers are built once, before an untimed warm-up
/// round; the timed rounds measure the hand-off alone.
template <class Contender>
void bm_throughput(benchmark::State& state, const std::string& key) {
    const int producers = static_cast<int>(state.range(0));
    (void)pin_this_thread(chosen_pinning().producer);
    throughput_sink sink;
    std::int64_t rounds = 0;
    std::uint64_t allocations = 0;
    std::int64_t preemptions = 0;
    {
        isolated<Contender> box{throughput_handler{&sink}, chosen_pinning().consumer};
        Contender& contender = box.value;
        auto producer = contender.make_producer();
        std::optional<producer_thread<Contender>> second;
        if (producers == 2) second.emplace(contender);
        producer_thread<Contender>* const second_ptr = second ? &*second : nullptr;
        run_round(producer, second_ptr, sink, warmup_events);
        for (auto _ : state) {
            const std::uint64_t allocations_before = allocations_so_far();
            const std::int64_t preemptions_before = preemptions_so_far();
            const auto start = std::chrono::steady_clock::now();
            do {
                run_round(producer, second_ptr, sink, round_events);
                ++rounds;
            } while (rounds < throughput_rounds &&
                     std::chrono::steady_clock::now() - start < throughput_budget);
            allocations = allocations_so_far() - allocations_before;
            preemptions = preemptions_so_far() - preemptions_before;
        }
    }
    benchmark::DoNotOptimize(sink.sum);
    const auto events = rounds * static_cast<std::int64_t>(round_events);
    const double allocations_per_event =
        static_cast<double>(allocations) / static_cast<double>(std::max<std::int64_t>(events, 1));
    state.SetItemsProcessed(events);
    state.counters["rounds"] = static_cast<double>(rounds);
    state.counters["allocs/event"] = allocations_per_event;
    const std::string figure = key + "/producers:" + std::to_string(producers);
    figures().add_value(figure + "/rounds", static_cast<double>(rounds));
    figures().add_value(figure + "/allocs", allocations_per_event);
    figures().add_value(figure + "/preemptions", static_cast<double>(preemptions));
    state.counters["preemptions"] = static_cast<double>(preemptions);
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
    std::int64_t preemptions = 0;
    {
        isolated<Contender> box{latency_handler{&sink}, chosen_pinning().consumer};
        Contender& contender = box.value;
        auto producer = contender.make_producer();
        for (std::int64_t i = 0; i < latency_warmup; ++i) ping(producer, sink, ++id);
        for (auto _ : state) {
            const std::int64_t preemptions_before = preemptions_so_far();
            const auto start = std::chrono::steady_clock::now();
            for (std::int64_t taken = 0; taken < samples; ++taken) {
                if (taken % 256 == 0 && std::chrono::steady_clock::now() - start > latency_budget) {
                    break;
                }
                if (gap.count() != 0) std::this_thread::sleep_for(gap);
                ping(producer, sink, ++id);
            }
            preemptions = preemptions_so_far() - preemptions_before;
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
    state.counters["preemptions"] = static_cast<double>(preemptions);
    figures().add_value(key + "/preemptions", static_cast<double>(preemptions));
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

// --- allocations per publish -------------------------------------------------------------------

/// @brief An event of `Size` bytes, for the allocation count (tidings stores small events in
/// the queue and larger ones elsewhere: the target covers events up to 256 bytes).
template <std::size_t Size>
struct blob {
    std::array<std::uint8_t, Size> bytes;
};

/// @brief throughput_handler for a blob: sums its first byte, signals the end of a round.
template <std::size_t Size>
struct blob_handler {
    throughput_sink* sink;

    void operator()(const blob<Size>& e) const {
        sink->sum += e.bytes[0];
        if (--sink->remaining == 0) {
            // release: pairs with the acquire in wait_round.
            sink->rounds.fetch_add(1, std::memory_order_release);
            sink->rounds.notify_one();
        }
    }
};

/// Event sizes whose publishes are counted (registered in register_benchmarks()).
constexpr std::array<std::size_t, 4> allocation_sizes{16, 64, 256, 512};
constexpr std::uint64_t allocation_events = 100'000;  ///< publishes counted per event size
constexpr std::uint64_t allocation_warmup = 10'000;   ///< first, uncounted: the lane's set-up

/// @brief Heap allocations, by any thread, while this thread publishes allocation_events
/// events of `Size` bytes to a default thread_executor and its worker handles them.
template <std::size_t Size>
void bm_allocations(benchmark::State& state, const std::string& key) {
    (void)pin_this_thread(chosen_pinning().producer);
    throughput_sink sink;
    std::uint64_t allocations = 0;
    {
        tidings::thread_executor worker;
        tidings::bus bus;
        const tidings::subscription events =
            bus.subscribe<blob<Size>>(blob_handler<Size>{&sink}, tidings::deliver_on(worker));
        pin_worker(bus, worker, chosen_pinning().consumer);
        const auto round = [&](std::uint64_t count) {
            const std::uint32_t target = sink.rounds.load(std::memory_order_acquire) + 1;
            sink.remaining = count;
            blob<Size> e{};
            for (std::uint64_t i = 0; i < count; ++i) {
                e.bytes[0] = static_cast<std::uint8_t>(i);
                bus.publish(e);
            }
            wait_round(sink, target);
        };
        round(allocation_warmup);
        for (auto _ : state) {
            const std::uint64_t before = allocations_so_far();
            round(allocation_events);
            allocations = allocations_so_far() - before;
        }
    }
    benchmark::DoNotOptimize(sink.sum);
    state.SetItemsProcessed(static_cast<std::int64_t>(allocation_events));
    state.counters["allocs"] = static_cast<double>(allocations);
    figures().add_value(key, static_cast<double>(allocations));
}

// --- registration ------------------------------------------------------------------------------

/// @brief A contender as the summary names it.
struct contender_info {
    std::string_view key;
    std::string_view label;
    bool built;
};

constexpr std::string_view raw_key = "raw_ring";
constexpr std::string_view adaptive_key = "tidings_adaptive";
constexpr std::string_view spin_key = "tidings_spin";
constexpr std::string_view mutex_key = "mutex_bus";
constexpr std::string_view moodycamel_key = "moodycamel";
constexpr std::string_view sparse_key = "tidings_adaptive_sparse";

constexpr std::array contenders{
    contender_info{raw_key, "raw SPSC ring + direct call (the limit)", true},
    contender_info{adaptive_key, "tidings `thread_executor`, default (adaptive)", true},
    contender_info{spin_key, "tidings `thread_executor`, `wait_strategy::spin`", true},
    contender_info{mutex_key, "mutex + `deque<function>` + condvar bus", true},
    contender_info{moodycamel_key, "moodycamel `ConcurrentQueue` (spinning consumer)",
                   have_moodycamel},
    contender_info{"moodycamel_blocking", "moodycamel `BlockingConcurrentQueue`", have_moodycamel},
    contender_info{"tbb_bounded", "TBB `concurrent_bounded_queue` (capacity 1024)", have_tbb},
};

/// @param max_producers 1 for a single-producer queue, else 2.
template <template <class> class Contender>
void register_contender(std::string_view key, int max_producers = 2) {
    const std::string name{key};
    benchmark::internal::Benchmark* throughput = benchmark::RegisterBenchmark(
        ("throughput/" + name).c_str(), [name](benchmark::State& state) {
            bm_throughput<Contender<throughput_handler>>(state, "throughput/" + name);
        });
    throughput->ArgName("producers");
    for (int producers = 1; producers <= max_producers; ++producers) throughput->Arg(producers);
    throughput->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
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

template <std::size_t Size>
void register_allocations() {
    const std::string name = "allocations/tidings_adaptive/bytes:" + std::to_string(Size);
    benchmark::RegisterBenchmark(
        name.c_str(), [name](benchmark::State& state) { bm_allocations<Size>(state, name); })
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
}

template <class Handler>
using tidings_adaptive = tidings_contender<Handler, tidings::wait_strategy::adaptive>;
template <class Handler>
using tidings_spin = tidings_contender<Handler, tidings::wait_strategy::spin>;

void register_benchmarks() {
    register_contender<raw_ring_contender>(raw_key, 1);
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
    register_allocations<16>();
    register_allocations<64>();
    register_allocations<256>();
    register_allocations<512>();
}

// --- the targets -------------------------------------------------------------------------------

/// @brief throughput/<contender> with `producers` must reach `factor` × throughput/<baseline>.
struct throughput_target {
    std::string_view contender;
    int producers;
    std::string_view baseline;
    double factor;
};

// From issue #4 (the mutex bus) and issue #10 (moodycamel at its best, the raw ring).
constexpr std::array throughput_targets{
    throughput_target{adaptive_key, 1, mutex_key, 5.0},
    throughput_target{adaptive_key, 1, moodycamel_key, 1.0},
    throughput_target{adaptive_key, 1, raw_key, 0.8},
    throughput_target{adaptive_key, 2, moodycamel_key, 0.8},
    throughput_target{spin_key, 1, mutex_key, 5.0},
    throughput_target{spin_key, 1, moodycamel_key, 1.0},
    throughput_target{spin_key, 1, raw_key, 0.8},
    throughput_target{spin_key, 2, moodycamel_key, 0.8},
};

constexpr double spin_p50_target_ns = 1000.0;
constexpr double spin_p999_target_ns = 5000.0;
constexpr double spin_p50_over_raw_target = 1.5;
constexpr double spin_p999_over_raw_target = 3.0;
constexpr double adaptive_over_spin_target = 1.5;
constexpr double wake_p99_target_ns = 200'000.0;
constexpr double idle_target_percent = 1.0;
/// Events up to this size must travel with no allocation.
constexpr std::size_t inline_event_target_bytes = 256;

// --- the summary -------------------------------------------------------------------------------

std::string short_label(std::string_view key) {
    if (key == raw_key) return "raw ring";
    if (key == mutex_key) return "mutex bus";
    if (key == moodycamel_key) return "moodycamel";
    return std::string{key};
}

void print_throughput(std::ostream& out, const collecting_reporter& results, verdicts& score) {
    table t({"producers", "contender", "M events/s", "rounds", "preempted", "allocs/event",
             "× raw ring", "× moodycamel", "× mutex bus", "target", "result"},
            "rlrrrrrrrll");
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
            const std::string figure =
                "throughput/" + std::string{c.key} + "/producers:" + std::to_string(producers);
            const std::optional<double> rounds = figures().value(figure + "/rounds");
            const std::optional<double> allocations = figures().value(figure + "/allocs");
            const std::optional<double> preempted = figures().value(figure + "/preemptions");
            t.add({std::to_string(producers), std::string{c.label}, fixed(*r / 1e6, 2),
                   rounds ? fixed(*rounds, 0) : "", preempted ? fixed(*preempted, 0) : "",
                   allocations ? fixed(*allocations, 3) : "",
                   c.key == raw_key ? "" : ratio(r, rate(raw_key, producers)),
                   c.key == moodycamel_key ? "" : ratio(r, rate(moodycamel_key, producers)),
                   c.key == mutex_key ? "" : ratio(r, rate(mutex_key, producers)), targets,
                   results_cell});
        }
    }
    if (t.empty()) return;
    out << "\n### Throughput: one consumer thread, 16-byte events, trivial handler (higher is "
           "better)\n\n";
    t.print(out);
    out << "\nEach figure: " << throughput_rounds << " rounds of " << round_events
        << " events (fewer when a " << throughput_budget.count()
        << " s budget ran out), timed from the producers' start to the consumer's last "
           "handler call; preempted: involuntary context switches of the process during them (a "
           "spinning thread taken off its CPU stalls the other side for a time slice: rows with "
           "more than a few measure the scheduler); allocs/event: heap allocations by any "
           "thread during them, per event. "
           "The raw ring is single-producer: it has no 2-producer row.\n";
    if (std::thread::hardware_concurrency() < 3) {
        out << "Only " << std::thread::hardware_concurrency()
            << " CPUs: with 2 producers, 3 threads share them (oversubscribed), and a spinning "
               "consumer takes CPU time from the producers; the 2-producer rows measure time "
               "slicing as much as the queues.\n";
    }
}

void print_latency(std::ostream& out, verdicts& score) {
    table t({"contender", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "samples", "preempted",
             "target", "result"},
            "lrrrrrrll");
    const std::optional<percentiles> spin = figures().latency("latency/" + std::string{spin_key});
    const std::optional<percentiles> raw = figures().latency("latency/" + std::string{raw_key});
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
            const bool measured = raw.has_value() && raw->p50 > 0.0 && raw->p999 > 0.0;
            targets += ", p50 ≤ " + fixed(spin_p50_over_raw_target, 1) + "× raw ring";
            if (measured) targets += " (" + fixed(p->p50 / raw->p50, 2) + "×)";
            targets += ", p99.9 ≤ " + fixed(spin_p999_over_raw_target, 1) + "× raw ring";
            if (measured) targets += " (" + fixed(p->p999 / raw->p999, 2) + "×)";
            verdict +=
                ", " +
                score.judge(measured, measured && p->p50 <= spin_p50_over_raw_target * raw->p50) +
                ", " +
                score.judge(measured, measured && p->p999 <= spin_p999_over_raw_target * raw->p999);
        } else if (key == sparse_key) {
            targets = "p99 ≤ " + fixed(wake_p99_target_ns, 0);
            verdict = score.judge(true, p->p99 <= wake_p99_target_ns);
        } else if (key == adaptive_key) {
            targets = "p50 ≤ " + fixed(adaptive_over_spin_target, 1) + "× spin p50";
            const bool measured = spin.has_value() && spin->p50 > 0.0;
            verdict =
                score.judge(measured, measured && p->p50 <= adaptive_over_spin_target * spin->p50);
            if (measured) targets += " (" + fixed(p->p50 / spin->p50, 2) + "×)";
        }
        const std::optional<double> preempted =
            figures().value("latency/" + std::string{key} + "/preemptions");
        t.add({std::string{label}, fixed(p->p50, 0), fixed(p->p99, 0), fixed(p->p999, 0),
               fixed(p->max, 0), std::to_string(p->samples), preempted ? fixed(*preempted, 0) : "",
               targets, verdict});
    };
    for (const contender_info& c : contenders) add(c.key, c.label);
    add(sparse_key, "tidings default (adaptive), " +
                        std::to_string(std::chrono::milliseconds{sparse_gap}.count()) +
                        " ms of silence before each event (consumer asleep)");
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

void print_allocations(std::ostream& out, verdicts& score) {
    table t({"event size", "allocations in " + std::to_string(allocation_events) + " publishes",
             "per publish", "target", "result"},
            "rrrll");
    for (const std::size_t size : allocation_sizes) {
        const std::optional<double> count =
            figures().value("allocations/tidings_adaptive/bytes:" + std::to_string(size));
        if (!count) continue;
        const bool judged = size <= inline_event_target_bytes;
        t.add({std::to_string(size) + " B", fixed(*count, 0),
               fixed(*count / static_cast<double>(allocation_events), 4), judged ? "0" : "",
               judged ? score.judge(true, *count == 0.0) : ""});
    }
    if (t.empty()) return;
    out << "\n### Heap allocations per publish: default `thread_executor`, one producer (lower "
           "is better)\n\n";
    t.print(out);
    out << "\nCounted by this executable's operator new, on every thread, after "
        << allocation_warmup << " uncounted publishes; sizes above " << inline_event_target_bytes
        << " bytes are shown for scale.\n";
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
    print_allocations(out, score);
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
