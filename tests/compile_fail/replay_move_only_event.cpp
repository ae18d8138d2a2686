// expect: tidings: tidings::replay delivers copies of retained events: the event type must be copyable
#include <tidings/tidings.hpp>

#include <memory>

struct upload {
    std::unique_ptr<int> data;
};

int main() {
    tidings::bus bus;
    // Fix: retained events are copies; make the event copyable (a std::shared_ptr member)
    auto s = bus.subscribe([](const upload&) {}, tidings::replay);
}
