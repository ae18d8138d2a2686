// expect: tidings: tidings::replay cannot be combined with tidings::once
#include <tidings/tidings.hpp>

struct goal {
    int seq;
};

int main() {
    tidings::bus bus;
    bus.retain<goal>(5);
    // Fix: subscribe with tidings::replay(1) to receive the newest retained goal only
    auto s = bus.subscribe([](const goal&) {}, tidings::replay, tidings::once);
}
