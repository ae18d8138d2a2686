// expect: tidings: the command handler's return type does not convert to the command's result_type
// The handler of a command that declares a result returns nothing.
#include <tidings/tidings.hpp>

struct ship_order {
    int order_id;
    using result_type = int;  // the parcel number
};

int main() {
    tidings::bus bus;
    // Fix: return the parcel number, or remove result_type if the command has no result.
    auto h = bus.handle<ship_order>([](const ship_order&) {});
}
