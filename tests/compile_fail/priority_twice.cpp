// expect: tidings: tidings::priority given twice
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::bus bus;
    // Fix: give one priority
    auto s = bus.subscribe<order_placed>([](const order_placed&) {}, tidings::priority{1},
                                         tidings::priority{2});
}
