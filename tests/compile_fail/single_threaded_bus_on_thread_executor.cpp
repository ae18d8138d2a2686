// expect: tidings: a single_threaded_bus cannot deliver on a thread_executor
// A single_threaded_bus belongs to one thread; a thread_executor would call its handlers on
// another.
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::single_threaded_bus bus;
    tidings::thread_executor worker;
    // Fix: a manual_executor run by the bus's thread, or a tidings::bus
    auto s = bus.subscribe([](const order_placed&) {}, tidings::deliver_on(worker));
}
