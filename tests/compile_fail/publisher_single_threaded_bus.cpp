// expect: tidings: publisher<Event> publishes on a tidings::bus, for a tidings::single_threaded_bus name
#include <tidings/tidings.hpp>

struct order_placed {};

int main() {
    tidings::single_threaded_bus bus;
    // Fix: tidings::publisher<order_placed, tidings::single_thread> orders{bus};
    tidings::publisher<order_placed> orders{bus};
    orders.publish(order_placed{});
}
