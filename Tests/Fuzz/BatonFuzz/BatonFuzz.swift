import Foundation

// Built two ways (docs/FUZZING.md):
// - with `-DFUZZING` and libFuzzer (`make fuzz`): libFuzzer's own `main` drives
//   `LLVMFuzzerTestOneInput` below, on the target named by BATON_FUZZ_TARGET;
// - in the ordinary build: a `main` that replays inputs (files or folders) through the same
//   targets, so a crashing input can be rerun without the fuzzing build.

#if FUZZING
    /// The target this process fuzzes, read once from BATON_FUZZ_TARGET.
    private let selectedTarget: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["BATON_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget.named(name) else {
            let names = FuzzTarget.all.map(\.name).joined(separator: ", ")
            fatalError("set BATON_FUZZ_TARGET to one of: \(names) (it is '\(name)')")
        }
        return target
    }()

    /// libFuzzer's entry point: one input. A property violation aborts, so libFuzzer saves the input.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        do {
            try selectedTarget.run(bytes)
        } catch {
            fatalError("property violated: \(error)")
        }
        return 0
    }
#else
    /// `BatonFuzz TARGET PATH...`: runs every file (folders: every file inside) through the target;
    /// `BatonFuzz --list` names the targets. Exits 1 on a property violation.
    @main
    enum ReplayMain {
        static func main() {
            let arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "--list" {
                for target in FuzzTarget.all { print("\(target.name)\t\(target.summary)") }
                return
            }
            guard arguments.count >= 2, let target = FuzzTarget.named(arguments[0]) else {
                let names = FuzzTarget.all.map(\.name).joined(separator: ", ")
                FileHandle.standardError.write(
                    Data("usage: BatonFuzz TARGET FILE-OR-FOLDER...; targets: \(names)\n".utf8))
                exit(2)
            }
            var failures = 0
            for path in arguments.dropFirst() where !FileManager.default.fileExists(atPath: path) {
                FileHandle.standardError.write(Data("BatonFuzz: no such file or folder: \(path)\n".utf8))
                exit(2)
            }
            let inputs = arguments.dropFirst().flatMap(CorpusFiles.files(at:))
            for path in inputs {
                do throws(PropertyViolation) {
                    try target.run(CorpusFiles.bytes(at: path))
                } catch {
                    failures += 1
                    print("\(path): \(error)")
                }
            }
            print("\(target.name): \(inputs.count) inputs, \(failures) property violations")
            exit(failures == 0 ? 0 : 1)
        }
    }
#endif
