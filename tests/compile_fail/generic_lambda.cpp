// expect: tidings: cannot deduce the event type from this handler
// A generic lambda names no event type.
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::bus bus;
    // Fix: bus.subscribe<order_placed>([](const auto&) {})
    auto s = bus.subscribe([](const auto&) {});
}
