// A consumer of tidings, built by CI three ways: against the installed package
// (find_package and pkg-config) and with add_subdirectory. Exits with 0 only if the
// published event reached its subscriber.
#include <tidings/tidings.hpp>

namespace {

struct order_placed {
    int id;
};

}  // namespace

int main() {
    tidings::bus bus;
    int delivered = 0;
    auto subscription =
        bus.subscribe<order_placed>([&](const order_placed& e) { delivered = e.id; });
    bus.publish(order_placed{42});
    return delivered == 42 ? 0 : 1;
}
