// expect: tidings: a filter must be callable with .const Event&. and return
// The filter checks another event type than the handler's.
#include <tidings/tidings.hpp>

struct order_placed {};
struct order_cancelled {};

int main() {
    tidings::bus bus;
    // Fix: tidings::filter([](const order_placed&) { return true; })
    auto s = bus.subscribe<order_placed>([](const order_placed&) {},
                                         tidings::filter([](const order_cancelled&) { return true; }));
}
