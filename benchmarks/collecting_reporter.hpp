#pragma once
/// @file collecting_reporter.hpp
/// @brief A Google Benchmark reporter that shows every run through the normal display reporter
/// and keeps one figure per benchmark for the summary a benchmark's `main` prints afterwards.
///
/// The figure kept is the median aggregate when the run has `--benchmark_repetitions=N`
/// (N > 1), else the single run. Benchmarks are looked up by name, argument and thread count,
/// e.g. `find("publish/bus", "10")` or `find("throughput/bus", "", 2)`.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tidings_bench {

/// @brief What the summary needs from one benchmark.
struct result {
    double real_ns = 0.0;           ///< wall-clock time per iteration, in ns
    double cpu_ns = 0.0;            ///< CPU time per iteration, in ns
    double items_per_second = 0.0;  ///< from State::SetItemsProcessed(), 0 if not set
    bool is_median = false;         ///< true: median of repetitions; false: a single run
    std::int64_t repetitions = 1;   ///< how many repetitions the figure summarises
};

/// @brief Forwards everything to a display reporter (console, JSON or CSV, as the
/// `--benchmark_format` flag chose) and collects one result per benchmark.
class collecting_reporter final : public benchmark::BenchmarkReporter {
public:
    /// @param display the reporter that prints; not owned, must outlive this one.
    explicit collecting_reporter(benchmark::BenchmarkReporter* display) : display_(display) {}

    bool ReportContext(const Context& context) override {
        cpu_mhz_ = context.cpu_info.cycles_per_second / 1e6;
        return display_->ReportContext(context);
    }

    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs) {
            collect(run);
        }
        display_->ReportRuns(runs);
    }

    void Finalize() override { display_->Finalize(); }

    /// @brief The result of the benchmark `name` with argument string `args` ("" if none) run
    /// with `threads` threads, or nullptr if it did not run (filtered out, failed, not built).
    [[nodiscard]] const result* find(std::string_view name, std::string_view args = {},
                                     std::int64_t threads = 1) const {
        const auto it = results_.find(key(name, args, threads));
        return it == results_.end() ? nullptr : &it->second;
    }

    /// @return true if no benchmark result was collected (e.g. `--benchmark_list_tests`).
    [[nodiscard]] bool empty() const noexcept { return results_.empty(); }

    /// @return the number of repetitions the medians summarise, or 0 if every figure is a
    /// single run.
    [[nodiscard]] std::int64_t median_repetitions() const noexcept {
        std::int64_t repetitions = 0;
        for (const auto& [name, r] : results_) {
            if (r.is_median && r.repetitions > repetitions) {
                repetitions = r.repetitions;
            }
        }
        return repetitions;
    }

    /// @return the CPU frequency Google Benchmark detected, in MHz.
    [[nodiscard]] double cpu_mhz() const noexcept { return cpu_mhz_; }

private:
    static std::string key(std::string_view name, std::string_view args, std::int64_t threads) {
        std::string k{name};
        k += '|';
        k += args;
        k += '|';
        k += std::to_string(threads);
        return k;
    }

    void collect(const Run& run) {
        if (run.error_occurred) {
            return;
        }
        const bool is_median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
        if (run.run_type == Run::RT_Aggregate && !is_median) {
            return;  // mean, stddev, cv, BigO, RMS
        }
        result& slot = results_[key(run.run_name.function_name, run.run_name.args, run.threads)];
        if (slot.is_median && !is_median) {
            return;  // never replace a median by a single repetition
        }
        const double to_ns = 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
        slot.real_ns = run.GetAdjustedRealTime() * to_ns;
        slot.cpu_ns = run.GetAdjustedCPUTime() * to_ns;
        const auto items = run.counters.find("items_per_second");
        slot.items_per_second = items == run.counters.end() ? 0.0 : items->second.value;
        slot.is_median = is_median;
        slot.repetitions = run.repetitions;
    }

    benchmark::BenchmarkReporter* display_;
    std::map<std::string, result> results_;
    double cpu_mhz_ = 0.0;
};

}  // namespace tidings_bench
