// expect: tidings: unknown subscribe option
// A bare number is not a priority.
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::bus bus;
    // Fix: tidings::priority{5}
    auto s = bus.subscribe<order_placed>([](const order_placed&) {}, 5);
}
