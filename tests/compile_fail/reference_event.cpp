// expect: tidings: an event type cannot be a reference
#include <tidings/tidings.hpp>

int main() {
    tidings::bus bus;
    // Fix: bus.subscribe<int>(...)
    auto s = bus.subscribe<int&>([](const int&) {});
}
