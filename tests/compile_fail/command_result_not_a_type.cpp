// expect: tidings: a command's result_type must be void or a move-constructible object type
// result_type names a data member, not a type: without the check the result would silently be
// void.
#include <tidings/tidings.hpp>

struct next_ticket {
    static constexpr int result_type = 0;
};

int main() {
    tidings::bus bus;
    // Fix: using result_type = int;
    auto h = bus.handle<next_ticket>([](const next_ticket&) { return 7; });
}
