// expect: tidings: bus.handle, bus.send and bus.send_async are defined in <tidings/command.hpp>
// bus.hpp declares the command members; their definitions come with command.hpp.
#include <tidings/bus.hpp>

struct charge_payment {
    int order;
    using result_type = bool;
};

int main() {
    tidings::bus bus;
    // Fix: #include <tidings/command.hpp> (or <tidings/tidings.hpp>)
    auto h = bus.handle([](const charge_payment&) { return true; });
    return bus.send(charge_payment{1}) ? 0 : 1;
}
