// expect: tidings: this handler cannot be called with .const Event&. for the event type
// A handler for another event type than the one named.
#include <tidings/tidings.hpp>

struct order_placed {};
struct order_cancelled {};

int main() {
    tidings::bus bus;
    // Fix: [](const order_placed&) {}
    auto s = bus.subscribe<order_placed>([](const order_cancelled&) {});
}
