// order_choreography: an order workflow (placed -> paid -> reserved -> shipped) as a
// choreography. No one is in charge: each service reacts to the facts (events, named in the
// past tense) that other services published, and publishes its own. Payments reacts to
// order_placed, inventory to payment_captured, shipping to stock_reserved; when the stock is
// missing, payments compensates with a refund. A journal listens to every event and writes one
// line per fact.
//
// examples/order_orchestration.cpp runs the same orders through one coordinator that sends
// commands instead; the two programs print exactly the same lines (CI diffs them).
// Exits with 0 only if every order ended as expected.

#include <tidings/tidings.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

struct order {
    int id;
    std::string item;
    int quantity;
    double amount;
};

// [events-begin]
// Events: facts, in the past tense, for whoever is interested.
struct order_placed {
    order placed;
};
struct payment_captured {
    order paid;
};
struct payment_declined {
    int order_id;
};
struct stock_reserved {
    order reserved;
};
struct stock_unavailable {
    order missing;
};
struct payment_refunded {
    int order_id;
    double amount;
};
struct order_shipped {
    int order_id;
    int parcel;
};
// [events-end]

/// The same business rules as in order_orchestration.cpp; only the wiring differs.
class payments {
public:
    explicit payments(double card_limit) : card_limit_(card_limit) {}
    [[nodiscard]] bool charge(double amount) const { return amount <= card_limit_; }

private:
    double card_limit_;
};

class inventory {
public:
    explicit inventory(std::map<std::string, int> stock) : stock_(std::move(stock)) {}
    bool reserve(const std::string& item, int quantity) {
        int& left = stock_.at(item);
        if (left < quantity) return false;
        left -= quantity;
        return true;
    }
    [[nodiscard]] const std::map<std::string, int>& stock() const { return stock_; }

private:
    std::map<std::string, int> stock_;
};

class shipping {
public:
    int ship() { return next_parcel_++; }

private:
    int next_parcel_ = 1001;
};

void print_summary(int shipped, int orders, const inventory& stock) {
    std::printf("%d of %d orders shipped; stock left:", shipped, orders);
    for (const auto& [item, count] : stock.stock()) std::printf(" %s %d", item.c_str(), count);
    std::printf("\n");
}

}  // namespace

int main() {
    tidings::bus bus;
    // Refunds are back-office work: queued, and run by the main loop between orders.
    tidings::manual_executor back_office;

    payments payment_service{100.0};
    inventory stock{{{"book", 3}, {"kettle", 0}, {"lamp", 4}}};
    shipping warehouse;

    // [choreography-begin]
    // Payments: charges every placed order; says whether it was paid.
    auto charge = bus.subscribe([&](const order_placed& e) {
        if (payment_service.charge(e.placed.amount)) {
            bus.publish(payment_captured{e.placed});
        } else {
            bus.publish(payment_declined{e.placed.id});
        }
    });
    // Inventory: reserves the goods of every paid order.
    auto reserve = bus.subscribe([&](const payment_captured& e) {
        if (stock.reserve(e.paid.item, e.paid.quantity)) {
            bus.publish(stock_reserved{e.paid});
        } else {
            bus.publish(stock_unavailable{e.paid});
        }
    });
    // Shipping: ships every reserved order.
    auto ship = bus.subscribe([&](const stock_reserved& e) {
        bus.publish(order_shipped{e.reserved.id, warehouse.ship()});
    });
    // Payments again, compensating: refunds a paid order that cannot be delivered.
    auto refund = bus.subscribe(
        [&](const stock_unavailable& e) {
            bus.publish(payment_refunded{e.missing.id, e.missing.amount});
        },
        tidings::deliver_on(back_office));
    // [choreography-end]

    // [journal-begin]
    // The journal hears every fact. A handler that publishes runs the next step inside the
    // current publish (depth first), so the journal's priority makes it write each fact before
    // the services react to it.
    constexpr tidings::priority first{1};
    std::vector<tidings::subscription> journal;
    journal.push_back(bus.subscribe(
        [](const order_placed& e) {
            std::printf("order %d: placed (%d x %s, %.2f)\n", e.placed.id, e.placed.quantity,
                        e.placed.item.c_str(), e.placed.amount);
        },
        first));
    // [journal-end]
    journal.push_back(bus.subscribe(
        [](const payment_captured& e) {
            std::printf("order %d: paid %.2f\n", e.paid.id, e.paid.amount);
        },
        first));
    journal.push_back(bus.subscribe(
        [](const payment_declined& e) { std::printf("order %d: payment declined\n", e.order_id); },
        first));
    journal.push_back(bus.subscribe(
        [](const stock_reserved& e) {
            std::printf("order %d: reserved %d x %s\n", e.reserved.id, e.reserved.quantity,
                        e.reserved.item.c_str());
        },
        first));
    journal.push_back(bus.subscribe(
        [](const stock_unavailable& e) { std::printf("order %d: out of stock\n", e.missing.id); },
        first));
    journal.push_back(bus.subscribe(
        [](const payment_refunded& e) {
            std::printf("order %d: refunded %.2f\n", e.order_id, e.amount);
        },
        first));
    journal.push_back(bus.subscribe(
        [](const order_shipped& e) {
            std::printf("order %d: shipped in parcel %d\n", e.order_id, e.parcel);
        },
        first));

    // The shop learns how each order ended from the same facts.
    std::map<int, std::string> outcome;
    auto shipped = bus.subscribe([&](const order_shipped& e) { outcome[e.order_id] = "shipped"; });
    auto declined =
        bus.subscribe([&](const payment_declined& e) { outcome[e.order_id] = "declined"; });
    auto refunded =
        bus.subscribe([&](const payment_refunded& e) { outcome[e.order_id] = "refunded"; });

    // [place-begin]
    const std::vector<order> orders{
        {1, "book", 1, 9.50},
        {2, "lamp", 1, 120.00},   // over the card limit
        {3, "kettle", 1, 24.00},  // paid, but out of stock: refunded
        {4, "book", 2, 19.00},
    };
    for (const order& o : orders) {
        bus.publish(order_placed{o});  // the shop's whole part: say that it happened
        back_office.run_pending();     // the main loop's turn for the back office
    }
    // [place-end]

    int shipped_count = 0;
    for (const auto& [id, result] : outcome) shipped_count += result == "shipped" ? 1 : 0;
    print_summary(shipped_count, static_cast<int>(orders.size()), stock);

    const bool ok = outcome ==
                        std::map<int, std::string>{
                            {1, "shipped"}, {2, "declined"}, {3, "refunded"}, {4, "shipped"}} &&
                    stock.stock().at("book") == 0 && back_office.pending() == 0;
    if (!ok) std::printf("UNEXPECTED: the orders did not end as expected\n");
    return ok ? 0 : 1;
}
