// expect: tidings: a member function handler needs the object to call it on
#include <tidings/tidings.hpp>

struct order_placed {};
struct audit {
    void on_placed(const order_placed&) {}
};

int main() {
    tidings::bus bus;
    // Fix: audit a; bus.subscribe(&audit::on_placed, a) (or &a)
    auto s = bus.subscribe(&audit::on_placed);
}
