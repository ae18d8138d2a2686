#pragma once
/// @file async_report.hpp
/// @brief Helpers shared by tidings_bench_async and tidings_bench_commands: the figures that
/// Google Benchmark's reporters do not carry (latency percentiles, idle CPU), a Markdown table
/// for the summary, PASS/MISS bookkeeping, CPU pinning, and small timing utilities.
///
/// Thread safety: figure_store is written by the benchmark thread only (Google Benchmark runs
/// one benchmark at a time); the timing and pinning helpers may be called from any thread.

#include "collecting_reporter.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tidings_bench::async_report {

// --- timing ----------------------------------------------------------------------------------

/// @brief One pause of a spin loop (the benchmark's own spinning threads, not tidings').
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// @brief steady_clock in ns since its epoch. Read on two threads and subtracted: steady_clock
/// is one system-wide clock (the TSC through the vDSO on current Linux x86 machines).
inline std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

/// @brief The cost of one now_ns() call, in ns (median of a few thousand back-to-back pairs).
inline double clock_overhead_ns() {
    std::vector<std::uint64_t> deltas(4096);
    for (std::uint64_t& delta : deltas) {
        const std::uint64_t start = now_ns();
        delta = now_ns() - start;
    }
    std::nth_element(deltas.begin(),
                     deltas.begin() + static_cast<std::ptrdiff_t>(deltas.size() / 2), deltas.end());
    return static_cast<double>(deltas[deltas.size() / 2]);
}

// --- CPU pinning -------------------------------------------------------------------------------

/// @brief Which CPUs the benchmark's threads run on: `--pin=P,C[,Q]` puts the (first)
/// producer on CPU P, the consumer on C and the second producer on Q. Unset: no pinning.
struct pinning {
    std::optional<int> producer;
    std::optional<int> consumer;
    std::optional<int> second_producer;
};

/// @brief The pinning chosen on the command line (set by take_pin_argument()).
inline pinning& chosen_pinning() {
    static pinning chosen;
    return chosen;
}

/// @brief Pins the calling thread to `cpu` (no-op when unset or not on Linux).
/// @return false if the system refused.
inline bool pin_this_thread(std::optional<int> cpu) noexcept {
#if defined(__linux__)
    if (!cpu) return true;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(*cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
#else
    (void)cpu;
    return true;
#endif
}

/// @brief Removes `--pin=...` from argv (Google Benchmark rejects unknown flags) and records it.
/// @return false (after printing why) if the value does not parse.
inline bool take_pin_argument(std::vector<char*>& args) {
    for (auto it = args.begin(); it != args.end(); ++it) {
        const std::string_view arg{*it};
        if (!arg.starts_with("--pin=")) continue;
        std::array<std::optional<int>, 3> cpus{};
        std::string_view rest = arg.substr(6);
        for (std::optional<int>& cpu : cpus) {
            if (rest.empty()) break;
            const std::size_t comma = rest.find(',');
            const std::string item{rest.substr(0, comma)};
            char* end = nullptr;
            const long value = std::strtol(item.c_str(), &end, 10);
            if (item.empty() || end != item.c_str() + item.size() || value < 0) {
                std::fprintf(stderr, "--pin=P,C[,Q]: CPU numbers expected, got '%s'\n", *it);
                return false;
            }
            cpu = static_cast<int>(value);
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
        chosen_pinning() = {cpus[0], cpus[1], cpus[2]};
        args.erase(it);
        return true;
    }
    return true;
}

/// @brief Describes the pinning for the summary.
inline std::string describe(const pinning& p) {
    if (!p.producer && !p.consumer && !p.second_producer) return "none (pass --pin=P,C[,Q])";
    const auto cpu = [](std::optional<int> c) { return c ? std::to_string(*c) : std::string{"-"}; };
    return "producer CPU " + cpu(p.producer) + ", consumer CPU " + cpu(p.consumer) +
           ", second producer CPU " + cpu(p.second_producer);
}

// --- figures Google Benchmark does not report ------------------------------------------------

/// @brief Latency percentiles of one run, in ns.
struct percentiles {
    double p50 = 0.0;
    double p99 = 0.0;
    double p999 = 0.0;
    double max = 0.0;
    std::size_t samples = 0;
};

/// @brief The percentiles of `samples` (reordered in place).
inline percentiles percentiles_of(std::vector<std::uint64_t>& samples) {
    percentiles result;
    if (samples.empty()) return result;
    std::sort(samples.begin(), samples.end());
    const auto at = [&](double q) {
        const auto index = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1));
        return static_cast<double>(samples[index]);
    };
    result.p50 = at(0.50);
    result.p99 = at(0.99);
    result.p999 = at(0.999);
    result.max = static_cast<double>(samples.back());
    result.samples = samples.size();
    return result;
}

