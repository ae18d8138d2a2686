// quick_start: the usage example of the README (the part between the [readme] markers is
// copied there verbatim). It subscribes in each way tidings offers, publishes a few orders,
// and exits with 0 only if exactly the expected lines were printed, in the expected order.

#include <tidings/tidings.hpp>

#include <iostream>
#include <sstream>
#include <streambuf>
#include <string>

namespace {

// [readme-begin]
struct order_placed {
    int id;
    double total;
};
struct order_cancelled {
    int id;
};

struct audit {  // one object, several event types
    void on(const order_placed& e) { std::cout << "audit: placed " << e.id << '\n'; }
    void on(const order_cancelled& e) { std::cout << "audit: cancelled " << e.id << '\n'; }
};

void quick_start() {
    tidings::bus bus;  // safe to use from any thread
    // The event type is deduced from the parameter; `log` is an RAII handle.
    auto log = bus.subscribe([](const order_placed& e) { std::cout << "log: " << e.id << '\n'; });
    auto big = bus.subscribe<order_placed>(
        [](const order_placed& e) { std::cout << "big order: " << e.id << '\n'; },
        tidings::priority{10},  // runs before the default priority 0
        tidings::filter([](const order_placed& e) { return e.total > 100; }));
    auto first =
        bus.subscribe([](const order_placed& e) { std::cout << "first order: " << e.id << '\n'; },
                      tidings::once);  // called once, then disconnected

    tidings::publisher<order_placed> orders{bus};  // bound to one channel: no lookup
    orders.publish({1, 250.0});                    // big order, log, first order
    {
        audit a;
        tidings::subscriber<order_placed, order_cancelled> sub{bus, a};  // calls a.on(e)
        bus.publish(order_placed{2, 20.0});                              // log, audit
        bus.publish(order_cancelled{1});                                 // audit
    }  // leaving the scope destroys `sub`: `a` hears nothing more

    bus.publish(order_cancelled{2});  // no subscriber: nothing happens
}
// [readme-end]

}  // namespace

int main() {
    // Capture what quick_start() prints, then show it and compare it with what must happen.
    std::ostringstream captured;
    std::streambuf* const console = std::cout.rdbuf(captured.rdbuf());
    quick_start();
    std::cout.rdbuf(console);
    std::cout << captured.str();

    const std::string expected =
        "big order: 1\n"
        "log: 1\n"
        "first order: 1\n"
        "log: 2\n"
        "audit: placed 2\n"
        "audit: cancelled 1\n";
    if (captured.str() != expected) {
        std::cerr << "quick_start: unexpected output; expected:\n" << expected;
        return 1;
    }
    return 0;
}
