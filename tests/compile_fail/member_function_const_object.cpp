// expect: tidings: this member function cannot be called with .const Event&. on this object
#include <tidings/tidings.hpp>

struct order_placed {};
struct audit {
    void on_placed(const order_placed&) {}
};

int main() {
    tidings::bus bus;
    const audit a;
    // Fix: a non-const object, or make on_placed a const member function
    auto s = bus.subscribe(&audit::on_placed, &a);
}
