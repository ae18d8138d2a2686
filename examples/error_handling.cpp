// error_handling: what happens when handlers throw. Under either error policy every other
// subscriber of the event still runs. With error_policy::rethrow_first (the default) the
// publisher gets the first exception back after all subscribers ran, and later ones go to the
// error handler; with error_policy::report every exception goes to the error handler and
// publish returns normally. Exits with 0 only if each exception went where it should.

#include <tidings/tidings.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace billing {

struct invoice_due {
    int id;
    double amount;
};

}  // namespace billing

namespace {

/// The message of an exception carried by an exception_ptr.
std::string message_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

}  // namespace

int main() {
    using billing::invoice_due;
    tidings::bus bus;

    // The error handler learns what was thrown, by which subscription, for which event type
    // (the name comes from the compiler, not from RTTI).
    std::vector<std::uint64_t> reported;
    bus.set_error_handler([&reported](const tidings::handler_error& error) {
        std::printf("  error handler: subscription %llu, event %.*s: %s\n",
                    static_cast<unsigned long long>(error.subscription_id),
                    static_cast<int>(error.event_type.size()), error.event_type.data(),
                    message_of(error.exception).c_str());
        reported.push_back(error.subscription_id);
    });

    auto mailer = bus.subscribe(
        [](const invoice_due& e) {
            if (e.id == 2) throw std::runtime_error("mail server down");
            std::printf("  mailer: invoice %d sent\n", e.id);
        },
        tidings::priority{2});
    auto texter = bus.subscribe(
        [](const invoice_due& e) {
            if (e.id == 2) throw std::runtime_error("no signal");
            std::printf("  texter: reminder %d sent\n", e.id);
        },
        tidings::priority{1});
    int booked = 0;
    auto ledger = bus.subscribe([&booked](const invoice_due& e) {
        ++booked;
        std::printf("  ledger: invoice %d booked (%.2f)\n", e.id, e.amount);
    });

    bool ok = true;

    std::printf("invoice 1: nobody throws\n");
    bus.publish(invoice_due{1, 80.0});

    std::printf("invoice 2, rethrow_first (the default): both senders throw\n");
    try {
        bus.publish(invoice_due{2, 120.0});
        ok = false;  // the first exception must reach the publisher
    } catch (const std::runtime_error& e) {
        std::printf("  publisher caught: %s\n", e.what());
        ok = ok && std::string(e.what()) == "mail server down";
    }
    // The ledger ran anyway; the texter's exception, the second one, went to the error handler.
    ok = ok && booked == 2 && reported == std::vector<std::uint64_t>{texter.id()};

    std::printf("invoice 2 again, report: publish returns normally\n");
    bus.set_error_policy(tidings::error_policy::report);
    reported.clear();
    bus.publish(invoice_due{2, 120.0});
    ok = ok && booked == 3 && reported == std::vector<std::uint64_t>{mailer.id(), texter.id()};

    std::printf("%s\n", ok ? "every exception went where expected" : "UNEXPECTED");
    return ok ? 0 : 1;
}
