// expect: tidings::observable<T>::map: the function must return the derived value
#include <tidings/tidings.hpp>

int main() {
    tidings::observable<double> temperature{20.0};
    // Fix: return the derived value; to react to changes, use observe()
    auto alarm = temperature.map([](double) {});
}
