// expect: tidings: an event type cannot be void
#include <tidings/tidings.hpp>

int main() {
    tidings::bus bus;
    // Fix: an empty struct, e.g. struct tick {}; bus.subscribe<tick>([](const tick&) {})
    auto s = bus.subscribe<void>([] {});
}
