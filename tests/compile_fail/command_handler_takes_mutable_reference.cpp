// expect: tidings: a command handler must be callable with .const Command&.
// A handler cannot change the command: it receives `const Command&`.
#include <tidings/tidings.hpp>

struct charge_payment {
    double amount;
    using result_type = bool;
};

int main() {
    tidings::bus bus;
    // Fix: take `const charge_payment&` (or `charge_payment` by value, a copy)
    auto h = bus.handle<charge_payment>([](charge_payment& c) { return c.amount < 100; });
}