/// @brief Named figures a benchmark records itself (one entry per repetition); the summary
/// reads the median over repetitions.
class figure_store {
public:
    void add_latency(const std::string& name, const percentiles& figures) {
        latencies_[name].push_back(figures);
    }

    void add_value(const std::string& name, double value) { values_[name].push_back(value); }

    /// @brief Median over repetitions of each percentile, or nullopt if `name` never ran.
    [[nodiscard]] std::optional<percentiles> latency(const std::string& name) const {
        const auto it = latencies_.find(name);
        if (it == latencies_.end() || it->second.empty()) return std::nullopt;
        std::vector<percentiles> runs = it->second;
        percentiles result;
        result.p50 = median_of(runs, &percentiles::p50);
        result.p99 = median_of(runs, &percentiles::p99);
        result.p999 = median_of(runs, &percentiles::p999);
        result.max = median_of(runs, &percentiles::max);
        result.samples = runs.front().samples;
        return result;
    }

    /// @brief Median over repetitions, or nullopt if `name` never ran.
    [[nodiscard]] std::optional<double> value(const std::string& name) const {
        const auto it = values_.find(name);
        if (it == values_.end() || it->second.empty()) return std::nullopt;
        std::vector<double> runs = it->second;
        std::sort(runs.begin(), runs.end());
        return runs[runs.size() / 2];
    }

    /// @brief How many repetitions the figure `name` has (latency or value).
    [[nodiscard]] std::size_t runs(const std::string& name) const {
        if (const auto it = latencies_.find(name); it != latencies_.end()) return it->second.size();
        if (const auto it = values_.find(name); it != values_.end()) return it->second.size();
        return 0;
    }

private:
    static double median_of(std::vector<percentiles>& runs, double percentiles::*field) {
        std::sort(runs.begin(), runs.end(), [field](const percentiles& a, const percentiles& b) {
            return a.*field < b.*field;
        });
        return runs[runs.size() / 2].*field;
    }

    std::map<std::string, std::vector<percentiles>> latencies_;
    std::map<std::string, std::vector<double>> values_;
};

/// @brief The figures of this process.
inline figure_store& figures() {
    static figure_store store;
    return store;
}

// --- the summary -------------------------------------------------------------------------------

/// @brief `value` with `decimals` digits after the point.
inline std::string fixed(double value, int decimals) {
    std::array<char, 64> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%.*f", decimals, value);
    return buffer.data();
}

/// @brief The 1-minute load average from /proc/loadavg, or nullopt where there is none. Other
/// runnable threads take CPU time from the benchmark's threads: the summary shows it so that a
/// reader can tell a busy machine's figures from a quiet one's.
inline std::optional<double> load_average() {
    std::FILE* file = std::fopen("/proc/loadavg", "r");
    if (file == nullptr) return std::nullopt;
    double load = 0.0;
    const int read = std::fscanf(file, "%lf", &load);
    std::fclose(file);
    return read == 1 ? std::optional{load} : std::nullopt;
}

/// @brief "1-minute load average X at start, Y at end (N CPUs)", or "" without /proc/loadavg.
inline std::string describe_load(std::optional<double> at_start) {
    const std::optional<double> at_end = load_average();
    if (!at_start || !at_end) return {};
    return "1-minute load average " + fixed(*at_start, 2) + " at start, " + fixed(*at_end, 2) +
           " at end, on " + std::to_string(std::thread::hardware_concurrency()) + " CPUs";
}

/// @brief The compiler as the summary names it.
inline std::string_view compiler() {
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "GCC " __VERSION__;
#else
    return "unknown compiler";
#endif
}

/// @brief Counts PASS / MISS / not measured, and words each verdict.
class verdicts {
public:
    /// @param measured false if a figure the target needs is missing.
    std::string judge(bool measured, bool met) {
        if (!measured) {
            ++unmeasured_;
            return "n/a";
        }
        ++(met ? met_ : missed_);
        return met ? "PASS" : "MISS";
    }

