// expect: tidings: tidings::replay given twice
#include <tidings/tidings.hpp>

struct goal {
    int seq;
};

int main() {
    tidings::bus bus;
    // Fix: one replay option, tidings::replay or tidings::replay(k)
    auto s = bus.subscribe([](const goal&) {}, tidings::replay, tidings::replay(2));
}
