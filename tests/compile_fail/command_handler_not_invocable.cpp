// expect: tidings: a command handler must be callable with .const Command&.
// The handler takes another command type than the one it handles.
#include <tidings/tidings.hpp>

struct charge_payment {
    double amount;
    using result_type = bool;
};
struct refund_payment {
    double amount;
};

int main() {
    tidings::bus bus;
    // Fix: [](const charge_payment& c) { return c.amount < 100; }
    auto h = bus.handle<charge_payment>([](const refund_payment&) { return true; });
}
