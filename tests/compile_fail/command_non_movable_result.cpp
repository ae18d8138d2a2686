// expect: tidings: a command's result_type must be void or a move-constructible object type
// The result travels from the handler to the sender: it must be movable.
#include <tidings/tidings.hpp>

#include <mutex>

struct make_lock {
    using result_type = std::mutex;
};

int main() {
    tidings::bus bus;
    // Fix: return a movable handle, e.g. using result_type = std::unique_ptr<std::mutex>;
    bus.send(make_lock{});
}
