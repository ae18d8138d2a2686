// late_join_replay: a live-score stream that late followers can catch up on. The channel of
// `goal` retains its newest 5 events (bus.retain<goal>(5)); a follower that subscribes with
// tidings::replay first receives those, oldest first, then the live goals, with no gap and no
// duplicate. Part 1 tells it in one thread; part 2 has a ticker thread publish 20000 goals
// while a follower joins on a worker thread, and checks the sequence numbers it received.
// Exits with 0 only if every follower heard exactly what it should have.

#include <tidings/tidings.hpp>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

// [goal-begin]
struct goal {
    int seq;  ///< numbered by the score service: 1, 2, 3...
    int minute;
    std::string scorer;
    std::string team;
};
// [goal-end]

/// A follower of the match: prints and remembers every goal it hears.
struct follower {
    std::string name;
    std::vector<int> heard;

    void on_goal(const goal& g) {
        heard.push_back(g.seq);
        std::printf("  %s hears goal %d: %d' %s (%s)\n", name.c_str(), g.seq, g.minute,
                    g.scorer.c_str(), g.team.c_str());
    }
};

std::vector<int> range(int first, int last) {
    std::vector<int> result;
    for (int i = first; i <= last; ++i) result.push_back(i);
    return result;
}

bool one_match() {
    const std::vector<goal> match{
        {1, 12, "Smith", "Rovers"}, {2, 20, "Jones", "United"}, {3, 34, "Smith", "Rovers"},
        {4, 41, "Ali", "United"},   {5, 58, "Costa", "Rovers"}, {6, 67, "Smith", "Rovers"},
        {7, 80, "Jones", "United"}, {8, 85, "Costa", "Rovers"}, {9, 90, "Ali", "United"},
    };

    // [retain-begin]
    tidings::bus bus;
    bus.retain<goal>(5);  // keep the newest 5 goals for late followers
    // [retain-end]

    follower ana{"ana", {}};
    auto ana_sub = bus.subscribe(&follower::on_goal, ana);  // live from the kick-off
    std::printf("ana follows from the kick-off\n");
    for (std::size_t i = 0; i < 7; ++i) bus.publish(match[i]);

    // [late-join-begin]
    follower bo{"bo", {}};
    std::printf("bo joins after goal 7, with tidings::replay\n");
    // An inline subscriber replays inside subscribe(), in this thread, before it returns.
    auto bo_sub = bus.subscribe(&follower::on_goal, bo, tidings::replay);
    std::printf("bo is now live\n");
    // [late-join-end]
    for (std::size_t i = 7; i < 9; ++i) bus.publish(match[i]);

    // [replay-count-begin]
    follower cy{"cy", {}};
    std::printf("cy joins after the final whistle, with tidings::replay(2)\n");
    auto cy_sub = bus.subscribe(&follower::on_goal, cy, tidings::replay(2));  // the newest 2
    // [replay-count-end]

    // [retain-zero-begin]
    bus.retain<goal>(0);  // stop retaining; the kept goals are freed
    follower dee{"dee", {}};
    auto dee_sub = bus.subscribe(&follower::on_goal, dee, tidings::replay);
    std::printf("dee joins after retain<goal>(0), with tidings::replay: hears %zu goals\n",
                dee.heard.size());
    // [retain-zero-end]

    return ana.heard == range(1, 9) && bo.heard == range(3, 9) && cy.heard == range(8, 9) &&
           dee.heard.empty();
}

bool ticker_and_worker() {
    constexpr int goals = 20000;
    tidings::bus bus;
    bus.retain<goal>(5);
    tidings::thread_executor worker;

    std::atomic<int> published{0};
    std::jthread ticker([&] {
        for (int seq = 1; seq <= goals; ++seq) {
            bus.publish(goal{seq, seq % 90 + 1, "Smith", "Rovers"});
            published.store(seq, std::memory_order_release);
        }
    });

    // Wait until the ticker is well under way, then join while it keeps publishing.
    while (published.load(std::memory_order_acquire) < goals / 10) std::this_thread::yield();

    // [queued-replay-begin]
    std::vector<int> heard;  // touched only on the worker thread until worker.stop()
    const int before = published.load(std::memory_order_acquire);
    auto sub = bus.subscribe([&heard](const goal& g) { heard.push_back(g.seq); },
                             tidings::deliver_on(worker), tidings::replay);
    const int after = published.load(std::memory_order_acquire);
    // [queued-replay-end]

    ticker.join();
    worker.stop();  // drains: every accepted delivery has run

    std::printf("ticker: %d goals; a follower on a worker thread joined with tidings::replay\n",
                goals);
    bool contiguous = !heard.empty() && heard.back() == goals;
    for (std::size_t i = 1; i < heard.size() && contiguous; ++i) {
        contiguous = heard[i] == heard[i - 1] + 1;
    }
    // The replay is the newest 5 goals when it subscribed: that moment lies between `before`
    // and `after` (plus one publish that may have kept its goal without being counted yet).
    const bool replayed_five =
        !heard.empty() && heard.front() >= before - 4 && heard.front() <= after - 3;
    std::printf("worker follower: %s up to goal %d; %s\n",
                contiguous ? "every goal, no gap, no duplicate," : "GAP OR DUPLICATE",
                heard.empty() ? 0 : heard.back(),
                replayed_five ? "it began with the 5 retained goals"
                              : "IT DID NOT BEGIN WITH THE 5 RETAINED GOALS");
    return contiguous && replayed_five;
}

}  // namespace

int main() {
    const bool first = one_match();
    const bool second = ticker_and_worker();
    if (!first) std::printf("UNEXPECTED: a follower of the match heard the wrong goals\n");
    return first && second ? 0 : 1;
}
