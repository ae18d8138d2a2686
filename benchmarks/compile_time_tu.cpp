// A translation unit that uses tidings the way most code does: one include, a subscription
// and a publish. scripts/bench.sh times its compilation (the "subscribe + publish" row of its
// compile-time table) beside TUs that only include a header: instantiating subscribe and
// publish costs more than parsing the headers. Not built by CMake; CI (.ci/run, step g)
// compiles it with the strict flags, so it keeps compiling.
#include <tidings/bus.hpp>

namespace {

struct order_placed {
    int id = 0;
    long cents = 0;
};

}  // namespace

int main() {
    tidings::bus orders;
    long total = 0;
    auto counted = orders.subscribe([&total](const order_placed& e) { total += e.cents; });
    orders.publish(order_placed{1, 950});
    return total == 950 ? 0 : 1;
}
