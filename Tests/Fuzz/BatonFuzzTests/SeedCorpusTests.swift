import Foundation
import XCTest

@testable import BatonFuzz

/// Every seed input of `Tests/Fuzz/corpus/<target>/` through its fuzz target, in the ordinary
/// build: the properties `make fuzz` checks hold for the seeds, and every target has seeds.
final class SeedCorpusTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("corpus").path

    func testEveryTargetHasASeedCorpus() {
        for target in FuzzTarget.all {
            XCTAssertGreaterThanOrEqual(
                CorpusFiles.files(at: "\(Self.corpus)/\(target.name)").count, 3,
                "add seed inputs to Tests/Fuzz/corpus/\(target.name)/")
        }
    }

    func testSeedsKeepEveryProperty() {
        for target in FuzzTarget.all {
            for path in CorpusFiles.files(at: "\(Self.corpus)/\(target.name)") {
                do throws(PropertyViolation) {
                    try target.run(CorpusFiles.bytes(at: path))
                } catch {
                    XCTFail("\(path): \(error)")
                }
            }
        }
    }
}
