// expect: tidings::deliver_on: the argument must be an executor
// deliver_on is given something that is not an executor.
#include <tidings/tidings.hpp>

#include <thread>

struct price_tick {
    double price;
};

int main() {
    tidings::bus bus;
    std::thread worker([] {});
    // Fix: tidings::thread_executor worker; ... tidings::deliver_on(worker)
    auto s = bus.subscribe([](const price_tick&) {}, tidings::deliver_on(worker));
    worker.join();
}
