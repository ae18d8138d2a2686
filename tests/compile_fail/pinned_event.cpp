// expect: tidings: an event type must be copy- or move-constructible
// An event type that can be neither copied nor moved.
#include <tidings/tidings.hpp>

struct pinned {
    pinned() = default;
    // Fix: remove these two lines (or default either one).
    pinned(const pinned&) = delete;
    pinned(pinned&&) = delete;
};

int main() {
    tidings::bus bus;
    auto s = bus.subscribe<pinned>([](const pinned&) {});
}
