import BatonTestSupport
import Foundation
import XCTest

@testable import BatonTokens

/// The rotated-token spool on its own (no server): durability, locking between holders, and
/// what is left by processes that died.
final class RotatedTokenSpoolTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-spool-unit-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    private func entry(_ fence: Int64, token: String = "rt-secret") -> RotatedTokenSpool.Entry {
        .init(
            store: "127.0.0.1:6379/0/oauth", service: "my-api", fence: fence, usedSecret: "abc", refreshToken: token,
            client: "c1")
    }

    func testAHeldFileIsSkippedAndAReleasedOneIsClaimed() throws {
        let spool = RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption)
        let claim = try spool.write(entry(7))
        let attributes = try FileManager.default.attributesOfItem(atPath: claim.path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let folderAttributes = try FileManager.default.attributesOfItem(atPath: spool.directory)
        XCTAssertEqual((folderAttributes[.posixPermissions] as? NSNumber)?.intValue, 0o700)
        XCTAssertTrue(spool.claimAll().entries.isEmpty, "a file its writer still holds is not replayed")
        claim.release()  // as when the writer dies
        let (entries, unreadable) = spool.claimAll()
        XCTAssertEqual(entries.map(\.entry), [entry(7)])
        XCTAssertTrue(unreadable.isEmpty)
        spool.remove(entries[0].claim)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spool.directory), [])
    }

    func testWhatADeadWriterLeftIsReplayedOrCleared() throws {
        let spool = RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption)
        try spool.write(entry(3)).release()
        let complete = try Data(contentsOf: URL(fileURLWithPath: spool.directory + "/" + entry(3).fileName))
        try FileManager.default.removeItem(atPath: spool.directory + "/" + entry(3).fileName)
        try complete.write(to: URL(fileURLWithPath: spool.directory + "/" + entry(3).fileName + ".tmp-99999"))
        try Data(complete.prefix(20)).write(
            to: URL(fileURLWithPath: spool.directory + "/" + entry(4).fileName + ".tmp-99998"))
        try Data("not a token".utf8).write(to: URL(fileURLWithPath: spool.directory + "/odd.json"))
        let (entries, unreadable) = spool.claimAll()
        XCTAssertEqual(entries.map(\.entry), [entry(3)], "a complete temporary file is replayed")
        XCTAssertEqual(unreadable.count, 1, "an unreadable spool file is reported, and left for a human")
        XCTAssertFalse(unreadable.description.contains("rt-secret"))
        let left = try FileManager.default.contentsOfDirectory(atPath: spool.directory).sorted()
        XCTAssertEqual(left, [entry(3).fileName + ".tmp-99999", "odd.json"], "the partial one is gone")
    }
}
