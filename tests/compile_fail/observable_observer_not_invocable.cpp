// expect: tidings::observable<T>::observe: the observer must be callable with `const T&`
#include <tidings/tidings.hpp>

#include <string>

int main() {
    tidings::observable<int> value{0};
    // Fix: take the observable's value type, `int` or `const int&`
    auto o = value.observe([](const std::string&) {});
}
