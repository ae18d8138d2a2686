// expect: tidings::latest<Event>: the observable holds a copy of the latest event: the event type must be copyable
#include <tidings/tidings.hpp>

#include <memory>

struct upload {
    std::unique_ptr<int> data;
};

int main() {
    tidings::bus bus;
    // Fix: make the event copyable (a std::shared_ptr member)
    auto last = tidings::latest<upload>(bus);
}
