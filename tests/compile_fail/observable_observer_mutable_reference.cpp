// expect: tidings::observable<T>::observe: the observer must be callable with `const T&`
#include <tidings/tidings.hpp>

int main() {
    tidings::observable<double> temperature{20.0};
    // Fix: an observer cannot change the value it is told about; use `double` or
    // `const double&`, and temperature.set() or update() to change it
    auto o = temperature.observe([](double& t) { t += 1; });
}
