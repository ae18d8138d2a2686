// frame_and_worker: one stream of events, consumed in two places. Two producer threads publish
// price ticks; a tidings::thread_executor (a worker thread) keeps statistics, and a
// tidings::manual_executor is drained by the main thread once per "frame", as a game or GUI
// loop would. Both see each producer's events in the order it published them, across event
// types, and every event arrives: the frame's small queue makes the producers wait
// (overflow::block) instead of losing ticks. At the end the worker is stopped (drained), and the
// executors' counters are printed and checked.
// Exits with 0 only if every count and every order check came out as expected.

#include <tidings/tidings.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

constexpr int producer_count = 2;
constexpr int ticks_per_producer = 20000;

/// A price from one producer; 16 bytes, so it travels inline in a lane record.
struct tick {
    int producer;
    int seq;  ///< 0, 1, 2... per producer
    double price;
};

/// The last event of a producer's feed, with its price history. At over 512 bytes it is too
/// large to travel inline in a lane record: each queued copy goes to the heap
/// (executor_stats::heap_events).
struct feed_summary {
    int producer;
    int ticks;
    double first;
    double low;
    double high;
    double last;
    std::array<double, 64> recent{};  ///< the last 64 prices, oldest first (unused here)
};

/// Producers are numbered from 0; this is a producer's index into the per-producer arrays.
std::size_t slot_of(int producer) { return static_cast<std::size_t>(producer); }

double price_of(int producer, int seq) { return 100.0 + ((seq * 37 + producer * 11) % 200) * 0.05; }

/// What one consumer learned about one producer's feed.
struct feed_view {
    int received = 0;
    int out_of_order = 0;
    double sum = 0.0;
    double first = 0.0;
    double low = 1e9;
    double high = 0.0;
    double last = 0.0;
    bool summary_matches = false;

    void on_tick(const tick& t) {
        if (t.seq != received) ++out_of_order;
        if (received == 0) first = t.price;
        ++received;
        sum += t.price;
        low = std::min(low, t.price);
        high = std::max(high, t.price);
        last = t.price;
    }
    void on_summary(const feed_summary& s) {
        // Per-producer FIFO across types: the summary comes after every tick of its producer.
        summary_matches = s.ticks == received && s.first == first && s.low == low &&
                          s.high == high && s.last == last;
    }
    [[nodiscard]] bool complete() const {
        return received == ticks_per_producer && out_of_order == 0 && summary_matches;
    }
};

void print_stats(const char* name, const tidings::executor_stats& s) {
    std::printf(
        "%s stats: queued %llu, executed %llu, discarded %llu, dropped %llu, rejected %llu, "
        "cancelled %llu, heap_events %llu, pending %zu\n",
        name, static_cast<unsigned long long>(s.queued),
        static_cast<unsigned long long>(s.executed), static_cast<unsigned long long>(s.discarded),
        static_cast<unsigned long long>(s.dropped), static_cast<unsigned long long>(s.rejected),
        static_cast<unsigned long long>(s.cancelled),
        static_cast<unsigned long long>(s.heap_events), s.pending);
}

}  // namespace

