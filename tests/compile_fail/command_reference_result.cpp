// expect: tidings: a command's result_type must be void or a move-constructible object type
// A command's result is returned by value: a reference result_type is refused.
#include <tidings/tidings.hpp>

struct find_price {
    int item;
    using result_type = const double&;
};

int main() {
    tidings::bus bus;
    // Fix: using result_type = double;
    double price = bus.send(find_price{1});
    (void)price;
}
