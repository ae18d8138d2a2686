// expect: tidings::observable<T>::map: the function must be callable with `const T&`
#include <tidings/tidings.hpp>

#include <string>

int main() {
    tidings::observable<double> temperature{20.0};
    // Fix: the function receives the source's value, `double` or `const double&`
    auto label = temperature.map([](const std::string& s) { return s.size(); });
}