int main() {
    bool ok = true;
    auto check = [&ok](bool condition, const char* what) {
        if (!condition) {
            std::printf("UNEXPECTED: %s\n", what);
            ok = false;
        }
    };

    // [executors-begin]
    tidings::bus bus;
    // A worker thread; the default options: a 16 KiB lane per producer thread, overflow::block,
    // wait_strategy::adaptive.
    tidings::thread_executor worker;
    // The frame loop's queue: at most 256 tasks per producer lane. When a lane is full its
    // producer waits (overflow::block) until the next frame makes room: nothing is lost.
    tidings::manual_executor frame{tidings::executor_options{
        .capacity = 256,
        .on_full = tidings::overflow::block,
        .wait = tidings::wait_strategy::adaptive,
    }};
    // [executors-end]

    // Worker side: touched only on the worker thread until worker.stop() has joined it.
    std::array<feed_view, producer_count> statistics{};
    std::array<int, producer_count> order_checked{};
    // Frame side: touched only by the main thread, which runs the frame.
    std::array<feed_view, producer_count> chart{};
    int closed_feeds = 0;

    // [subscribe-begin]
    // Two subscribers of tick on the worker: each publish queues ONE task to the worker, which
    // calls both, in subscription order.
    auto stats_sub =
        bus.subscribe([&](const tick& t) { statistics[slot_of(t.producer)].on_tick(t); },
                      tidings::deliver_on(worker));
    auto order_sub = bus.subscribe([&](const tick& t) { ++order_checked[slot_of(t.producer)]; },
                                   tidings::deliver_on(worker));
    auto summary_sub =
        bus.subscribe([&](const feed_summary& s) { statistics[slot_of(s.producer)].on_summary(s); },
                      tidings::deliver_on(worker));
    // The frame's subscribers run inside frame.run_pending(), in the main thread.
    auto chart_sub = bus.subscribe([&](const tick& t) { chart[slot_of(t.producer)].on_tick(t); },
                                   tidings::deliver_on(frame));
    auto closed_sub = bus.subscribe(
        [&](const feed_summary& s) {
            chart[slot_of(s.producer)].on_summary(s);
            ++closed_feeds;
        },
        tidings::deliver_on(frame));
    // [subscribe-end]

    std::printf("%d producers publish %d ticks each, then a feed_summary (%zu bytes)\n",
                producer_count, ticks_per_producer, sizeof(feed_summary));

    // [producers-begin]
    std::atomic<int> not_queued_twice{0};  // publishes that did not reach both executors
    std::vector<std::jthread> producers;
    for (int p = 0; p < producer_count; ++p) {
        producers.emplace_back([&bus, &not_queued_twice, p] {
            feed_summary summary{p, 0, price_of(p, 0), 1e9, 0.0, 0.0};
            for (int seq = 0; seq < ticks_per_producer; ++seq) {
                const tick t{p, seq, price_of(p, seq)};
                // Returns once both executors hold the event; it may wait for frame space.
                const tidings::publish_result r = bus.publish(t);
                if (r.queued != 2 || !r.accepted()) {
                    not_queued_twice.fetch_add(1, std::memory_order_relaxed);
                }
                ++summary.ticks;
                summary.low = std::min(summary.low, t.price);
                summary.high = std::max(summary.high, t.price);
                summary.last = t.price;
            }
            bus.publish(summary);
        });
    }
    // [producers-end]

    // [frame-loop-begin]
    int frames = 0;
    while (closed_feeds < producer_count) {
        frame.run_pending();  // what was queued before this call; returns how many ran
        ++frames;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the rest of the frame
    }
    // [frame-loop-end]
    for (std::jthread& producer : producers) producer.join();
    check(not_queued_twice.load() == 0, "a publish did not reach both executors");
    std::fprintf(stderr, "(the frame loop took %d frames: timing-dependent, so not on stdout)\n",
                 frames);

    for (int p = 0; p < producer_count; ++p) {
        const feed_view& v = chart[slot_of(p)];
        std::printf("frame loop: producer %d: %d ticks, %s, last %.2f, summary %s\n", p, v.received,
                    v.out_of_order == 0 ? "in order" : "OUT OF ORDER", v.last,
                    v.summary_matches ? "matches" : "DOES NOT MATCH");
        check(v.complete(), "the frame loop missed ticks or saw them out of order");
    }

    // [stop-begin]
    const std::size_t discarded = worker.stop();  // stop_mode::drain: runs what was accepted
    // [stop-end]
    check(discarded == 0, "a draining stop discarded tasks");
    for (int p = 0; p < producer_count; ++p) {
        const feed_view& v = statistics[slot_of(p)];
        std::printf(
            "worker: producer %d: %d ticks, %s, mean %.3f, low %.2f, high %.2f, summary %s\n", p,
            v.received, v.out_of_order == 0 ? "in order" : "OUT OF ORDER", v.sum / v.received,
            v.low, v.high, v.summary_matches ? "matches" : "DOES NOT MATCH");
        check(v.complete(), "the worker missed ticks or saw them out of order");
        check(order_checked[slot_of(p)] == ticks_per_producer,
              "the second worker subscriber missed ticks");
    }

    // [stats-begin]
    const tidings::executor_stats w = worker.stats();
    const tidings::executor_stats f = frame.stats();
    // Every accepted task ran, was discarded, or is still queued.
    check(w.queued == w.executed + w.discarded + w.pending, "worker: the accounting is off");
    check(f.queued == f.executed + f.discarded + f.pending, "frame: the accounting is off");
    // [stats-end]
    constexpr std::uint64_t publishes = producer_count * (ticks_per_producer + 1);
    print_stats("worker", w);
    print_stats("frame", f);
    check(w.queued == publishes && w.executed == publishes, "worker: one task per publish");
    check(f.queued == publishes && f.executed == publishes, "frame: one task per publish");
    check(w.heap_events == producer_count && f.heap_events == producer_count,
          "each summary should have gone to the heap once per executor");
    check(w.dropped + w.rejected + w.cancelled + f.dropped + f.rejected + f.cancelled == 0,
          "nothing should have been dropped, rejected or cancelled");

    // [stopped-begin]
    // The worker has stopped but its subscriptions are still connected: a publish of tick
    // still reaches the frame, then throws executor_stopped for the worker.
    bool threw = false;
    try {
        bus.publish(tick{0, ticks_per_producer, 1.0});
    } catch (const tidings::executor_stopped&) {
        threw = true;
    }
    std::printf("after stop: publishing a tick %s; the frame has %zu task(s) pending\n",
                threw ? "throws executor_stopped" : "DOES NOT THROW", frame.pending());
    // [stopped-end]
    check(threw && frame.pending() == 1, "publish into a stopped executor");

    // [cancel-begin]
    // Unsubscribe means stop, for queued subscribers too: the queued tick still runs as a
    // task, but finds its only recipient gone, and counts as cancelled.
    chart_sub.unsubscribe();
    frame.run_pending();
    std::printf("after unsubscribing the chart: cancelled %llu, chart still at %d ticks\n",
                static_cast<unsigned long long>(frame.stats().cancelled), chart[0].received);
    // [cancel-end]
    check(frame.stats().cancelled == 1 && chart[0].received == ticks_per_producer,
          "a queued delivery to an unsubscribed handler was not cancelled");

    std::printf("%s\n", ok ? "all as expected" : "UNEXPECTED RESULTS");
    return ok ? 0 : 1;
}
