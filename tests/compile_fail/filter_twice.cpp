// expect: tidings: tidings::filter given twice
#include <tidings/tidings.hpp>

struct order_placed {
    int id;
};

int main() {
    tidings::bus bus;
    // Fix: one filter that checks both conditions
    auto s = bus.subscribe<order_placed>(
        [](const order_placed&) {}, tidings::filter([](const order_placed& e) { return e.id > 0; }),
        tidings::filter([](const order_placed& e) { return e.id < 9; }));
}
