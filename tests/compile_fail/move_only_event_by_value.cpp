// expect: tidings: this handler cannot be called with .const Event&. for the event type
// Handlers receive `const Event&`; a move-only event cannot be copied into a by-value
// parameter (queued or not).
#include <tidings/tidings.hpp>

#include <memory>

struct ticket {
    std::unique_ptr<int> seat;
};

int main() {
    tidings::bus bus;
    tidings::manual_executor frame;
    // Fix: [](const ticket& t) {}
    auto s = bus.subscribe<ticket>([](ticket) {}, tidings::deliver_on(frame));
}
