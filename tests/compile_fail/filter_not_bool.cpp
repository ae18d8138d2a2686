// expect: tidings: a filter must be callable with .const Event&. and return something convertible to bool
// A check whose result is not a truth value.
#include <tidings/tidings.hpp>

struct order_placed {};
struct verdict {};

int main() {
    tidings::bus bus;
    // Fix: return a bool
    auto s = bus.subscribe<order_placed>([](const order_placed&) {},
                                         tidings::filter([](const order_placed&) { return verdict{}; }));
}
