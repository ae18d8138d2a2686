// expect: tidings: an event type cannot be const or volatile
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::bus bus;
    // Fix: bus.subscribe<order_placed>(...)
    auto s = bus.subscribe<const order_placed>([](const order_placed&) {});
}
