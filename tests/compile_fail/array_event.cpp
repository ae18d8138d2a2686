// expect: tidings: an event type cannot be an array
#include <tidings/tidings.hpp>

int main() {
    tidings::bus bus;
    // Fix: bus.subscribe<std::array<int, 3>>(...) or a struct
    auto s = bus.subscribe<int[3]>([](const int (&)[3]) {});
}
