// expect: tidings: publisher<Event, tidings::single_thread> publishes on a tidings::single_threaded_bus
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::bus bus;
    // Fix: tidings::publisher<order_placed> orders{bus};
    tidings::publisher<order_placed, tidings::single_thread> orders{bus};
    orders.publish(order_placed{});
}
