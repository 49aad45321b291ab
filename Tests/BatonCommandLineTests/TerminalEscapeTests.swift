import BatonCommandLine
import XCTest

/// What `Terminal.err` does to control characters in error messages.
final class TerminalEscapeTests: XCTestCase {
    func testControlCharactersBecomeVisibleEscapes() {
        XCTAssertEqual(
            Terminal.escapingControlCharacters("a\u{1B}[2Jb\rc\u{07}d\u{7F}e\u{9B}f\u{202E}g\u{0}h"),
            "a\\u{1B}[2Jb\\rc\\u{7}d\\u{7F}e\\u{9B}f\\u{202E}g\\u{0}h")
    }

    func testLineFeedsTabsAndOrdinaryTextStay() {
        let text = "services.x: problem\n  - next\tcolumn é ü 漢字 'quoted'"
        XCTAssertEqual(Terminal.escapingControlCharacters(text), text)
    }
}
