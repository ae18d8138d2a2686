// expect: tidings: retained events are copies: the event type must be copyable
#include <tidings/tidings.hpp>

#include <memory>

struct upload {
    std::unique_ptr<int> data;
};

int main() {
    tidings::bus bus;
    // Fix: make the event copyable (a std::shared_ptr member), or do not retain it
    bus.retain<upload>(5);
}
