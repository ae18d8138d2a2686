// expect: tidings::subscriber: the object has no member .on.const Event&.. that accepts one of the listed event types
// audit handles order_placed but not order_cancelled.
#include <tidings/tidings.hpp>

struct order_placed {};
struct order_cancelled {};
struct audit {
    void on(const order_placed&) {}
    // Fix: void on(const order_cancelled&) {}
};

int main() {
    tidings::bus bus;
    audit a;
    tidings::subscriber<order_placed, order_cancelled> sub{bus, a};
}
