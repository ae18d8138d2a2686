// expect: tidings: a command's result_type must be void or a move-constructible object type
// No function returns an array: an array result_type is refused (not "no matching function").
#include <tidings/tidings.hpp>

struct read_sensors {
    using result_type = double[4];
};

int main() {
    tidings::bus bus;
    // Fix: using result_type = std::array<double, 4>;
    auto values = bus.send(read_sensors{});
}
