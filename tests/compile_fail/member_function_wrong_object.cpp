// expect: tidings: pass the object the member function belongs to
#include <tidings/tidings.hpp>

struct order_placed {};
struct audit {
    void on_placed(const order_placed&) {}
};
struct unrelated {};

int main() {
    tidings::bus bus;
    unrelated u;
    // Fix: audit a; bus.subscribe(&audit::on_placed, a)
    auto s = bus.subscribe(&audit::on_placed, u);
}
