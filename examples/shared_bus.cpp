// shared_bus: one tidings::bus used by several threads at once. Four workers publish through
// one shared publisher<E>; meanwhile the main thread subscribes an auditor and unsubscribes it
// again, over and over. When unsubscribe() returns, the auditor's handler is not running in
// any worker and is never called again; the auditor checks that with a flag set right after
// unsubscribe() returns. Exits with 0 only if every event was counted exactly once and no
// auditor was called after it left.

#include <tidings/tidings.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

namespace {

struct job_done {
    int worker;
    int job;
};

}  // namespace

int main() {
    constexpr int workers = 4;
    constexpr int jobs_per_worker = 50'000;
    constexpr int auditor_rounds = 100;

    tidings::bus bus;
    std::atomic<long> done{0};
    auto progress =
        bus.subscribe([&done](const job_done&) { done.fetch_add(1, std::memory_order_relaxed); });

    tidings::publisher<job_done> report{bus};  // one publisher may be shared by many threads
    std::vector<std::jthread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&report, w] {
            for (int j = 0; j < jobs_per_worker; ++j) report.publish({w, j});
        });
    }

    // An auditor joins and leaves while the workers publish.
    std::atomic<long> audited{0};
    std::atomic<long> calls_after_leaving{0};
    for (int round = 0; round < auditor_rounds; ++round) {
        auto left = std::make_shared<std::atomic<bool>>(false);  // this round's auditor left
        tidings::subscription auditor = bus.subscribe([&, left](const job_done&) {
            if (left->load(std::memory_order_seq_cst)) {
                calls_after_leaving.fetch_add(1, std::memory_order_relaxed);
            }
            audited.fetch_add(1, std::memory_order_relaxed);
        });
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        auditor.unsubscribe();  // waits for calls of the auditor running in the workers
        left->store(true, std::memory_order_seq_cst);
    }
    threads.clear();  // joins the workers

    const long expected = long{workers} * jobs_per_worker;
    const bool ok = done.load() == expected && calls_after_leaving.load() == 0;
    std::printf("%d workers published %ld events; progress counted %ld\n", workers, expected,
                done.load());
    std::printf(
        "the auditor joined and left %d times, heard %ld events, and was called %ld "
        "times after leaving: %s\n",
        auditor_rounds, audited.load(), calls_after_leaving.load(),
        ok ? "as expected" : "UNEXPECTED");
    return ok ? 0 : 1;
}
