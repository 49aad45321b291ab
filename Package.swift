// swift-tools-version:6.0
// Baton: a distributed lock-and-token coordinator backed by Redis.
// No third-party Swift packages: Foundation, the toolchain, and Debian's C libraries only.
//
// Dependency direction (see docs/ARCHITECTURE.md):
//   CCrypto <- BatonSupport, which every Baton module may use (primitives: locked box, mailbox,
//              stop flag, backoff, blocking calls on a thread, durations, digests, edit distance)
//   CHiredis, CTLS <- BatonRedis <- BatonLock <- BatonTokens <- BatonCoordinator <- baton
//   BatonMetrics (Prometheus exposition; BatonSupport only) <- BatonCoordinator, baton
//   BatonConfig, CCurl <- BatonOAuth <- BatonTokens
//   BatonCommandLine <- baton
//   CMicroHTTPD, CMicroHTTPDShim <- BatonHTTP <- baton
import PackageDescription

let package = Package(
    name: "Baton",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "baton", targets: ["baton"]),
        .library(name: "BatonRedis", targets: ["BatonRedis"]),
        .library(name: "BatonLock", targets: ["BatonLock"]),
        .library(name: "BatonTokens", targets: ["BatonTokens"]),
        .library(name: "BatonConfig", targets: ["BatonConfig"]),
        .library(name: "BatonOAuth", targets: ["BatonOAuth"]),
        .library(name: "BatonSupport", targets: ["BatonSupport"]),
        .library(name: "BatonHTTP", targets: ["BatonHTTP"]),
    ],
    targets: [
        // C boundary: Debian's libhiredis-dev (0.14.1). Never part of a public signature.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // C boundary: OpenSSL's libcrypto: digests (script SHA-1, PKCE SHA-256), AES-256-GCM, random bytes.
        .systemLibrary(name: "CCrypto", providers: [.apt(["libssl-dev"])]),
        // C boundary: OpenSSL's libssl for Redis over TLS, with wrappers for the macros Swift cannot import.
        .target(name: "CTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        // C boundary: libcurl with typed, non-variadic setopt/getinfo wrappers.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        // C boundary: Debian's libmicrohttpd-dev (0.9.75), the HTTP parser and server of BatonHTTP.
        .systemLibrary(name: "CMicroHTTPD", providers: [.apt(["libmicrohttpd-dev"])]),
        // C boundary: non-variadic MHD_start_daemon / MHD_get_daemon_info wrappers.
        .target(name: "CMicroHTTPDShim", dependencies: ["CMicroHTTPD"]),

        // The bottom of the graph: Foundation-only primitives (and the one libcrypto digest).
        .target(name: "BatonSupport", dependencies: ["CCrypto"]),
        .target(name: "BatonRedis", dependencies: ["CHiredis", "CTLS", "BatonSupport"]),
        .target(name: "BatonLock", dependencies: ["BatonRedis", "BatonSupport"]),
        .target(
            name: "BatonTokens", dependencies: ["BatonRedis", "BatonLock", "BatonConfig", "BatonOAuth", "BatonSupport"]),
        .target(
            name: "BatonCoordinator",
            dependencies: ["BatonTokens", "BatonOAuth", "BatonConfig", "BatonMetrics", "BatonSupport"]),
        .target(name: "BatonMetrics", dependencies: ["BatonSupport"]),
        .target(name: "BatonConfig", dependencies: ["BatonSupport"]),
        .target(name: "BatonOAuth", dependencies: ["BatonConfig", "CCurl", "BatonSupport"]),
        .target(name: "BatonCommandLine", dependencies: ["BatonSupport"]),
        .target(name: "BatonHTTP", dependencies: ["CMicroHTTPD", "CMicroHTTPDShim", "BatonSupport"]),
        .executableTarget(
            name: "baton",
            dependencies: [
                "BatonRedis", "BatonLock", "BatonTokens", "BatonCoordinator", "BatonConfig", "BatonOAuth",
                "BatonCommandLine", "BatonMetrics", "BatonHTTP",
                "BatonSupport",
            ]
        ),

        // libFuzzer targets for the parsers (docs/FUZZING.md): `make fuzz` builds this with
        // -DFUZZING and libFuzzer; the ordinary build replays inputs through the same targets.
        .executableTarget(
            name: "BatonFuzz",
            dependencies: ["BatonConfig", "BatonOAuth", "BatonTokens", "BatonCoordinator", "BatonRedis"],
            path: "Tests/Fuzz/BatonFuzz"),

        // Throwaway redis-server processes and the fake OAuth provider, for tests.
        .target(name: "BatonTestSupport", dependencies: ["BatonCommandLine", "BatonRedis", "BatonSupport"]),
        .testTarget(name: "BatonSupportTests", dependencies: ["BatonSupport"]),
        .testTarget(name: "BatonRedisTests", dependencies: ["BatonRedis", "BatonSupport", "BatonTestSupport"]),
        .testTarget(name: "BatonLockTests", dependencies: ["BatonLock", "BatonTestSupport"]),
        // Several real `baton` processes against a real redis-server.
        .testTarget(
            name: "BatonMultiProcessTests",
            dependencies: [
                "BatonLock", "BatonRedis", "BatonTokens", "BatonCommandLine", "BatonSupport", "BatonTestSupport",
                "BatonMetrics",
            ]),
        .testTarget(name: "BatonTokensTests", dependencies: ["BatonTokens", "BatonTestSupport"]),
        .testTarget(
            name: "BatonCoordinatorTests", dependencies: ["BatonCoordinator", "BatonMetrics", "BatonTestSupport"]),
        .testTarget(name: "BatonMetricsTests", dependencies: ["BatonMetrics"]),
        .testTarget(name: "BatonHTTPTests", dependencies: ["BatonHTTP", "BatonTestSupport"]),
        .testTarget(name: "BatonConfigTests", dependencies: ["BatonConfig", "BatonSupport"]),
        // The seed corpus through every fuzz target.
        .testTarget(name: "BatonFuzzTests", dependencies: ["BatonFuzz"], path: "Tests/Fuzz/BatonFuzzTests"),
        .testTarget(name: "BatonOAuthTests", dependencies: ["BatonOAuth", "BatonConfig", "BatonTestSupport"]),
        // `baton` itself, for the check of every subcommand's help against its options.
        .testTarget(
            name: "BatonCommandLineTests",
            dependencies: [
                "BatonCommandLine", "BatonConfig", "BatonSupport", "baton", "BatonCoordinator", "BatonMetrics",
                "BatonRedis", "BatonTokens", "BatonTestSupport",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
