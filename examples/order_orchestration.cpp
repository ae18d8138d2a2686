// order_orchestration: the order workflow of order_choreography.cpp (placed -> paid ->
// reserved -> shipped), as an orchestration. One coordinator knows the workflow: it sends a
// command (named in the imperative) to each service in turn and decides from the results.
// Each command has exactly one handler. The warehouse runs its handler on its own thread
// (tidings::thread_executor), so `send` waits there for the parcel number; refunds are queued
// for a back office that the main loop runs (tidings::manual_executor), through `send_async`.
//
// The two programs print exactly the same lines for the same orders (CI diffs them). This one
// also checks, silently, the errors commands report: a second handler, a missing handler, a
// handler's exception, and a send that would wait for its own thread.
// Exits with 0 only if every order ended as expected and every check held.

#include <tidings/tidings.hpp>

#include <cstdio>
#include <future>
#include <map>
#include <stdexcept>
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

// [commands-begin]
// Commands: requests, in the imperative, each with one responsible handler and a result.
struct payment_result {
    bool approved;
};
struct charge_payment {
    int order_id;
    double amount;
    using result_type = payment_result;
};
struct reserve_stock {
    int order_id;
    std::string item;
    int quantity;
    using result_type = bool;  // reserved or not
};
struct ship_order {
    int order_id;
    using result_type = int;  // the parcel number
};
struct refund_payment {
    int order_id;
    double amount;  // no result_type: the result is void
};
// [commands-end]

/// A command no one handles in this program.
struct cancel_order {
    int order_id;
};

/// The same business rules as in order_choreography.cpp; only the wiring differs.
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
        int& left = stock_.at(item);  // throws std::out_of_range for an unknown item
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

// [coordinator-begin]
/// Knows the whole workflow, and nothing of how each step is done.
class order_coordinator {
public:
    order_coordinator(tidings::bus& bus, tidings::manual_executor& back_office)
        : bus_(bus), back_office_(back_office) {}

    /// Runs one order to its end; returns how it ended.
    std::string place(const order& o) {
        std::printf("order %d: placed (%d x %s, %.2f)\n", o.id, o.quantity, o.item.c_str(),
                    o.amount);
        if (!bus_.send(charge_payment{o.id, o.amount}).approved) {
            std::printf("order %d: payment declined\n", o.id);
            return "declined";
        }
        std::printf("order %d: paid %.2f\n", o.id, o.amount);
        if (!bus_.send(reserve_stock{o.id, o.item, o.quantity})) {
            std::printf("order %d: out of stock\n", o.id);
            // Compensate. The back office runs in this thread's loop, so wait for it by
            // running it: a plain send() here would wait for this very thread.
            std::future<void> refunded = bus_.send_async(refund_payment{o.id, o.amount});
            back_office_.run_pending();
            refunded.get();  // rethrows what the handler threw, if it did
            std::printf("order %d: refunded %.2f\n", o.id, o.amount);
            return "refunded";
        }
        std::printf("order %d: reserved %d x %s\n", o.id, o.quantity, o.item.c_str());
        const int parcel = bus_.send(ship_order{o.id});  // waits for the warehouse thread
        std::printf("order %d: shipped in parcel %d\n", o.id, parcel);
        return "shipped";
    }

private:
    tidings::bus& bus_;
    tidings::manual_executor& back_office_;
};
// [coordinator-end]

}  // namespace

int main() {
    bool ok = true;
    auto check = [&ok](bool condition, const char* what) {
        if (!condition) {
            std::printf("UNEXPECTED: %s\n", what);
            ok = false;
        }
    };

    tidings::bus bus;
    tidings::manual_executor back_office;
    tidings::thread_executor warehouse_thread;

    payments payment_service{100.0};
    inventory stock{{{"book", 3}, {"kettle", 0}, {"lamp", 4}}};
    shipping warehouse;
    int refunds = 0;

    // [handlers-begin]
    auto charge = bus.handle<charge_payment>(
        [&](const charge_payment& c) { return payment_result{payment_service.charge(c.amount)}; });
    auto reserve = bus.handle<reserve_stock>(
        [&](const reserve_stock& c) { return stock.reserve(c.item, c.quantity); });
    // Runs on the warehouse's thread; send() waits for its result.
    auto ship = bus.handle<ship_order>([&](const ship_order&) { return warehouse.ship(); },
                                       tidings::deliver_on(warehouse_thread));
    // Runs when the main loop runs the back office.
    auto refund = bus.handle<refund_payment>([&](const refund_payment&) { ++refunds; },
                                             tidings::deliver_on(back_office));
    // [handlers-end]

    order_coordinator coordinator{bus, back_office};
    const std::vector<order> orders{
        {1, "book", 1, 9.50},
        {2, "lamp", 1, 120.00},   // over the card limit
        {3, "kettle", 1, 24.00},  // paid, but out of stock: refunded
        {4, "book", 2, 19.00},
    };
    std::map<int, std::string> outcome;
    for (const order& o : orders) outcome[o.id] = coordinator.place(o);

    int shipped_count = 0;
    for (const auto& [id, result] : outcome) shipped_count += result == "shipped" ? 1 : 0;
    print_summary(shipped_count, static_cast<int>(orders.size()), stock);

    check(outcome ==
              std::map<int, std::string>{
                  {1, "shipped"}, {2, "declined"}, {3, "refunded"}, {4, "shipped"}},
          "the orders did not end as expected");
    check(stock.stock().at("book") == 0 && refunds == 1, "stock or refunds are off");

    // The checks below print nothing unless one fails.

    // [duplicate-begin]
    // Exactly one handler per command: a second one is refused at once.
    try {
        auto second =
            bus.handle<charge_payment>([](const charge_payment&) { return payment_result{true}; });
        check(false, "a second handler of charge_payment was accepted");
    } catch (const tidings::duplicate_handler& e) {
        // e.what(): "tidings: the command charge_payment already has a handler on this bus"
        check(std::string(e.what()).find("charge_payment") != std::string::npos,
              "duplicate_handler does not name the command");
    }
    // [duplicate-end]

    // [no-handler-begin]
    // A command no one handles is an error, never a silent no-op.
    try {
        bus.send(cancel_order{4});
        check(false, "send without a handler did not throw");
    } catch (const tidings::no_handler&) {
    }
    // [no-handler-end]

    // [handler-throws-begin]
    // What the handler throws reaches the sender: here std::out_of_range from std::map::at.
    try {
        bus.send(reserve_stock{5, "piano", 1});
        check(false, "the handler's exception did not reach the sender");
    } catch (const std::out_of_range&) {
    }
    // [handler-throws-end]

    // [would-deadlock-begin]
    // This thread runs the back office, so a blocking send to it would wait for itself.
    try {
        bus.send(refund_payment{3, 24.00});
        check(false, "send to this thread's own executor did not throw");
    } catch (const tidings::would_deadlock&) {
    }
    // [would-deadlock-end]

    // [unhandle-begin]
    // The registration is an RAII handle: once it is gone, the command has no handler.
    ship.unsubscribe();
    try {
        bus.send(ship_order{6});
        check(false, "send after unsubscribe did not throw");
    } catch (const tidings::no_handler&) {
    }
    // [unhandle-end]

    check(back_office.pending() == 0 && refunds == 1, "the back office has work left");
    return ok ? 0 : 1;
}
