// expect: tidings: a single_threaded_bus cannot deliver on a thread_executor
// A single_threaded_bus belongs to one thread: its command handler cannot run on a worker.
#include <tidings/tidings.hpp>

struct ship_order {
    int order_id;
    using result_type = int;
};

int main() {
    tidings::single_threaded_bus bus;
    tidings::thread_executor worker;
    // Fix: a manual_executor that this thread runs, or tidings::bus
    auto h = bus.handle<ship_order>([](const ship_order& c) { return c.order_id; },
                                    tidings::deliver_on(worker));
}
