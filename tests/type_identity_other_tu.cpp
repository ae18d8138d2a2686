// The second translation unit of tests/type_identity.cpp: a type in an anonymous namespace
// whose name, layout and values are the same as one there. They are different types, so they
// must never share a channel.

#include <tidings/tidings.hpp>

namespace type_identity_other_tu {

namespace {

struct same_name_event {
    int value = 0;
};

}  // namespace

tidings::subscription subscribe(tidings::bus& bus, int& received) {
    return bus.subscribe([&received](const same_name_event& e) { received += e.value; });
}

void publish(tidings::bus& bus, int value) { bus.publish(same_name_event{value}); }

std::size_t subscriber_count(const tidings::bus& bus) {
    return bus.subscriber_count<same_name_event>();
}

}  // namespace type_identity_other_tu
