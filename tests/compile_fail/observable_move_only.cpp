// expect: tidings::observable<T>: T must be a copyable object type
#include <tidings/tidings.hpp>

#include <memory>

int main() {
    // Fix: observers receive copies of the value; hold a copyable type (a std::shared_ptr)
    tidings::observable<std::unique_ptr<int>> value;
}
