// expect: tidings::observable<T>::update: the function must be callable with `T&`
#include <tidings/tidings.hpp>

int main() {
    tidings::observable<int> counter{0};
    // Fix: update modifies the value in place: [](int& v) { v += 1; }
    counter.update([](int v, int step) { return v + step; });
}