    void print(std::ostream& out) const {
        out << "Targets: " << met_ << " PASS, " << missed_ << " MISS";
        if (unmeasured_ > 0) {
            out << ", " << unmeasured_ << " not measured (peer not built or filtered out)";
        }
        out << ".\n";
    }

private:
    int met_ = 0;
    int missed_ = 0;
    int unmeasured_ = 0;
};

/// @brief A Markdown table padded so that it also lines up in a terminal.
class table {
public:
    /// @param align one character per column, 'l' or 'r'.
    table(std::vector<std::string> header, std::string align)
        : header_(std::move(header)), align_(std::move(align)) {}

    void add(std::vector<std::string> row) {
        row.resize(header_.size());
        rows_.push_back(std::move(row));
    }

    [[nodiscard]] bool empty() const noexcept { return rows_.empty(); }

    void print(std::ostream& out) const {
        std::vector<std::size_t> widths(header_.size(), 3);
        for (std::size_t c = 0; c < header_.size(); ++c) {
            widths[c] = std::max(widths[c], width_of(header_[c]));
            for (const auto& row : rows_) widths[c] = std::max(widths[c], width_of(row[c]));
        }
        line(out, header_, widths);
        out << '|';
        for (std::size_t c = 0; c < header_.size(); ++c) {
            const bool right = align_[c] == 'r';
            out << ' ' << std::string(widths[c] - (right ? 1 : 0), '-') << (right ? ":" : "")
                << " |";
        }
        out << '\n';
        for (const auto& row : rows_) line(out, row, widths);
    }

private:
    /// Code points, so that "×" and "≤" take one column.
    static std::size_t width_of(std::string_view text) {
        return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char ch) {
            return (static_cast<unsigned char>(ch) & 0xC0U) != 0x80U;
        }));
    }

    void line(std::ostream& out, const std::vector<std::string>& row,
              const std::vector<std::size_t>& widths) const {
        out << '|';
        for (std::size_t c = 0; c < row.size(); ++c) {
            const std::string pad(widths[c] - width_of(row[c]), ' ');
            out << ' ' << (align_[c] == 'r' ? pad + row[c] : row[c] + pad) << " |";
        }
        out << '\n';
    }

    std::vector<std::string> header_;
    std::string align_;
    std::vector<std::vector<std::string>> rows_;
};

// --- main() plumbing ---------------------------------------------------------------------------

/// @brief Appends `--benchmark_min_time=<seconds>` unless the command line sets a min time.
/// `storage` must outlive the use of `args`.
inline void default_min_time(std::vector<char*>& args, std::string& storage,
                             std::string_view seconds) {
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (std::string_view{args[i]}.starts_with("--benchmark_min_time")) return;
    }
    storage = "--benchmark_min_time=" + std::string{seconds};
    args.push_back(storage.data());
}

/// @brief The common main: initializes Google Benchmark with `args` (the program's own
/// options already taken out), prints `name`, the compiler and the CPU count, registers the
/// benchmarks with `register_all()`, runs them, and hands the results to
/// `summary(out, results, load_average_at_start)`. Returns main's exit code.
template <class Register, class Summary>
int run_benchmarks(std::string_view name, std::vector<char*> args, Register register_all,
                   Summary summary) {
    int args_count = static_cast<int>(args.size());
    args.push_back(nullptr);
    benchmark::Initialize(&args_count, args.data());
    if (benchmark::ReportUnrecognizedArguments(args_count, args.data())) return 1;

    benchmark::BenchmarkReporter* display = benchmark::CreateDefaultDisplayReporter();
    std::ostream& out =
        dynamic_cast<benchmark::ConsoleReporter*>(display) != nullptr ? std::cout : std::cerr;
    out << name << ": " << compiler() << ", " << std::thread::hardware_concurrency() << " CPUs\n";
#if !defined(__OPTIMIZE__) || !defined(NDEBUG)
    out << "WARNING: not an optimized build with NDEBUG: the figures are not meaningful.\n";
#endif
    out.flush();

    register_all();
    const std::optional<double> load_at_start = load_average();
    collecting_reporter reporter{display};
    benchmark::RunSpecifiedBenchmarks(&reporter);
    if (!reporter.empty()) summary(out, reporter, load_at_start);
    benchmark::Shutdown();
    return 0;
}

}  // namespace tidings_bench::async_report
