// expect: tidings: tidings::deliver_on given twice
// A command handler runs on one executor.
#include <tidings/tidings.hpp>

struct ship_order {
    int order_id;
    using result_type = int;
};

int main() {
    tidings::bus bus;
    tidings::manual_executor first;
    tidings::manual_executor second;
    // Fix: give one tidings::deliver_on
    auto h = bus.handle<ship_order>([](const ship_order& c) { return c.order_id; },
                                    tidings::deliver_on(first), tidings::deliver_on(second));
}
