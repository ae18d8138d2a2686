// expect: tidings: this handler cannot be called with .const Event&. for the event type
// Handlers receive `const E&`; a parameter of type `E&` cannot bind to it.
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::bus bus;
    // Fix: [](const order_placed&) {} (or take the event by value)
    auto s = bus.subscribe([](order_placed&) {});
}
