// expect: tidings: cannot deduce the command type from this handler
// A generic lambda names no command type.
#include <tidings/tidings.hpp>

struct charge_payment {
    int order;
    using result_type = bool;
};

int main() {
    tidings::bus bus;
    // Fix: bus.handle<charge_payment>([](const auto&) { return true; })
    auto h = bus.handle([](const auto&) { return true; });
}
