import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The standard `process_*` metrics of Prometheus's client libraries, read from `/proc/self` at
/// each scrape (Linux; elsewhere it exports nothing): resident and virtual memory, CPU seconds,
/// open and maximum file descriptors, start time.
public struct ProcessMetrics: MetricCollector {
    /// Creates the collector.
    public init() {}

    public func collect() -> [MetricFamilySnapshot] {
        #if os(Linux)
            var families: [MetricFamilySnapshot] = []
            if let stat = ProcessStat.read() {
                let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
                let page = Double(sysconf(Int32(_SC_PAGESIZE)))
                families.append(
                    Self.family(
                        "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", .counter,
                        Double(stat.userTicks + stat.systemTicks) / ticks))
                families.append(
                    Self.family(
                        "process_resident_memory_bytes", "Resident memory size in bytes.", .gauge,
                        Double(stat.residentPages) * page))
                families.append(
                    Self.family(
                        "process_virtual_memory_bytes", "Virtual memory size in bytes.", .gauge,
                        Double(stat.virtualBytes)))
                if let boot = ProcessStat.bootTime() {
                    families.append(
                        Self.family(
                            "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                            .gauge, boot + Double(stat.startTicks) / ticks))
                }
            }
            if let open = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
                // Less one: the descriptor that lists the directory is in the list.
                families.append(
                    Self.family("process_open_fds", "Number of open file descriptors.", .gauge, Double(open.count - 1)))
            }
            var limit = rlimit()
            if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
                families.append(
                    Self.family(
                        "process_max_fds", "Maximum number of open file descriptors.", .gauge, Double(limit.rlim_cur)))
            }
            return families
        #else
            return []
        #endif
    }

    private static func family(_ name: String, _ help: String, _ type: MetricType, _ value: Double)
        -> MetricFamilySnapshot
    {
        MetricFamilySnapshot(name: name, help: help, type: type, samples: [MetricSample(name: name, value: value)])
    }
}

/// The fields of `/proc/self/stat` the process metrics need (proc(5)).
struct ProcessStat {
    var userTicks: UInt64
    var systemTicks: UInt64
    var startTicks: UInt64
    var virtualBytes: UInt64
    var residentPages: UInt64

    /// Parses the file; `nil` if it cannot be read or has an unexpected shape.
    static func read() -> ProcessStat? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8) else { return nil }
        return parse(text)
    }

    /// Parses the text of `/proc/PID/stat`. The command name (field 2) is in parentheses and may
    /// hold spaces and parentheses itself, so fields are counted from the last `)`.
    static func parse(_ text: String) -> ProcessStat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        // Fields from 3 (state) on; field N is at index N - 3.
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        func field(_ number: Int) -> UInt64? {
            number - 3 < fields.count ? UInt64(fields[number - 3].trimmingCharacters(in: .whitespacesAndNewlines)) : nil
        }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23),
            let resident = field(24)
        else { return nil }
        return ProcessStat(
            userTicks: user, systemTicks: system, startTicks: start, virtualBytes: virtual, residentPages: resident)
    }

    /// The boot time in seconds since the epoch (`btime` in `/proc/stat`).
    static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
