// expect: tidings: the command handler's return type does not convert to the command's result_type
// The handler of a command returns something that is not its result_type.
#include <tidings/tidings.hpp>

#include <string>

struct reserve_stock {
    int quantity;
    using result_type = bool;
};

int main() {
    tidings::bus bus;
    // Fix: return a bool, e.g. [](const reserve_stock& c) { return c.quantity < 10; }
    auto h = bus.handle<reserve_stock>([](const reserve_stock&) { return std::string("yes"); });
}
