// expect: tidings: tidings::deliver_on given twice
// A subscription is delivered on one executor.
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::bus bus;
    tidings::manual_executor frame;
    tidings::thread_executor worker;
    // Fix: choose one executor, or subscribe twice
    auto s = bus.subscribe<order_placed>([](const order_placed&) {}, tidings::deliver_on(frame),
                                         tidings::deliver_on(worker));
}
