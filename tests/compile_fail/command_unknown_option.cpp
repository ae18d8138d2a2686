// expect: tidings: the only option of a command handler is tidings::deliver_on
// A command has one handler: priorities, filters, once and replay do not apply to it.
#include <tidings/tidings.hpp>

struct ship_order {
    int order_id;
    using result_type = int;
};

int main() {
    tidings::bus bus;
    // Fix: drop the option (only tidings::deliver_on(executor) is accepted)
    auto h = bus.handle<ship_order>([](const ship_order& c) { return c.order_id; },
                                    tidings::priority{1});
}
