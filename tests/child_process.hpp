#pragma once
// Runs a test body in a forked child, for misuse that ends the process (POSIX only).

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace tidings_test {

// How a child process ended, and what it wrote to stderr.
struct child_outcome {
    int signal = 0;      // the signal that ended it, or 0
    int exit_code = -1;  // its exit code if it exited
    std::string err;
};

// Runs `body` in a forked child (for misuse that ends the process). A watchdog alarm turns a
// hang (the bug these tests guard against) into SIGALRM instead of a stuck suite; it asserts
// nothing about time: a correct child ends at once, on its own.
template <class Body>
child_outcome run_in_child(Body body) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        // The default actions, not Catch2's handlers (they would report in the child).
        for (const int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGALRM}) {
            std::signal(sig, SIG_DFL);
        }
        ::close(fds[0]);
        ::close(fds[1]);
        ::alarm(120);
        body();
        std::_Exit(0);
    }
    ::close(fds[1]);
    child_outcome outcome;
    char buffer[512];
    for (;;) {
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n <= 0) break;
        outcome.err.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
    if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
    return outcome;
}

inline bool contains(const std::string& text, const char* part) {
    return text.find(part) != std::string::npos;
}

}  // namespace tidings_test
