// reentrancy: what a handler may do to the bus while it runs. An auctioneer closes the sale
// from inside its handler: it publishes another event (whose subscribers run before it
// continues), unsubscribes itself, and unsubscribes a sniper whose turn in this dispatch has
// not come yet, so the sniper is not called. Another handler subscribes a watcher during a
// dispatch; the watcher misses that bid and hears the following ones.
// Exits with 0 only if every handler heard exactly the bids it should have.

#include <tidings/tidings.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

struct bid {
    std::string bidder;
    int amount;
};

struct sold {
    std::string buyer;
    int price;
};

}  // namespace

int main() {
    tidings::bus bus;
    constexpr int reserve = 100;

    // Declared first, so that handlers can reach them.
    tidings::subscription auctioneer;
    tidings::subscription sniper;
    tidings::subscription watcher;
    std::vector<int> sniper_heard;
    std::vector<int> watcher_heard;
    int sales = 0;

    auto announcer = bus.subscribe([&sales](const sold& s) {
        ++sales;
        std::printf("  announcer: sold to %s for %d\n", s.buyer.c_str(), s.price);
    });

    // Runs first (priority 10). At the first bid that meets the reserve it closes the sale.
    auctioneer = bus.subscribe(
        [&](const bid& b) {
            std::printf("  auctioneer: %s bids %d\n", b.bidder.c_str(), b.amount);
            if (b.amount < reserve) return;
            bus.publish(sold{b.bidder, b.amount});  // the announcer runs, then we go on
            auctioneer.unsubscribe();               // itself: returns at once
            sniper.unsubscribe();                   // its turn has not come: not called
        },
        tidings::priority{10});

    // Priority 5: on the first bid, it brings in a watcher, which misses that bid.
    auto opener = bus.subscribe(
        [&](const bid& b) {
            if (watcher.connected()) return;
            std::printf("  opener: first bid by %s; a watcher joins\n", b.bidder.c_str());
            watcher = bus.subscribe([&watcher_heard](const bid& later) {
                watcher_heard.push_back(later.amount);
                std::printf("  watcher: %d\n", later.amount);
            });
        },
        tidings::priority{5});

    sniper = bus.subscribe([&sniper_heard](const bid& b) {
        sniper_heard.push_back(b.amount);
        std::printf("  sniper: %d\n", b.amount);
    });

    for (const bid& b : {bid{"ana", 50}, bid{"ben", 80}, bid{"chloe", 120}, bid{"dan", 130}}) {
        std::printf("bid: %s %d\n", b.bidder.c_str(), b.amount);
        bus.publish(b);
    }

    const bool ok = sales == 1 && !auctioneer.connected() && !sniper.connected() &&
                    sniper_heard == std::vector<int>{50, 80} &&
                    watcher_heard == std::vector<int>{80, 120, 130};
    std::printf("%d sale, sniper heard %zu bids, watcher heard %zu: %s\n", sales,
                sniper_heard.size(), watcher_heard.size(), ok ? "as expected" : "UNEXPECTED");
    return ok ? 0 : 1;
}
