// expect: tidings::observable<T>::observe: the options of an observer are tidings::priority and tidings::deliver_on
#include <tidings/tidings.hpp>

int main() {
    tidings::observable<int> value{0};
    // Fix: an observer receives the current value first; tidings::replay is for bus subscribers
    auto o = value.observe([](int) {}, tidings::replay);
}
